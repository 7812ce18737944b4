//! Monte-Carlo permutation sampling with antithetic pairs.
//!
//! `φ_i = E_π[v(Pre_i(π) ∪ {i}) − v(Pre_i(π))]` over uniformly random player
//! orderings π (Castro et al. 2009). Each random permutation is paired with its
//! reverse (antithetic sampling, Mitchell et al. 2022), which cancels much of
//! the variance for games dominated by low-order effects. Every permutation's
//! marginal contributions sum to `v(N) − v(∅)`, so the estimate is exactly
//! efficient.
//!
//! # Budget
//!
//! The budget is the maximum number of **distinct coalition evaluations**
//! (model calls), so that estimators can be compared at equal cost. A pair
//! costs at most `2n` new coalitions (`2n − 2` once `∅` and `N` are cached);
//! pairs are drawn until the next pair would exceed the budget, or until
//! `budget` pairs have been drawn (which only matters for small games where
//! most coalitions are already cached). The budget must allow two pairs:
//! at least `4n − 2`.
//!
//! # Standard errors
//!
//! Each pair yields one sample per player, the average of the player's
//! marginal contributions in the permutation and in its reverse. The standard
//! error is the sample standard deviation of these pair samples divided by
//! `√pairs`.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::coalition::Coalition;
use crate::error::{Result, ShapleyError};
use crate::game::{Game, MemoGame, DEFAULT_BATCH_SIZE};
use crate::result::{Progress, Reporter, ShapleyResult};

/// Options of [`permutation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermutationOptions {
    /// Maximum distinct coalition evaluations (see the [module docs](self)).
    pub budget: usize,
    /// Seed of the `ChaCha8Rng` drawing the permutations.
    pub seed: u64,
    /// Coalitions per call to [`Game::evaluate`].
    pub batch_size: usize,
}

impl Default for PermutationOptions {
    fn default() -> Self {
        PermutationOptions {
            budget: 1000,
            seed: 0,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// Smallest budget accepted for `n` players (two antithetic pairs).
pub fn min_permutation_budget(n: usize) -> usize {
    (4 * n).saturating_sub(2).max(2)
}

/// Running mean and variance (Welford).
#[derive(Clone, Copy, Default)]
struct Welford {
    n: usize,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn std_error(&self) -> f64 {
        if self.n < 2 {
            return f64::NAN;
        }
        (self.m2 / (self.n - 1) as f64 / self.n as f64).sqrt()
    }
}

/// The chain `∅, {π1}, {π1, π2}, …, N` of prefixes of an ordering.
fn prefixes(order: &[usize]) -> impl Iterator<Item = Coalition> + '_ {
    std::iter::once(Coalition::empty()).chain(order.iter().scan(Coalition::empty(), |c, &p| {
        *c = c.with(p);
        Some(*c)
    }))
}

/// Adds the marginal contributions along `order` (halved) to `acc`.
fn add_marginals<G: Game>(memo: &MemoGame<G>, order: &[usize], acc: &mut [f64]) {
    let mut prev = Coalition::empty();
    let mut v_prev = memo.cached(prev).unwrap_or(0.0);
    for &p in order {
        let cur = prev.with(p);
        let v_cur = memo.cached(cur).unwrap_or(0.0);
        acc[p] += 0.5 * (v_cur - v_prev);
        prev = cur;
        v_prev = v_cur;
    }
}

/// Antithetic permutation-sampling estimate of the Shapley values.
///
/// Seeded and deterministic: the same seed gives identical results.
///
/// ```
/// use lantern_shapley::{permutation, Coalition, FnGame, PermutationOptions};
/// // Additive game: every permutation gives the exact answer.
/// let mut g = FnGame::new(4, |s: Coalition| s.players().map(|i| i as f64).sum());
/// let opts = PermutationOptions { budget: 40, seed: 7, ..Default::default() };
/// let r = permutation(&mut g, &opts, None).unwrap();
/// assert!((r.values[3] - 3.0).abs() < 1e-12 && r.evaluations <= 40);
/// ```
pub fn permutation<G: Game + ?Sized>(
    game: &mut G,
    opts: &PermutationOptions,
    progress: Progress<'_>,
) -> Result<ShapleyResult> {
    let mut memo = MemoGame::new(game, opts.batch_size)?;
    let n = memo.n_players();
    let min = min_permutation_budget(n);
    if opts.budget < min {
        return Err(ShapleyError::BudgetTooSmall {
            method: "permutation",
            budget: opts.budget,
            min,
            n,
        });
    }
    let mut reporter = Reporter::new(progress, opts.budget);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut stats = vec![Welford::default(); n];
    let mut pending: Vec<Coalition> = Vec::new();
    let mut pending_set: HashSet<Coalition> = HashSet::new();
    let mut planned: Vec<Vec<usize>> = Vec::new();
    let mut pairs = 0usize;
    let mut order: Vec<usize> = (0..n).collect();

    let mut flush = |memo: &mut MemoGame<&mut G>,
                     pending: &mut Vec<Coalition>,
                     pending_set: &mut HashSet<Coalition>,
                     planned: &mut Vec<Vec<usize>>|
     -> Result<()> {
        memo.values(pending)?;
        pending.clear();
        pending_set.clear();
        for fwd in planned.drain(..) {
            let rev: Vec<usize> = fwd.iter().rev().copied().collect();
            let mut acc = vec![0.0; n];
            add_marginals(memo, &fwd, &mut acc);
            add_marginals(memo, &rev, &mut acc);
            for (s, a) in stats.iter_mut().zip(acc) {
                s.push(a);
            }
        }
        reporter.report(memo.evaluations());
        Ok(())
    };

    while pairs < opts.budget {
        order.shuffle(&mut rng);
        let rev: Vec<usize> = order.iter().rev().copied().collect();
        let mut new: Vec<Coalition> = Vec::new();
        for c in prefixes(&order).chain(prefixes(&rev)) {
            if !memo.contains(c) && !pending_set.contains(&c) && !new.contains(&c) {
                new.push(c);
            }
        }
        if memo.evaluations() + pending.len() + new.len() > opts.budget {
            break;
        }
        pending_set.extend(new.iter().copied());
        pending.extend(new);
        planned.push(order.clone());
        pairs += 1;
        if pending.len() >= opts.batch_size {
            flush(&mut memo, &mut pending, &mut pending_set, &mut planned)?;
        }
    }
    flush(&mut memo, &mut pending, &mut pending_set, &mut planned)?;
    reporter.finish();

    let v_empty = memo.value(Coalition::empty())?;
    let v_full = memo.value(Coalition::full(n))?;
    Ok(ShapleyResult {
        players: memo.player_names(),
        values: stats.iter().map(|s| s.mean).collect(),
        std_errors: stats.iter().map(Welford::std_error).collect(),
        v_empty,
        v_full,
        evaluations: memo.evaluations(),
        method: "permutation".into(),
    })
}
