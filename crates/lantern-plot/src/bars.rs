//! Bar charts (single series coloured by sign, or grouped with a legend).

use std::path::{Path, PathBuf};

use plotters::prelude::DrawingBackend;
use serde::{Deserialize, Serialize};

use crate::axis::{place_inside, Axis, Frame, Legend, LegendEntry, Rect, Scale, Swatch};
use crate::canvas::{Canvas, Pt};
use crate::color::{solid, Rgb, DARK, NEG_BAR, PALETTE, POS_BAR};
use crate::error::{PlotError, Result};
use crate::options::{BarOptions, Orientation};
use crate::output::{render_and_write, Figure};
use crate::validate::{finite, labels_or_indices, non_empty, non_negative, same_len};

/// One group (colour) of a [`grouped_bar_chart`]: one value per category,
/// with optional ±error (e.g. 1 SE) per value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BarGroup {
    pub name: String,
    pub values: Vec<f64>,
    pub errors: Option<Vec<f64>>,
}

impl BarGroup {
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        BarGroup {
            name: name.into(),
            values,
            errors: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<f64>) -> Self {
        self.errors = Some(errors);
        self
    }
}

struct BarFigure<'a> {
    labels: Vec<String>,
    groups: Vec<BarGroup>,
    opts: &'a BarOptions,
    grouped: bool,
    scale: Scale,
}

impl<'a> BarFigure<'a> {
    fn new(
        labels: Vec<String>,
        groups: Vec<BarGroup>,
        opts: &'a BarOptions,
        grouped: bool,
    ) -> Result<Self> {
        let (mut vmin, mut vmax) = (0.0f64, 0.0f64);
        for g in &groups {
            for (i, &v) in g.values.iter().enumerate() {
                let e = g.errors.as_ref().map_or(0.0, |e| e[i]);
                vmin = vmin.min(v - e);
                vmax = vmax.max(v + e);
            }
        }
        if vmax - vmin <= 0.0 {
            vmax = 1.0;
        }
        let span = vmax - vmin;
        let user = match opts.orientation {
            Orientation::Vertical => opts.plot.y_range,
            Orientation::Horizontal => opts.plot.x_range,
        };
        let scale = match user {
            Some((lo, hi)) => Scale { lo, hi, log: false },
            None => Scale {
                lo: if vmin < 0.0 { vmin - 0.05 * span } else { 0.0 },
                hi: if vmax > 0.0 { vmax + 0.05 * span } else { 0.0 },
                log: false,
            },
        };
        Ok(BarFigure {
            labels,
            groups,
            opts,
            grouped,
            scale,
        })
    }

    fn horizontal(&self) -> bool {
        self.opts.orientation == Orientation::Horizontal
    }

    fn color(&self, group: usize, v: f64) -> Rgb {
        if self.grouped {
            PALETTE[group % PALETTE.len()]
        } else if self.opts.color_by_sign {
            if v < 0.0 {
                NEG_BAR
            } else {
                POS_BAR
            }
        } else {
            PALETTE[0]
        }
    }

    /// Map (category coordinate, value) to pixels.
    fn pt(&self, f: &Frame, cat: f64, v: f64) -> Pt {
        let v = v.clamp(self.scale.lo, self.scale.hi);
        if self.horizontal() {
            (f.px(v), f.py(cat))
        } else {
            (f.px(cat), f.py(v))
        }
    }

    /// (bar rectangle corners, error bar end points) for category i, group j.
    fn geometry(&self, f: &Frame, i: usize, j: usize) -> (Pt, Pt, Option<(Pt, Pt)>, f64) {
        let ng = self.groups.len() as f64;
        let span = if self.grouped { 0.82 } else { 0.68 };
        let bw = span / ng;
        let c0 = i as f64 - span / 2.0 + bw * j as f64;
        let gap = if self.grouped { bw * 0.06 } else { 0.0 };
        let g = &self.groups[j];
        let v = g.values[i];
        let a = self.pt(f, c0 + gap, 0.0);
        let b = self.pt(f, c0 + bw - gap, v);
        let mid = c0 + bw / 2.0;
        let err = g
            .errors
            .as_ref()
            .map(|e| (self.pt(f, mid, v - e[i]), self.pt(f, mid, v + e[i])));
        let band = if self.horizontal() {
            f.band_h()
        } else {
            f.band_w()
        };
        (a, b, err, (band * bw * 0.25).min(7.0))
    }
}

