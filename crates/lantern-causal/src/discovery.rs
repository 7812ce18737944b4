//! Causal discovery of time-lagged and contemporaneous links (PCMCI / PCMCI+ style).
//!
//! Implements the discovery step used by Lee et al. (2025, "Emergence of
//! psychopathological computations in large language models", arXiv:2504.08016), who ran
//! PCMCI+ (Runge 2020, "Discovering contemporaneous and lagged causal relations in
//! autocorrelated nonlinear time series datasets", UAI) with `τ_max = 1`, `α = 0.01` on
//! representational states, bootstrapped 100×.
//!
//! # What is implemented
//!
//! Candidate parents of `X_j(t)` are `X_i(t−τ)` for every `i` (including `j`) and
//! `1 ≤ τ ≤ τ_max`, plus contemporaneous `X_i(t)` for `i ≠ j`. All tests of a run use the
//! same rows: every session loses its first `2·τ_max` steps (no lag crosses sessions).
//!
//! 1. **PC1 lagged condition selection** (Runge et al. 2019, as in tigramite): for every
//!    target `j`, start from all lagged candidates; for `p = 0, 1, …` test
//!    `X_i(t−τ) ⊥ X_j(t) | S` where `S` are the `p` strongest other remaining candidates
//!    (up to [`DiscoveryConfig::pc1_max_combinations`] subsets, strongest first); drop
//!    candidates with `p-value > pc_alpha` after each level, re-sort the rest by their
//!    minimum absolute test statistic. Result: the lagged superset `B⁻(X_j)`.
//! 2. **MCI skeleton with contemporaneous links** (PCMCI+ step 2): links are the lagged
//!    links in `B⁻(X_j)` and all unordered contemporaneous pairs. For `p = 0, 1, …`
//!    (PC-stable: adjacency sets frozen per level) each remaining link
//!    `X_i(t−τ) → X_j(t)` is tested with conditioning set
//!    `S ∪ B⁻(X_j)∖{X_i(t−τ)} ∪ B⁻(X_i)` shifted by `τ`, where `S` ranges over
//!    size-`p` subsets of the current contemporaneous adjacents of `X_j(t)` (strongest
//!    first, at most [`DiscoveryConfig::max_combinations`]). A link is removed when any
//!    test gives `p > alpha`; its separating set is stored. At `p = 0` this *is* the MCI
//!    test of PCMCI. The reported p-value of a surviving link is the maximum over its
//!    tests and the statistic is that of the same test.
//! 3. **Orientation of contemporaneous links**: lagged links are oriented by time.
//!    Unshielded triples `X_i(t−τ) → X_k(t) ◦−◦ X_j(t)` or `X_i(t) ◦−◦ X_k(t) ◦−◦ X_j(t)`
//!    with `X_k(t)` outside the separating set of the outer pair become colliders
//!    (standard PC rule, all colliders collected first; a link receiving both directions
//!    becomes a conflict `x-x`). Then Meek rules R1–R3 are applied to a fixed point
//!    (R1 also fires from lagged parents).
//!
//! # Differences from PCMCI+ (tigramite)
//!
//! * The collider rule is the standard PC rule (tigramite's `contemp_collider_rule="none"`),
//!   not the default `"majority"` rule with extra tests; conflicts are marked `x-x`.
//! * PC1 uses `pc_alpha` (default 0.05) while the skeleton phase uses `alpha`
//!   (tigramite's PCMCI+ uses one `pc_alpha` for both).
//! * No `max_conds_px` / `max_conds_py` limits; no automatic `pc_alpha` selection.
//! * Only Meek rules R1–R3 (R4 is unnecessary without background knowledge).
//! * With [`DiscoveryConfig::contemporaneous`] `= false` the algorithm is plain PCMCI
//!   (PC1 + one MCI test of *every* lagged pair).
//!
//! # How contemporaneous links appear in the output
//!
//! Every lag-0 link is reported once, as a [`Link`] with `lag = 0` and
//! [`LinkKind::Directed`] (`-->`, orientation identified), [`LinkKind::Undirected`]
//! (`o-o`, Markov-equivalent orientations) or [`LinkKind::Conflict`] (`x-x`). The
//! `from → to` direction of `o-o`/`x-x` links follows
//! [`Discovery::contemporaneous_order`], a topological order of the identified lag-0 DAG
//! (smallest index first among ties), so that all lag-0 links together stay acyclic and
//! structural equations can be fitted; this direction is a convention, not a finding.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::bootstrap::BootstrapScheme;
use crate::ci::{CiResult, CiTest, CiTestKind, CorrelationMatrix};
use crate::error::{CausalError, Result};
use crate::lagged::{LaggedData, Node};
use crate::series::TimeSeries;

