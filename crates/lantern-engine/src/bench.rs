//! `lantern bench`: how fast a model runs here. Times the forward pass (no hooks, and with every
//! hook point cached) and, on request, generation: prefill of the prompt and greedy decoding at
//! batch 1, without and with an intervention active (a steering vector added to the residual
//! stream of the middle block at every step, the inner loop of runtime steering).
//!
//! The prompt is real text (a fixed English passage, repeated and cut to `seq` tokens) so greedy
//! decoding behaves as it would on a user's prompt; end-of-sequence does not stop the timed runs.

use std::time::Instant;

use serde::Serialize;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::generate::{GenerateConfig, Sampling};
use crate::hooks::{all_points, HookPoint};
use crate::intervention::{Hooks, Intervention};
use crate::model::Model;
use crate::run::{Logits, RunOptions};
use crate::tokenizer::Tokenizer;

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Rows of the forward pass (default 1).
    pub batch: usize,
    /// Tokens per row, also the prompt length of the generation runs (default 16).
    pub seq: usize,
    /// Timed repetitions of each measurement, after one untimed warm-up (default 5).
    pub reps: usize,
    /// New tokens to generate per timed generation run (`None`: no generation timing).
    pub generate: Option<usize>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            batch: 1,
            seq: 16,
            reps: 5,
            generate: None,
        }
    }
}

/// Median, fastest and slowest of the repetitions, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Timing {
    /// From durations in milliseconds (at least one).
    pub fn from_ms(mut ms: Vec<f64>) -> Timing {
        assert!(!ms.is_empty(), "a timing needs at least one repetition");
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Timing {
            median_ms: median,
            min_ms: ms[0],
            max_ms: ms[n - 1],
        }
    }
}

/// Generation timings (batch 1, greedy).
#[derive(Debug, Clone, Serialize)]
pub struct GenerateBench {
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    /// One forward pass over the prompt with a KV cache, last-position logits.
    pub prefill: Timing,
    /// Whole `generate` calls (prefill + decoding) without hooks.
    pub total: Timing,
    /// Decoding speed: `(new_tokens - 1) / (median total - median prefill)` (the first new token
    /// comes from the prefill).
    pub decode_tokens_per_s: f64,
    /// The same with a steering vector added at `intervention_point` on every step.
    pub total_with_intervention: Timing,
    pub decode_tokens_per_s_with_intervention: f64,
    pub intervention_point: String,
    /// With `--batch B` above 1: B streams generated together (`generate_batch`, one KV cache),
    /// whole calls, and their total new tokens per second (B * N / median, prefill included).
    pub streams: Option<StreamsBench>,
}

/// B prompts generated together.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsBench {
    pub streams: usize,
    pub total: Timing,
    pub tokens_per_s: f64,
}

/// Everything `lantern bench` reports.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub batch: usize,
    pub seq: usize,
    pub reps: usize,
    /// Forward pass, logits at every position, no hooks.
    pub forward: Timing,
    /// The same with every hook point captured.
    pub forward_all_hooks: Timing,
    pub hook_points_cached: usize,
    pub generate: Option<GenerateBench>,
    /// Peak resident set of the process so far (Linux `VmHWM`), in MiB; `None` elsewhere.
    pub peak_rss_mib: Option<f64>,
}

/// The passage benchmark prompts are cut from.
const PASSAGE: &str = "The capital of France is Paris. The river that runs through the city is \
the Seine, and the tower built for the fair of 1889 still stands near its bank. ";

/// Checks the settings against the model before anything runs.
pub fn check_config(model: &Model, cfg: &BenchConfig) -> Result<()> {
    check_counts(cfg)?;
    let max = model.config().max_positions;
    if cfg.seq > max {
        return Err(Error::invalid(format!(
            "--seq {} is longer than the model's context of {max} positions",
            cfg.seq
        )));
    }
    match cfg.generate {
        Some(n) if cfg.seq.saturating_add(n) > max => Err(Error::invalid(format!(
            "--seq {} plus --generate {n} is longer than the model's context of {max} positions",
            cfg.seq
        ))),
        _ => Ok(()),
    }
}

