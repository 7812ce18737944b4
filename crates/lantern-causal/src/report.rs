//! The graph report: discovery + bootstrap + structural equations + analyses, with JSON
//! and Graphviz DOT export.
//!
//! JSON shape ([`GraphReport::to_json`]), guaranteed keys first:
//!
//! ```text
//! { "nodes": ["A", ...],
//!   "edges": [{"from": "A", "to": "B", "lag": 1, "weight": 0.41, "frequency": 0.97,
//!              "kind": "-->", "p_value": 1e-9, "statistic": 0.3}, ...],
//!   "sccs": [["A", "B", "C"], ...],
//!   "cycles": [{"nodes": ["A", "B", "C"], "gain": 0.18, "length": 3, "lags": [1, 1, 1],
//!               "weights": [...], "total_lag": 3}, ...],
//!   "spectral_radius": 0.73,
//!   "self_loops": [{"state": "A", "lag": 1, "weight": 0.4, "frequency": 1.0}, ...],
//!   "n_feedback_loops": 1, "density": 0.1, "cross_state_spectral_radius": 0.5,
//!   "unoriented_links": "...", "bootstrap": {"requested": 100, "min_frequency": 0.5, ...},
//!   ... "reduced_form_spectral_radius", "centrality", "equations", "n_samples", "config", ... }
//! ```
//!
//! `cycles` and `sccs` hold *feedback loops* only — cycles through at least two states and
//! components of at least two states. Self-loops (a state's persistence) are reported apart
//! in `self_loops`. Unoriented lag-0 links (`"kind": "o-o"` or `"x-x"`) are listed in
//! `edges` with their symmetric partial correlation as `weight` (no structural coefficient
//! is fitted for them) and are left out of every directional analysis
//! ([`UNORIENTED_POLICY`]).
//!
//! An empty graph has `"edges": []`, `"sccs": []`, `"cycles": []` and
//! `"spectral_radius": 0.0`. No field is ever NaN (undefined values are 0 or `null`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::bootstrap::{BootstrapResult, BootstrapScheme};
use crate::discovery::{Discovery, DiscoveryConfig, LinkKind};
use crate::error::Result;
use crate::graph::{
    build_graph, centrality, elementary_cycles, lag_matrix, strongly_connected_components,
    CausalGraph, Centrality, Cycle, EdgeReport,
};
use crate::intervention::{check_interventions, InterventionCheck, ObservedEffect};
use crate::linalg::spectral_radius;
use crate::sem::{SemFit, StructuralEquation};
use crate::simulate::{LinearModel, SpreadConfig, SpreadResult};

/// What the report does with unoriented lag-0 links (stated in every report).
pub const UNORIENTED_POLICY: &str = "left out: unoriented lag-0 links (o-o, x-x) are listed in \
`edges` with their partial correlation as weight, but not used by the structural equations, \
cycles, SCCs, spectral radii, centrality, spread simulation or steering predictions";

/// A state's lag-`lag` dependence on itself (persistence), reported apart from feedback loops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfLoop {
    /// State name.
    pub state: String,
    /// Lag (≥ 1).
    pub lag: usize,
    /// Structural-equation coefficient.
    pub weight: f64,
    /// Bootstrap frequency.
    pub frequency: f64,
}

/// Bootstrap bookkeeping in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapSummary {
    /// Resamples requested.
    pub requested: usize,
    /// Bootstrap frequency an edge needed to be kept.
    #[serde(default)]
    pub min_frequency: f64,
    /// Resamples on which discovery succeeded (frequency denominator).
    pub succeeded: usize,
    /// Resamples skipped because discovery failed.
    pub failed: usize,
    /// Scheme used.
    pub scheme: BootstrapScheme,
}

