//! KernelSHAP: Shapley values as a constrained weighted least-squares fit.
//!
//! Lundberg & Lee (2017) showed that the Shapley values solve
//!
//! `min_φ Σ_{∅ ≠ S ≠ N} k(S) (v(S) − v(∅) − Σ_{i∈S} φ_i)²  s.t.  Σ_i φ_i = v(N) − v(∅)`
//!
//! with the Shapley kernel `k(S) = (n−1) / (C(n,|S|) |S| (n−|S|))`.
//!
//! # Sampling
//!
//! `∅` and `N` are always evaluated and the efficiency constraint is enforced
//! exactly (Lagrangian elimination, Covert & Lee 2021). Other coalitions are
//! drawn from the normalised kernel: a size `s ∈ 1..n−1` with probability
//! `∝ 1/(s(n−s))`, then a uniform subset of that size, so the regression on
//! the draws is unweighted. With `paired` sampling (the default) each draw `S`
//! is accompanied by its complement `N∖S`. Draws (repeats included) are taken
//! until the next one would exceed the **budget of distinct evaluations**
//! (`∅` and `N` included), or after `4 × budget` draws.
//!
//! When the budget covers all `2^n` coalitions, the regression is instead
//! solved over the full lattice with the exact kernel weights, which
//! reproduces the exact Shapley values (standard errors 0).
//!
//! # Solver
//!
//! `A = mean(z zᵀ)`, `b = mean(z (v(S) − v(∅)))`; with `x = A⁻¹b`,
//! `u = A⁻¹1`, the solution is `φ = x − u (1ᵀx − Δ) / (1ᵀu)` where
//! `Δ = v(N) − v(∅)`. Systems are solved by a small dense Cholesky
//! factorisation; a singular `A` (e.g. two players that were always sampled
//! together) falls back to a ridge `λ·mean(diag A)·I`, `λ ∈ {1e-10, …, 1e-4}`,
//! and errors with [`ShapleyError::SingularSystem`] if that fails too.
//!
//! # Standard errors
//!
//! By a seeded bootstrap over the sampled units (pairs when `paired`):
//! `bootstrap` replicates resample the units with replacement and refit; the
//! standard error is the standard deviation of the replicate estimates. With
//! `bootstrap = 0` the standard errors are `NaN` (`null` in JSON).

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::coalition::Coalition;
use crate::error::{Result, ShapleyError};
use crate::game::{Game, MemoGame, DEFAULT_BATCH_SIZE};
use crate::math::{binom, solve_spd};
use crate::result::{Progress, Reporter, ShapleyResult};

/// Options of [`kernel`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Maximum distinct coalition evaluations, `∅` and `N` included.
    pub budget: usize,
    /// Seed of the `ChaCha8Rng` used for sampling and bootstrap.
    pub seed: u64,
    /// Coalitions per call to [`Game::evaluate`].
    pub batch_size: usize,
    /// Number of bootstrap replicates for the standard errors (0: none).
    pub bootstrap: usize,
    /// Sample each coalition together with its complement.
    pub paired: bool,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            budget: 1000,
            seed: 0,
            batch_size: DEFAULT_BATCH_SIZE,
            bootstrap: 100,
            paired: true,
        }
    }
}

/// Smallest budget accepted for `n` players: `n + 2` (2 when `n = 1`).
pub fn min_kernel_budget(n: usize) -> usize {
    if n <= 1 {
        2
    } else {
        n + 2
    }
}

/// A sampling unit (one coalition, or a coalition and its complement) with
/// its regression weight; identical draws share one unit.
struct Unit {
    coalitions: Vec<Coalition>,
    weight: f64,
}

/// The regression design: distinct units and the unit index of every draw.
struct Plan {
    units: Vec<Unit>,
    draws: Vec<usize>,
}

/// Normal equations accumulated from weighted coalitions.
struct Normal {
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    w: f64,
}

impl Normal {
    fn new(n: usize) -> Self {
        Normal {
            n,
            a: vec![0.0; n * n],
            b: vec![0.0; n],
            w: 0.0,
        }
    }

