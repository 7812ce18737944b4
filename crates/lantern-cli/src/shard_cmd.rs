//! `--shard I/N` with `--out PART.jsonl` on the sweep commands (patch, shapley, scale,
//! sessions): the glue
//! between their arguments and `lantern_experiments::shard`.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use lantern_attribution::patching::{patch_sweep_blocks, BlockOptions, SweepOptions};
use lantern_attribution::{Metric, PatchGrid, PatchResult, PatchTarget};
use lantern_engine::{Batch, LoadedModel};
use lantern_experiments::shard::{self, patch::PatchJob, ShardSpec};
use lantern_shapley::{Game, Method, RunOptions};
use serde_json::json;

use crate::p1_cmds::{PatchArgs, ScaleArgs};
use crate::p2_cmds::ShapleyArgs;
use crate::p3_cmds::SessionsArgs;

#[derive(Args, Debug, Clone)]
pub struct ShardArgs {
    /// Run shard I of N (0-based) of the sweep into --out PART.jsonl; default: a Slurm array
    /// task's place (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT)
    /// when --out is a .jsonl file. Rerun after a kill, it resumes.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

impl ShardArgs {
    /// The shard to run when `out` is a part file (`.jsonl`), else `None`.
    pub fn part(&self, out: Option<&Path>) -> Result<Option<ShardSpec>> {
        let part = shard::part_output(out, self.shard.as_deref())?;
        if part.is_none() && std::env::var_os("SLURM_ARRAY_TASK_COUNT").is_some() {
            // Every task of the array would run the whole sweep.
            eprintln!("warning: in a Slurm array task without --out PART.jsonl: running the whole sweep, not a shard of it");
        }
        Ok(part)
    }
}

/// `cpu` or `cuda`: a part's results depend on the kind of device, not on which GPU ran it.
fn device_kind(device: &str) -> &str {
    device.split(':').next().unwrap_or(device)
}

pub fn patch_job<'a>(
    a: &PatchArgs,
    lm: &'a LoadedModel,
    clean: &'a Batch,
    corrupted: &'a Batch,
    target: PatchTarget,
    grid: PatchGrid,
    metric: Metric,
) -> PatchJob<'a> {
    PatchJob {
        model: &lm.model,
        clean,
        corrupted,
        target,
        grid,
        metric,
        batch_size: a.batch_size,
        max_cache_bytes: a.max_cache_bytes,
        tokens: clean
            .row(0)
            .iter()
            .map(|&i| lm.tokenizer.token_text(i))
            .collect(),
    }
}

/// The whole sweep holding at most `bytes` of cached activations.
pub fn patch_sweep_within(
    job: &PatchJob,
    bytes: usize,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<PatchResult> {
    let mut cells = Vec::new();
    let mut result = patch_sweep_blocks(
        job.model,
        job.clean,
        job.corrupted,
        job.target,
        job.grid,
        job.metric,
        SweepOptions {
            batch_size: job.batch_size,
            progress: Some(tick),
        },
        BlockOptions {
            select: &|_| true,
            max_cache_bytes: Some(bytes),
            on_block: &mut |_, c| {
                cells.extend_from_slice(c);
                Ok(())
            },
        },
    )?;
    for c in cells {
        result.values[c.row][c.col] = c.value;
    }
    Ok(result)
}

fn report(shard: ShardSpec, out: &Path, s: shard::patch::PartSummary) {
    eprintln!(
        "shard {}/{}: {} blocks run, {} already in {} ({} blocks are this shard's)",
        shard.index,
        shard.count,
        s.blocks_run,
        s.blocks_skipped,
        out.display(),
        s.blocks_owned
    );
}

pub fn patch_part(
    a: &PatchArgs,
    lm: &LoadedModel,
    job: &PatchJob,
    shard: ShardSpec,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    let out = a.out.as_deref().context("a part file is given")?;
    let options = json!({
        "clean": a.clean, "corrupted": a.corrupted, "target": a.target, "versus": a.versus,
        "hook": a.hook, "grid": a.grid, "layer": a.layer, "metric": a.metric,
        "batch_size": a.batch_size, "dtype": a.model.dtype, "device": device_kind(&a.model.device),
    });
    let s = shard::patch::run_part(job, &lm.source, options, shard, out, tick)?;
    report(shard, out, s);
    Ok(())
}

pub fn shapley_part(
    a: &ShapleyArgs,
    game: &mut dyn Game,
    model_source: &str,
    method: Method,
    opts: &RunOptions,
    shard: ShardSpec,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    let out = a.out.as_deref().context("a part file is given")?;
    let template = std::fs::read_to_string(&a.template)
        .with_context(|| format!("reading {}", a.template.display()))?;
    let options = json!({
        "template": template, "target": a.target, "value": a.value, "option": a.options,
        "chosen": a.chosen, "absent": a.absent, "batch_size": a.batch_size,
        "server_model": a.server_model, "dtype": a.model.dtype,
        "device": device_kind(&a.model.device),
    });
    let s = shard::shapley::run_part(game, method, opts, model_source, options, shard, out, tick)?;
    report(shard, out, s);
    Ok(())
}

pub fn scale_part(
    a: &ScaleArgs,
    job: &shard::scale::ScaleJob,
    shard: ShardSpec,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    let out = a.out.as_deref().context("a part file is given")?;
    let config = std::fs::read_to_string(&a.config)
        .with_context(|| format!("reading {}", a.config.display()))?;
    let options = json!({
        "config": config, "heads": a.heads, "alphas": job.alphas, "scale_bias": job.scale_bias,
        "dtype": a.model.dtype, "device": device_kind(&a.model.device),
    });
    let s = shard::scale::run_part(job, options, shard, out, tick)?;
    report(shard, out, s);
    Ok(())
}

pub fn sessions_part(
    a: &SessionsArgs,
    job: &shard::sessions::SessionsJob,
    shard: ShardSpec,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    let config = std::fs::read_to_string(&a.config)
        .with_context(|| format!("reading {}", a.config.display()))?;
    // The states file (already loaded, so a file) can be large: its sha256 stands for it.
    let states_sha256 = shard::model_sha256(&a.states.to_string_lossy())?;
    let options = json!({
        "config": config, "states_sha256": states_sha256, "steer": job.steer,
        "dtype": a.model.dtype, "device": device_kind(&a.model.device),
    });
    let s = shard::sessions::run_part(job, options, shard, &a.out, tick)?;
    report(shard, &a.out, s);
    Ok(())
}