/// The checks that need no model: every count at least 1.
pub fn check_counts(cfg: &BenchConfig) -> Result<()> {
    if cfg.batch == 0 {
        return Err(Error::invalid("--batch must be at least 1"));
    }
    if cfg.seq == 0 {
        return Err(Error::invalid("--seq must be at least 1"));
    }
    if cfg.reps == 0 {
        return Err(Error::invalid("--reps must be at least 1"));
    }
    if cfg.generate == Some(0) {
        return Err(Error::invalid(
            "--generate must be at least 1 new token (leave it out to skip generation)",
        ));
    }
    Ok(())
}

/// A prompt of exactly `len` token ids, cut from [`PASSAGE`] repeated.
pub fn prompt_ids(tokenizer: &Tokenizer, vocab: usize, len: usize) -> Result<Vec<u32>> {
    let one = tokenizer.encode_raw(PASSAGE)?;
    if one.is_empty() {
        return Err(Error::invalid(
            "the tokenizer gives no tokens for the benchmark prompt",
        ));
    }
    let ids: Vec<u32> = one.iter().copied().cycle().take(len).collect();
    // A tokenizer larger than the model's vocabulary (tiny fixtures) is folded into it.
    Ok(ids.into_iter().map(|i| i % vocab as u32).collect())
}