/// Largest supported `tau_max`.
pub const MAX_TAU: usize = 8;

/// Settings for discovery, bootstrap, structural equations and analyses.
///
/// Every field has a documented default (`DiscoveryConfig::default()`), following
/// Lee et al. (2025) where they state one.
///
/// ```
/// use lantern_causal::DiscoveryConfig;
/// let c = DiscoveryConfig::default();
/// assert_eq!((c.tau_max, c.alpha, c.n_bootstrap), (1, 0.01, 100));
/// let quick = DiscoveryConfig { n_bootstrap: 10, seed: 7, ..Default::default() };
/// assert!(quick.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscoveryConfig {
    /// Maximum lag `τ_max` (default 1, at most [`MAX_TAU`]).
    pub tau_max: usize,
    /// Significance level of the MCI / skeleton phase (default 0.01).
    pub alpha: f64,
    /// Significance level of PC1 lagged condition selection (default 0.05; larger keeps
    /// more conditions, which is conservative).
    pub pc_alpha: f64,
    /// Maximum size of the searched conditioning subsets `S` in PC1 and in the
    /// contemporaneous phase (default `None` = unbounded).
    pub max_cond_dim: Option<usize>,
    /// Subsets tried per link and level in PC1 (default 1, as tigramite).
    pub pc1_max_combinations: usize,
    /// Subsets tried per link and level in the contemporaneous phase (default 10).
    pub max_combinations: usize,
    /// Discover lag-0 links (PCMCI+ style, default `true`); `false` gives plain PCMCI.
    pub contemporaneous: bool,
    /// Conditional-independence test (default partial correlation).
    pub ci_test: CiTestKind,
    /// Bootstrap resamples for edge frequencies (default 100; 0 disables).
    pub n_bootstrap: usize,
    /// How resamples are drawn (default [`BootstrapScheme::Auto`]).
    pub bootstrap: BootstrapScheme,
    /// Edges found on the full data are kept only if their bootstrap frequency is at
    /// least this (default 0.5: an edge must reappear in half the resamples; 0 keeps every
    /// full-data edge, the old default, which lets one-off edges through).
    pub min_frequency: f64,
    /// Benjamini–Hochberg false-discovery level over the MCI / skeleton tests (default
    /// `None`: each link is tested at `alpha` alone). When set, a link survives only if its
    /// BH-adjusted p-value is at most this level; the family is every candidate link
    /// (`N²·τ_max` lagged + `N(N−1)/2` contemporaneous), links never reaching the MCI phase
    /// counting as `p = 1`. Must lie in (0, 1).
    pub fdr: Option<f64>,
    /// How each session is normalised before pooling (default [`SessionNormalization::Center`]):
    /// differences between session means would otherwise look like persistence (lag-1
    /// self-loops) and, across states, like links.
    pub session_normalization: SessionNormalization,
    /// Seed of the ChaCha8 generator used by the bootstrap (default 0).
    pub seed: u64,
    /// Fit structural equations on z-scored states so weights are comparable
    /// (default `true`); `false` fits raw units.
    pub standardize: bool,
    /// Drop constant states with a warning instead of failing (default `false`).
    pub drop_constant: bool,
    /// Maximum number of elementary cycles enumerated (default 1000).
    pub max_cycles: usize,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            tau_max: 1,
            alpha: 0.01,
            pc_alpha: 0.05,
            max_cond_dim: None,
            pc1_max_combinations: 1,
            max_combinations: 10,
            contemporaneous: true,
            ci_test: CiTestKind::ParCorr,
            n_bootstrap: 100,
            bootstrap: BootstrapScheme::Auto,
            min_frequency: 0.5,
            fdr: None,
            session_normalization: SessionNormalization::Center,
            seed: 0,
            standardize: true,
            drop_constant: false,
            max_cycles: 1000,
        }
    }
}