    /// Adds a coalition (its members) with target `y = v(S) − v(∅)` and weight `w`.
    fn add(&mut self, members: &[usize], y: f64, w: f64) {
        for &i in members {
            self.b[i] += w * y;
            let row = &mut self.a[i * self.n..(i + 1) * self.n];
            for &j in members {
                row[j] += w;
            }
        }
        self.w += w;
    }

    /// Efficiency-constrained solution.
    fn solve(&self, delta: f64) -> Result<Vec<f64>> {
        let n = self.n;
        let a: Vec<f64> = self.a.iter().map(|x| x / self.w).collect();
        let b: Vec<f64> = self.b.iter().map(|x| x / self.w).collect();
        let ones = vec![1.0; n];
        let (xs, _ridge) = solve_spd(&a, n, &[&b, &ones])?;
        let (x, u) = (&xs[0], &xs[1]);
        let sx: f64 = x.iter().sum();
        let su: f64 = u.iter().sum();
        if su.abs() <= f64::MIN_POSITIVE || !su.is_finite() {
            return Err(ShapleyError::SingularSystem(
                "degenerate efficiency constraint".into(),
            ));
        }
        let t = (sx - delta) / su;
        Ok(x.iter().zip(u).map(|(xi, ui)| xi - ui * t).collect())
    }
}

/// KernelSHAP estimate of the Shapley values (see the [module docs](self)).
///
/// Seeded and deterministic: the same seed gives identical results.
///
/// ```
/// use lantern_shapley::{kernel, Coalition, FnGame, KernelOptions};
/// // Additive game: the regression is exact whatever the sample.
/// let mut g = FnGame::new(20, |s: Coalition| s.players().map(|i| i as f64).sum());
/// let opts = KernelOptions { budget: 200, seed: 1, ..Default::default() };
/// let r = kernel(&mut g, &opts, None).unwrap();
/// assert!((r.values[5] - 5.0).abs() < 1e-6);
/// assert!(r.evaluations <= 200);
/// ```
pub fn kernel<G: Game + ?Sized>(
    game: &mut G,
    opts: &KernelOptions,
    progress: Progress<'_>,
) -> Result<ShapleyResult> {
    let mut memo = MemoGame::new(game, opts.batch_size)?;
    let n = memo.n_players();
    let min = min_kernel_budget(n);
    if opts.budget < min {
        return Err(ShapleyError::BudgetTooSmall {
            method: "kernel",
            budget: opts.budget,
            min,
            n,
        });
    }
    let empty = Coalition::empty();
    let full = Coalition::full(n);
    let lattice = n < usize::BITS as usize - 1 && opts.budget >= 1usize << n;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);

    // Plan the coalitions: weighted units of one or two coalitions.
    let plan = if n == 1 {
        Plan {
            units: Vec::new(),
            draws: Vec::new(),
        }
    } else if lattice {
        let units: Vec<Unit> = (1..(1u64 << n) - 1)
            .map(|bits| {
                let c = Coalition::from_bits(bits);
                let s = c.len();
                Unit {
                    coalitions: vec![c],
                    weight: (n - 1) as f64 / (binom(n, s) * (s * (n - s)) as f64),
                }
            })
            .collect();
        let draws = (0..units.len()).collect();
        Plan { units, draws }
    } else {
        sample_units(n, opts, &mut rng)
    };

    // Evaluate ∅, N and every distinct sampled coalition, in batches.
    let mut order = vec![empty, full];
    let mut seen: HashSet<Coalition> = order.iter().copied().collect();
    for u in &plan.units {
        order.extend(u.coalitions.iter().copied().filter(|c| seen.insert(*c)));
    }
    let mut reporter = Reporter::new(progress, order.len());
    for chunk in order.chunks(opts.batch_size) {
        memo.values(chunk)?;
        reporter.report(memo.evaluations());
    }
    reporter.finish();
    let v_empty = memo.value(empty)?;
    let v_full = memo.value(full)?;
    let delta = v_full - v_empty;

    // Members and targets of every unit's coalitions, computed once.
    let design: Vec<Vec<(Vec<usize>, f64)>> = plan
        .units
        .iter()
        .map(|u| {
            u.coalitions
                .iter()
                .map(|&c| {
                    (
                        c.players().collect(),
                        memo.cached(c).unwrap_or(0.0) - v_empty,
                    )
                })
                .collect()
        })
        .collect();
    // Fit with `counts[u]` draws of unit `u`.
    let fit = |counts: &[f64]| -> Result<Vec<f64>> {
        let mut ne = Normal::new(n);
        for ((unit, rows), &k) in plan.units.iter().zip(&design).zip(counts) {
            if k > 0.0 {
                for (members, y) in rows {
                    ne.add(members, *y, k * unit.weight);
                }
            }
        }
        ne.solve(delta)
    };
    let mut counts = vec![0.0; plan.units.len()];
    for &d in &plan.draws {
        counts[d] += 1.0;
    }

    let (values, std_errors) = if n == 1 {
        (vec![delta], vec![0.0])
    } else if lattice {
        (fit(&counts)?, vec![0.0; n])
    } else {
        let values = fit(&counts)?;
        let m = plan.draws.len();
        let mut reps: Vec<Vec<f64>> = Vec::with_capacity(opts.bootstrap);
        for _ in 0..opts.bootstrap {
            counts.iter_mut().for_each(|c| *c = 0.0);
            for _ in 0..m {
                counts[plan.draws[rng.random_range(0..m)]] += 1.0;
            }
            // A replicate can be singular by chance: skip it.
            if let Ok(phi) = fit(&counts) {
                reps.push(phi);
            }
        }
        let se = if opts.bootstrap == 0 {
            vec![f64::NAN; n]
        } else if reps.len() < 2 {
            return Err(ShapleyError::SingularSystem(
                "fewer than two bootstrap replicates could be solved; increase the budget".into(),
            ));
        } else {
            (0..n)
                .map(|i| {
                    let mean = reps.iter().map(|r| r[i]).sum::<f64>() / reps.len() as f64;
                    let var = reps.iter().map(|r| (r[i] - mean).powi(2)).sum::<f64>()
                        / (reps.len() - 1) as f64;
                    var.sqrt()
                })
                .collect()
        };
        (values, se)
    };

    Ok(ShapleyResult {
        players: memo.player_names(),
        values,
        std_errors,
        v_empty,
        v_full,
        evaluations: memo.evaluations(),
        method: "kernel".into(),
    })
}

