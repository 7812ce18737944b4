//! Text generation with a KV cache: greedy or seeded sampling, stop strings, and the run's
//! interventions active at every step (runtime steering).

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::batch::Batch;
use crate::cache::ActivationCache;
use crate::error::{Error, Result};
use crate::intervention::Hooks;
use crate::model::Model;
use crate::run::{Input, Logits, RunOptions};
use crate::tokenizer::Tokenizer;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// The most likely token (ties to the lower id).
    Greedy,
    /// Sampling from the temperature-scaled distribution, optionally cut to the top k tokens and
    /// to the smallest set whose probability reaches top_p; seeded, so reproducible.
    Sample {
        temperature: f64,
        top_k: Option<usize>,
        top_p: Option<f64>,
        seed: u64,
    },
}

/// Generation settings.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Default 32.
    pub max_new_tokens: usize,
    /// Default greedy.
    pub sampling: Sampling,
    /// Generation of a row stops when its new text contains one of these; the text is cut before it.
    pub stop_strings: Vec<String>,
    /// Stop at the model's end-of-sequence token (default true).
    pub stop_at_eos: bool,
    /// Keep each step's captured activations (default false).
    pub capture_steps: bool,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            max_new_tokens: 32,
            sampling: Sampling::Greedy,
            stop_strings: Vec::new(),
            stop_at_eos: true,
            capture_steps: false,
        }
    }
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    MaxTokens,
    StopString,
    Eos,
}

/// One generated continuation.
#[derive(Debug, Clone)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    pub new_ids: Vec<u32>,
    /// Decoded new tokens, cut before a stop string.
    pub text: String,
    pub stop: StopReason,
}

/// Generations of a batch and, on request, what each step captured (step 0 is the prompt).
#[derive(Debug, Clone)]
pub struct BatchGeneration {
    pub rows: Vec<Generation>,
    pub step_caches: Vec<ActivationCache>,
}

impl Model {
    /// Generates a continuation of one prompt.
    pub fn generate(
        &self,
        tokenizer: &Tokenizer,
        prompt: &str,
        cfg: &GenerateConfig,
        hooks: &mut Hooks,
    ) -> Result<Generation> {
        let mut out = self.generate_batch(tokenizer, &[prompt], cfg, hooks)?;
        Ok(out.rows.remove(0))
    }

    /// Generates continuations of several prompts together (left-padded, one KV cache).
    pub fn generate_batch<S: AsRef<str>>(
        &self,
        tokenizer: &Tokenizer,
        prompts: &[S],
        cfg: &GenerateConfig,
        hooks: &mut Hooks,
    ) -> Result<BatchGeneration> {
        let batch = Batch::from_prompts(tokenizer, prompts)?;
        self.generate_ids(tokenizer, &batch, cfg, hooks)
    }