impl DiscoveryConfig {
    /// Checks value ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(CausalError::InvalidConfig(m));
        if self.tau_max == 0 || self.tau_max > MAX_TAU {
            return bad(format!(
                "tau_max must be in 1..={MAX_TAU}, got {}",
                self.tau_max
            ));
        }
        for (name, v) in [("alpha", self.alpha), ("pc_alpha", self.pc_alpha)] {
            if !(v > 0.0 && v <= 1.0) {
                return bad(format!("{name} must be in (0, 1], got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.min_frequency) {
            return bad(format!(
                "min_frequency must be in [0, 1], got {}",
                self.min_frequency
            ));
        }
        if let Some(q) = self.fdr {
            if !(q > 0.0 && q < 1.0) {
                return bad(format!("the FDR level must be in (0, 1), got {q}"));
            }
        }
        if self.pc1_max_combinations == 0 || self.max_combinations == 0 {
            return bad("max_combinations settings must be at least 1".into());
        }
        if let BootstrapScheme::Blocks { block_len: Some(l) } = self.bootstrap {
            if l <= 2 * self.tau_max {
                return bad(format!(
                    "bootstrap block_len {l} must exceed 2 * tau_max = {}",
                    2 * self.tau_max
                ));
            }
        }
        Ok(())
    }

    /// Leading steps of every session that cannot be targets (`2·τ_max`).
    pub fn window(&self) -> usize {
        2 * self.tau_max
    }

    /// Largest conditioning set any test may use with `n_vars` states:
    /// `min(n_vars − 1, max_cond_dim) + 2·n_vars·τ_max`.
    pub fn max_conditioning_size(&self, n_vars: usize) -> usize {
        n_vars
            .saturating_sub(1)
            .min(self.max_cond_dim.unwrap_or(usize::MAX))
            + 2 * n_vars * self.tau_max
    }
}

/// Per-session normalisation applied before sessions are pooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionNormalization {
    /// Pool the raw values (the old behaviour).
    None,
    /// Subtract each session's mean of each state (default).
    #[default]
    Center,
    /// Subtract each session's mean and divide by its standard deviation (a state constant
    /// within a session is only centred there).
    Standardize,
}

impl std::str::FromStr for SessionNormalization {
    type Err = CausalError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "center" | "centre" => Ok(Self::Center),
            "standardize" | "scale" => Ok(Self::Standardize),
            _ => Err(CausalError::InvalidConfig(format!(
                "unknown session normalisation `{s}` (none, center, standardize)"
            ))),
        }
    }
}

/// Edge mark of a discovered link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LinkKind {
    /// Oriented `from → to` (always for lagged links).
    #[serde(rename = "-->")]
    Directed,
    /// Contemporaneous link whose orientation is not identified (`o-o`).
    #[serde(rename = "o-o")]
    Undirected,
    /// Contemporaneous link with conflicting collider orientations (`x-x`).
    #[serde(rename = "x-x")]
    Conflict,
}

/// Identity of an edge for bootstrap counting: lag-0 edges are unordered
/// (`from < to`), lagged edges ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeId {
    /// Source state index (smaller index for lag-0 edges).
    pub from: usize,
    /// Target state index.
    pub to: usize,
    /// Lag.
    pub lag: usize,
}

impl EdgeId {
    /// Normalised id (lag-0 endpoints sorted).
    pub fn new(from: usize, to: usize, lag: usize) -> Self {
        if lag == 0 && from > to {
            Self {
                from: to,
                to: from,
                lag,
            }
        } else {
            Self { from, to, lag }
        }
    }
}

/// One discovered link `X_from(t − lag) → X_to(t)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Source state index.
    pub from: usize,
    /// Target state index.
    pub to: usize,
    /// Lag (0 = contemporaneous).
    pub lag: usize,
    /// Orientation status.
    pub kind: LinkKind,
    /// Test statistic of the least significant test of this link (partial correlation).
    pub statistic: f64,
    /// Largest p-value over the tests of this link (≤ `alpha`).
    pub p_value: f64,
}

impl Link {
    /// Bootstrap identity of this link.
    pub fn id(&self) -> EdgeId {
        EdgeId::new(self.from, self.to, self.lag)
    }
}

/// Result of [`discover`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    /// Found links, sorted by `(to, lag, from)`.
    pub links: Vec<Link>,
    /// PC1 output `B⁻(X_j)` per target: `(state, lag)` sorted by strength.
    pub lagged_parents: Vec<Vec<(usize, usize)>>,
    /// Topological order of the contemporaneous part (see the module docs).
    pub contemporaneous_order: Vec<usize>,
    /// Rows used by every test.
    pub n_samples: usize,
    /// Number of CI tests run.
    pub n_tests: usize,
    /// Non-fatal issues.
    pub warnings: Vec<String>,
}