impl Figure for BarFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()> {
        let plot = &self.opts.plot;
        let layout = |reserve: f64| {
            let cat = Axis::Cat(self.labels.clone());
            let val = Axis::Cont(self.scale);
            if self.horizontal() {
                Frame::layout(c, plot, val, cat, reserve)
            } else {
                Frame::layout(c, plot, cat, val, reserve)
            }
        };
        let mut f = layout(0.0)?;
        let legend = if self.grouped {
            let entries = self
                .groups
                .iter()
                .enumerate()
                .map(|(j, g)| LegendEntry {
                    label: g.name.clone(),
                    swatch: Swatch::Patch(PALETTE[j % PALETTE.len()]),
                })
                .collect();
            Some(Legend::measure(c, entries)?)
        } else {
            None
        };
        let mut legend_at = None;
        if let Some(lg) = &legend {
            let mut obs: Vec<Rect> = Vec::new();
            for i in 0..self.labels.len() {
                for j in 0..self.groups.len() {
                    let (a, b, err, _) = self.geometry(&f, i, j);
                    let mut pts = vec![a, b];
                    if let Some((e0, e1)) = err {
                        pts.extend([e0, e1]);
                    }
                    let x0 = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
                    let x1 = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
                    let y0 = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
                    let y1 = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
                    obs.push((x0 - 2.0, y0 - 2.0, x1 + 2.0, y1 + 2.0));
                }
            }
            legend_at = place_inside(f.rect(), lg.w, lg.h, &obs);
            if legend_at.is_none() {
                f = layout(lg.w + 18.0)?;
                legend_at = Some((f.r + 18.0, f.t));
            }
        }

        f.draw_grid(c)?;
        for i in 0..self.labels.len() {
            for j in 0..self.groups.len() {
                let (a, b, _, _) = self.geometry(&f, i, j);
                c.rect(a, b, solid(self.color(j, self.groups[j].values[i])))?;
            }
        }
        // Zero line.
        if self.scale.lo <= 0.0 && self.scale.hi >= 0.0 {
            let z = if self.horizontal() {
                let x = f.px(0.0);
                [(x, f.t), (x, f.b)]
            } else {
                let y = f.py(0.0);
                [(f.l, y), (f.r, y)]
            };
            c.line(&z, solid(DARK), 1.0)?;
        }
        for i in 0..self.labels.len() {
            for j in 0..self.groups.len() {
                let (_, _, err, cap) = self.geometry(&f, i, j);
                if let Some((e0, e1)) = err {
                    let col = solid((25, 25, 25));
                    c.line(&[e0, e1], col, 1.4)?;
                    for e in [e0, e1] {
                        let cap_line = if self.horizontal() {
                            [(e.0, e.1 - cap), (e.0, e.1 + cap)]
                        } else {
                            [(e.0 - cap, e.1), (e.0 + cap, e.1)]
                        };
                        c.line(&cap_line, col, 1.4)?;
                    }
                }
            }
        }
        f.draw_axes(c)?;
        if let (Some(lg), Some(at)) = (&legend, legend_at) {
            lg.draw(c, at)?;
        }
        Ok(())
    }
}

fn check_errors(what: &str, n: usize, errors: Option<&[f64]>) -> Result<()> {
    if let Some(e) = errors {
        same_len(what, n, e.len())?;
        finite(what, e)?;
        non_negative(what, e)?;
    }
    Ok(())
}

/// Bar chart of one value per label with optional ±`errors` (e.g. 1 SE);
/// bars are red for positive and blue for negative values (see
/// `BarOptions::color_by_sign`). Empty `labels` means "0, 1, 2, ...".
pub fn bar_chart<S: AsRef<str>>(
    labels: &[S],
    values: &[f64],
    errors: Option<&[f64]>,
    opts: &BarOptions,
    stem: impl AsRef<Path>,
) -> Result<Vec<PathBuf>> {
    non_empty("values", values.len())?;
    let labels = labels_or_indices("labels", labels, values.len())?;
    finite("values", values)?;
    check_errors("errors", values.len(), errors)?;
    let group = BarGroup {
        name: String::new(),
        values: values.to_vec(),
        errors: errors.map(|e| e.to_vec()),
    };
    let fig = BarFigure::new(labels, vec![group], opts, false)?;
    render_and_write(&fig, &opts.plot, stem.as_ref())
}

/// Grouped bars: for each category, one bar per group (coloured by group,
/// with a legend), e.g. in-context / memorized / other rates per condition.
pub fn grouped_bar_chart<S: AsRef<str>>(
    categories: &[S],
    groups: &[BarGroup],
    opts: &BarOptions,
    stem: impl AsRef<Path>,
) -> Result<Vec<PathBuf>> {
    non_empty("groups", groups.len())?;
    let n = groups[0].values.len();
    non_empty(&format!("values of group \"{}\"", groups[0].name), n)?;
    let categories = labels_or_indices("categories", categories, n)?;
    for g in groups {
        let what = format!("values of group \"{}\"", g.name);
        same_len(what.clone(), categories.len(), g.values.len())?;
        finite(&what, &g.values)?;
        check_errors(
            &format!("errors of group \"{}\"", g.name),
            g.values.len(),
            g.errors.as_deref(),
        )?;
    }
    if groups.len() > 24 {
        return Err(PlotError::InvalidInput(format!(
            "{} groups is too many for a grouped bar chart (max 24)",
            groups.len()
        )));
    }
    let fig = BarFigure::new(categories, groups.to_vec(), opts, true)?;
    render_and_write(&fig, &opts.plot, stem.as_ref())
}
