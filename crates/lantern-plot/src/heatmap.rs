//! Heatmaps with a diverging (centred at 0) or sequential colour map,
//! a colour bar, thinned / rotated tick labels and optional cell values.

use std::path::{Path, PathBuf};

use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};

use crate::axis::{
    abbreviate, decimals_for, draw_title, fit_width, fmt_fixed, Scale, LABEL_SIZE, PAD, TICK_LEN,
    TICK_SIZE, TITLE_SIZE,
};
use crate::canvas::{Canvas, Txt};
use crate::color::{diverging_color, sequential_color, solid, text_on, Rgb, BLACK, DARK};
use crate::error::{PlotError, Result};
use crate::options::{Annotate, ColorScale, HeatmapOptions};
use crate::output::{render_and_write, Figure};
use crate::validate::{finite, labels_or_indices, non_empty, same_len};

const CB_GAP: f64 = 22.0;
const CB_W: f64 = 18.0;
const MAX_ANNOTATED_CELLS: usize = 400;

struct HeatmapFigure<'a> {
    values: &'a [Vec<f64>],
    rows: Vec<String>,
    cols: Vec<String>,
    opts: &'a HeatmapOptions,
    /// colour-bar limits
    lo: f64,
    hi: f64,
}

impl HeatmapFigure<'_> {
    fn color(&self, v: f64) -> Rgb {
        match self.opts.color_scale {
            ColorScale::Diverging { .. } => diverging_color(v, self.hi),
            ColorScale::Sequential { .. } => sequential_color(v, self.lo, self.hi),
        }
    }

    fn max_text_width<DB: DrawingBackend>(
        c: &Canvas<'_, DB>,
        labels: &[String],
        size: f64,
    ) -> Result<f64> {
        let mut w = 0.0f64;
        for l in labels {
            w = w.max(c.text_size(l, size, false)?.0);
        }
        Ok(w)
    }
}

impl Figure for HeatmapFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()> {
        let plot = &self.opts.plot;
        let (nr, nc) = (self.rows.len(), self.cols.len());
        let th = c.text_size("0", TICK_SIZE, false)?.1;
        let title_h = c.text_size(&plot.title, TITLE_SIZE, true)?.1;
        let t = PAD + if title_h > 0.0 { title_h + 14.0 } else { 6.0 };
        let xl_h = c.text_size(&plot.x_label, LABEL_SIZE, false)?.1;
        let yl_h = c.text_size(&plot.y_label, LABEL_SIZE, false)?.1;

        let max_chars = self.opts.max_label_chars.max(3);
        let rows: Vec<String> = self.rows.iter().map(|s| abbreviate(s, max_chars)).collect();
        let mut cols: Vec<String> = self.cols.iter().map(|s| abbreviate(s, max_chars)).collect();
        let rw = Self::max_text_width(c, &rows, TICK_SIZE)?;
        let l = PAD + if yl_h > 0.0 { yl_h + 12.0 } else { 0.0 } + rw + TICK_LEN + 5.0;

        // Colour bar block on the right.
        let cb_scale = Scale {
            lo: self.lo,
            hi: self.hi,
            log: false,
        };
        let cb_ticks = cb_scale.ticks(6).major;
        let cb_labels: Vec<String> = cb_ticks.iter().map(|t| t.1.clone()).collect();
        let cbw = Self::max_text_width(c, &cb_labels, TICK_SIZE)?;
        let cbl_h = c.text_size(&self.opts.colorbar_label, LABEL_SIZE, false)?.1;
        let right_block =
            CB_GAP + CB_W + TICK_LEN + 4.0 + cbw + if cbl_h > 0.0 { 12.0 + cbl_h } else { 0.0 };
        let r = c.w - PAD - right_block;
        if r - l < 40.0 {
            return Err(PlotError::InvalidOptions(format!(
                "figure width {} is too small for the heatmap labels",
                c.w
            )));
        }
        let cell_w = (r - l) / nc as f64;

