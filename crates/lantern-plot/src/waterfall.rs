//! Waterfall chart: v(none) → per-component contributions → v(all).

use std::path::{Path, PathBuf};

use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};

use crate::axis::{
    decimals_for, fmt_fixed, fmt_signed, place_inside, Axis, Frame, Legend, LegendEntry, Rect,
    Scale, Swatch,
};
use crate::canvas::{Canvas, Txt};
use crate::color::{solid, Rgb, BLACK, DARK, NEG_BAR, POS_BAR};
use crate::error::{PlotError, Result};
use crate::options::WaterfallOptions;
use crate::output::{render_and_write, Figure};
use crate::validate::{finite, non_empty, sanitize};

const START_COLOR: Rgb = (170, 170, 170);
const END_COLOR: Rgb = (95, 95, 95);
const VALUE_SIZE: f64 = 13.5;
const BAR_FRAC: f64 = 0.62;

struct WaterfallFigure<'a> {
    labels: Vec<String>,
    /// (bottom value, top value, colour, printed value) per bar
    bars: Vec<(f64, f64, Rgb, String)>,
    /// running total after each bar (connector level)
    levels: Vec<f64>,
    opts: &'a WaterfallOptions,
    scale: Scale,
}

struct BarPx {
    x0: f64,
    x1: f64,
    top: f64,
    bottom: f64,
}

impl WaterfallFigure<'_> {
    fn bar_px(&self, f: &Frame, i: usize) -> BarPx {
        let (v0, v1, _, _) = &self.bars[i];
        let clamp = |v: f64| v.clamp(self.scale.lo, self.scale.hi);
        let (a, b) = (f.py(clamp(*v0)), f.py(clamp(*v1)));
        BarPx {
            x0: f.px(i as f64 - BAR_FRAC / 2.0),
            x1: f.px(i as f64 + BAR_FRAC / 2.0),
            top: a.min(b),
            bottom: a.max(b),
        }
    }

    /// Where the value label of bar i goes (anchor point, above?, rect).
    fn value_label<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        f: &Frame,
        i: usize,
    ) -> Result<Option<(f64, f64, bool, Rect)>> {
        if !self.opts.show_values {
            return Ok(None);
        }
        let (v0, v1, _, text) = &self.bars[i];
        let (w, h) = c.text_size(text, VALUE_SIZE, false)?;
        if w > f.band_w() - 3.0 {
            return Ok(None);
        }
        let p = self.bar_px(f, i);
        let cx = (p.x0 + p.x1) / 2.0;
        let up = v1 >= v0;
        let (y, rect) = if up {
            (
                p.top - 3.0,
                (cx - w / 2.0, p.top - 4.0 - h, cx + w / 2.0, p.top),
            )
        } else {
            (
                p.bottom + 3.0,
                (cx - w / 2.0, p.bottom, cx + w / 2.0, p.bottom + 4.0 + h),
            )
        };
        Ok(Some((cx, y, up, rect)))
    }
}

impl Figure for WaterfallFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()> {
        let plot = &self.opts.plot;
        let layout = |reserve: f64| {
            Frame::layout(
                c,
                plot,
                Axis::Cat(self.labels.clone()),
                Axis::Cont(self.scale),
                reserve,
            )
        };
        let mut f = layout(0.0)?;
        let legend = Legend::measure(
            c,
            vec![
                LegendEntry {
                    label: "positive contribution".into(),
                    swatch: Swatch::Patch(POS_BAR),
                },
                LegendEntry {
                    label: "negative contribution".into(),
                    swatch: Swatch::Patch(NEG_BAR),
                },
            ],
        )?;
        let mut obs: Vec<Rect> = Vec::new();
        for i in 0..self.bars.len() {
            let p = self.bar_px(&f, i);
            obs.push((p.x0 - 2.0, p.top - 2.0, p.x1 + 2.0, p.bottom + 2.0));
            if let Some((_, _, _, r)) = self.value_label(c, &f, i)? {
                obs.push(r);
            }
        }
        let legend_at = match place_inside(f.rect(), legend.w, legend.h, &obs) {
            Some(at) => at,
            None => {
                f = layout(legend.w + 18.0)?;
                (f.r + 18.0, f.t)
            }
        };

