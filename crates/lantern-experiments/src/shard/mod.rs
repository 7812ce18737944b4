//! Sharded, resumable sweeps: a long sweep (activation patching, Shapley coalitions) split into
//! numbered *blocks* of units of work, handed out to `N` processes (`--shard I/N`, or a Slurm
//! array's task id), each writing one part file (`--out PART.jsonl`); `lantern merge` joins the
//! parts into exactly what one unsharded run prints.
//!
//! # Part file
//!
//! JSON lines. The first is the [`Header`]: the command, the model and its sha256, the options
//! that change results, the command's context (labels, baselines) and the shard. Each further
//! line is one [`Record`]: a unit of work (a patch cell, a coalition) with its block and value.
//!
//! # Blocks
//!
//! A block is what one forward batch of the unsharded command computes: a patching sweep's
//! patches of one layer `batch_size` at a time, the coalitions one Shapley estimator hands the
//! model in one call, one α of a value-scaling sweep, or P3's `batch_size` consecutive sessions
//! (one generation batch). Shard `I` of `N` runs the blocks `b` with `b % N == I`. Since every
//! unit is computed in the same batch as in one run, merged numbers are bit-identical to one
//! run's.
//!
//! # Resuming
//!
//! A block's records are appended in one write and synced. Rerun after a kill, the command
//! reads its part file back, drops a torn last line and the records of any block that did not
//! finish (rewriting the file atomically), and runs only the blocks still missing.
//!
//! # Sampled Shapley estimators and seeds
//!
//! Permutation sampling and KernelSHAP draw their whole plan (which coalitions, in which calls)
//! from the one `ChaCha8` stream of `--seed` before any model call: the plan does not depend on
//! the values. Every shard draws that same plan (cheap: no model) and evaluates only its blocks;
//! merge replays the estimator on the merged values. So `N` shards give exactly the estimate of
//! one run with the same budget and seed, whatever `N`.

mod part;
pub mod patch;
pub mod scale;
pub mod sessions;
pub mod shapley;
mod spec;

pub use part::{read_part, Header, Part, PartWriter, Record, PART_FORMAT};
pub use spec::{part_output, ShardSpec};

use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// sha256 of a model: its file, or every file of its folder (names and bytes, in name order).
/// A hub id that is not a local path is hashed as its name.
pub fn model_sha256(source: &str) -> Result<String> {
    let path = Path::new(source);
    let mut h = Sha256::new();
    let mut add_file = |p: &Path| -> Result<()> {
        let mut f = std::fs::File::open(p)
            .with_context(|| format!("hashing model file {}", p.display()))?;
        std::io::copy(&mut f, &mut h).with_context(|| format!("hashing {}", p.display()))?;
        Ok(())
    };
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("listing model folder {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in &files {
            add_file(f)?;
        }
    } else if path.is_file() {
        add_file(path)?;
    } else {
        return Ok(hex(&Sha256::digest(source.as_bytes())));
    }
    Ok(hex(&h.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What merging parts gives: the command's JSON, as its unsharded run prints it.
#[derive(Debug, Clone)]
pub struct Merged {
    pub command: String,
    pub json: serde_json::Value,
    /// `json` as the unsharded command's `--json` prints it (without the final newline); for
    /// `sessions`, the series CSV it writes to `--out`.
    pub text: String,
    pub parts: usize,
    pub units: usize,
}

/// Reads and checks `paths` (same command, model, options, shard count; every unit present
/// exactly once) and computes the command's result.
pub fn merge(paths: &[impl AsRef<Path>]) -> Result<Merged> {
    if paths.is_empty() {
        bail!("merge needs at least one part file");
    }
    let parts: Vec<Part> = paths
        .iter()
        .map(|p| read_part(p.as_ref()))
        .collect::<Result<_>>()?;
    let first = &parts[0];
    for p in &parts[1..] {
        if let Some(diff) = first.header.difference(&p.header) {
            bail!(
                "{} and {} are not parts of the same sweep: {diff}",
                first.path.display(),
                p.path.display()
            );
        }
    }
    let expected = match first.header.command.as_str() {
        "patch" => patch::expected_blocks(&first.header)?,
        "shapley" => shapley::expected_blocks(&first.header)?,
        "scale" => scale::expected_blocks(&first.header)?,
        "sessions" => sessions::expected_blocks(&first.header)?,
        other => bail!(
            "{}: unknown command `{other}` in the header",
            first.path.display()
        ),
    };
    let table = collect_units(&parts, &expected)?;
    // The text as the unsharded command prints it: its own struct's field order for Shapley,
    // a JSON value's (sorted keys) for patching, the series CSV it writes for sessions.
    let (json, text) = match first.header.command.as_str() {
        "sessions" => {
            let s = sessions::merged_sessions(&first.header, &table)?;
            (serde_json::to_value(&s)?, sessions::merged_csv(&s)?)
        }
        "patch" | "scale" => {
            let json = match first.header.command.as_str() {
                "patch" => patch::merged_json(&first.header, &table)?,
                _ => scale::merged_json(&first.header, &table)?,
            };
            let text = serde_json::to_string_pretty(&json)?;
            (json, text)
        }
        _ => {
            let r = shapley::merged_result(&first.header, &table)?;
            (serde_json::to_value(&r)?, serde_json::to_string_pretty(&r)?)
        }
    };
    Ok(Merged {
        command: first.header.command.clone(),
        json,
        text,
        parts: parts.len(),
        units: table.len(),
    })
}

/// Every unit's value, checked against the expected blocks: a unit twice, a unit in the wrong
/// block or unknown, and a missing unit are errors that name it.
fn collect_units(
    parts: &[Part],
    expected: &[Vec<String>],
) -> Result<std::collections::HashMap<String, serde_json::Value>> {
    use std::collections::HashMap;
    let mut block_of: HashMap<&str, usize> = HashMap::new();
    for (b, units) in expected.iter().enumerate() {
        for u in units {
            block_of.insert(u.as_str(), b);
        }
    }
    let mut seen: HashMap<String, (usize, serde_json::Value)> = HashMap::new();
    for (i, part) in parts.iter().enumerate() {
        for r in &part.records {
            match block_of.get(r.unit.as_str()) {
                None => bail!(
                    "{}: unknown unit `{}` (not in this sweep's plan)",
                    part.path.display(),
                    r.unit
                ),
                Some(&b) if b != r.block => bail!(
                    "{}: unit `{}` is recorded in block {} but belongs to block {b}",
                    part.path.display(),
                    r.unit,
                    r.block
                ),
                Some(_) => {}
            }
            if let Some((j, _)) = seen.get(&r.unit) {
                bail!(
                    "unit `{}` (block {}) is duplicated: it is in {} and in {}",
                    r.unit,
                    r.block,
                    parts[*j].path.display(),
                    part.path.display()
                );
            }
            seen.insert(r.unit.clone(), (i, r.value.clone()));
        }
    }
    let missing: Vec<(usize, &str)> = expected
        .iter()
        .enumerate()
        .flat_map(|(b, us)| us.iter().map(move |u| (b, u.as_str())))
        .filter(|(_, u)| !seen.contains_key(*u))
        .collect();
    if let Some(&(b, u)) = missing.first() {
        let shards = parts[0].header.shards;
        bail!(
            "{} of {} units are missing, first `{u}` (block {b}, shard {}/{shards}); merge every shard's finished part",
            missing.len(),
            block_of.len(),
            b % shards
        );
    }
    Ok(seen.into_iter().map(|(u, (_, v))| (u, v)).collect())
}
