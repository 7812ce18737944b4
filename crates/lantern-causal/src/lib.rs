//! # lantern-causal
//!
//! Time-lagged causal graphs over representational states of a language model, following
//! Lee et al. (2025), *Emergence of psychopathological computations in large language
//! models* (arXiv:2504.08016): states (e.g. feature activations per generation step) are
//! treated as a multivariate time series; PCMCI+ (Runge 2020, *Discovering contemporaneous
//! and lagged causal relations in autocorrelated nonlinear time series datasets*, UAI;
//! building on PCMCI, Runge et al. 2019, *Science Advances*) with `τ_max = 1`,
//! `α = 0.01` and 100 bootstrap resamples finds lagged and contemporaneous links; linear
//! structural equations fitted on the found parents give edge weights. Lag-1 edges make the
//! graph over states cyclic: feedback loops let an activated state spread and sustain
//! itself, which this crate quantifies (cycles and their gains, strongly connected
//! components, spectral radius, spread simulation).
//!
//! The crate is plain data in, results out: no model or ML dependencies.
//!
//! | module | content |
//! |---|---|
//! | [`series`] | [`TimeSeries`] / [`Session`], CSV loading, validation |
//! | [`ci`] | [`CiTest`] trait, [`ParCorr`], [`RankParCorr`] |
//! | [`discovery`] | PC1 + MCI + contemporaneous orientation ([`discover`]) |
//! | [`bootstrap`] | seeded session / moving-block bootstrap edge frequencies |
//! | [`calibration`] | false-positive rate and power on seeded synthetic data |
//! | [`sem`] | OLS structural equations on the found parents |
//! | [`graph`] | petgraph graph, SCCs, elementary cycles, centrality |
//! | [`simulate`] | [`LinearModel`], spread simulation, predicted steering effects |
//! | [`intervention`] | predicted vs observed steering effects |
//! | [`report`] | [`GraphReport`], JSON and DOT export |
//! | [`linalg`], [`stats`] | QR least squares, eigenvalues, t / normal p-values |
//!
//! ```
//! use lantern_causal::{analyse_series, DiscoveryConfig, SpreadConfig, TimeSeries};
//! // Two states in a lag-1 loop a -> b -> a, 8 sessions of 40 steps.
//! let mut csv = String::from("session,a,b\n");
//! let mut s = 7u64;
//! let mut noise = move || {
//!     s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
//!     (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
//! };
//! for sess in 0..8 {
//!     let (mut a, mut b) = (0.0, 0.0);
//!     for _ in 0..40 {
//!         let (na, nb) = (0.7 * b + noise(), 0.7 * a + noise());
//!         (a, b) = (na, nb);
//!         csv.push_str(&format!("{sess},{a},{b}\n"));
//!     }
//! }
//! let series = TimeSeries::from_csv_str(&csv).unwrap();
//! let config = DiscoveryConfig { n_bootstrap: 5, ..Default::default() };
//! let report = analyse_series(&series, &config).unwrap();
//! assert_eq!(report.sccs, vec![vec!["a".to_string(), "b".to_string()]]);
//! assert!(report.cycles.iter().any(|c| c.nodes.len() == 2 && c.gain > 0.0));
//! let json = report.to_json().unwrap();
//! assert!(json.contains("\"spectral_radius\""));
//! let spread = report.simulate_spread(&SpreadConfig::new("a")).unwrap();
//! assert_eq!(spread.risen, vec!["b"]);
//! ```

pub mod bootstrap;
pub mod calibration;
pub mod ci;
pub mod discovery;
mod error;
pub mod graph;
pub mod intervention;
mod lagged;
pub mod linalg;
pub mod report;
pub mod sem;
pub mod series;
pub mod simulate;
pub mod stats;

pub use bootstrap::{bootstrap_edges, BootstrapResult, BootstrapScheme};
pub use ci::{
    CiResult, CiTest, CiTestKind, ColumnTransform, CorrelationMatrix, ParCorr, RankParCorr,
};
pub use discovery::{
    discover, discover_with, Discovery, DiscoveryConfig, EdgeId, Link, LinkKind,
    SessionNormalization,
};
pub use error::{CausalError, Result};
pub use graph::{CausalGraph, Centrality, Cycle, Edge, EdgeReport};
pub use intervention::{
    check_interventions, EffectComparison, GroupScore, InterventionCheck, ObservedEffect,
};
pub use report::{BootstrapSummary, GraphReport, SelfLoop, UNORIENTED_POLICY};
pub use sem::{fit_sem, SemFit, StructuralEquation, Term};
pub use series::{CsvOptions, Session, TimeSeries};
pub use simulate::{LinearModel, SpreadConfig, SpreadResult, StateResponse};