/// Everything [`crate::analyse_series`] finds (see the module docs for the JSON shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphReport {
    /// State names.
    pub nodes: Vec<String>,
    /// Edges with structural weights and bootstrap frequencies.
    pub edges: Vec<EdgeReport>,
    /// Feedback strongly connected components: at least two states each.
    pub sccs: Vec<Vec<String>>,
    /// Feedback loops: elementary cycles through at least two states, strongest `|gain|`
    /// first (self-loops are in `self_loops`).
    pub cycles: Vec<Cycle>,
    /// Spectral radius of the lag-1 weight matrix `A_1` (self-loops included).
    pub spectral_radius: f64,
    /// Self-loops (persistence), apart from the feedback loops.
    #[serde(default)]
    pub self_loops: Vec<SelfLoop>,
    /// Number of feedback loops (`cycles.len()`).
    #[serde(default)]
    pub n_feedback_loops: usize,
    /// Oriented cross-state edges (any lag; parallel edges of one ordered pair count once)
    /// over the `N(N−1)` ordered pairs; 0 for fewer than two states.
    #[serde(default)]
    pub density: f64,
    /// Cross-state edges in `edges` (oriented or not).
    #[serde(default)]
    pub n_cross_state_edges: usize,
    /// Unoriented lag-0 links in `edges`.
    #[serde(default)]
    pub n_unoriented: usize,
    /// Spectral radius of `A_1` without its diagonal: the lag-1 feedback between states
    /// alone, with persistence removed.
    #[serde(default)]
    pub cross_state_spectral_radius: f64,
    /// What was done with unoriented links ([`UNORIENTED_POLICY`]).
    #[serde(default)]
    pub unoriented_links: String,
    /// Spectral radius of the reduced-form companion matrix (includes lag-0 paths and
    /// higher lags); ≥ 1 means perturbations do not decay.
    pub reduced_form_spectral_radius: f64,
    /// Whether cycle enumeration stopped at `config.max_cycles`.
    pub cycles_truncated: bool,
    /// Strength centralities per state.
    pub centrality: Vec<Centrality>,
    /// Fitted structural equations, one per state.
    pub equations: Vec<StructuralEquation>,
    /// Whether weights are standardised coefficients.
    pub standardized: bool,
    /// Global state means.
    pub state_means: Vec<f64>,
    /// Global state standard deviations.
    pub state_sds: Vec<f64>,
    /// Rows used by every discovery test.
    pub n_samples: usize,
    /// Sessions in the input.
    pub n_sessions: usize,
    /// CI tests run on the full data.
    pub n_tests: usize,
    /// Name of the CI test.
    pub ci_test: String,
    /// Bootstrap bookkeeping.
    pub bootstrap: BootstrapSummary,
    /// Configuration used.
    pub config: DiscoveryConfig,
    /// Constant states dropped (with `drop_constant`).
    pub dropped_states: Vec<String>,
    /// Non-fatal issues.
    pub warnings: Vec<String>,
}

/// Inputs to [`GraphReport::assemble`].
pub(crate) struct Parts<'a> {
    pub names: &'a [String],
    pub n_sessions: usize,
    pub config: &'a DiscoveryConfig,
    pub ci_test: &'a str,
    pub discovery: &'a Discovery,
    pub bootstrap: Option<&'a BootstrapResult>,
    pub kept: &'a [crate::discovery::Link],
    pub sem: &'a SemFit,
    pub dropped_states: Vec<String>,
    pub warnings: Vec<String>,
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

impl GraphReport {
    pub(crate) fn assemble(p: Parts) -> Result<Self> {
        let mut warnings = p.warnings;
        let weight_of = |from: usize, to: usize, lag: usize| {
            p.sem.equations[to]
                .terms
                .iter()
                .find(|t| t.source == p.names[from] && t.lag == lag)
                .map_or(0.0, |t| t.weight)
        };
        let edges: Vec<EdgeReport> = p
            .kept
            .iter()
            .map(|l| EdgeReport {
                from: p.names[l.from].clone(),
                to: p.names[l.to].clone(),
                lag: l.lag,
                weight: finite_or_zero(if l.kind == LinkKind::Directed {
                    weight_of(l.from, l.to, l.lag)
                } else {
                    l.statistic
                }),
                frequency: p.bootstrap.map_or(1.0, |b| b.frequency(l.id())),
                kind: l.kind,
                p_value: finite_or_zero(l.p_value),
                statistic: finite_or_zero(l.statistic),
            })
            .collect();
        let g = build_graph(p.names, &edges)?;
        let mut search = elementary_cycles(&g, p.config.max_cycles);
        search.cycles.retain(|c| c.length >= 2);
        let n = p.names.len();
        let self_loops: Vec<SelfLoop> = edges
            .iter()
            .filter(|e| e.from == e.to)
            .map(|e| SelfLoop {
                state: e.from.clone(),
                lag: e.lag,
                weight: e.weight,
                frequency: e.frequency,
            })
            .collect();
        let oriented_pairs: std::collections::BTreeSet<(&str, &str)> = edges
            .iter()
            .filter(|e| e.from != e.to && e.kind == LinkKind::Directed)
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        let density = if n >= 2 {
            oriented_pairs.len() as f64 / (n * (n - 1)) as f64
        } else {
            0.0
        };
        let mut a1_cross = lag_matrix(&g, 1);
        for (k, row) in a1_cross.iter_mut().enumerate() {
            row[k] = 0.0;
        }
        if search.truncated {
            warnings.push(format!(
                "cycle enumeration stopped after {} cycles",
                search.cycles.len()
            ));
        }
        let scales = if p.sem.standardized {
            vec![1.0; p.names.len()]
        } else {
            p.sem.sds.clone()
        };
        let model = LinearModel::from_equations(p.names, &p.sem.equations, scales)?;
        Ok(Self {
            nodes: p.names.to_vec(),
            sccs: strongly_connected_components(&g)
                .into_iter()
                .filter(|c| c.len() >= 2)
                .collect(),
            n_feedback_loops: search.cycles.len(),
            cycles: search.cycles,
            self_loops,
            density,
            n_cross_state_edges: edges.iter().filter(|e| e.from != e.to).count(),
            n_unoriented: edges
                .iter()
                .filter(|e| e.kind != LinkKind::Directed)
                .count(),
            cross_state_spectral_radius: finite_or_zero(spectral_radius(&a1_cross)?),
            unoriented_links: UNORIENTED_POLICY.to_string(),
            cycles_truncated: search.truncated,
            spectral_radius: finite_or_zero(spectral_radius(&lag_matrix(&g, 1))?),
            reduced_form_spectral_radius: finite_or_zero(model.reduced_form_spectral_radius()?),
            centrality: centrality(&g),
            edges,
            equations: p.sem.equations.clone(),
            standardized: p.sem.standardized,
            state_means: p.sem.means.clone(),
            state_sds: p.sem.sds.clone(),
            n_samples: p.discovery.n_samples,
            n_sessions: p.n_sessions,
            n_tests: p.discovery.n_tests,
            ci_test: p.ci_test.to_string(),
            bootstrap: BootstrapSummary {
                requested: p.config.n_bootstrap,
                min_frequency: p.config.min_frequency,
                succeeded: p.bootstrap.map_or(0, |b| b.n_ok),
                failed: p.bootstrap.map_or(0, |b| b.n_failed),
                scheme: p.bootstrap.map_or(p.config.bootstrap, |b| b.scheme),
            },
            config: p.config.clone(),
            dropped_states: p.dropped_states,
            warnings,
        })
    }

