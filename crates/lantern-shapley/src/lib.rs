//! # lantern-shapley
//!
//! Shapley values of prompt components, after Mohammadi (2024),
//! *Explaining Large Language Models Decisions Using Shapley Values*,
//! arXiv:2404.01332.
//!
//! A prompt [`Template`] marks components inline (`{{name: text}}`); each
//! component is a player of a cooperative game whose worth `v(S)` is read off
//! a language model's output for the prompt that keeps only the components in
//! `S` ([`PromptGame`], [`ValueKind`]). The Shapley value of a component is its
//! average marginal contribution over all orderings.
//!
//! The crate is model-agnostic: models plug in through the
//! [`LanguageModelScorer`] trait (implemented here for OpenAI-compatible
//! servers by [`OpenAiScorer`]); any [`Game`] can be explained.
//!
//! Estimators, all evaluating through the memoising [`MemoGame`] so that
//! each distinct coalition costs one model evaluation:
//!
//! * [`exact()`]: all `2^n` coalitions (up to a configurable limit);
//! * [`permutation()`]: antithetic permutation sampling with standard errors;
//! * [`kernel()`]: KernelSHAP, constrained least squares on kernel-sampled
//!   coalitions with bootstrap standard errors;
//! * [`interaction()`]: exact pairwise Shapley interaction indices.
//!
//! ```
//! use lantern_shapley::{run, Coalition, FnGame, Method};
//! // Glove game: player 0 owns a left glove, players 1 and 2 right gloves;
//! // a pair is worth 1. Shapley values: 2/3, 1/6, 1/6.
//! let mut g = FnGame::new(3, |s: Coalition| {
//!     (s.contains(0) && (s.contains(1) || s.contains(2))) as u8 as f64
//! });
//! let method: Method = "exact".parse().unwrap();
//! let r = run(method, &mut g, 0, 0, None).unwrap();
//! assert!((r.values[0] - 2.0 / 3.0).abs() < 1e-12);
//! assert!((r.values[1] - 1.0 / 6.0).abs() < 1e-12);
//! ```

#![warn(missing_docs)]

mod coalition;
mod error;
pub mod exact;
mod game;
pub mod interaction;
pub mod kernel;
mod math;
pub mod openai;
pub mod permutation;
mod prompt_game;
mod result;
mod scorer;
pub mod template;

use std::fmt;
use std::str::FromStr;

pub use coalition::{Coalition, MAX_PLAYERS};
pub use error::{Result, ShapleyError};
pub use exact::{exact, ExactOptions, DEFAULT_EXACT_LIMIT, MAX_EXACT_LIMIT};
pub use game::{FnGame, Game, MemoGame, DEFAULT_BATCH_SIZE};
pub use interaction::interaction;
pub use kernel::{kernel, KernelOptions};
pub use openai::{Boundary, OpenAiScorer};
pub use permutation::{permutation, PermutationOptions};
pub use prompt_game::{PromptGame, ValueKind};
pub use result::{InteractionResult, Progress, ShapleyResult};
pub use scorer::{LanguageModelScorer, ScoreRequest};
pub use template::{Absent, Player, Template};

/// Shapley estimation method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Exact enumeration ([`exact()`]).
    Exact,
    /// Antithetic permutation sampling ([`permutation()`]).
    Permutation,
    /// KernelSHAP ([`kernel()`]).
    Kernel,
}

impl Method {
    /// The method's name as accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Permutation => "permutation",
            Method::Kernel => "kernel",
        }
    }
}

impl FromStr for Method {
    type Err = ShapleyError;
    /// Parses `exact`, `permutation` or `kernel` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "exact" => Ok(Method::Exact),
            "permutation" => Ok(Method::Permutation),
            "kernel" => Ok(Method::Kernel),
            _ => Err(ShapleyError::UnknownMethod(s.to_string())),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options shared by [`run_with_options`]; each method uses the relevant ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Distinct-evaluation budget (permutation, kernel; ignored by exact).
    pub budget: usize,
    /// RNG seed (permutation, kernel).
    pub seed: u64,
    /// Coalitions per call to [`Game::evaluate`].
    pub batch_size: usize,
    /// Largest `n` for exact enumeration.
    pub exact_limit: usize,
    /// Bootstrap replicates for KernelSHAP standard errors.
    pub bootstrap: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        let k = KernelOptions::default();
        RunOptions {
            budget: k.budget,
            seed: k.seed,
            batch_size: DEFAULT_BATCH_SIZE,
            exact_limit: DEFAULT_EXACT_LIMIT,
            bootstrap: k.bootstrap,
        }
    }
}

/// Runs `method` on `game` with a distinct-evaluation `budget` and `seed`
/// (both ignored by [`Method::Exact`]) and default other options.
pub fn run<G: Game + ?Sized>(
    method: Method,
    game: &mut G,
    budget: usize,
    seed: u64,
    progress: Progress<'_>,
) -> Result<ShapleyResult> {
    let opts = RunOptions {
        budget,
        seed,
        ..RunOptions::default()
    };
    run_with_options(method, game, &opts, progress)
}

/// Runs `method` on `game` with explicit options.
pub fn run_with_options<G: Game + ?Sized>(
    method: Method,
    game: &mut G,
    opts: &RunOptions,
    progress: Progress<'_>,
) -> Result<ShapleyResult> {
    match method {
        Method::Exact => exact(
            game,
            &ExactOptions {
                max_players: opts.exact_limit,
                batch_size: opts.batch_size,
            },
            progress,
        ),
        Method::Permutation => permutation(
            game,
            &PermutationOptions {
                budget: opts.budget,
                seed: opts.seed,
                batch_size: opts.batch_size,
            },
            progress,
        ),
        Method::Kernel => kernel(
            game,
            &KernelOptions {
                budget: opts.budget,
                seed: opts.seed,
                batch_size: opts.batch_size,
                bootstrap: opts.bootstrap,
                paired: true,
            },
            progress,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_parsing() {
        assert_eq!("Kernel".parse::<Method>().unwrap(), Method::Kernel);
        assert_eq!(
            " permutation ".parse::<Method>().unwrap(),
            Method::Permutation
        );
        let e = "mc".parse::<Method>().unwrap_err().to_string();
        assert!(e.contains("exact, permutation, kernel"), "{e}");
        assert_eq!(Method::Exact.to_string(), "exact");
    }
}
