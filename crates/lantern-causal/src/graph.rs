//! The causal graph over states and its structural analyses.
//!
//! The graph is a [`petgraph::graph::DiGraph`] with state names as node weights and
//! [`Edge`]s (lag, weight, bootstrap frequency) as edge weights. Self-loops (lag-1
//! autodependencies) and parallel edges (a lag-0 and a lag-1 link between the same pair)
//! are allowed, and because lag-1 links need not respect any order the graph over states
//! may be cyclic: such feedback loops let an activated state spread and sustain itself
//! (Lee et al. 2025).
//!
//! Analyses:
//! * [`strongly_connected_components`] (Tarjan, on the union of all lags). Only
//!   *feedback* components are reported: size ≥ 2, or a single state with a self-loop.
//!   An acyclic graph therefore has no SCCs in the report.
//! * [`elementary_cycles`]: every elementary cycle (no repeated state) by depth-first
//!   enumeration from each start state over higher-indexed states, treating parallel
//!   edges as distinct cycles; the gain is the product of edge weights. Bounded by a
//!   cycle count and a search budget (reported as truncated).
//! * [`lag_matrix`] / [`crate::linalg::spectral_radius`]: `A_τ[to][from]` weights.
//! * [`centrality`]: in-/out-strength (sum of `|weight|`, self-loops excluded and reported
//!   separately), signed strengths and degrees.

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};

use crate::discovery::LinkKind;
use crate::error::{CausalError, Result};

/// Edge weight of the causal graph: `source(t − lag) → target(t)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Lag (0 = contemporaneous).
    pub lag: usize,
    /// Structural-equation coefficient.
    pub weight: f64,
    /// Bootstrap frequency in `[0, 1]`.
    pub frequency: f64,
    /// Orientation status (`-->`, `o-o`, `x-x`).
    pub kind: LinkKind,
}

/// The causal graph type.
pub type CausalGraph = DiGraph<String, Edge>;

/// One edge of the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeReport {
    /// Source state.
    pub from: String,
    /// Target state.
    pub to: String,
    /// Lag (0 = contemporaneous).
    pub lag: usize,
    /// Structural-equation coefficient.
    pub weight: f64,
    /// Bootstrap frequency in `[0, 1]`.
    pub frequency: f64,
    /// Orientation status (`-->`, `o-o`, `x-x`).
    pub kind: LinkKind,
    /// Largest p-value over the discovery tests of this edge.
    pub p_value: f64,
    /// Partial correlation of that least significant test.
    pub statistic: f64,
}

/// Builds the graph from node names and report edges. Only oriented edges
/// ([`LinkKind::Directed`]) enter the graph: an unoriented lag-0 link has no direction to
/// follow (see [`crate::report::UNORIENTED_POLICY`]).
///
/// ```
/// use lantern_causal::graph::{build_graph, EdgeReport};
/// use lantern_causal::LinkKind;
/// let e = |f: &str, t: &str, lag, w| EdgeReport {
///     from: f.into(), to: t.into(), lag, weight: w, frequency: 1.0,
///     kind: LinkKind::Directed, p_value: 0.0, statistic: 0.5,
/// };
/// let names = vec!["a".to_string(), "b".to_string()];
/// let g = build_graph(&names, &[e("a", "b", 1, 0.5), e("a", "b", 0, 0.2), e("b", "b", 1, 0.3)]).unwrap();
/// assert_eq!((g.node_count(), g.edge_count()), (2, 3));
/// ```
pub fn build_graph(nodes: &[String], edges: &[EdgeReport]) -> Result<CausalGraph> {
    let mut g = DiGraph::with_capacity(nodes.len(), edges.len());
    let idx: Vec<NodeIndex> = nodes.iter().map(|n| g.add_node(n.clone())).collect();
    let find = |name: &str| {
        nodes
            .iter()
            .position(|n| n == name)
            .map(|k| idx[k])
            .ok_or_else(|| CausalError::UnknownState(name.to_string()))
    };
    for e in edges {
        if e.kind != LinkKind::Directed {
            // Still check the names, so a bad report is an error either way.
            find(&e.from)?;
            find(&e.to)?;
            continue;
        }
        g.add_edge(
            find(&e.from)?,
            find(&e.to)?,
            Edge {
                lag: e.lag,
                weight: e.weight,
                frequency: e.frequency,
                kind: e.kind,
            },
        );
    }
    Ok(g)
}

