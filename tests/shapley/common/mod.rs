//! Shared synthetic games and a toy language model for the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;

use lantern_shapley::{Coalition, Game, LanguageModelScorer, Result, ScoreRequest, ShapleyError};

/// Indicator of player `i` in `s`.
pub fn x(s: Coalition, i: usize) -> f64 {
    f64::from(u8::from(s.contains(i)))
}

/// A nonlinear game over `n` players with pairwise and higher-order effects.
pub fn nonlinear(n: usize) -> impl FnMut(Coalition) -> f64 {
    move |s: Coalition| {
        let w = |i: usize| 1.0 + ((i * 7) % 5) as f64 * 0.5 - (i % 3) as f64;
        let lin: f64 = (0..n).map(|i| w(i) * x(s, i)).sum();
        let pairs: f64 = (0..n.saturating_sub(1))
            .map(|i| (if i % 2 == 0 { 1.5 } else { -1.0 }) * x(s, i) * x(s, i + 1))
            .sum();
        let threshold = if s.len() * 2 >= n { 2.0 } else { 0.0 };
        lin + pairs + threshold + (0.7 * lin).sin()
    }
}

/// Records every coalition it is asked to evaluate, and batch sizes.
pub struct Recording<F> {
    pub n: usize,
    pub f: F,
    pub seen: Vec<Coalition>,
    pub batch_sizes: Vec<usize>,
}

impl<F: FnMut(Coalition) -> f64> Recording<F> {
    pub fn new(n: usize, f: F) -> Self {
        Recording {
            n,
            f,
            seen: Vec::new(),
            batch_sizes: Vec::new(),
        }
    }

    /// Number of coalitions evaluated more than once.
    pub fn duplicates(&self) -> usize {
        let mut counts: HashMap<Coalition, usize> = HashMap::new();
        for c in &self.seen {
            *counts.entry(*c).or_default() += 1;
        }
        counts.values().filter(|&&k| k > 1).count()
    }
}

impl<F: FnMut(Coalition) -> f64> Game for Recording<F> {
    fn n_players(&self) -> usize {
        self.n
    }
    fn player_names(&self) -> Vec<String> {
        (0..self.n).map(|i| format!("q{i}")).collect()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        self.seen.extend_from_slice(coalitions);
        self.batch_sizes.push(coalitions.len());
        Ok(coalitions.iter().map(|&c| (self.f)(c)).collect())
    }
}

/// Toy language model. A continuation is split into whitespace-separated
/// tokens; each token's log-probability depends on keywords in the prompt:
///
/// * `New`: −0.2;
/// * `York`: −0.1 if the prompt mentions `America`, else −2.0;
/// * `Delhi`: −0.1 if the prompt mentions `India`, else −2.0;
/// * `yes`: −0.5 − 0.5 × (occurrences of `not` in the prompt) + 0.3 × (`good`);
/// * anything else: −1.0.
#[derive(Default)]
pub struct ToyLm {
    pub calls: Vec<Vec<ScoreRequest>>,
    pub prefix: Option<String>,
}

impl ToyLm {
    pub fn logprob(prompt: &str, continuation: &str) -> f64 {
        continuation
            .split_whitespace()
            .map(|t| match t {
                "New" => -0.2,
                "York" if prompt.contains("America") => -0.1,
                "Delhi" if prompt.contains("India") => -0.1,
                "York" | "Delhi" => -2.0,
                "yes" => {
                    -0.5 - 0.5 * prompt.matches("not").count() as f64
                        + 0.3 * prompt.matches("good").count() as f64
                }
                _ => -1.0,
            })
            .sum()
    }
}

impl LanguageModelScorer for ToyLm {
    fn continuation_logprobs(&mut self, requests: &[ScoreRequest]) -> Result<Vec<f64>> {
        self.calls.push(requests.to_vec());
        requests
            .iter()
            .map(|r| {
                if r.continuation.split_whitespace().next().is_none() {
                    Err(ShapleyError::EmptyContinuation {
                        continuation: r.continuation.clone(),
                    })
                } else {
                    Ok(Self::logprob(&r.prompt, &r.continuation))
                }
            })
            .collect()
    }

    fn n_continuation_tokens(&mut self, _prompt: &str, continuation: &str) -> Result<usize> {
        Ok(continuation.split_whitespace().count())
    }

    fn prepare_shared_prefix(&mut self, prefix: &str) -> Result<()> {
        self.prefix = Some(prefix.to_string());
        Ok(())
    }
}

/// Asserts two slices agree elementwise within `tol`.
pub fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol,
            "index {i}: {x} vs {y} (tol {tol})\n{a:?}\n{b:?}"
        );
    }
}
