//! Directed (causal) graphs on a circle layout.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};
use serde::{Deserialize, Serialize};

use crate::axis::{
    decimals_for, draw_title, fmt_signed, Legend, LegendEntry, Swatch, PAD, TITLE_SIZE,
};
use crate::canvas::{Canvas, Pt, Txt};
use crate::color::{rgba, solid, Rgb, BLACK, NEG_EDGE, POS_EDGE, WHITE};
use crate::error::{PlotError, Result};
use crate::options::GraphOptions;
use crate::output::{render_and_write, Figure};
use crate::validate::{non_empty, sanitize};

/// A directed edge `from → to` between node indices. `lag` is the time
/// lag (0: same step, 1: from step t−1 to step t, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphEdge {
    pub from: usize,
    pub to: usize,
    pub weight: f64,
    pub lag: usize,
    /// Drawn without an arrowhead: a link whose direction is not identified (e.g. an
    /// unoriented lag-0 link of a causal graph).
    pub undirected: bool,
}

impl GraphEdge {
    pub fn new(from: usize, to: usize, weight: f64, lag: usize) -> Self {
        GraphEdge {
            from,
            to,
            weight,
            lag,
            undirected: false,
        }
    }
    /// The same edge, drawn without an arrowhead.
    pub fn undirected(mut self) -> Self {
        self.undirected = true;
        self
    }
}

const NODE_SIZE: f64 = 17.0;
const EDGE_LABEL_SIZE: f64 = 13.0;
const W_MIN: f64 = 1.2;
const W_MAX: f64 = 6.0;
const LOOP_R: f64 = 19.0;
const NODE_FILL: Rgb = (234, 240, 247);
const GRAY: Rgb = (110, 110, 110);

struct Node {
    c: Pt,
    a: f64,
    b: f64,
    /// unit vector pointing away from the layout centre
    out: Pt,
}

impl Node {
    fn inside(&self, p: Pt, margin: f64) -> bool {
        let dx = (p.0 - self.c.0) / (self.a + margin);
        let dy = (p.1 - self.c.1) / (self.b + margin);
        dx * dx + dy * dy <= 1.0
    }

    /// Distance from the centre to the boundary in direction `u`.
    fn radius(&self, u: Pt) -> f64 {
        1.0 / ((u.0 / self.a).powi(2) + (u.1 / self.b).powi(2)).sqrt()
    }
}

fn dash_for(lag: usize, w: f64) -> Option<(f64, f64)> {
    match lag {
        0 => None,
        1 => Some((7.0 + 1.3 * w, 4.0 + 0.8 * w)),
        _ => Some((1.5 + 0.4 * w, 3.0 + 0.8 * w)),
    }
}

fn dist(a: Pt, b: Pt) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// Draw a path ending in an arrowhead at its last point.
fn draw_arrow<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    pts: &[Pt],
    color: Rgb,
    width: f64,
    dash: Option<(f64, f64)>,
) -> Result<()> {
    if pts.len() < 2 {
        return Ok(());
    }
    let tip = *pts.last().unwrap_or(&pts[0]);
    let head_len = 9.0 + 1.7 * width;
    let head_w = 4.0 + 1.0 * width;
    // Walk back from the tip to find the head's base and the line's end.
    let point_at = |d_back: f64| -> (Pt, usize) {
        let mut acc = 0.0;
        for i in (1..pts.len()).rev() {
            let seg = dist(pts[i], pts[i - 1]);
            if acc + seg >= d_back {
                let f = (d_back - acc) / seg.max(1e-9);
                let p = (
                    pts[i].0 + f * (pts[i - 1].0 - pts[i].0),
                    pts[i].1 + f * (pts[i - 1].1 - pts[i].1),
                );
                return (p, i);
            }
            acc += seg;
        }
        (pts[0], 0)
    };
    let (base, _) = point_at(head_len);
    let (cut, idx) = point_at(head_len * 0.7);
    let mut line: Vec<Pt> = pts[..idx].to_vec();
    line.push(cut);
    let col = solid(color);
    match dash {
        Some(d) => c.dashed(&line, col, width, d)?,
        None => c.line(&line, col, width)?,
    }
    let len = dist(tip, base).max(1e-9);
    let dir = ((tip.0 - base.0) / len, (tip.1 - base.1) / len);
    let perp = (-dir.1, dir.0);
    let back = (tip.0 - dir.0 * head_len, tip.1 - dir.1 * head_len);
    let notch = (
        tip.0 - dir.0 * head_len * 0.8,
        tip.1 - dir.1 * head_len * 0.8,
    );
    c.polygon(
        &[
            tip,
            (back.0 + perp.0 * head_w, back.1 + perp.1 * head_w),
            notch,
            (back.0 - perp.0 * head_w, back.1 - perp.1 * head_w),
        ],
        col,
    )
}