fn time_ms(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// Runs `f` once untimed, then `reps` times timed.
fn repeat(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?;
    let ms = (0..reps)
        .map(|_| time_ms(&mut f))
        .collect::<Result<Vec<_>>>()?;
    Ok(Timing::from_ms(ms))
}

/// Runs the benchmark.
pub fn run(model: &Model, tokenizer: &Tokenizer, cfg: &BenchConfig) -> Result<BenchReport> {
    check_config(model, cfg)?;
    let mcfg = model.config();
    let prompt = prompt_ids(tokenizer, mcfg.vocab_size, cfg.seq)?;
    let batch = Batch::from_ids(vec![prompt.clone(); cfg.batch])?;

    let forward = repeat(cfg.reps, || {
        model.run(&batch, &mut Hooks::new(), RunOptions::default())?;
        Ok(())
    })?;
    let points = all_points(mcfg);
    let n_points = points.len();
    let forward_all_hooks = repeat(cfg.reps, || {
        let mut h = Hooks::new().capture_all(points.iter().copied());
        model.run(&batch, &mut h, RunOptions::default())?;
        Ok(())
    })?;

    let generate = match cfg.generate {
        None => None,
        Some(n) => Some(generate_bench(model, tokenizer, &prompt, n, cfg)?),
    };
    Ok(BenchReport {
        batch: cfg.batch,
        seq: cfg.seq,
        reps: cfg.reps,
        forward,
        forward_all_hooks,
        hook_points_cached: n_points,
        generate,
        peak_rss_mib: peak_rss_mib(),
    })
}

fn generate_bench(
    model: &Model,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    n: usize,
    cfg: &BenchConfig,
) -> Result<GenerateBench> {
    let reps = cfg.reps;
    let one = Batch::from_ids(vec![prompt.to_vec()])?;
    let prefill = repeat(reps, || {
        let mut cache = model.new_kv_cache(&one.pad_left);
        let ids = one.ids_tensor(model.device())?;
        let opts = RunOptions::default().cache(&mut cache).logits(Logits::Last);
        model.run(crate::run::Input::Tokens(&ids), &mut Hooks::new(), opts)?;
        Ok(())
    })?;
    let gen_cfg = GenerateConfig {
        max_new_tokens: n,
        sampling: Sampling::Greedy,
        stop_strings: Vec::new(),
        stop_at_eos: false,
        capture_steps: false,
    };
    let timed = |batch: &Batch, hooks: &Hooks| -> Result<Timing> {
        repeat(reps, || {
            let out = model.generate_ids(tokenizer, batch, &gen_cfg, &mut hooks.clone())?;
            if let Some(r) = out.rows.iter().find(|r| r.new_ids.len() != n) {
                return Err(Error::invalid(format!(
                    "generation stopped after {} of {n} tokens",
                    r.new_ids.len()
                )));
            }
            Ok(())
        })
    };
    let total = timed(&one, &Hooks::new())?;
    let streams = if cfg.batch > 1 {
        let many = Batch::from_ids(vec![prompt.to_vec(); cfg.batch])?;
        let t = timed(&many, &Hooks::new())?;
        Some(StreamsBench {
            streams: cfg.batch,
            tokens_per_s: (cfg.batch * n) as f64 / t.median_ms * 1e3,
            total: t,
        })
    } else {
        None
    };
    let point = HookPoint::resid_post(model.config().n_layers / 2);
    // A fixed, small steering vector: what matters here is the cost of an active intervention.
    let d = model.config().d_model;
    let steer: Vec<f32> = (0..d).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect();
    let steer = candle_core::Tensor::from_vec(steer, d, model.device())?.to_dtype(model.dtype())?;
    let steering = Hooks::new().intervene(point, Intervention::add(steer));
    let total_with_intervention = timed(&one, &steering)?;
    let rate = |t: &Timing| {
        let decode_ms = (t.median_ms - prefill.median_ms).max(1e-9);
        (n.saturating_sub(1)) as f64 / decode_ms * 1e3
    };
    Ok(GenerateBench {
        prompt_tokens: prompt.len(),
        new_tokens: n,
        prefill,
        decode_tokens_per_s: rate(&total),
        decode_tokens_per_s_with_intervention: rate(&total_with_intervention),
        total,
        total_with_intervention,
        intervention_point: point.name(),
        streams,
    })
}

/// Peak resident set size of this process in MiB (Linux), from `/proc/self/status`.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl BenchReport {
    /// A human-readable table.
    pub fn to_text(&self) -> String {
        let t = |x: &Timing| {
            format!(
                "median {:8.2} ms   min {:8.2}   max {:8.2}",
                x.median_ms, x.min_ms, x.max_ms
            )
        };
        let mut s = format!(
            "forward, batch {} x {} tokens, {} reps\n  no hooks            {}\n  all {} hooks cached {}\n",
            self.batch,
            self.seq,
            self.reps,
            t(&self.forward),
            self.hook_points_cached,
            t(&self.forward_all_hooks)
        );
        if let Some(g) = &self.generate {
            s += &format!(
                "generate, batch 1, prompt {} tokens, {} new (greedy)\n  prefill             {}\n  total, no hooks     {}\n  total, steering     {}\n  decode              {:8.1} tokens/s\n  decode, steering    {:8.1} tokens/s ({} += vector)\n",
                g.prompt_tokens,
                g.new_tokens,
                t(&g.prefill),
                t(&g.total),
                t(&g.total_with_intervention),
                g.decode_tokens_per_s,
                g.decode_tokens_per_s_with_intervention,
                g.intervention_point
            );
            if let Some(m) = &g.streams {
                s += &format!(
                    "  {} streams together {}   {:8.1} tokens/s in all\n",
                    m.streams,
                    t(&m.total),
                    m.tokens_per_s
                );
            }
        }
        if let Some(r) = self.peak_rss_mib {
            s += &format!("peak RSS {r:.0} MiB\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_takes_the_middle_of_odd_and_even_counts() {
        let t = Timing::from_ms(vec![3.0, 1.0, 2.0]);
        assert_eq!((t.median_ms, t.min_ms, t.max_ms), (2.0, 1.0, 3.0));
        let t = Timing::from_ms(vec![4.0, 1.0, 2.0, 3.0]);
        assert_eq!(t.median_ms, 2.5);
    }
}
