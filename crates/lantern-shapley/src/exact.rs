//! Exact Shapley values by enumerating all `2^n` coalitions.
//!
//! `φ_i = Σ_{S ⊆ N∖{i}} |S|!(n−|S|−1)!/n! · [v(S ∪ {i}) − v(S)]`
//! (Shapley 1953), the quantity that Mohammadi (2024, arXiv:2404.01332)
//! computes over prompt components. Cost: exactly `2^n` distinct
//! evaluations, so the number of players is capped (default
//! [`DEFAULT_EXACT_LIMIT`]); use [`permutation`](crate::permutation()) or
//! [`kernel`](crate::kernel()) above it.

use crate::coalition::Coalition;
use crate::error::{Result, ShapleyError};
use crate::game::{Game, MemoGame, DEFAULT_BATCH_SIZE};
use crate::math::shapley_weight;
use crate::result::{Progress, Reporter, ShapleyResult};

/// Default largest `n` for exact enumeration (`2^16 = 65536` evaluations).
pub const DEFAULT_EXACT_LIMIT: usize = 16;

/// Hard ceiling for the configurable exact limit (memory for `2^n` values).
pub const MAX_EXACT_LIMIT: usize = 24;

/// Options of the exact estimators ([`exact`] and
/// [`interaction`](crate::interaction())).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactOptions {
    /// Largest number of players enumerated (at most [`MAX_EXACT_LIMIT`]).
    pub max_players: usize,
    /// Coalitions per call to [`Game::evaluate`].
    pub batch_size: usize,
}

impl Default for ExactOptions {
    fn default() -> Self {
        ExactOptions {
            max_players: DEFAULT_EXACT_LIMIT,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// Evaluates all `2^n` coalitions, each exactly once, returning the values
/// indexed by coalition bits, the player names and the evaluation count.
pub(crate) fn enumerate_all<G: Game + ?Sized>(
    game: &mut G,
    opts: &ExactOptions,
    progress: Progress<'_>,
) -> Result<(Vec<f64>, Vec<String>, usize)> {
    if opts.max_players > MAX_EXACT_LIMIT {
        return Err(ShapleyError::InvalidArgument(format!(
            "exact limit {} exceeds the maximum of {MAX_EXACT_LIMIT}",
            opts.max_players
        )));
    }
    let n = game.n_players();
    if n > opts.max_players {
        return Err(ShapleyError::ExactTooLarge {
            n,
            limit: opts.max_players,
        });
    }
    let mut memo = MemoGame::new(game, opts.batch_size)?;
    let names = memo.player_names();
    let total = 1usize << n;
    let mut reporter = Reporter::new(progress, total);
    let mut values = Vec::with_capacity(total);
    let all: Vec<Coalition> = (0..total as u64).map(Coalition::from_bits).collect();
    for chunk in all.chunks(opts.batch_size) {
        values.extend(memo.values(chunk)?);
        reporter.report(memo.evaluations());
    }
    reporter.finish();
    Ok((values, names, memo.evaluations()))
}

/// Shapley values from the worth of every coalition (`v[bits]`).
pub(crate) fn shapley_from_table(v: &[f64], n: usize) -> Vec<f64> {
    let weights: Vec<f64> = (0..n).map(|s| shapley_weight(n, s)).collect();
    let mut phi = vec![0.0; n];
    for (bits, &vs) in v.iter().enumerate() {
        let s = bits.count_ones() as usize;
        for (i, p) in phi.iter_mut().enumerate() {
            if bits & (1 << i) == 0 {
                *p += weights[s] * (v[bits | (1 << i)] - vs);
            }
        }
    }
    phi
}

/// Exact Shapley values (standard errors all zero).
///
/// Errors with [`ShapleyError::ExactTooLarge`] when the game has more than
/// `opts.max_players` players.
///
/// ```
/// use lantern_shapley::{exact, Coalition, ExactOptions, FnGame};
/// // Unanimity game on {0, 1}: worth 1 iff both are present.
/// let mut g = FnGame::new(3, |s: Coalition| (s.contains(0) && s.contains(1)) as u8 as f64);
/// let r = exact(&mut g, &ExactOptions::default(), None).unwrap();
/// assert!((r.values[0] - 0.5).abs() < 1e-12 && r.values[2].abs() < 1e-12);
/// assert_eq!(r.evaluations, 8);
/// ```
pub fn exact<G: Game + ?Sized>(
    game: &mut G,
    opts: &ExactOptions,
    progress: Progress<'_>,
) -> Result<ShapleyResult> {
    let (v, players, evaluations) = enumerate_all(game, opts, progress)?;
    let n = players.len();
    let values = shapley_from_table(&v, n);
    Ok(ShapleyResult {
        players,
        values,
        std_errors: vec![0.0; n],
        v_empty: v[0],
        v_full: v[v.len() - 1],
        evaluations,
        method: "exact".into(),
    })
}