impl Discovery {
    /// Parents `(state, lag)` of every target according to the found links
    /// (lag-0 links in their reported `from → to` direction).
    pub fn parents(&self, n_vars: usize) -> Vec<Vec<(usize, usize)>> {
        let mut p = vec![Vec::new(); n_vars];
        for l in &self.links {
            if l.to < n_vars {
                p[l.to].push((l.from, l.lag));
            }
        }
        p
    }
}

/// Runs discovery with the CI test named in `config.ci_test`.
///
/// Only finiteness and sample size are checked here (constant states simply never test
/// as dependent); [`crate::analyse_series`] additionally rejects constant states.
///
/// ```
/// use lantern_causal::{discover, DiscoveryConfig, Session, TimeSeries};
/// // x drives y with lag 1.
/// let mut rows = vec![vec![0.0, 0.0]];
/// let mut s = 1u64;
/// let mut noise = move || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5 };
/// for t in 1..300 {
///     let prev: Vec<f64> = rows[t - 1].clone();
///     rows.push(vec![noise(), 0.9 * prev[0] + 0.3 * noise()]);
/// }
/// let ts = TimeSeries::new(vec!["x".into(), "y".into()], vec![Session::new("0", rows)]).unwrap();
/// let d = discover(&ts, &DiscoveryConfig::default()).unwrap();
/// assert!(d.links.iter().any(|l| (l.from, l.to, l.lag) == (0, 1, 1)));
/// ```
pub fn discover(series: &TimeSeries, config: &DiscoveryConfig) -> Result<Discovery> {
    let test = config.ci_test.build();
    discover_with(series, config, test.as_ref())
}

/// Runs discovery with a caller-supplied CI test.
pub fn discover_with(
    series: &TimeSeries,
    config: &DiscoveryConfig,
    test: &dyn CiTest,
) -> Result<Discovery> {
    config.validate()?;
    series.check_finite()?;
    let n_vars = series.n_vars();
    if n_vars == 0 {
        return Err(CausalError::InvalidNames("the series has no states".into()));
    }
    let window = config.window();
    let available = series.usable_samples(window);
    let cond_dim = config.max_conditioning_size(n_vars);
    let needed = test.min_samples(cond_dim);
    if available < needed {
        return Err(CausalError::TooFewSamples {
            available,
            needed,
            cond_dim,
            lost_per_session: window,
        });
    }
    let data = LaggedData::new(series, window, None);
    let gram = match test.column_transform() {
        Some(f) => {
            let cols: Vec<Vec<f64>> = data.columns().iter().map(|c| f(c)).collect();
            Some(CorrelationMatrix::new(&cols)?)
        }
        None => None,
    };
    let mut ctx = Ctx {
        data: &data,
        test,
        gram,
        n_tests: 0,
    };
    let lagged_parents = (0..n_vars)
        .map(|j| pc1(&mut ctx, j, config))
        .collect::<Result<Vec<_>>>()?;
    let mut skel = skeleton(&mut ctx, &lagged_parents, config)?;
    let mut warnings = Vec::new();
    if let Some(q) = config.fdr {
        let family = n_vars * n_vars * config.tau_max + n_vars * (n_vars - 1) / 2;
        let removed = skel.apply_fdr(q, family);
        if removed > 0 {
            warnings.push(format!(
                "{removed} link(s) significant at alpha were removed by Benjamini-Hochberg at q = {q}"
            ));
        }
    }
    let (links, order) = orient(n_vars, &skel, &mut warnings);
    Ok(Discovery {
        links,
        lagged_parents,
        contemporaneous_order: order,
        n_samples: data.n,
        n_tests: ctx.n_tests,
        warnings,
    })
}

struct Ctx<'a> {
    data: &'a LaggedData,
    test: &'a dyn CiTest,
    /// Fast path for partial-correlation tests (see [`CiTest::column_transform`]).
    gram: Option<CorrelationMatrix>,
    n_tests: usize,
}

