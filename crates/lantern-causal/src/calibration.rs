//! Calibration of the discovery pipeline on synthetic data of a given size: how often it
//! finds cross-state links and feedback loops where there are none (null data), and how
//! often it finds a planted lagged loop (power).
//!
//! Null data: `n_states` independent states per session, each white noise or AR(1) with
//! coefficient `ar`, plus a per-session, per-state mean offset drawn from `N(0, offset_sd²)`
//! (sessions of real recordings differ in their mean level; pooled without centring, such
//! offsets look like persistence and, across states, like links). Planted data adds a lag-1
//! loop `s0 → s1 → s0` with coefficient `coupling` on top of the same null.
//!
//! Every run is seeded (`ChaCha8Rng`), so the rates are reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::discovery::{DiscoveryConfig, LinkKind};
use crate::error::Result;
use crate::report::GraphReport;
use crate::series::{Session, TimeSeries};

/// Shape of the synthetic data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// Independent states.
    pub n_states: usize,
    /// Sessions.
    pub sessions: usize,
    /// Steps per session.
    pub steps: usize,
    /// AR(1) coefficient of every state (0 = white noise).
    pub ar: f64,
    /// Standard deviation of the per-session mean offsets (0 = none).
    pub offset_sd: f64,
    /// Lag-1 coupling of the planted loop `s0 → s1 → s0` (0 = the null).
    pub coupling: f64,
}

/// Standard normal draw (Box–Muller).
fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Draws one data set (states `s0, s1, …`; 20 burn-in steps per session).
///
/// ```
/// use lantern_causal::calibration::{simulate, SyntheticSpec};
/// let spec = SyntheticSpec { n_states: 3, sessions: 4, steps: 10, ar: 0.5, offset_sd: 1.0, coupling: 0.0 };
/// let ts = simulate(&spec, 7);
/// assert_eq!((ts.n_vars(), ts.sessions.len(), ts.n_steps()), (3, 4, 40));
/// assert_eq!(ts, simulate(&spec, 7));
/// ```
pub fn simulate(spec: &SyntheticSpec, seed: u64) -> TimeSeries {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = spec.n_states;
    let sessions = (0..spec.sessions)
        .map(|s| {
            let offsets: Vec<f64> = (0..n).map(|_| spec.offset_sd * gauss(&mut rng)).collect();
            let mut x = vec![0.0; n];
            let mut rows = Vec::with_capacity(spec.steps);
            for t in 0..spec.steps + 20 {
                let prev = x.clone();
                for (i, xi) in x.iter_mut().enumerate() {
                    *xi = spec.ar * prev[i] + gauss(&mut rng);
                }
                if n >= 2 && spec.coupling != 0.0 {
                    x[1] += spec.coupling * prev[0];
                    x[0] += spec.coupling * prev[1];
                }
                if t >= 20 {
                    rows.push(x.iter().zip(&offsets).map(|(v, o)| v + o).collect());
                }
            }
            Session::new(s.to_string(), rows)
        })
        .collect();
    TimeSeries {
        names: (0..n).map(|i| format!("s{i}")).collect(),
        sessions,
    }
}

/// Rates over seeded runs of [`crate::analyse_series`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSummary {
    /// Data shape.
    pub spec: SyntheticSpec,
    /// Runs (seeds `first_seed..first_seed + runs`).
    pub runs: usize,
    /// First seed.
    pub first_seed: u64,
    /// Cross-state candidate links per run: `N(N−1)·τ_max` lagged + `N(N−1)/2` lag-0.
    pub cross_state_candidates: usize,
    /// Cross-state edges found over all runs, other than the planted ones.
    pub false_cross_state_edges: usize,
    /// `false_cross_state_edges / (runs × candidates)`; compare with `alpha`.
    pub false_positive_rate: f64,
    /// Runs with at least one feedback loop (cycle through ≥ 2 states).
    pub runs_with_feedback_loop: usize,
    /// Runs with at least one feedback loop not made only of planted edges.
    pub runs_with_spurious_feedback_loop: usize,
    /// Runs with at least one self-loop (which the old reports counted as cycles).
    pub runs_with_self_loop: usize,
    /// Runs in which both planted edges were found (0 on the null).
    pub runs_with_planted_loop: usize,
    /// Share of runs finding the planted loop (power); `None` on the null.
    pub power: Option<f64>,
    /// Configuration used.
    pub config: DiscoveryConfig,
}

/// Runs [`crate::analyse_series`] on `runs` seeded data sets and counts what it finds.
pub fn calibrate(
    spec: &SyntheticSpec,
    config: &DiscoveryConfig,
    runs: usize,
    first_seed: u64,
) -> Result<CalibrationSummary> {
    let n = spec.n_states;
    let candidates = n * n.saturating_sub(1) * config.tau_max + n * n.saturating_sub(1) / 2;
    let planted = |from: &str, to: &str, lag: usize| {
        spec.coupling != 0.0
            && lag == 1
            && ((from, to) == ("s0", "s1") || (from, to) == ("s1", "s0"))
    };
    let (mut false_edges, mut loops, mut spurious, mut self_loops, mut found) = (0, 0, 0, 0, 0);
    for r in 0..runs {
        let seed = first_seed.wrapping_add(r as u64);
        let series = simulate(spec, seed);
        let cfg = DiscoveryConfig {
            seed,
            ..config.clone()
        };
        let report: GraphReport = crate::analyse_series(&series, &cfg)?;
        false_edges += report
            .edges
            .iter()
            .filter(|e| e.from != e.to && !planted(&e.from, &e.to, e.lag))
            .count();
        if !report.cycles.is_empty() {
            loops += 1;
        }
        let planted_only = |c: &crate::graph::Cycle| {
            c.nodes.len() == 2
                && c.lags.iter().all(|&l| l == 1)
                && planted(&c.nodes[0], &c.nodes[1], 1)
        };
        if report.cycles.iter().any(|c| !planted_only(c)) {
            spurious += 1;
        }
        if !report.self_loops.is_empty() {
            self_loops += 1;
        }
        let has = |f: &str, t: &str| {
            report
                .edges
                .iter()
                .any(|e| e.from == f && e.to == t && e.lag == 1 && e.kind == LinkKind::Directed)
        };
        if spec.coupling != 0.0 && has("s0", "s1") && has("s1", "s0") {
            found += 1;
        }
    }
    let denom = (runs * candidates).max(1) as f64;
    Ok(CalibrationSummary {
        spec: *spec,
        runs,
        first_seed,
        cross_state_candidates: candidates,
        false_cross_state_edges: false_edges,
        false_positive_rate: false_edges as f64 / denom,
        runs_with_feedback_loop: loops,
        runs_with_spurious_feedback_loop: spurious,
        runs_with_self_loop: self_loops,
        runs_with_planted_loop: found,
        power: (spec.coupling != 0.0).then(|| found as f64 / runs.max(1) as f64),
        config: config.clone(),
    })
}
