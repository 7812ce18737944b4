//! merge: the part files of a sharded sweep into what the unsharded command prints.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct MergeArgs {
    /// The part files (`--out PART.jsonl` of every shard).
    #[arg(required = true, value_name = "PART.jsonl")]
    pub parts: Vec<PathBuf>,
    /// Print the merged result as the unsharded command's `--json` does (the default prints
    /// a summary); for `sessions`, the series CSV.
    #[arg(long)]
    pub json: bool,
    /// Also write the merged JSON (for `sessions`, the series CSV) here (atomically).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn merge(a: MergeArgs) -> Result<()> {
    let merged = lantern_experiments::shard::merge(&a.parts)?;
    let text = format!("{}\n", merged.text);
    if let Some(out) = &a.out {
        lantern_io::write_atomic(out, text.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if a.json {
        print!("{text}");
        return Ok(());
    }
    println!(
        "merged {} parts of `lantern {}`: {} units",
        merged.parts, merged.command, merged.units
    );
    let j = &merged.json;
    if merged.command == "shapley" {
        let names = j["players"].as_array().cloned().unwrap_or_default();
        for (i, n) in names.iter().enumerate() {
            println!(
                "  {:<16} {:+.4} ± {:.4}",
                n.as_str().unwrap_or(""),
                j["values"][i].as_f64().unwrap_or(f64::NAN),
                j["std_errors"][i].as_f64().unwrap_or(f64::NAN)
            );
        }
    } else if merged.command == "sessions" {
        println!(
            "{} sessions of {} states (--out FILE.csv for the series, as `lantern sessions` writes it)",
            j["activations"].as_array().map_or(0, Vec::len),
            j["states"].as_array().map_or(0, Vec::len)
        );
    } else {
        let r = &j["result"];
        println!(
            "clean {:.4}, corrupted {:.4}; {} patches (--json for the map)",
            r["clean"].as_f64().unwrap_or(f64::NAN),
            r["corrupted"].as_f64().unwrap_or(f64::NAN),
            r["patches"]
        );
    }
    Ok(())
}