impl Ctx<'_> {
    fn ci(&mut self, x: Node, y: Node, z: &[Node]) -> Result<CiResult> {
        self.n_tests += 1;
        let r = match &self.gram {
            Some(g) => {
                let zi: Vec<usize> = z.iter().map(|&n| self.data.index(n)).collect();
                g.test(self.data.index(x), self.data.index(y), &zi)?
            }
            None => {
                let zc: Vec<&[f64]> = z.iter().map(|&n| self.data.col(n)).collect();
                self.test.test(self.data.col(x), self.data.col(y), &zc)?
            }
        };
        if !r.p_value.is_finite() || !r.statistic.is_finite() {
            return Err(CausalError::Numerical(format!(
                "CI test {} returned a non-finite result",
                self.test.name()
            )));
        }
        Ok(r)
    }
}

/// Lexicographic `k`-subsets of `0..n`.
fn combinations(n: usize, k: usize) -> impl Iterator<Item = Vec<usize>> {
    let mut next: Option<Vec<usize>> = (k <= n).then(|| (0..k).collect());
    std::iter::from_fn(move || {
        let cur = next.take()?;
        let mut c = cur.clone();
        let mut i = k;
        while i > 0 {
            i -= 1;
            if c[i] < n - k + i {
                c[i] += 1;
                for t in i + 1..k {
                    c[t] = c[t - 1] + 1;
                }
                next = Some(c);
                break;
            }
        }
        Some(cur)
    })
}

fn sort_by_strength(nodes: &mut [Node], strength: &BTreeMap<Node, f64>) {
    nodes.sort_by(|a, b| {
        let sa = strength.get(a).copied().unwrap_or(f64::INFINITY);
        let sb = strength.get(b).copied().unwrap_or(f64::INFINITY);
        sb.total_cmp(&sa).then(a.cmp(b))
    });
}

/// PC1 lagged condition selection for target `j`.
fn pc1(ctx: &mut Ctx, j: usize, config: &DiscoveryConfig) -> Result<Vec<Node>> {
    let n_vars = ctx.data.n_vars;
    let mut parents: Vec<Node> = (1..=config.tau_max)
        .flat_map(|tau| (0..n_vars).map(move |i| (i, tau)))
        .collect();
    let mut strength: BTreeMap<Node, f64> = BTreeMap::new();
    let max_p = config.max_cond_dim.unwrap_or(usize::MAX);
    let mut p = 0;
    while p <= max_p && parents.len() > p {
        let mut nonsig = Vec::new();
        for &cand in &parents {
            let others: Vec<Node> = parents.iter().copied().filter(|&q| q != cand).collect();
            for comb in combinations(others.len(), p).take(config.pc1_max_combinations) {
                let z: Vec<Node> = comb.iter().map(|&k| others[k]).collect();
                let r = ctx.ci(cand, (j, 0), &z)?;
                let s = strength.entry(cand).or_insert(f64::INFINITY);
                *s = s.min(r.statistic.abs());
                if r.p_value > config.pc_alpha {
                    nonsig.push(cand);
                    break;
                }
            }
        }
        parents.retain(|q| !nonsig.contains(q));
        sort_by_strength(&mut parents, &strength);
        p += 1;
    }
    Ok(parents)
}

#[derive(Debug, Clone)]
struct LinkState {
    present: bool,
    max_p: f64,
    stat: f64,
    min_abs_stat: f64,
    /// Contemporaneous part of the conditioning set of the max-p test (the separating
    /// set when the link is removed by the FDR step).
    s_at_max: Vec<usize>,
}

impl LinkState {
    fn new() -> Self {
        Self {
            present: true,
            max_p: -1.0,
            stat: 0.0,
            min_abs_stat: f64::INFINITY,
            s_at_max: Vec::new(),
        }
    }
}

/// Output of the skeleton phase.
struct Skeleton {
    links: BTreeMap<EdgeId, LinkState>,
    /// Separating sets (contemporaneous state indices) of removed links.
    sepsets: BTreeMap<EdgeId, Vec<usize>>,
}

impl Skeleton {
    /// Removes present links whose Benjamini–Hochberg adjusted p-value exceeds `q`, over a
    /// family of `family` links (links not in `self.links` count as `p = 1`). Returns how
    /// many were removed.
    fn apply_fdr(&mut self, q: f64, family: usize) -> usize {
        let ps: Vec<f64> = self
            .links
            .values()
            .map(|st| st.max_p.clamp(0.0, 1.0))
            .collect();
        let adjusted = crate::stats::benjamini_hochberg(&ps, family.max(ps.len()));
        let mut removed = 0;
        for ((id, st), q_value) in self.links.iter_mut().zip(adjusted) {
            if st.present && q_value > q {
                st.present = false;
                self.sepsets.insert(*id, st.s_at_max.clone());
                removed += 1;
            }
        }
        removed
    }