/// Feedback strongly connected components (size ≥ 2 or self-looped singletons), each
/// listed in node order, components ordered by their first node.
///
/// ```
/// use lantern_causal::graph::{strongly_connected_components, Edge, CausalGraph};
/// use lantern_causal::LinkKind;
/// let mut g = CausalGraph::new();
/// let (a, b, c) = (g.add_node("a".into()), g.add_node("b".into()), g.add_node("c".into()));
/// let e = Edge { lag: 1, weight: 0.5, frequency: 1.0, kind: LinkKind::Directed };
/// g.add_edge(a, b, e);
/// g.add_edge(b, a, e);
/// g.add_edge(b, c, e);
/// assert_eq!(strongly_connected_components(&g), vec![vec!["a".to_string(), "b".to_string()]]);
/// ```
pub fn strongly_connected_components(g: &CausalGraph) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<NodeIndex>> = petgraph::algo::tarjan_scc(g)
        .into_iter()
        .filter(|c| c.len() > 1 || g.find_edge(c[0], c[0]).is_some())
        .map(|mut c| {
            c.sort();
            c
        })
        .collect();
    out.sort();
    out.into_iter()
        .map(|c| c.into_iter().map(|n| g[n].clone()).collect())
        .collect()
}

/// An elementary cycle `nodes[0] → nodes[1] → … → nodes[0]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    /// States in cycle order (the first is not repeated at the end).
    pub nodes: Vec<String>,
    /// Loop gain: product of the edge weights.
    pub gain: f64,
    /// Number of edges.
    pub length: usize,
    /// Lag of each edge (edge `k` goes from `nodes[k]` to `nodes[k + 1]`, cyclically).
    pub lags: Vec<usize>,
    /// Weight of each edge.
    pub weights: Vec<f64>,
    /// Sum of lags: the time one trip around the loop takes.
    pub total_lag: usize,
}

/// Result of [`elementary_cycles`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CycleSearch {
    /// Cycles sorted by `|gain|` (descending), then length.
    pub cycles: Vec<Cycle>,
    /// Whether enumeration stopped at the cycle limit or search budget.
    pub truncated: bool,
}

/// Search-step budget of [`elementary_cycles`].
pub const CYCLE_SEARCH_BUDGET: usize = 2_000_000;

/// Enumerates elementary cycles (at most `max_cycles`).
///
/// ```
/// use lantern_causal::graph::{elementary_cycles, Edge, CausalGraph};
/// use lantern_causal::LinkKind;
/// let mut g = CausalGraph::new();
/// let n: Vec<_> = ["a", "b", "c"].iter().map(|s| g.add_node(s.to_string())).collect();
/// let e = |w| Edge { lag: 1, weight: w, frequency: 1.0, kind: LinkKind::Directed };
/// g.add_edge(n[0], n[1], e(0.5));
/// g.add_edge(n[1], n[2], e(0.5));
/// g.add_edge(n[2], n[0], e(-0.8));
/// g.add_edge(n[2], n[2], e(0.9));
/// let found = elementary_cycles(&g, 100);
/// assert_eq!(found.cycles.len(), 2);
/// assert_eq!(found.cycles[0].nodes, vec!["c"]); // self-loop, |gain| 0.9
/// assert!((found.cycles[1].gain + 0.2).abs() < 1e-12);
/// ```
pub fn elementary_cycles(g: &CausalGraph, max_cycles: usize) -> CycleSearch {
    struct Search<'a> {
        g: &'a CausalGraph,
        start: NodeIndex,
        on_path: Vec<bool>,
        path: Vec<EdgeIndex>,
        found: Vec<Vec<EdgeIndex>>,
        max_cycles: usize,
        budget: usize,
        truncated: bool,
    }
    impl Search<'_> {
        fn dfs(&mut self, v: NodeIndex) {
            let mut out: Vec<(EdgeIndex, NodeIndex)> =
                self.g.edges(v).map(|e| (e.id(), e.target())).collect();
            out.sort();
            for (e, w) in out {
                if self.truncated {
                    return;
                }
                if self.budget == 0 {
                    self.truncated = true;
                    return;
                }
                self.budget -= 1;
                if w == self.start {
                    if self.found.len() >= self.max_cycles {
                        self.truncated = true;
                        return;
                    }
                    let mut c = self.path.clone();
                    c.push(e);
                    self.found.push(c);
                } else if w > self.start && !self.on_path[w.index()] {
                    self.on_path[w.index()] = true;
                    self.path.push(e);
                    self.dfs(w);
                    self.path.pop();
                    self.on_path[w.index()] = false;
                }
            }
        }
    }
    let mut s = Search {
        g,
        start: NodeIndex::new(0),
        on_path: vec![false; g.node_count()],
        path: Vec::new(),
        found: Vec::new(),
        max_cycles,
        budget: CYCLE_SEARCH_BUDGET,
        truncated: false,
    };
    for start in g.node_indices() {
        s.start = start;
        s.on_path[start.index()] = true;
        s.dfs(start);
        s.on_path[start.index()] = false;
        if s.truncated {
            break;
        }
    }
    let mut cycles: Vec<Cycle> = s
        .found
        .iter()
        .map(|edges| {
            let nodes = edges
                .iter()
                .map(|&e| g[g.edge_endpoints(e).map_or(NodeIndex::new(0), |p| p.0)].clone())
                .collect();
            let weights: Vec<f64> = edges.iter().map(|&e| g[e].weight).collect();
            let lags: Vec<usize> = edges.iter().map(|&e| g[e].lag).collect();
            Cycle {
                nodes,
                gain: weights.iter().product(),
                length: edges.len(),
                total_lag: lags.iter().sum(),
                lags,
                weights,
            }
        })
        .collect();
    cycles.sort_by(|a, b| {
        b.gain
            .abs()
            .total_cmp(&a.gain.abs())
            .then(a.length.cmp(&b.length))
            .then(a.nodes.cmp(&b.nodes))
    });
    CycleSearch {
        cycles,
        truncated: s.truncated,
    }
}