    /// Generates from an already tokenised batch.
    pub fn generate_ids(
        &self,
        tokenizer: &Tokenizer,
        batch: &Batch,
        cfg: &GenerateConfig,
        hooks: &mut Hooks,
    ) -> Result<BatchGeneration> {
        if let Sampling::Sample {
            temperature, top_p, ..
        } = cfg.sampling
        {
            if !(temperature > 0.0 && temperature.is_finite()) {
                return Err(Error::invalid(format!(
                    "temperature must be positive, got {temperature}"
                )));
            }
            if top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
                return Err(Error::invalid("top_p must be in (0, 1]"));
            }
        }
        // Saturating: a user's `--max-new-tokens 18446744073709551615` is "too long", not an overflow.
        let longest = batch.seq_len().saturating_add(cfg.max_new_tokens);
        let shortest_pad = batch.pad_left.iter().copied().min().unwrap_or(0);
        if longest - shortest_pad > self.config().max_positions {
            return Err(Error::PromptTooLong {
                len: longest - shortest_pad,
                max: self.config().max_positions,
            });
        }
        let b = batch.len();
        let mut rng = match cfg.sampling {
            Sampling::Sample { seed, .. } => Some(ChaCha8Rng::seed_from_u64(seed)),
            Sampling::Greedy => None,
        };
        let mut cache = self.new_kv_cache(&batch.pad_left);
        let mut rows: Vec<Generation> = (0..b)
            .map(|i| Generation {
                prompt_ids: batch.row(i).to_vec(),
                new_ids: Vec::new(),
                text: String::new(),
                stop: StopReason::MaxTokens,
            })
            .collect();
        let mut done = vec![cfg.max_new_tokens == 0; b];
        let mut step_caches = Vec::new();
        let mut input = batch.ids_tensor(self.device())?;
        for _ in 0..cfg.max_new_tokens {
            let opts = RunOptions::default().cache(&mut cache).logits(Logits::Last);
            let out = self.run(Input::Tokens(&input), hooks, opts)?;
            if cfg.capture_steps {
                step_caches.push(hooks.take_cache());
            }
            let logits = out.last_logits()?.to_vec2::<f32>()?;
            let mut next = Vec::with_capacity(b);
            for (i, row_logits) in logits.iter().enumerate() {
                let id = match (&cfg.sampling, rng.as_mut()) {
                    (
                        Sampling::Sample {
                            temperature,
                            top_k,
                            top_p,
                            ..
                        },
                        Some(rng),
                    ) => sample(row_logits, *temperature, *top_k, *top_p, rng),
                    _ => argmax(row_logits),
                };
                next.push(id);
                if done[i] {
                    continue;
                }
                let row = &mut rows[i];
                if cfg.stop_at_eos && self.config().eos_token_id == Some(id) {
                    row.stop = StopReason::Eos;
                    done[i] = true;
                    continue;
                }
                row.new_ids.push(id);
                if cfg.stop_strings.is_empty() {
                    // Decoded once at the end: decoding the whole row at every step is
                    // quadratic in its length and only stop strings need it.
                    continue;
                }
                let text = tokenizer.decode(&row.new_ids)?;
                if let Some(cut) = cfg
                    .stop_strings
                    .iter()
                    .filter_map(|s| text.find(s.as_str()))
                    .min()
                {
                    row.text = text[..cut].to_string();
                    row.stop = StopReason::StopString;
                    done[i] = true;
                } else {
                    row.text = text;
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
            input = Tensor::from_vec(next, (b, 1), self.device())?;
        }
        if cfg.stop_strings.is_empty() {
            for row in &mut rows {
                row.text = tokenizer.decode(&row.new_ids)?;
            }
        }
        Ok(BatchGeneration { rows, step_caches })
    }
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Samples a token id. The candidate pool is the `top_k` highest logits (ties to the lower id),
/// then the smallest prefix of it, in that order, whose probability reaches `top_p`. Only as much
/// of the pool is sorted as top-p needs (a 49k vocabulary is not sorted at every step).
pub(crate) fn sample(
    logits: &[f32],
    temperature: f64,
    top_k: Option<usize>,
    top_p: Option<f64>,
    rng: &mut ChaCha8Rng,
) -> u32 {
    let n = logits.len();
    let higher = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let mut order: Vec<usize> = (0..n).collect();
    let pool = top_k.map_or(n, |k| k.clamp(1, n));
    if pool < n {
        order.select_nth_unstable_by(pool - 1, higher);
        order.truncate(pool);
    }
    let max = order
        .iter()
        .map(|&i| logits[i])
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let weight = |i: usize| ((logits[i] as f64 - max) / temperature).exp();
    let keep = match top_p {
        None => pool,
        Some(p) => {
            let target = p * order.iter().map(|&i| weight(i)).sum::<f64>();
            let mut m = 64.min(pool);
            loop {
                if m < pool {
                    order.select_nth_unstable_by(m - 1, higher);
                }
                order[..m].sort_by(higher);
                let mut acc = 0.0;
                let reached = order[..m].iter().position(|&i| {
                    acc += weight(i);
                    acc >= target
                });
                match reached {
                    Some(i) => break i + 1,
                    None if m == pool => break pool,
                    None => m = (m * 4).min(pool),
                }
            }
        }
    };
    let candidates = &order[..keep];
    let total: f64 = candidates.iter().map(|&i| weight(i)).sum();
    let mut r = rng.random::<f64>() * total;
    for &i in candidates {
        let w = weight(i);
        if r < w {
            return i as u32;
        }
        r -= w;
    }
    candidates[keep - 1] as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The sampler as first written: sort the whole vocabulary, cut, renormalise, draw.
    fn sample_by_full_sort(
        logits: &[f32],
        temperature: f64,
        top_k: Option<usize>,
        top_p: Option<f64>,
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        order.truncate(top_k.unwrap_or(order.len()).max(1));
        let max = logits[order[0]] as f64;
        let mut probs: Vec<f64> = order
            .iter()
            .map(|&i| ((logits[i] as f64 - max) / temperature).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if let Some(p) = top_p {
            let mut acc = 0.0;
            let keep = probs.iter().position(|&q| {
                acc += q;
                acc >= p
            });
            let keep = keep.map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
            order.truncate(keep);
        }
        let total: f64 = probs.iter().sum();
        let mut r = rng.random::<f64>() * total;
        for (&i, &p) in order.iter().zip(&probs) {
            if r < p {
                return i as u32;
            }
            r -= p;
        }
        order[order.len() - 1] as u32
    }

    fn test_logits(gen: &mut ChaCha8Rng, case: usize) -> Vec<f32> {
        // Peaked and flat distributions, with many ties, over vocabularies larger than 64.
        let n = 500 + case * 37;
        let spread = if case.is_multiple_of(2) { 8.0 } else { 0.5 };
        (0..n)
            .map(|i| {
                if i % 97 == 0 {
                    3.0
                } else {
                    (gen.random::<f32>() * spread).round() / 2.0
                }
            })
            .collect()
    }

    #[test]
    fn top_p_sampler_draws_what_a_full_sort_draws() {
        let mut gen = ChaCha8Rng::seed_from_u64(7);
        for case in 0..40 {
            let logits = test_logits(&mut gen, case);
            for (top_k, top_p) in [(None, 0.9), (Some(50), 0.99), (None, 0.999), (Some(3), 0.5)] {
                for seed in 0..5 {
                    let mut a = ChaCha8Rng::seed_from_u64(seed);
                    let mut b = ChaCha8Rng::seed_from_u64(seed);
                    assert_eq!(
                        sample(&logits, 0.8, top_k, Some(top_p), &mut a),
                        sample_by_full_sort(&logits, 0.8, top_k, Some(top_p), &mut b),
                        "case {case}, top_k {top_k:?}, top_p {top_p}, seed {seed}"
                    );
                }
            }
        }
    }

    #[test]
    fn top_k_sampler_stays_in_the_pool_with_the_right_frequencies() {
        let mut gen = ChaCha8Rng::seed_from_u64(3);
        let logits = test_logits(&mut gen, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let top = argmax(&logits) as usize; // 0: the first of the tied maxima at 3.0
        let tied: Vec<usize> = (0..logits.len()).filter(|&i| logits[i] == 3.0).collect();
        let w: Vec<f64> = logits
            .iter()
            .map(|&l| ((l as f64 - 3.0) / 0.8).exp())
            .collect();
        let mut pool: Vec<usize> = (0..logits.len()).collect();
        pool.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        pool.truncate(10);
        let p_top = w[top] / pool.iter().map(|&i| w[i]).sum::<f64>();
        let draws = 4000;
        let mut hits = 0;
        for _ in 0..draws {
            let t = sample(&logits, 0.8, Some(10), None, &mut rng) as usize;
            assert!(pool.contains(&t), "{t} is outside the top-10 pool");
            hits += usize::from(t == top);
        }
        let sd = (p_top * (1.0 - p_top) / draws as f64).sqrt();
        let freq = hits as f64 / draws as f64;
        assert!(
            tied.len() > 1 && (freq - p_top).abs() < 4.0 * sd,
            "{freq} vs {p_top}"
        );
    }
}