    fn adj0(&self, n_vars: usize) -> Vec<BTreeSet<usize>> {
        let mut adj = vec![BTreeSet::new(); n_vars];
        for (id, st) in &self.links {
            if id.lag == 0 && st.present {
                adj[id.from].insert(id.to);
                adj[id.to].insert(id.from);
            }
        }
        adj
    }
}

/// MCI conditioning set `S ∪ B⁻(j)∖{x} ∪ shift(B⁻(i), τ)`, deduplicated.
fn mci_conditions(
    parents: &[Vec<Node>],
    x: Node,
    j: usize,
    s: &[usize],
    window: usize,
) -> Vec<Node> {
    let (i, tau) = x;
    let mut z: Vec<Node> = Vec::new();
    let candidates = s
        .iter()
        .map(|&k| (k, 0))
        .chain(parents[j].iter().copied())
        .chain(parents[i].iter().map(|&(m, l)| (m, l + tau)));
    for node in candidates {
        if node != x && node != (j, 0) && node.1 <= window && !z.contains(&node) {
            z.push(node);
        }
    }
    z
}

/// PCMCI+ step 2 (or PCMCI's MCI when `config.contemporaneous` is false).
fn skeleton(ctx: &mut Ctx, parents: &[Vec<Node>], config: &DiscoveryConfig) -> Result<Skeleton> {
    let n_vars = ctx.data.n_vars;
    let window = ctx.data.window;
    let mut links: BTreeMap<EdgeId, LinkState> = BTreeMap::new();
    for (j, parents_j) in parents.iter().enumerate() {
        if config.contemporaneous {
            for &(i, tau) in parents_j {
                links.insert(EdgeId::new(i, j, tau), LinkState::new());
            }
            for i in (j + 1)..n_vars {
                links.insert(EdgeId::new(i, j, 0), LinkState::new());
            }
        } else {
            for tau in 1..=config.tau_max {
                for i in 0..n_vars {
                    links.insert(EdgeId::new(i, j, tau), LinkState::new());
                }
            }
        }
    }
    let mut sk = Skeleton {
        links,
        sepsets: BTreeMap::new(),
    };
    let max_p = config.max_cond_dim.unwrap_or(usize::MAX);
    let mut p = 0;
    while p <= max_p {
        let snapshot = sk.adj0(n_vars);
        let mut any_tested = false;
        for (j, adj_j) in snapshot.iter().enumerate() {
            // Links into X_j(t): lagged ones, then contemporaneous ones.
            let mut incoming: Vec<Node> = sk
                .links
                .keys()
                .filter(|id| id.lag > 0 && id.to == j)
                .map(|id| (id.from, id.lag))
                .collect();
            incoming.extend(adj_j.iter().map(|&i| (i, 0)));
            for x in incoming {
                let id = EdgeId::new(x.0, j, x.1);
                if !sk.links.get(&id).is_some_and(|s| s.present) {
                    continue;
                }
                let mut cands: Vec<usize> = adj_j
                    .iter()
                    .copied()
                    .filter(|&k| x.1 > 0 || k != x.0)
                    .collect();
                if cands.len() < p {
                    continue;
                }
                any_tested = true;
                let strength_of = |k: usize| {
                    sk.links
                        .get(&EdgeId::new(k, j, 0))
                        .map_or(0.0, |s| s.min_abs_stat)
                };
                cands.sort_by(|&a, &b| strength_of(b).total_cmp(&strength_of(a)).then(a.cmp(&b)));
                for comb in combinations(cands.len(), p).take(config.max_combinations) {
                    let s: Vec<usize> = comb.iter().map(|&k| cands[k]).collect();
                    let z = mci_conditions(parents, x, j, &s, window);
                    let r = ctx.ci(x, (j, 0), &z)?;
                    let st = sk.links.get_mut(&id).expect("link exists");
                    st.min_abs_stat = st.min_abs_stat.min(r.statistic.abs());
                    if r.p_value > st.max_p {
                        st.max_p = r.p_value;
                        st.stat = r.statistic;
                        st.s_at_max = s.clone();
                    }
                    if r.p_value > config.alpha {
                        st.present = false;
                        sk.sepsets.insert(id, s);
                        break;
                    }
                }
            }
        }
        if !any_tested {
            break;
        }
        p += 1;
    }
    Ok(sk)
}

