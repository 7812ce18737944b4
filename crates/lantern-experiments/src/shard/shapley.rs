//! Sharded Shapley estimation (`lantern shapley --out PART.jsonl`): a unit is one coalition,
//! named by its bitmask (`5` = players 0 and 2).
//!
//! Every estimator asks for its coalitions in calls whose content does not depend on the
//! values returned (exact: all `2^n` in order; permutation and KernelSHAP: drawn from the seed's
//! stream up front). [`plan`] runs the estimator on a game that records those calls and answers
//! zeros; the calls are the blocks. [`replay`] runs it again on the merged values.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use lantern_shapley::{
    run_with_options, Coalition, Game, Method, RunOptions, ShapleyError, ShapleyResult,
};
use serde_json::{json, Value};

use super::{Header, PartWriter, Record, ShardSpec};

/// Records the estimator's calls and answers zeros: the plan does not depend on the values.
struct PlanGame {
    names: Vec<String>,
    calls: Vec<Vec<Coalition>>,
}

impl Game for PlanGame {
    fn n_players(&self) -> usize {
        self.names.len()
    }
    fn player_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> lantern_shapley::Result<Vec<f64>> {
        self.calls.push(coalitions.to_vec());
        Ok(vec![0.0; coalitions.len()])
    }
}

/// Answers from merged values.
struct TableGame<'a> {
    names: Vec<String>,
    table: &'a HashMap<u64, f64>,
}

impl Game for TableGame<'_> {
    fn n_players(&self) -> usize {
        self.names.len()
    }
    fn player_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> lantern_shapley::Result<Vec<f64>> {
        coalitions
            .iter()
            .map(|c| {
                self.table.get(&c.bits()).copied().ok_or_else(|| {
                    ShapleyError::InvalidArgument(format!("coalition {} was not merged", c.bits()))
                })
            })
            .collect()
    }
}

/// The coalitions `method` asks for, call by call (the blocks).
pub fn plan(names: &[String], method: Method, opts: &RunOptions) -> Result<Vec<Vec<Coalition>>> {
    let mut g = PlanGame {
        names: names.to_vec(),
        calls: Vec::new(),
    };
    run_with_options(method, &mut g, opts, None)?;
    Ok(g.calls)
}

/// `method`'s result from the values of every planned coalition.
pub fn replay(
    names: &[String],
    method: Method,
    opts: &RunOptions,
    table: &HashMap<u64, f64>,
) -> Result<ShapleyResult> {
    let mut g = TableGame {
        names: names.to_vec(),
        table,
    };
    Ok(run_with_options(method, &mut g, opts, None)?)
}

/// The header options an estimator's plan depends on.
pub fn plan_options(method: Method, opts: &RunOptions) -> Value {
    json!({
        "method": method.as_str(),
        "budget": opts.budget,
        "seed": opts.seed,
        "coalitions_per_call": opts.batch_size,
        "exact_limit": opts.exact_limit,
        "bootstrap": opts.bootstrap,
    })
}

fn from_header(header: &Header) -> Result<(Vec<String>, Method, RunOptions)> {
    let p = &header.context["plan"];
    let n = |k: &str| -> Result<usize> {
        p[k].as_u64()
            .map(|v| v as usize)
            .with_context(|| format!("the part header's Shapley plan has no `{k}`"))
    };
    let method: Method = p["method"]
        .as_str()
        .context("the part header's Shapley plan has no method")?
        .parse()?;
    let opts = RunOptions {
        budget: n("budget")?,
        seed: p["seed"].as_u64().context("no seed in the plan")?,
        batch_size: n("coalitions_per_call")?,
        exact_limit: n("exact_limit")?,
        bootstrap: n("bootstrap")?,
    };
    let names: Vec<String> = serde_json::from_value(header.context["players"].clone())
        .context("the part header has no player names")?;
    Ok((names, method, opts))
}

/// Every block's unit names, from the plan the header describes.
pub fn expected_blocks(header: &Header) -> Result<Vec<Vec<String>>> {
    let (names, method, opts) = from_header(header)?;
    Ok(plan(&names, method, &opts)?
        .iter()
        .map(|b| b.iter().map(|c| c.bits().to_string()).collect())
        .collect())
}