/// Text on a white box centred at `center`.
fn boxed_label<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    text: &str,
    center: Pt,
    color: Rgb,
) -> Result<()> {
    let (w, h) = c.text_size(text, EDGE_LABEL_SIZE, false)?;
    c.rect(
        (center.0 - w / 2.0 - 3.0, center.1 - h / 2.0 - 2.0),
        (center.0 + w / 2.0 + 3.0, center.1 + h / 2.0 + 2.0),
        rgba(WHITE, 0.88),
    )?;
    c.text(
        text,
        center,
        Txt::new(EDGE_LABEL_SIZE)
            .color(solid(color))
            .anchor(HPos::Center, VPos::Center),
    )
}

struct GraphFigure<'a> {
    nodes: Vec<String>,
    edges: &'a [GraphEdge],
    opts: &'a GraphOptions,
    max_w: f64,
}

impl GraphFigure<'_> {
    fn width(&self, w: f64) -> f64 {
        W_MIN + (W_MAX - W_MIN) * w.abs() / self.max_w
    }

    fn color(w: f64) -> Rgb {
        if w < 0.0 {
            NEG_EDGE
        } else {
            POS_EDGE
        }
    }

    fn legend<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<Legend> {
        let line = |color: Rgb, width: f64, dash: Option<(f64, f64)>, label: String| LegendEntry {
            label,
            swatch: Swatch::Line {
                color,
                width,
                dash,
                marker: None,
            },
        };
        let mut e = vec![
            line(POS_EDGE, 3.0, None, "positive weight".into()),
            line(NEG_EDGE, 3.0, None, "negative weight".into()),
        ];
        let has = |f: &dyn Fn(usize) -> bool| self.edges.iter().any(|x| f(x.lag));
        if has(&|l| l == 0) {
            e.push(line(GRAY, 2.0, None, "lag 0 (same step)".into()));
        }
        if has(&|l| l == 1) {
            e.push(line(
                GRAY,
                2.0,
                dash_for(1, 2.0),
                "lag 1 (t\u{2212}1 \u{2192} t)".into(),
            ));
        }
        if has(&|l| l >= 2) {
            e.push(line(GRAY, 2.0, dash_for(2, 2.0), "lag \u{2265} 2".into()));
        }
        if !self.edges.is_empty() {
            let dec = decimals_for(self.max_w);
            for frac in [1.0, 0.5] {
                let w = self.max_w * frac;
                e.push(line(
                    GRAY,
                    self.width(w),
                    None,
                    format!("|weight| = {}", crate::axis::fmt_fixed(w, dec)),
                ));
            }
        }
        Legend::measure(c, e)
    }
}

impl Figure for GraphFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()> {
        let plot = &self.opts.plot;
        let title_h = c.text_size(&plot.title, TITLE_SIZE, true)?.1;
        let top = PAD + if title_h > 0.0 { title_h + 14.0 } else { 6.0 };
        let legend = self.legend(c)?;
        let lx = c.w - PAD - legend.w;
        let (gl, gr, gt, gb) = (PAD, lx - 16.0, top, c.h - PAD);