/// Orientation of a contemporaneous pair `(a, b)` with `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Undirected,
    Forward,
    Backward,
    Conflict,
}

struct Pattern {
    adj0: Vec<BTreeSet<usize>>,
    lagged: Vec<BTreeSet<Node>>,
    marks: BTreeMap<(usize, usize), Mark>,
}

impl Pattern {
    fn mark(&self, a: usize, b: usize) -> Option<Mark> {
        self.marks.get(&(a.min(b), a.max(b))).copied()
    }
    /// Whether the lag-0 edge `a → b` is oriented.
    fn directed(&self, a: usize, b: usize) -> bool {
        match self.mark(a, b) {
            Some(Mark::Forward) => a < b,
            Some(Mark::Backward) => a > b,
            _ => false,
        }
    }
    fn undirected(&self, a: usize, b: usize) -> bool {
        self.mark(a, b) == Some(Mark::Undirected)
    }
    fn orient(&mut self, a: usize, b: usize) {
        let m = if a < b { Mark::Forward } else { Mark::Backward };
        self.marks.insert((a.min(b), a.max(b)), m);
    }
    /// Whether node `u` of the time-unrolled graph is adjacent to `X_b(t)`.
    fn adjacent(&self, u: Node, b: usize) -> bool {
        match u {
            (a, 0) => a == b || self.adj0[a].contains(&b),
            (a, tau) => self.lagged[b].contains(&(a, tau)),
        }
    }
    /// Meek R1: some `u → X_x(t)` with `u` not adjacent to `X_y(t)`.
    fn r1(&self, x: usize, y: usize) -> bool {
        self.lagged[x].iter().any(|&u| !self.adjacent(u, y))
            || self.adj0[x]
                .iter()
                .any(|&u| u != y && self.directed(u, x) && !self.adj0[u].contains(&y))
    }
    /// Meek R2: `x → c → y`.
    fn r2(&self, x: usize, y: usize) -> bool {
        self.adj0[x]
            .iter()
            .any(|&c| c != y && self.directed(x, c) && self.directed(c, y))
    }
    /// Meek R3: `x ◦−◦ c → y`, `x ◦−◦ d → y`, `c`, `d` non-adjacent.
    fn r3(&self, x: usize, y: usize) -> bool {
        let cs: Vec<usize> = self.adj0[x]
            .iter()
            .copied()
            .filter(|&c| c != y && self.undirected(x, c) && self.directed(c, y))
            .collect();
        cs.iter()
            .enumerate()
            .any(|(k, &c)| cs[k + 1..].iter().any(|&d| !self.adj0[c].contains(&d)))
    }
}

