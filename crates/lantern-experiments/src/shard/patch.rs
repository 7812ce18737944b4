//! Sharded activation patching (`lantern patch --out PART.jsonl`): a unit is one patch cell,
//! named `ROW/COL` by the map's labels (`L3/5`: layer 3, position 5).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use lantern_attribution::patching::{patch_blocks, patch_sweep_blocks, BlockOptions, SweepOptions};
use lantern_attribution::{Metric, PatchGrid, PatchTarget};
use lantern_engine::{Batch, Model};
use serde_json::{json, Value};

use super::{Header, PartWriter, Record, ShardSpec};
use crate::p1::{CommandJson, PatchReport};

/// One patching sweep's inputs.
pub struct PatchJob<'a> {
    pub model: &'a Model,
    pub clean: &'a Batch,
    pub corrupted: &'a Batch,
    pub target: PatchTarget,
    pub grid: PatchGrid,
    pub metric: Metric,
    pub batch_size: usize,
    pub max_cache_bytes: Option<usize>,
    /// The clean prompt's tokens, as the report lists them.
    pub tokens: Vec<String>,
}

/// What a shard did.
#[derive(Debug, Clone, Copy)]
pub struct PartSummary {
    pub blocks_run: usize,
    pub blocks_skipped: usize,
    pub blocks_owned: usize,
}

fn unit_name(rows: &[String], cols: &[String], (r, c): (usize, usize)) -> String {
    format!("{}/{}", rows[r], cols[c])
}

/// Runs `shard`'s blocks of `job` into the part file `out`, skipping blocks it already holds.
/// `model_source` and `options` go into the header.
pub fn run_part(
    job: &PatchJob,
    model_source: &str,
    options: Value,
    shard: ShardSpec,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PartSummary> {
    let plan = patch_blocks(
        job.model,
        job.target,
        job.grid,
        job.clean.seq_len(),
        job.batch_size,
    )?;
    let sizes: Vec<usize> = plan.blocks.iter().map(Vec::len).collect();
    // The baselines (clean, corrupted) label the report: two forward passes, no patch.
    let empty = patch_sweep_blocks(
        job.model,
        job.clean,
        job.corrupted,
        job.target,
        job.grid,
        job.metric,
        SweepOptions::default(),
        BlockOptions {
            select: &|_| false,
            max_cache_bytes: None,
            on_block: &mut |_, _| Ok(()),
        },
    )?;
    let report = PatchReport {
        result: empty,
        seconds: 0.0,
        tokens: job.tokens.clone(),
    };
    let mut report_json = report.to_json()?;
    if let Some(fields) = report_json.as_object_mut() {
        fields.remove("seconds");
    }
    let context = json!({ "report": report_json, "blocks": plan.blocks });
    let header = Header::new("patch", model_source, options, context, shard, &sizes)?;
    let (mut writer, done) = PartWriter::open(out, &header, &sizes)?;
    let owned: Vec<usize> = (0..sizes.len()).filter(|&b| shard.owns(b)).collect();
    let todo: Vec<bool> = (0..sizes.len())
        .map(|b| shard.owns(b) && !done[b])
        .collect();
    let skipped = owned.iter().filter(|&&b| done[b]).count();
    let (rows, cols) = (&plan.row_labels, &plan.col_labels);
    let mut run = 0;
    let mut write_err: Option<anyhow::Error> = None;
    patch_sweep_blocks(
        job.model,
        job.clean,
        job.corrupted,
        job.target,
        job.grid,
        job.metric,
        SweepOptions {
            batch_size: job.batch_size,
            progress: Some(progress),
        },
        BlockOptions {
            select: &|b| todo[b],
            max_cache_bytes: job.max_cache_bytes,
            on_block: &mut |b, cells| {
                let records: Vec<Record> = cells
                    .iter()
                    .map(|c| Record {
                        block: b,
                        unit: unit_name(rows, cols, (c.row, c.col)),
                        value: json!(c.value),
                    })
                    .collect();
                if let Err(e) = writer.write_block(&records) {
                    let msg = e.to_string();
                    write_err = Some(e);
                    return Err(lantern_engine::Error::invalid(msg));
                }
                run += 1;
                Ok(())
            },
        },
    )
    .map_err(|e| write_err.take().unwrap_or_else(|| e.into()))?;
    Ok(PartSummary {
        blocks_run: run,
        blocks_skipped: skipped,
        blocks_owned: owned.len(),
    })
}

type Blocks = Vec<Vec<(usize, usize)>>;

fn context(header: &Header) -> Result<(Blocks, Vec<String>, Vec<String>, Value)> {
    let ctx = &header.context;
    let blocks: Blocks = serde_json::from_value(ctx["blocks"].clone())
        .context("the part header's context has no patch block list")?;
    let report = ctx["report"].clone();
    let labels = |k: &str| -> Result<Vec<String>> {
        serde_json::from_value(report["result"][k].clone())
            .with_context(|| format!("the part header's report has no {k}"))
    };
    Ok((blocks, labels("row_labels")?, labels("col_labels")?, report))
}

/// Every block's unit names.
pub fn expected_blocks(header: &Header) -> Result<Vec<Vec<String>>> {
    let (blocks, rows, cols, _) = context(header)?;
    for &(r, c) in blocks.iter().flatten() {
        if r >= rows.len() || c >= cols.len() {
            bail!("the part header's block list names cell ({r}, {c}) outside the map");
        }
    }
    Ok(blocks
        .iter()
        .map(|b| b.iter().map(|&rc| unit_name(&rows, &cols, rc)).collect())
        .collect())
}

/// The report `lantern patch --json` prints, with every cell's merged value.
pub fn merged_json(header: &Header, units: &HashMap<String, Value>) -> Result<Value> {
    let (blocks, rows, cols, mut report) = context(header)?;
    let values = report["result"]["values"]
        .as_array_mut()
        .context("the part header's report has no values")?;
    for &(r, c) in blocks.iter().flatten() {
        let v = units
            .get(&unit_name(&rows, &cols, (r, c)))
            .context("checked: every unit is present")?;
        // A NaN score is written as null, as the unsharded JSON writes it.
        if !(v.is_number() || v.is_null()) {
            bail!(
                "cell {}'s value {v} is not a number",
                unit_name(&rows, &cols, (r, c))
            );
        }
        values[r][c] = v.clone();
    }
    Ok(report)
}
