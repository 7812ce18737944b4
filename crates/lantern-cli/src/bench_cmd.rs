//! `lantern bench`: forward and generation timings on this machine (logic in
//! `lantern_engine::bench`).

use anyhow::Result;
use clap::Args;
use lantern_engine::bench::{self, BenchConfig};
use serde_json::json;

use crate::util::{print_json, ModelArgs};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Rows of the timed forward pass.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Tokens per row (also the prompt length of the generation runs).
    #[arg(long, default_value_t = 16)]
    pub seq: usize,
    /// Timed repetitions of each measurement (after one warm-up).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Also time greedy generation of this many new tokens (batch 1, with and without a
    /// steering intervention), and the prefill of the prompt.
    #[arg(long, value_name = "N")]
    pub generate: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let cfg = BenchConfig {
        batch: a.batch,
        seq: a.seq,
        reps: a.reps,
        generate: a.generate,
    };
    // Settings that need no model are refused before the (slow) load.
    bench::check_counts(&cfg)?;
    let lm = a.model.load()?;
    let report = bench::run(&lm.model, &lm.tokenizer, &cfg)?;
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    if a.json {
        return print_json(&json!({
            "model": lm.source,
            "dtype": a.model.dtype,
            "device": a.model.device,
            "threads": threads,
            "report": report,
        }));
    }
    println!(
        "{} ({}, {}, {threads} threads)",
        lm.source, a.model.dtype, a.model.device
    );
    print!("{}", report.to_text());
    Ok(())
}
