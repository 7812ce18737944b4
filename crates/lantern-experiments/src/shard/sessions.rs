//! Sharded P3 session recording (`lantern sessions --out PART.jsonl`): a unit is one session,
//! named by its index; a block is `batch_size` consecutive sessions, the sessions one
//! generation batch of the unsharded run holds (so the same padding and sampling streams).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use lantern_engine::LoadedModel;
use lantern_states::StateSet;
use serde_json::{json, Value};

use super::patch::PartSummary;
use super::{Header, PartWriter, Record, ShardSpec};
use crate::p3::{run_session_range, P3Config, Sessions};

/// One session recording's inputs.
pub struct SessionsJob<'a> {
    pub lm: &'a LoadedModel,
    pub cfg: &'a P3Config,
    pub states: &'a StateSet,
    pub questions: &'a [String],
    /// The steered state and the steps it is steered at.
    pub steer: Option<(&'a str, &'a [usize])>,
}

/// Block `b`'s sessions.
fn block_range(b: usize, batch: usize, n_sessions: usize) -> std::ops::Range<usize> {
    b * batch..((b + 1) * batch).min(n_sessions)
}

fn block_sizes(batch: usize, n_sessions: usize) -> Vec<usize> {
    (0..n_sessions.div_ceil(batch))
        .map(|b| block_range(b, batch, n_sessions).len())
        .collect()
}

/// Runs `shard`'s blocks of sessions into the part file `out`, skipping those it already holds.
pub fn run_part(
    job: &SessionsJob,
    options: Value,
    shard: ShardSpec,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PartSummary> {
    let (n, batch) = (job.cfg.sessions, job.cfg.batch_size.max(1));
    let sizes = block_sizes(batch, n);
    let context = json!({ "sessions": n, "steps": job.cfg.steps, "batch_size": batch });
    let header = Header::new("sessions", &job.lm.source, options, context, shard, &sizes)?;
    let (mut writer, done) = PartWriter::open(out, &header, &sizes)?;
    let owned: Vec<usize> = (0..sizes.len()).filter(|&b| shard.owns(b)).collect();
    let todo: Vec<usize> = owned.iter().copied().filter(|&b| !done[b]).collect();
    progress(0, todo.len());
    for (k, &b) in todo.iter().enumerate() {
        let range = block_range(b, batch, n);
        let s = run_session_range(
            job.lm,
            job.cfg,
            job.states,
            job.questions,
            range.clone(),
            job.cfg.steps,
            job.steer,
            &mut |_, _| {},
        )?;
        let records: Vec<Record> = range
            .enumerate()
            .map(|(i, global)| Record {
                block: b,
                unit: global.to_string(),
                value: json!({
                    "states": s.states,
                    "activations": s.activations[i],
                    "transcript": s.transcripts[i],
                    "steered": s.steered,
                }),
            })
            .collect();
        writer.write_block(&records)?;
        progress(k + 1, todo.len());
    }
    Ok(PartSummary {
        blocks_run: todo.len(),
        blocks_skipped: owned.len() - todo.len(),
        blocks_owned: owned.len(),
    })
}

fn plan(header: &Header) -> Result<(usize, usize)> {
    let get = |k: &str| -> Result<usize> {
        serde_json::from_value(header.context[k].clone())
            .with_context(|| format!("the part header's context has no `{k}`"))
    };
    let batch = get("batch_size")?;
    if batch == 0 {
        bail!("the part header's batch_size is 0");
    }
    Ok((get("sessions")?, batch))
}

/// Every block's sessions.
pub fn expected_blocks(header: &Header) -> Result<Vec<Vec<String>>> {
    let (n, batch) = plan(header)?;
    Ok((0..n.div_ceil(batch))
        .map(|b| block_range(b, batch, n).map(|s| s.to_string()).collect())
        .collect())
}

/// The recorded sessions, in order, as one unsharded run records them.
pub fn merged_sessions(header: &Header, units: &HashMap<String, Value>) -> Result<Sessions> {
    let (n, _) = plan(header)?;
    let mut out = Sessions {
        states: Vec::new(),
        activations: Vec::with_capacity(n),
        transcripts: Vec::with_capacity(n),
        steered: None,
        fluency: Vec::new(),
    };
    for s in 0..n {
        let v = units
            .get(&s.to_string())
            .context("checked: every unit is present")?;
        let field = |k: &str| -> Result<Value> {
            v.get(k)
                .cloned()
                .with_context(|| format!("session {s}'s record has no `{k}`"))
        };
        let states: Vec<String> = serde_json::from_value(field("states")?)
            .with_context(|| format!("session {s}'s state names"))?;
        let steered: Option<(String, Vec<usize>)> = serde_json::from_value(field("steered")?)
            .with_context(|| format!("session {s}'s steering"))?;
        if s == 0 {
            out.states = states;
            out.steered = steered;
        } else if states != out.states || steered != out.steered {
            bail!("session {s} was recorded with other states or steering than session 0");
        }
        let activations: Vec<Vec<f64>> = serde_json::from_value(field("activations")?)
            .with_context(|| format!("session {s}'s activations"))?;
        if activations.iter().any(|a| a.len() != out.states.len()) {
            bail!(
                "session {s}'s activations do not have one value per state ({})",
                out.states.len()
            );
        }
        out.activations.push(activations);
        out.transcripts.push(
            serde_json::from_value(field("transcript")?)
                .with_context(|| format!("session {s}'s transcript"))?,
        );
    }
    Ok(out)
}

/// The series CSV `lantern sessions --out FILE.csv` writes, without its final newline.
pub fn merged_csv(sessions: &Sessions) -> Result<String> {
    let text = crate::output::csv_text(&sessions.csv_rows())?;
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
}