/// Draws sampling units (a coalition, or a coalition and its complement)
/// from the Shapley kernel until the distinct-evaluation budget is used;
/// repeated draws share a unit.
fn sample_units(n: usize, opts: &KernelOptions, rng: &mut ChaCha8Rng) -> Plan {
    let size_w: Vec<f64> = (1..n).map(|s| 1.0 / (s * (n - s)) as f64).collect();
    let total: f64 = size_w.iter().sum();
    let mut distinct: HashSet<Coalition> = [Coalition::empty(), Coalition::full(n)]
        .into_iter()
        .collect();
    let mut index: HashMap<Coalition, usize> = HashMap::new();
    let mut plan = Plan {
        units: Vec::new(),
        draws: Vec::new(),
    };
    let max_draws = opts.budget.saturating_mul(4);
    let mut players: Vec<usize> = (0..n).collect();
    for _ in 0..max_draws {
        let mut r = rng.random::<f64>() * total;
        let mut s = n - 1;
        for (k, w) in size_w.iter().enumerate() {
            if r < *w {
                s = k + 1;
                break;
            }
            r -= w;
        }
        // Partial Fisher–Yates: the first `s` entries form a uniform subset.
        for i in 0..s {
            let j = rng.random_range(i..n);
            players.swap(i, j);
        }
        let c = Coalition::from_players(n, players[..s].iter().copied()).unwrap_or_default();
        let mut cs = vec![c];
        if opts.paired {
            cs.push(c.complement(n));
        }
        let new = cs.iter().filter(|c| !distinct.contains(c)).count();
        if distinct.len() + new > opts.budget {
            break;
        }
        distinct.extend(cs.iter().copied());
        // A pair {S, N∖S} is the same unit whichever member was drawn.
        let key = *cs.iter().min().unwrap_or(&c);
        let u = *index.entry(key).or_insert_with(|| {
            plan.units.push(Unit {
                coalitions: cs,
                weight: 1.0,
            });
            plan.units.len() - 1
        });
        plan.draws.push(u);
    }
    plan
}
