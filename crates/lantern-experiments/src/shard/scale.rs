//! Sharded α sweeps (`lantern scale --out PART.jsonl`): a unit is one α, named `I:α` (its place
//! in the list and its value); each is its own block, since every α is one independent batch
//! of generations.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use lantern_attribution::{alpha_sweep, RecallPrompt};
use lantern_engine::{GenerateConfig, LoadedModel};
use serde_json::{json, Value};

use super::patch::PartSummary;
use super::{Header, PartWriter, Record, ShardSpec};
use crate::p1::{CommandJson, ScaleReport};

/// One α sweep's inputs.
pub struct ScaleJob<'a> {
    pub lm: &'a LoadedModel,
    pub prompts: &'a [RecallPrompt],
    pub heads: Vec<(usize, usize)>,
    pub alphas: Vec<f64>,
    pub scale_bias: bool,
    pub gen: GenerateConfig,
    pub batch_size: usize,
}

fn unit_name(i: usize, alpha: f64) -> String {
    format!("{i}:{alpha}")
}

/// Runs `shard`'s αs of `job` into the part file `out`, skipping those it already holds.
pub fn run_part(
    job: &ScaleJob,
    options: Value,
    shard: ShardSpec,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PartSummary> {
    let sizes = vec![1; job.alphas.len()];
    let empty = ScaleReport {
        heads: job.heads.clone(),
        points: Vec::new(),
        scale_bias: job.scale_bias,
    };
    // The prompts are built from the config's data file: their hash stands for them.
    let prompts = super::hex(&<sha2::Sha256 as sha2::Digest>::digest(
        serde_json::to_string(job.prompts)?.as_bytes(),
    ));
    let context =
        json!({ "report": empty.to_json()?, "alphas": job.alphas, "prompts_sha256": prompts });
    let header = Header::new("scale", &job.lm.source, options, context, shard, &sizes)?;
    let (mut writer, done) = PartWriter::open(out, &header, &sizes)?;
    let owned: Vec<usize> = (0..sizes.len()).filter(|&b| shard.owns(b)).collect();
    let todo: Vec<usize> = owned.iter().copied().filter(|&b| !done[b]).collect();
    progress(0, todo.len());
    for (k, &b) in todo.iter().enumerate() {
        let alpha = job.alphas[b];
        let mut points = alpha_sweep(
            &job.lm.model,
            &job.lm.tokenizer,
            job.prompts,
            &job.heads,
            &[alpha],
            job.scale_bias,
            &job.gen,
            job.batch_size,
            |_, _| {},
        )?;
        let point = points.pop().context("one α gives one point")?;
        writer.write_block(&[Record {
            block: b,
            unit: unit_name(b, alpha),
            value: serde_json::to_value(point)?,
        }])?;
        progress(k + 1, todo.len());
    }
    Ok(PartSummary {
        blocks_run: todo.len(),
        blocks_skipped: owned.len() - todo.len(),
        blocks_owned: owned.len(),
    })
}

fn alphas(header: &Header) -> Result<Vec<f64>> {
    serde_json::from_value(header.context["alphas"].clone())
        .context("the part header has no α list")
}

/// Every block's unit (one α each).
pub fn expected_blocks(header: &Header) -> Result<Vec<Vec<String>>> {
    Ok(alphas(header)?
        .iter()
        .enumerate()
        .map(|(i, &a)| vec![unit_name(i, a)])
        .collect())
}

/// The report `lantern scale --json` prints, with every α's point in order.
pub fn merged_json(header: &Header, units: &HashMap<String, Value>) -> Result<Value> {
    let mut report = header.context["report"].clone();
    let points: Vec<Value> = alphas(header)?
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let v = units
                .get(&unit_name(i, a))
                .cloned()
                .context("checked: every unit is present")?;
            if v["alpha"].as_f64() != Some(a) {
                anyhow::bail!(
                    "the point recorded for α {a} (unit {}) is not that α's: {v}",
                    unit_name(i, a)
                );
            }
            Ok(v)
        })
        .collect::<Result<_>>()?;
    report["points"] = Value::Array(points);
    Ok(report)
}