        f.draw_grid(c)?;
        if self.scale.lo <= 0.0 && self.scale.hi >= 0.0 {
            let y = f.py(0.0);
            c.line(&[(f.l, y), (f.r, y)], solid(DARK), 1.0)?;
        }
        for i in 0..self.bars.len() {
            let p = self.bar_px(&f, i);
            let bottom = if p.bottom - p.top < 1.0 {
                p.top + 1.0
            } else {
                p.bottom
            };
            c.rect((p.x0, p.top), (p.x1, bottom), solid(self.bars[i].2))?;
        }
        for i in 0..self.bars.len().saturating_sub(1) {
            let lvl = self.levels[i].clamp(self.scale.lo, self.scale.hi);
            let y = f.py(lvl);
            let a = self.bar_px(&f, i);
            let b = self.bar_px(&f, i + 1);
            c.dashed(
                &[(a.x1, y), (b.x0, y)],
                solid((105, 105, 105)),
                1.1,
                (4.0, 3.0),
            )?;
        }
        for i in 0..self.bars.len() {
            if let Some((x, y, up, _)) = self.value_label(c, &f, i)? {
                let v = if up { VPos::Bottom } else { VPos::Top };
                c.text(
                    &self.bars[i].3,
                    (x, y),
                    Txt::new(VALUE_SIZE)
                        .color(solid(BLACK))
                        .anchor(HPos::Center, v),
                )?;
            }
        }
        f.draw_axes(c)?;
        legend.draw(c, legend_at)
    }
}

/// Waterfall from `start_value` (e.g. v(none)) through each step's signed
/// contribution to the final total (e.g. v(all) = start + Σ deltas), with
/// bars coloured by sign and dashed connector lines.
pub fn waterfall<S: AsRef<str>>(
    start_label: &str,
    start_value: f64,
    steps: &[(S, f64)],
    end_label: &str,
    opts: &WaterfallOptions,
    stem: impl AsRef<Path>,
) -> Result<Vec<PathBuf>> {
    non_empty("steps", steps.len())?;
    finite("start_value", &[start_value])?;
    let deltas: Vec<f64> = steps.iter().map(|s| s.1).collect();
    finite("step deltas", &deltas)?;
    let end_value = start_value + deltas.iter().sum::<f64>();
    if !end_value.is_finite() {
        return Err(PlotError::InvalidInput("sum of steps overflows".into()));
    }
    let mut labels = vec![sanitize(start_label)];
    labels.extend(steps.iter().map(|s| sanitize(s.0.as_ref())));
    labels.push(sanitize(end_label));

    let mut all = vec![0.0, start_value, end_value];
    let mut cum = start_value;
    let maxabs = deltas
        .iter()
        .chain([start_value, end_value].iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let dec = decimals_for(maxabs);
    let mut bars = vec![(0.0, start_value, START_COLOR, fmt_fixed(start_value, dec))];
    let mut levels = vec![start_value];
    for &d in &deltas {
        let next = cum + d;
        let color = if d < 0.0 { NEG_BAR } else { POS_BAR };
        bars.push((cum, next, color, fmt_signed(d, dec)));
        all.push(next);
        cum = next;
        levels.push(cum);
    }
    bars.push((0.0, end_value, END_COLOR, fmt_fixed(end_value, dec)));

    let vmin = all.iter().cloned().fold(f64::INFINITY, f64::min);
    let mut vmax = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if vmax - vmin <= 0.0 {
        vmax = 1.0;
    }
    let span = vmax - vmin;
    let scale = match opts.plot.y_range {
        Some((lo, hi)) => Scale { lo, hi, log: false },
        None => Scale {
            lo: if vmin < 0.0 { vmin - 0.1 * span } else { 0.0 },
            hi: if vmax > 0.0 { vmax + 0.1 * span } else { 0.0 },
            log: false,
        },
    };
    let fig = WaterfallFigure {
        labels,
        bars,
        levels,
        opts,
        scale,
    };
    render_and_write(&fig, &opts.plot, stem.as_ref())
}