fn orient(n_vars: usize, sk: &Skeleton, warnings: &mut Vec<String>) -> (Vec<Link>, Vec<usize>) {
    let adj0 = sk.adj0(n_vars);
    let mut lagged = vec![BTreeSet::new(); n_vars];
    for (id, st) in &sk.links {
        if id.lag > 0 && st.present {
            lagged[id.to].insert((id.from, id.lag));
        }
    }
    let mut pat = Pattern {
        marks: sk
            .links
            .iter()
            .filter(|(id, st)| id.lag == 0 && st.present)
            .map(|(id, _)| ((id.from, id.to), Mark::Undirected))
            .collect(),
        adj0,
        lagged,
    };

    // Collider rule (PC-stable: collect proposals, then apply).
    let mut proposals: BTreeMap<(usize, usize), BTreeSet<(usize, usize)>> = BTreeMap::new();
    for k in 0..n_vars {
        let nbrs: Vec<Node> = pat.adj0[k]
            .iter()
            .map(|&i| (i, 0))
            .chain(pat.lagged[k].iter().copied())
            .collect();
        for (a, &u0) in nbrs.iter().enumerate() {
            for &v0 in &nbrs[a + 1..] {
                if u0.1 > 0 && v0.1 > 0 {
                    continue;
                }
                // Ensure v is contemporaneous; u may be lagged.
                let (u, v) = if v0.1 == 0 { (u0, v0) } else { (v0, u0) };
                if pat.adjacent(u, v.0) {
                    continue;
                }
                let sep_id = EdgeId::new(u.0, v.0, u.1);
                // Lagged links absent from B⁻ were separated by lagged sets only.
                let in_sepset = sk.sepsets.get(&sep_id).is_some_and(|s| s.contains(&k));
                if !in_sepset {
                    if u.1 == 0 {
                        proposals
                            .entry((u.0.min(k), u.0.max(k)))
                            .or_default()
                            .insert((u.0, k));
                    }
                    proposals
                        .entry((v.0.min(k), v.0.max(k)))
                        .or_default()
                        .insert((v.0, k));
                }
            }
        }
    }
    for (pair, dirs) in proposals {
        if dirs.len() > 1 {
            pat.marks.insert(pair, Mark::Conflict);
        } else if let Some(&(a, b)) = dirs.iter().next() {
            pat.orient(a, b);
        }
    }

    // Meek rules to a fixed point.
    loop {
        let mut changed = false;
        let undirected: Vec<(usize, usize)> = pat
            .marks
            .iter()
            .filter(|(_, m)| **m == Mark::Undirected)
            .map(|(p, _)| *p)
            .collect();
        for (a, b) in undirected {
            for (x, y) in [(a, b), (b, a)] {
                if pat.undirected(x, y) && (pat.r1(x, y) || pat.r2(x, y) || pat.r3(x, y)) {
                    pat.orient(x, y);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }

    // Topological order of the directed lag-0 part (Kahn, smallest index first).
    let mut indeg = vec![0usize; n_vars];
    for &(a, b) in pat.marks.keys() {
        if pat.directed(a, b) {
            indeg[b] += 1;
        } else if pat.directed(b, a) {
            indeg[a] += 1;
        }
    }
    let mut ready: BTreeSet<usize> = (0..n_vars).filter(|&v| indeg[v] == 0).collect();
    let mut order = Vec::with_capacity(n_vars);
    while let Some(v) = ready.pop_first() {
        order.push(v);
        for &w in &pat.adj0[v] {
            if pat.directed(v, w) {
                indeg[w] -= 1;
                if indeg[w] == 0 {
                    ready.insert(w);
                }
            }
        }
    }
    if order.len() < n_vars {
        let rest: Vec<usize> = (0..n_vars).filter(|v| !order.contains(v)).collect();
        warnings.push(format!(
            "contemporaneous orientations form a cycle among states {rest:?}; \
             offending links marked x-x"
        ));
        order.extend(rest);
    }
    let pos: Vec<usize> = {
        let mut pos = vec![0; n_vars];
        for (k, &v) in order.iter().enumerate() {
            pos[v] = k;
        }
        pos
    };

    let mut links = Vec::new();
    for (id, st) in sk.links.iter().filter(|(_, st)| st.present) {
        let (p_value, statistic) = (st.max_p.clamp(0.0, 1.0), st.stat);
        if id.lag > 0 {
            links.push(Link {
                from: id.from,
                to: id.to,
                lag: id.lag,
                kind: LinkKind::Directed,
                statistic,
                p_value,
            });
            continue;
        }
        let (a, b) = (id.from, id.to);
        let mut kind = match pat.mark(a, b) {
            Some(Mark::Forward) | Some(Mark::Backward) => LinkKind::Directed,
            Some(Mark::Conflict) => LinkKind::Conflict,
            _ => LinkKind::Undirected,
        };
        // Identified directions always point forward in the topological order, except
        // for links on an orientation cycle, which become conflicts.
        let (from, to) = if pos[a] < pos[b] { (a, b) } else { (b, a) };
        if kind == LinkKind::Directed && !pat.directed(from, to) {
            kind = LinkKind::Conflict;
        }
        links.push(Link {
            from,
            to,
            lag: 0,
            kind,
            statistic,
            p_value,
        });
    }
    links.sort_by_key(|l| (l.to, l.lag, l.from));
    (links, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_enumerate_all_subsets() {
        let all: Vec<Vec<usize>> = combinations(4, 2).collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], vec![0, 1]);
        assert_eq!(all[5], vec![2, 3]);
        assert_eq!(combinations(3, 0).count(), 1);
        assert_eq!(combinations(2, 3).count(), 0);
    }

    #[test]
    fn config_validation() {
        let bad = DiscoveryConfig {
            tau_max: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = DiscoveryConfig {
            alpha: f64::NAN,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert_eq!(DiscoveryConfig::default().max_conditioning_size(5), 4 + 10);
    }
}