        let cw = Self::max_text_width(c, &cols, TICK_SIZE)?;
        let rot = cw + 6.0 > cell_w;
        let col_stride = if rot {
            ((th * 1.2) / cell_w).ceil().max(1.0) as usize
        } else {
            1
        };
        let ext = if rot {
            let max_ext = c.h * 0.28;
            for s in cols.iter_mut() {
                *s = fit_width(c, s, TICK_SIZE, false, max_ext)?;
            }
            Self::max_text_width(c, &cols, TICK_SIZE)?
        } else {
            th
        };
        let b = c.h - PAD - if xl_h > 0.0 { xl_h + 10.0 } else { 0.0 } - ext - TICK_LEN - 6.0;
        if b - t < 40.0 {
            return Err(PlotError::InvalidOptions(format!(
                "figure height {} is too small for the heatmap labels",
                c.h
            )));
        }
        let cell_h = (b - t) / nr as f64;
        let row_stride = ((th * 1.2) / cell_h).ceil().max(1.0) as usize;

        // Cells.
        // Shared edge coordinates so neighbouring cells meet without seams.
        let xe: Vec<f64> = (0..=nc).map(|j| l + j as f64 * cell_w).collect();
        let ye: Vec<f64> = (0..=nr).map(|i| t + i as f64 * cell_h).collect();
        for (i, row) in self.values.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                c.rect((xe[j], ye[i]), (xe[j + 1], ye[i + 1]), solid(self.color(v)))?;
            }
        }
        c.rect_outline((l, t), (r, b), solid((90, 90, 90)), 1.0)?;

        // Cell annotations.
        if self.opts.annotate != Annotate::Never {
            let maxabs = self
                .values
                .iter()
                .flatten()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            let dec = decimals_for(maxabs);
            let texts: Vec<Vec<String>> = self
                .values
                .iter()
                .map(|row| row.iter().map(|&v| fmt_fixed(v, dec)).collect())
                .collect();
            let widest = texts
                .iter()
                .flatten()
                .max_by_key(|s| s.chars().count())
                .cloned()
                .unwrap_or_default();
            let mut fs = (cell_h * 0.5).min(15.0);
            let w = c.text_size(&widest, fs, false)?.0;
            if w > cell_w - 4.0 {
                fs *= (cell_w - 4.0).max(1.0) / w;
            }
            let show = match self.opts.annotate {
                Annotate::Always => {
                    fs = fs.max(6.0);
                    true
                }
                _ => nr * nc <= MAX_ANNOTATED_CELLS && fs >= 9.0,
            };
            if show {
                for (i, row) in texts.iter().enumerate() {
                    for (j, s) in row.iter().enumerate() {
                        let bg = self.color(self.values[i][j]);
                        let at = (l + (j as f64 + 0.5) * cell_w, t + (i as f64 + 0.5) * cell_h);
                        c.text(
                            s,
                            at,
                            Txt::new(fs)
                                .color(solid(text_on(bg)))
                                .anchor(HPos::Center, VPos::Center),
                        )?;
                    }
                }
            }
        }

        // Row / column ticks and labels.
        let axis = solid(DARK);
        let tick_txt = Txt::new(TICK_SIZE).color(solid(BLACK));
        for (i, lab) in rows.iter().enumerate().step_by(row_stride) {
            let y = t + (i as f64 + 0.5) * cell_h;
            c.line(&[(l - TICK_LEN, y), (l, y)], axis, 1.0)?;
            c.text(
                lab,
                (l - TICK_LEN - 4.0, y),
                tick_txt.anchor(HPos::Right, VPos::Center),
            )?;
        }
        for (j, lab) in cols.iter().enumerate().step_by(col_stride) {
            let x = l + (j as f64 + 0.5) * cell_w;
            c.line(&[(x, b), (x, b + TICK_LEN)], axis, 1.0)?;
            let y = b + TICK_LEN + 4.0;
            if rot {
                c.text(
                    lab,
                    (x, y),
                    tick_txt.anchor(HPos::Right, VPos::Center).rot(),
                )?;
            } else {
                c.text(lab, (x, y), tick_txt.anchor(HPos::Center, VPos::Top))?;
            }
        }

        // Colour bar.
        let cx0 = r + CB_GAP;
        let cx1 = cx0 + CB_W;
        let n = 256;
        for k in 0..n {
            let y0 = t + (b - t) * k as f64 / n as f64;
            let y1 = t + (b - t) * (k + 1) as f64 / n as f64;
            let v = self.hi - (k as f64 + 0.5) / n as f64 * (self.hi - self.lo);
            c.rect((cx0, y0), (cx1, y1), solid(self.color(v)))?;
        }
        c.rect_outline((cx0, t), (cx1, b), solid((90, 90, 90)), 1.0)?;
        for (v, lab) in &cb_ticks {
            let y = b - (v - self.lo) / (self.hi - self.lo) * (b - t);
            c.line(&[(cx1, y), (cx1 + TICK_LEN, y)], axis, 1.0)?;
            c.text(
                lab,
                (cx1 + TICK_LEN + 4.0, y),
                tick_txt.anchor(HPos::Left, VPos::Center),
            )?;
        }
        let lab = Txt::new(LABEL_SIZE).color(solid(BLACK));
        c.text(
            &self.opts.colorbar_label,
            (cx1 + TICK_LEN + 4.0 + cbw + 12.0, (t + b) / 2.0),
            lab.anchor(HPos::Center, VPos::Top).rot(),
        )?;

        // Axis labels and title.
        c.text(
            &plot.x_label,
            ((l + r) / 2.0, c.h - PAD),
            lab.anchor(HPos::Center, VPos::Bottom),
        )?;
        c.text(
            &plot.y_label,
            (PAD, (t + b) / 2.0),
            lab.anchor(HPos::Center, VPos::Top).rot(),
        )?;
        draw_title(c, &plot.title, (l + r) / 2.0)
    }
}