/// Discovery on the full data, bootstrap edge frequencies, structural equations and
/// graph analyses, without progress reporting. See [`analyse_series_with_progress`].
pub fn analyse_series(series: &TimeSeries, config: &DiscoveryConfig) -> Result<GraphReport> {
    analyse_series_with_progress(series, config, None)
}

/// The full pipeline behind `lantern graph`:
///
/// 1. validate the config and the data (non-finite values are errors);
/// 2. normalise each session on its own (`config.session_normalization`, default: centre),
///    so that differences between session means cannot pose as persistence or links;
///    constant states (after that step) are errors unless `config.drop_constant`, which
///    drops them with a warning;
/// 3. [`discover_with`] on the full data;
/// 4. `config.n_bootstrap` resamples ([`bootstrap_edges`]), calling
///    `progress(done, total)` after each;
/// 5. the final graph is the full-data edges whose bootstrap frequency is at least
///    `config.min_frequency` (default 0.5);
/// 6. [`fit_sem`] on the *oriented* parents in that graph gives edge weights; unoriented
///    lag-0 links (`o-o`, `x-x`) stay in the edge list, unoriented, and are left out of
///    every analysis that needs a direction ([`UNORIENTED_POLICY`]);
/// 7. self-loops, multi-state cycles, SCCs, spectral radii and centrality ([`GraphReport`]).
pub fn analyse_series_with_progress(
    series: &TimeSeries,
    config: &DiscoveryConfig,
    progress: Option<&mut dyn FnMut(usize, usize)>,
) -> Result<GraphReport> {
    config.validate()?;
    series.check_finite()?;
    let normalized = series.normalized_per_session(config.session_normalization);
    let series = &normalized;
    let constant = series.constant_states();
    let mut warnings = Vec::new();
    let mut dropped_states = Vec::new();
    let owned;
    let series = if constant.is_empty() {
        series
    } else if config.drop_constant {
        dropped_states = constant.iter().map(|&i| series.names[i].clone()).collect();
        warnings.push(format!("dropped constant states {dropped_states:?}"));
        owned = series.without_states(&constant);
        &owned
    } else {
        return Err(CausalError::ConstantSeries {
            state: series.names[constant[0]].clone(),
        });
    };
    if series.n_vars() == 0 {
        return Err(CausalError::InvalidNames(
            "no non-constant states left".into(),
        ));
    }
    let test = config.ci_test.build();
    let discovery = discover_with(series, config, test.as_ref())?;
    warnings.extend(discovery.warnings.iter().cloned());
    let boot = if config.n_bootstrap > 0 {
        let b = bootstrap_edges(series, config, test.as_ref(), progress)?;
        if b.n_failed > 0 {
            warnings.push(format!(
                "{} of {} bootstrap resamples failed and were skipped",
                b.n_failed, config.n_bootstrap
            ));
        }
        Some(b)
    } else {
        None
    };
    let kept: Vec<Link> = discovery
        .links
        .iter()
        .filter(|l| boot.as_ref().map_or(1.0, |b| b.frequency(l.id())) >= config.min_frequency)
        .cloned()
        .collect();
    let mut parents = vec![Vec::new(); series.n_vars()];
    // Unoriented lag-0 links have no parent: their direction would be a convention.
    for l in kept.iter().filter(|l| l.kind == LinkKind::Directed) {
        parents[l.to].push((l.from, l.lag));
    }
    let sem = fit_sem(series, &parents, config.standardize)?;
    warnings.extend(sem.warnings.iter().cloned());
    GraphReport::assemble(report::Parts {
        names: &series.names,
        n_sessions: series.sessions.len(),
        config,
        ci_test: test.name(),
        discovery: &discovery,
        bootstrap: boot.as_ref(),
        kept: &kept,
        sem: &sem,
        dropped_states,
        warnings,
    })
}
