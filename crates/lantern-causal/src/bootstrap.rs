//! Bootstrap edge frequencies (Lee et al. 2025 bootstrapped PCMCI+ 100×).
//!
//! Each resample re-runs the whole discovery ([`crate::discover_with`]) and records which
//! edges it finds; the frequency of an edge is the share of successful resamples that
//! contain it. Lagged edges are matched on `(from, to, lag)`; contemporaneous edges on the
//! unordered pair (adjacency, whatever the orientation).
//!
//! Resampling schemes ([`BootstrapScheme`]):
//! * `Sessions`: draw as many sessions as the data has, with replacement (sessions are
//!   the independent units, so this is the natural block bootstrap).
//! * `Blocks`: moving-block bootstrap within sessions — blocks of `block_len` consecutive
//!   steps are drawn uniformly among all block positions until the original number of
//!   steps is reached; each block becomes its own session, so no lag spans two blocks.
//!   The default `block_len` is `max(⌈√T⌉, 4·(2τ_max + 1))` capped at the longest session
//!   `T`.
//! * `Auto` (default): `Sessions` with at least [`MIN_SESSIONS_FOR_SESSION_BOOTSTRAP`]
//!   sessions, `Blocks` otherwise.
//!
//! Randomness comes from one `ChaCha8Rng` seeded with `config.seed`, consumed sequentially,
//! so results are reproducible. Resamples on which discovery fails (e.g. too few samples)
//! are skipped and counted in [`BootstrapResult::n_failed`].

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::ci::CiTest;
use crate::discovery::{discover_with, DiscoveryConfig, EdgeId};
use crate::error::Result;
use crate::series::{Session, TimeSeries};

/// With at least this many sessions, [`BootstrapScheme::Auto`] resamples sessions.
pub const MIN_SESSIONS_FOR_SESSION_BOOTSTRAP: usize = 5;

/// How bootstrap resamples are drawn (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scheme")]
pub enum BootstrapScheme {
    /// Sessions if there are enough of them, else moving blocks.
    #[default]
    Auto,
    /// Resample whole sessions with replacement.
    Sessions,
    /// Moving-block bootstrap within sessions.
    Blocks {
        /// Block length in steps (`None` = automatic).
        block_len: Option<usize>,
    },
}

/// Edge counts over bootstrap resamples.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BootstrapResult {
    /// Resamples on which discovery succeeded.
    pub n_ok: usize,
    /// Resamples on which discovery failed (skipped).
    pub n_failed: usize,
    /// Number of successful resamples containing each edge.
    pub counts: BTreeMap<EdgeId, usize>,
    /// The scheme actually used (`Auto` resolved).
    pub scheme: BootstrapScheme,
}

impl BootstrapResult {
    /// Share of successful resamples containing `id`; 1.0 when there were none
    /// (bootstrap disabled: the edge was found in the single full-data fit).
    pub fn frequency(&self, id: EdgeId) -> f64 {
        if self.n_ok == 0 {
            1.0
        } else {
            self.counts.get(&id).copied().unwrap_or(0) as f64 / self.n_ok as f64
        }
    }
}

/// Resolves `Auto` and the automatic block length for `series`.
pub fn resolve_scheme(series: &TimeSeries, config: &DiscoveryConfig) -> BootstrapScheme {
    let longest = series.sessions.iter().map(Session::len).max().unwrap_or(0);
    let auto_len = || {
        let root = (longest as f64).sqrt().ceil() as usize;
        root.max(4 * (config.window() + 1)).min(longest.max(1))
    };
    match config.bootstrap {
        BootstrapScheme::Auto if series.sessions.len() >= MIN_SESSIONS_FOR_SESSION_BOOTSTRAP => {
            BootstrapScheme::Sessions
        }
        BootstrapScheme::Sessions => BootstrapScheme::Sessions,
        BootstrapScheme::Auto | BootstrapScheme::Blocks { block_len: None } => {
            BootstrapScheme::Blocks {
                block_len: Some(auto_len()),
            }
        }
        b @ BootstrapScheme::Blocks { .. } => b,
    }
}

/// Draws one resample of `series` under a resolved `scheme`.
///
/// ```
/// use lantern_causal::{bootstrap::{resample, BootstrapScheme}, Session, TimeSeries};
/// use rand::SeedableRng;
/// let s = Session::new("0", (0..30).map(|t| vec![t as f64]).collect());
/// let ts = TimeSeries::new(vec!["x".into()], vec![s]).unwrap();
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let r = resample(&ts, BootstrapScheme::Blocks { block_len: Some(10) }, &mut rng);
/// assert_eq!(r.n_steps(), 30);
/// assert!(r.sessions.iter().all(|b| b.len() == 10));
/// ```
pub fn resample(series: &TimeSeries, scheme: BootstrapScheme, rng: &mut impl Rng) -> TimeSeries {
    let sessions = match scheme {
        BootstrapScheme::Blocks { block_len } => {
            let len = block_len.unwrap_or(1).max(1);
            // (session, start, length) of every possible block.
            let positions: Vec<(usize, usize, usize)> = series
                .sessions
                .iter()
                .enumerate()
                .flat_map(|(s, sess)| {
                    if sess.len() <= len {
                        vec![(s, 0, sess.len())]
                    } else {
                        (0..=sess.len() - len).map(|st| (s, st, len)).collect()
                    }
                })
                .filter(|p| p.2 > 0)
                .collect();
            let total = series.n_steps();
            let mut out = Vec::new();
            let mut drawn = 0;
            while drawn < total && !positions.is_empty() {
                let (s, st, l) = positions[rng.random_range(0..positions.len())];
                out.push(Session {
                    label: format!("block{}", out.len()),
                    values: series.sessions[s].values[st..st + l].to_vec(),
                });
                drawn += l;
            }
            out
        }
        _ => {
            let k = series.sessions.len();
            (0..k)
                .map(|b| {
                    let src = &series.sessions[rng.random_range(0..k)];
                    Session {
                        label: format!("boot{b}:{}", src.label),
                        values: src.values.clone(),
                    }
                })
                .collect()
        }
    };
    TimeSeries {
        names: series.names.clone(),
        sessions,
    }
}

/// Runs `config.n_bootstrap` resamples and counts edges; `progress(done, total)` is
/// called after each resample.
pub fn bootstrap_edges(
    series: &TimeSeries,
    config: &DiscoveryConfig,
    test: &dyn CiTest,
    mut progress: Option<&mut dyn FnMut(usize, usize)>,
) -> Result<BootstrapResult> {
    config.validate()?;
    let scheme = resolve_scheme(series, config);
    if scheme == BootstrapScheme::Sessions
        && series.sessions.len() < MIN_SESSIONS_FOR_SESSION_BOOTSTRAP
    {
        return Err(crate::CausalError::TooFewSessions {
            available: series.sessions.len(),
            needed: MIN_SESSIONS_FOR_SESSION_BOOTSTRAP,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut result = BootstrapResult {
        scheme,
        ..Default::default()
    };
    let total = config.n_bootstrap;
    for b in 0..total {
        let sample = resample(series, scheme, &mut rng);
        match discover_with(&sample, config, test) {
            Ok(d) => {
                result.n_ok += 1;
                for link in &d.links {
                    *result.counts.entry(link.id()).or_insert(0) += 1;
                }
            }
            Err(_) => result.n_failed += 1,
        }
        if let Some(cb) = progress.as_mut() {
            cb(b + 1, total);
        }
    }
    Ok(result)
}