        let n = self.nodes.len();
        let mut sizes = Vec::with_capacity(n);
        for name in &self.nodes {
            let (w, h) = c.text_size(name, NODE_SIZE, false)?;
            let b = h / 2.0 + 12.0;
            sizes.push(((w / 2.0 + 14.0).max(b), b));
        }
        let max_a = sizes.iter().map(|s| s.0).fold(0.0, f64::max);
        let max_b = sizes.iter().map(|s| s.1).fold(0.0, f64::max);
        let has_loops = self.edges.iter().any(|e| e.from == e.to);
        let loop_room = if has_loops {
            2.0 * LOOP_R * 1.5 + if self.opts.edge_labels { 26.0 } else { 6.0 }
        } else {
            6.0
        };
        // Unit-circle positions, then scale / centre their bounding box.
        let start = if n == 2 { PI } else { -PI / 2.0 };
        let units: Vec<Pt> = (0..n)
            .map(|i| {
                if n == 1 {
                    (0.0, 0.0)
                } else {
                    let th = start + 2.0 * PI * i as f64 / n as f64;
                    (th.cos(), th.sin())
                }
            })
            .collect();
        let ux0 = units.iter().map(|u| u.0).fold(f64::INFINITY, f64::min);
        let ux1 = units.iter().map(|u| u.0).fold(f64::NEG_INFINITY, f64::max);
        let uy0 = units.iter().map(|u| u.1).fold(f64::INFINITY, f64::min);
        let uy1 = units.iter().map(|u| u.1).fold(f64::NEG_INFINITY, f64::max);
        let avail_w = (gr - gl) - 2.0 * (max_a + loop_room);
        let avail_h = (gb - gt) - 2.0 * (max_b + loop_room);
        let radius = if n == 1 {
            0.0
        } else {
            (avail_w / (ux1 - ux0).max(1e-9)).min(avail_h / (uy1 - uy0).max(1e-9))
        };
        if n > 1 && radius < 30.0 {
            return Err(PlotError::InvalidOptions(format!(
                "figure size {}x{} is too small for {} nodes with these labels",
                c.w, c.h, n
            )));
        }
        let cx = (gl + gr) / 2.0 - radius * (ux0 + ux1) / 2.0;
        let cy = (gt + gb) / 2.0 - radius * (uy0 + uy1) / 2.0;
        let nodes: Vec<Node> = units
            .iter()
            .enumerate()
            .map(|(i, &u)| Node {
                c: (cx + radius * u.0, cy + radius * u.1),
                a: sizes[i].0,
                b: sizes[i].1,
                out: if n == 1 { (0.0, -1.0) } else { u },
            })
            .collect();

        let mut pairs: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (k, e) in self.edges.iter().enumerate() {
            pairs
                .entry((e.from.min(e.to), e.from.max(e.to)))
                .or_default()
                .push(k);
        }
        // Edges between the same two nodes get symmetric offsets (measured
        // in the direction low index → high index), so A→B / B→A and
        // parallel lags are all visible; a lone edge is straight.
        let mut bend = vec![0.0; self.edges.len()];
        let mut loop_rank = vec![0usize; self.edges.len()];
        for members in pairs.values_mut() {
            members.sort_by_key(|&k| {
                let e = &self.edges[k];
                (e.from > e.to, e.lag, k)
            });
            let m = members.len() as f64;
            for (rank, &k) in members.iter().enumerate() {
                let e = &self.edges[k];
                loop_rank[k] = rank;
                let off = (rank as f64 - (m - 1.0) / 2.0) * 0.24;
                // The normal flips with the direction of travel.
                bend[k] = if e.from > e.to { -off } else { off };
            }
        }