    /// The report's graph as a petgraph `DiGraph` (node `k` is `nodes[k]`).
    pub fn graph(&self) -> Result<CausalGraph> {
        build_graph(&self.nodes, &self.edges)
    }

    /// Weight matrix `A_lag[to][from]` of the reported edges.
    pub fn lag_matrix(&self, lag: usize) -> Result<Vec<Vec<f64>>> {
        Ok(lag_matrix(&self.graph()?, lag))
    }

    /// The fitted equations as a simulation model.
    pub fn model(&self) -> Result<LinearModel> {
        let scales = if self.standardized {
            vec![1.0; self.nodes.len()]
        } else {
            self.state_sds.clone()
        };
        LinearModel::from_equations(&self.nodes, &self.equations, scales)
    }

    /// Shortcut for [`LinearModel::simulate_spread`] on [`Self::model`].
    pub fn simulate_spread(&self, cfg: &SpreadConfig) -> Result<SpreadResult> {
        self.model()?.simulate_spread(cfg)
    }

    /// Shortcut for [`check_interventions`] on [`Self::model`].
    pub fn check_interventions(&self, observed: &[ObservedEffect]) -> Result<InterventionCheck> {
        check_interventions(&self.model()?, observed)
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses a report written by [`Self::to_json`].
    pub fn from_json(text: &str) -> Result<Self> {
        Ok(serde_json::from_str(text)?)
    }

    /// Graphviz DOT: positive weights red, negative blue, pen width ∝ `|weight|`, lag and
    /// weight (and bootstrap frequency) in the label, lag-0 edges dashed, `o-o` edges with
    /// circle ends, `x-x` edges with tee ends; self-loops drawn as loops.
    ///
    /// ```
    /// use lantern_causal::GraphReport;
    /// // Any report renders, even an empty one.
    /// let text = r#"{"nodes":["a"],"edges":[],"sccs":[],"cycles":[],"spectral_radius":0.0,
    ///   "reduced_form_spectral_radius":0.0,"cycles_truncated":false,"centrality":[],
    ///   "equations":[],"standardized":true,"state_means":[0.0],"state_sds":[1.0],
    ///   "n_samples":0,"n_sessions":0,"n_tests":0,"ci_test":"par_corr",
    ///   "bootstrap":{"requested":0,"succeeded":0,"failed":0,"scheme":{"scheme":"auto"}},
    ///   "config":{},"dropped_states":[],"warnings":[]}"#;
    /// let report = GraphReport::from_json(text).unwrap();
    /// assert!(report.to_dot().starts_with("digraph lantern {"));
    /// ```
    pub fn to_dot(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let max_w = self
            .edges
            .iter()
            .map(|e| e.weight.abs())
            .fold(0.0, f64::max);
        let mut out =
            String::from("digraph lantern {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
        for n in &self.nodes {
            let _ = writeln!(out, "  \"{}\";", esc(n));
        }
        for e in &self.edges {
            let color = if e.weight > 0.0 {
                "#c0392b"
            } else if e.weight < 0.0 {
                "#2c6fbb"
            } else {
                "#7f7f7f"
            };
            let width = if max_w > 0.0 {
                1.0 + 4.0 * e.weight.abs() / max_w
            } else {
                1.0
            };
            let mut attrs = format!(
                "label=\"lag {}\\n{:+.2} ({:.0}%)\", color=\"{color}\", fontcolor=\"{color}\", penwidth={width:.2}",
                e.lag,
                e.weight,
                100.0 * e.frequency
            );
            if e.lag == 0 {
                attrs.push_str(", style=dashed");
            }
            match e.kind {
                LinkKind::Directed => {}
                LinkKind::Undirected => {
                    attrs.push_str(", dir=both, arrowhead=odot, arrowtail=odot")
                }
                LinkKind::Conflict => attrs.push_str(", dir=both, arrowhead=tee, arrowtail=tee"),
            }
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [{attrs}];",
                esc(&e.from),
                esc(&e.to)
            );
        }
        out.push_str("}\n");
        out
    }
}