/// Heatmap of `values[row][col]` (row 0 at the top). Empty `row_labels` /
/// `col_labels` mean "0, 1, 2, ...". `opts.plot.y_label` names the rows
/// (e.g. "layer"), `x_label` the columns (e.g. "head"). Long or crowded
/// labels are abbreviated, rotated and/or thinned to every k-th.
pub fn heatmap<R: AsRef<str>, C: AsRef<str>>(
    values: &[Vec<f64>],
    row_labels: &[R],
    col_labels: &[C],
    opts: &HeatmapOptions,
    stem: impl AsRef<Path>,
) -> Result<Vec<PathBuf>> {
    non_empty("values (no rows)", values.len())?;
    let nc = values[0].len();
    non_empty("values (no columns)", nc)?;
    for (i, row) in values.iter().enumerate() {
        same_len(format!("values row {i}"), nc, row.len())?;
        finite(&format!("values row {i}"), row)?;
    }
    let rows = labels_or_indices("row_labels", row_labels, values.len())?;
    let cols = labels_or_indices("col_labels", col_labels, nc)?;
    let flat = values.iter().flatten().cloned();
    let (lo, hi) = match opts.color_scale {
        ColorScale::Diverging { limit } => {
            let lim = match limit {
                Some(l) if !(l.is_finite() && l > 0.0) => {
                    return Err(PlotError::InvalidOptions(format!(
                        "diverging limit {l} must be finite and > 0"
                    )))
                }
                Some(l) => l,
                None => {
                    let m = flat.fold(0.0f64, |m, v| m.max(v.abs()));
                    if m > 0.0 {
                        m
                    } else {
                        1.0
                    }
                }
            };
            (-lim, lim)
        }
        ColorScale::Sequential { min, max } => {
            let dmin = values
                .iter()
                .flatten()
                .cloned()
                .fold(f64::INFINITY, f64::min);
            let dmax = values
                .iter()
                .flatten()
                .cloned()
                .fold(f64::NEG_INFINITY, f64::max);
            let (mut lo, mut hi) = (min.unwrap_or(dmin), max.unwrap_or(dmax));
            if !lo.is_finite() || !hi.is_finite() || lo > hi {
                return Err(PlotError::InvalidOptions(format!(
                    "sequential colour range ({lo}, {hi}) must be finite with min <= max"
                )));
            }
            if hi - lo <= 0.0 {
                let d = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
                lo -= d;
                hi += d;
            }
            (lo, hi)
        }
    };
    let fig = HeatmapFigure {
        values,
        rows,
        cols,
        opts,
        lo,
        hi,
    };
    render_and_write(&fig, &opts.plot, stem.as_ref())
}