/// Weight matrix of one lag: `m[to][from]` (parallel edges of the same lag are summed),
/// so that `x(t) = Σ_τ A_τ x(t − τ) + …`.
pub fn lag_matrix(g: &CausalGraph, lag: usize) -> Vec<Vec<f64>> {
    let n = g.node_count();
    let mut m = vec![vec![0.0; n]; n];
    for e in g.edge_references().filter(|e| e.weight().lag == lag) {
        m[e.target().index()][e.source().index()] += e.weight().weight;
    }
    m
}

/// Strength centralities of one state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Centrality {
    /// State name.
    pub node: String,
    /// Sum of `|weight|` over incoming edges from other states.
    pub in_strength: f64,
    /// Sum of `|weight|` over outgoing edges to other states.
    pub out_strength: f64,
    /// Sum of signed incoming weights (other states).
    pub in_strength_signed: f64,
    /// Sum of signed outgoing weights (other states).
    pub out_strength_signed: f64,
    /// Sum of self-loop weights.
    pub self_loop: f64,
    /// Incoming edges from other states.
    pub in_degree: usize,
    /// Outgoing edges to other states.
    pub out_degree: usize,
}

/// Strength centralities of every state, in node order.
pub fn centrality(g: &CausalGraph) -> Vec<Centrality> {
    let mut c: Vec<Centrality> = g
        .node_indices()
        .map(|n| Centrality {
            node: g[n].clone(),
            in_strength: 0.0,
            out_strength: 0.0,
            in_strength_signed: 0.0,
            out_strength_signed: 0.0,
            self_loop: 0.0,
            in_degree: 0,
            out_degree: 0,
        })
        .collect();
    for e in g.edge_references() {
        let (s, t, w) = (e.source().index(), e.target().index(), e.weight().weight);
        if s == t {
            c[s].self_loop += w;
            continue;
        }
        c[s].out_strength += w.abs();
        c[s].out_strength_signed += w;
        c[s].out_degree += 1;
        c[t].in_strength += w.abs();
        c[t].in_strength_signed += w;
        c[t].in_degree += 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(lag: usize, w: f64) -> Edge {
        Edge {
            lag,
            weight: w,
            frequency: 1.0,
            kind: LinkKind::Directed,
        }
    }

    #[test]
    fn parallel_edges_give_distinct_cycles() {
        let mut g = CausalGraph::new();
        let a = g.add_node("a".into());
        let b = g.add_node("b".into());
        g.add_edge(a, b, e(0, 0.5));
        g.add_edge(a, b, e(1, 0.4));
        g.add_edge(b, a, e(1, 0.5));
        let cs = elementary_cycles(&g, 10);
        assert_eq!(cs.cycles.len(), 2);
        assert!(cs.cycles.iter().all(|c| c.nodes == vec!["a", "b"]));
        assert_eq!(cs.cycles[0].total_lag, 1);
        assert!((cs.cycles[0].gain - 0.25).abs() < 1e-12);
        assert!(!cs.truncated);
        assert!(elementary_cycles(&g, 1).truncated);
        assert_eq!(lag_matrix(&g, 1)[1][0], 0.4);
    }

    #[test]
    fn complete_graph_cycle_count() {
        // K4 with self-loops: sum_{k=1..4} C(4,k)(k-1)! = 4 + 6 + 8 + 6 = 24 cycles.
        let mut g = CausalGraph::new();
        let n: Vec<_> = (0..4).map(|i| g.add_node(i.to_string())).collect();
        for &s in &n {
            for &t in &n {
                g.add_edge(s, t, e(1, 0.1));
            }
        }
        assert_eq!(elementary_cycles(&g, 1000).cycles.len(), 24);
        assert_eq!(strongly_connected_components(&g).len(), 1);
        let c = centrality(&g);
        assert!((c[0].in_strength - 0.3).abs() < 1e-12 && c[0].in_degree == 3);
    }

    #[test]
    fn empty_graph() {
        let mut g = CausalGraph::new();
        g.add_node("a".into());
        assert!(strongly_connected_components(&g).is_empty());
        assert!(elementary_cycles(&g, 10).cycles.is_empty());
        assert_eq!(lag_matrix(&g, 1), vec![vec![0.0]]);
    }
}