        let dec = decimals_for(self.max_w);
        let mut labels: Vec<(String, Vec<Pt>, Rgb)> = Vec::new();
        // Draw the heaviest edges last so they stay visible.
        let mut order: Vec<usize> = (0..self.edges.len()).collect();
        order.sort_by(|&a, &b| {
            self.edges[a]
                .weight
                .abs()
                .total_cmp(&self.edges[b].weight.abs())
        });
        for k in order {
            let e = &self.edges[k];
            let w = self.width(e.weight);
            let color = Self::color(e.weight);
            let dash = dash_for(e.lag, w);
            let text = fmt_signed(e.weight, dec);
            if e.from == e.to {
                let nd = &nodes[e.from];
                let u = nd.out;
                let r = LOOP_R * (1.0 + 0.5 * loop_rank[k] as f64);
                let lc = (
                    nd.c.0 + u.0 * (nd.radius(u) + r * 0.55),
                    nd.c.1 + u.1 * (nd.radius(u) + r * 0.55),
                );
                let phi0 = (-u.1).atan2(-u.0);
                let pts: Vec<Pt> = (0..=120)
                    .map(|s| {
                        let phi = phi0 + 2.0 * PI * s as f64 / 120.0;
                        (lc.0 + r * phi.cos(), lc.1 + r * phi.sin())
                    })
                    .filter(|&p| !nd.inside(p, 2.0))
                    .collect();
                draw_arrow(c, &pts, color, w, dash)?;
                let (tw, th) = c.text_size(&text, EDGE_LABEL_SIZE, false)?;
                let off = r + 5.0 + u.0.abs() * tw / 2.0 + u.1.abs() * th / 2.0;
                labels.push((text, vec![(lc.0 + u.0 * off, lc.1 + u.1 * off)], color));
                continue;
            }
            let (p, q) = (nodes[e.from].c, nodes[e.to].c);
            let d = dist(p, q).max(1e-9);
            let nrm = (-(q.1 - p.1) / d, (q.0 - p.0) / d);
            let mid = ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0);
            let ctrl = (
                mid.0 + nrm.0 * 2.0 * bend[k] * d,
                mid.1 + nrm.1 * 2.0 * bend[k] * d,
            );
            let at = |t: f64| {
                let s = 1.0 - t;
                (
                    s * s * p.0 + 2.0 * s * t * ctrl.0 + t * t * q.0,
                    s * s * p.1 + 2.0 * s * t * ctrl.1 + t * t * q.1,
                )
            };
            let pts: Vec<Pt> = (0..=160)
                .map(|s| at(s as f64 / 160.0))
                .filter(|&pt| !nodes[e.from].inside(pt, 2.0) && !nodes[e.to].inside(pt, 3.0))
                .collect();
            if e.undirected {
                match dash {
                    Some(d) => c.dashed(&pts, solid(color), w, d)?,
                    None => c.line(&pts, solid(color), w)?,
                }
            } else {
                draw_arrow(c, &pts, color, w, dash)?;
            }
            let cands = [0.5, 0.38, 0.62, 0.3, 0.7].iter().map(|&t| at(t)).collect();
            labels.push((text, cands, color));
        }
        for (i, nd) in nodes.iter().enumerate() {
            let ring: Vec<Pt> = (0..=72)
                .map(|s| {
                    let phi = 2.0 * PI * s as f64 / 72.0;
                    (nd.c.0 + nd.a * phi.cos(), nd.c.1 + nd.b * phi.sin())
                })
                .collect();
            c.polygon(&ring, solid(NODE_FILL))?;
            c.line(&ring, solid((45, 45, 45)), 1.6)?;
            c.text(
                &self.nodes[i],
                nd.c,
                Txt::new(NODE_SIZE)
                    .color(solid(BLACK))
                    .anchor(HPos::Center, VPos::Center),
            )?;
        }
        if self.opts.edge_labels {
            // Greedy placement: the first candidate position along the edge
            // whose box hits no node and no earlier label (self-loops first).
            let mut taken: Vec<(f64, f64, f64, f64)> = nodes
                .iter()
                .map(|nd| (nd.c.0 - nd.a, nd.c.1 - nd.b, nd.c.0 + nd.a, nd.c.1 + nd.b))
                .collect();
            labels.sort_by_key(|l| l.1.len());
            for (text, cands, color) in &labels {
                let (w, h) = c.text_size(text, EDGE_LABEL_SIZE, false)?;
                let boxed = |p: Pt| {
                    (
                        p.0 - w / 2.0 - 3.0,
                        p.1 - h / 2.0 - 2.0,
                        p.0 + w / 2.0 + 3.0,
                        p.1 + h / 2.0 + 2.0,
                    )
                };
                let free = |r: (f64, f64, f64, f64)| {
                    !taken
                        .iter()
                        .any(|o| r.0 < o.2 && o.0 < r.2 && r.1 < o.3 && o.1 < r.3)
                };
                let at = cands
                    .iter()
                    .copied()
                    .find(|&p| free(boxed(p)))
                    .unwrap_or(cands[0]);
                taken.push(boxed(at));
                boxed_label(c, text, at, *color)?;
            }
        }
        legend.draw(c, (lx, top))?;
        draw_title(c, &plot.title, c.w / 2.0)
    }
}

/// Directed graph on a circle layout: arrow width ∝ |weight|, red for
/// positive / blue for negative weights, solid for lag 0, dashed for lag 1
/// (dotted for lag ≥ 2), self-loops as small circles outside the node,
/// reciprocal edges curved apart, and a legend explaining the encoding.
pub fn graph_figure<S: AsRef<str>>(
    nodes: &[S],
    edges: &[GraphEdge],
    opts: &GraphOptions,
    stem: impl AsRef<Path>,
) -> Result<Vec<PathBuf>> {
    non_empty("nodes", nodes.len())?;
    for (k, e) in edges.iter().enumerate() {
        for idx in [e.from, e.to] {
            if idx >= nodes.len() {
                return Err(PlotError::InvalidInput(format!(
                    "edge {k} ({} -> {}) refers to node {idx}, but there are only {} nodes",
                    e.from,
                    e.to,
                    nodes.len()
                )));
            }
        }
        if !e.weight.is_finite() {
            return Err(PlotError::NonFinite {
                location: format!("weight of edge {k} ({} -> {})", e.from, e.to),
                value: e.weight,
            });
        }
    }
    let max_w = edges.iter().fold(0.0f64, |m, e| m.max(e.weight.abs()));
    let fig = GraphFigure {
        nodes: nodes.iter().map(|s| sanitize(s.as_ref())).collect(),
        edges,
        opts,
        max_w: if max_w > 0.0 { max_w } else { 1.0 },
    };
    render_and_write(&fig, &opts.plot, stem.as_ref())
}