/// The result `lantern shapley` computes, from the merged values.
pub fn merged_result(header: &Header, units: &HashMap<String, Value>) -> Result<ShapleyResult> {
    let (names, method, opts) = from_header(header)?;
    let mut table = HashMap::new();
    for (u, v) in units {
        let bits: u64 = u
            .parse()
            .with_context(|| format!("unit `{u}` is not a coalition"))?;
        let v = v
            .as_f64()
            .with_context(|| format!("coalition {u}'s value {v} is not a number"))?;
        table.insert(bits, v);
    }
    replay(&names, method, &opts, &table)
}

/// Runs `shard`'s blocks of the plan on `game` into the part file `out`. `options` (the
/// command's own, e.g. the value kind) go into the header next to the plan's.
#[allow(clippy::too_many_arguments)]
pub fn run_part(
    game: &mut dyn Game,
    method: Method,
    opts: &RunOptions,
    model_source: &str,
    options: Value,
    shard: ShardSpec,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<super::patch::PartSummary> {
    let names = game.player_names();
    let blocks = plan(&names, method, opts)?;
    let sizes: Vec<usize> = blocks.iter().map(Vec::len).collect();
    let context = json!({ "players": names, "plan": plan_options(method, opts) });
    let header = Header::new("shapley", model_source, options, context, shard, &sizes)?;
    let (mut writer, done) = PartWriter::open(out, &header, &sizes)?;
    let owned: Vec<usize> = (0..sizes.len()).filter(|&b| shard.owns(b)).collect();
    let todo: Vec<usize> = owned.iter().copied().filter(|&b| !done[b]).collect();
    let total: usize = todo.iter().map(|&b| sizes[b]).sum();
    let mut finished = 0;
    progress(0, total);
    for &b in &todo {
        let values = game.evaluate(&blocks[b])?;
        if values.len() != blocks[b].len() {
            bail!(
                "the game returned {} values for {} coalitions",
                values.len(),
                blocks[b].len()
            );
        }
        let mut records = Vec::with_capacity(values.len());
        for (c, v) in blocks[b].iter().zip(values) {
            if !v.is_finite() {
                return Err(ShapleyError::NonFiniteValue {
                    coalition: c.bits(),
                    value: v,
                }
                .into());
            }
            records.push(Record {
                block: b,
                unit: c.bits().to_string(),
                value: json!(v),
            });
        }
        writer.write_block(&records)?;
        finished += records.len();
        progress(finished, total);
    }
    Ok(super::patch::PartSummary {
        blocks_run: todo.len(),
        blocks_skipped: owned.len() - todo.len(),
        blocks_owned: owned.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A game with uneven values that records the calls it gets.
    struct Recorded {
        calls: Vec<Vec<Coalition>>,
    }

    impl Game for Recorded {
        fn n_players(&self) -> usize {
            7
        }
        fn player_names(&self) -> Vec<String> {
            (0..7).map(|i| format!("p{i}")).collect()
        }
        fn evaluate(&mut self, cs: &[Coalition]) -> lantern_shapley::Result<Vec<f64>> {
            self.calls.push(cs.to_vec());
            Ok(cs
                .iter()
                .map(|c| (c.bits() as f64).sin() * 3.0 + c.len() as f64)
                .collect())
        }
    }

    /// The premise of sharding: every estimator's calls do not depend on the values, so the
    /// zero-valued plan is the real run's calls, and replaying on the real values gives the
    /// real result bit for bit.
    #[test]
    fn the_plan_is_the_real_runs_calls_and_the_replay_its_result() {
        for method in [Method::Exact, Method::Permutation, Method::Kernel] {
            let opts = RunOptions {
                budget: 60,
                seed: 3,
                batch_size: 5,
                ..RunOptions::default()
            };
            let mut real = Recorded { calls: Vec::new() };
            let expected = run_with_options(method, &mut real, &opts, None).unwrap();
            let names = real.player_names();
            let planned = plan(&names, method, &opts).unwrap();
            assert_eq!(planned, real.calls, "{method}");
            let mut table = HashMap::new();
            let mut g = Recorded { calls: Vec::new() };
            for block in &planned {
                for (c, v) in block.iter().zip(g.evaluate(block).unwrap()) {
                    table.insert(c.bits(), v);
                }
            }
            let replayed = replay(&names, method, &opts, &table).unwrap();
            assert_eq!(
                serde_json::to_string(&replayed).unwrap(),
                serde_json::to_string(&expected).unwrap(),
                "{method}"
            );
        }
    }
}
