//! Line charts (with error bands/bars, log axes) and time series.

use std::path::{Path, PathBuf};

use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};
use serde::{Deserialize, Serialize};

use crate::axis::{
    clip_polyline, draw_marker, place_inside, polyline_obstacles, Axis, Frame, Legend, LegendEntry,
    Rect, Scale, Swatch,
};
use crate::canvas::{Canvas, Pt, Txt};
use crate::color::{rgba, solid, PALETTE};
use crate::error::{PlotError, Result};
use crate::options::{ErrorStyle, LineOptions, PlotOptions, TimeSeriesOptions};
use crate::output::{render_and_write, Figure};
use crate::validate::{finite, non_empty, non_negative, same_len};

/// One line of a [`line_chart`]. `y_err` (same length as `ys`) is drawn
/// as a band or error bars (e.g. ±1 standard error).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub y_err: Option<Vec<f64>>,
    /// When set, the distance below each point (then `y_err` is the distance above): an
    /// asymmetric interval such as a Wilson score interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_err_below: Option<Vec<f64>>,
}

impl Series {
    pub fn new(name: impl Into<String>, xs: Vec<f64>, ys: Vec<f64>) -> Self {
        Series {
            name: name.into(),
            xs,
            ys,
            y_err: None,
            y_err_below: None,
        }
    }

    /// An interval `[lo, hi]` around each point (asymmetric allowed; each must contain its y).
    pub fn with_interval(mut self, lo: Vec<f64>, hi: Vec<f64>) -> Self {
        self.y_err = Some(hi.iter().zip(&self.ys).map(|(h, y)| h - y).collect());
        self.y_err_below = Some(self.ys.iter().zip(&lo).map(|(y, l)| y - l).collect());
        self
    }

    pub fn with_errors(mut self, y_err: Vec<f64>) -> Self {
        self.y_err = Some(y_err);
        self
    }
}

const MAX_MARKED_POINTS: usize = 60;
const LINE_W: f64 = 2.2;

struct LineFigure<'a> {
    series: &'a [Series],
    plot: &'a PlotOptions,
    error_style: ErrorStyle,
    markers: bool,
    window: Option<(f64, f64, String)>,
    xs: Scale,
    ys: Scale,
}

fn validate_series(series: &[Series], log_x: bool, log_y: bool) -> Result<()> {
    non_empty("series list", series.len())?;
    for s in series {
        let n = &s.name;
        non_empty(&format!("xs of series \"{n}\""), s.xs.len())?;
        same_len(format!("ys of series \"{n}\""), s.xs.len(), s.ys.len())?;
        finite(&format!("xs of series \"{n}\""), &s.xs)?;
        finite(&format!("ys of series \"{n}\""), &s.ys)?;
        if let Some(e) = &s.y_err {
            same_len(format!("y_err of series \"{n}\""), s.ys.len(), e.len())?;
            finite(&format!("y_err of series \"{n}\""), e)?;
            non_negative(&format!("y_err of series \"{n}\""), e)?;
        }
        if let Some(e) = &s.y_err_below {
            same_len(
                format!("y_err_below of series \"{n}\""),
                s.ys.len(),
                e.len(),
            )?;
            finite(&format!("y_err_below of series \"{n}\""), e)?;
            non_negative(&format!("y_err_below of series \"{n}\""), e)?;
        }
        for (axis, on, vals) in [("x", log_x, &s.xs), ("y", log_y, &s.ys)] {
            if on {
                if let Some(i) = vals.iter().position(|&v| v <= 0.0) {
                    return Err(PlotError::InvalidInput(format!(
                        "log-scale {axis} axis needs positive values, but series \"{n}\" has {axis} = {} at index {i}",
                        vals[i]
                    )));
                }
            }
        }
    }
    Ok(())
}

fn axis_scale(
    name: &str,
    user: Option<(f64, f64)>,
    min: f64,
    max: f64,
    log: bool,
    pad: f64,
) -> Result<Scale> {
    match user {
        Some((lo, hi)) => {
            if log && lo <= 0.0 {
                return Err(PlotError::InvalidOptions(format!(
                    "{name} ({lo}, {hi}) must be positive on a log axis"
                )));
            }
            Ok(Scale { lo, hi, log })
        }
        None => Ok(Scale::from_data(min, max, log, pad)),
    }
}

impl<'a> LineFigure<'a> {
    fn new(
        series: &'a [Series],
        plot: &'a PlotOptions,
        (log_x, log_y): (bool, bool),
        error_style: ErrorStyle,
        markers: bool,
        window: Option<(f64, f64, String)>,
    ) -> Result<Self> {
        validate_series(series, log_x, log_y)?;
        let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in series {
            for (i, (&x, &y)) in s.xs.iter().zip(&s.ys).enumerate() {
                x0 = x0.min(x);
                x1 = x1.max(x);
                let e = s.y_err.as_ref().map_or(0.0, |e| e[i]);
                let below = s.y_err_below.as_ref().map_or(e, |b| b[i]);
                y1 = y1.max(y + e);
                y0 = y0.min(if log_y && y - below <= 0.0 {
                    y
                } else {
                    y - below
                });
            }
        }
        if let Some((a, b, _)) = &window {
            if !a.is_finite() || !b.is_finite() || a >= b {
                return Err(PlotError::InvalidInput(format!(
                    "window ({a}, {b}) must be finite with start < end"
                )));
            }
            if !log_x || *a > 0.0 {
                x0 = x0.min(*a);
            }
            x1 = x1.max(*b);
        }
        let xs = axis_scale("x_range", plot.x_range, x0, x1, log_x, 0.03)?;
        let ys = axis_scale("y_range", plot.y_range, y0, y1, log_y, 0.06)?;
        Ok(LineFigure {
            series,
            plot,
            error_style,
            markers,
            window,
            xs,
            ys,
        })
    }

    fn pixels(&self, f: &Frame, s: &Series) -> Vec<Pt> {
        s.xs.iter()
            .zip(&s.ys)
            .map(|(&x, &y)| (f.px(x), f.py(y)))
            .collect()
    }

    /// Upper and lower band edges in pixels (clamped to the plot area).
    fn band(&self, f: &Frame, s: &Series) -> Option<(Vec<Pt>, Vec<Pt>)> {
        let e = s.y_err.as_ref()?;
        let clamp = |p: Pt| (p.0.clamp(f.l, f.r), p.1.clamp(f.t, f.b));
        let mut up = Vec::with_capacity(e.len());
        let mut lo = Vec::with_capacity(e.len());
        for (i, ((&xv, &yv), &ev)) in s.xs.iter().zip(&s.ys).zip(e).enumerate() {
            let x = f.px(xv);
            let low = yv - s.y_err_below.as_ref().map_or(ev, |b| b[i]);
            let low_px = if self.ys.log && low <= 0.0 {
                f.b
            } else {
                f.py(low)
            };
            up.push(clamp((x, f.py(yv + ev))));
            lo.push(clamp((x, low_px)));
        }
        Some((up, lo))
    }

    fn show_markers(&self, s: &Series) -> bool {
        self.markers && s.xs.len() <= MAX_MARKED_POINTS
    }

    fn window_label<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        f: &Frame,
    ) -> Result<Option<(Pt, Rect)>> {
        let Some((a, b, label)) = &self.window else {
            return Ok(None);
        };
        if label.is_empty() {
            return Ok(None);
        }
        let (w, h) = c.text_size(label, 14.0, false)?;
        let xa = f.px(*a).clamp(f.l, f.r);
        let xb = f.px(*b).clamp(f.l, f.r);
        let cx = ((xa + xb) / 2.0).clamp(f.l + w / 2.0 + 2.0, f.r - w / 2.0 - 2.0);
        let at = (cx, f.t + 5.0);
        Ok(Some((
            at,
            (
                cx - w / 2.0 - 3.0,
                f.t + 2.0,
                cx + w / 2.0 + 3.0,
                f.t + 8.0 + h,
            ),
        )))
    }
}

impl Figure for LineFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()> {
        let layout = |reserve: f64| {
            Frame::layout(
                c,
                self.plot,
                Axis::Cont(self.xs),
                Axis::Cont(self.ys),
                reserve,
            )
        };
        let mut f = layout(0.0)?;

        let entries: Vec<LegendEntry> = if self.series.iter().any(|s| !s.name.is_empty()) {
            self.series
                .iter()
                .enumerate()
                .map(|(i, s)| LegendEntry {
                    label: s.name.clone(),
                    swatch: Swatch::Line {
                        color: PALETTE[i % PALETTE.len()],
                        width: LINE_W,
                        dash: None,
                        marker: self.show_markers(s).then_some(i),
                    },
                })
                .collect()
        } else {
            Vec::new()
        };
        let legend = if entries.is_empty() {
            None
        } else {
            Some(Legend::measure(c, entries)?)
        };
        let mut legend_at = None;
        if let Some(lg) = &legend {
            let mut obs: Vec<Rect> = Vec::new();
            for s in self.series {
                polyline_obstacles(&self.pixels(&f, s), &mut obs);
                if let Some((up, lo)) = self.band(&f, s) {
                    polyline_obstacles(&up, &mut obs);
                    polyline_obstacles(&lo, &mut obs);
                    for (u, l) in up.iter().zip(&lo) {
                        obs.push((u.0 - 2.0, u.1, u.0 + 2.0, l.1));
                    }
                }
            }
            if let Some((_, r)) = self.window_label(c, &f)? {
                obs.push(r);
            }
            legend_at = place_inside(f.rect(), lg.w, lg.h, &obs);
            if legend_at.is_none() {
                f = layout(lg.w + 18.0)?;
                legend_at = Some((f.r + 18.0, f.t));
            }
        }

        f.draw_grid(c)?;
        if let Some((a, b, _)) = &self.window {
            let xa = f.px(*a).clamp(f.l, f.r);
            let xb = f.px(*b).clamp(f.l, f.r);
            c.rect((xa, f.t), (xb, f.b), rgba((150, 150, 150), 0.22))?;
        }
        if self.error_style == ErrorStyle::Band {
            for (i, s) in self.series.iter().enumerate() {
                if let Some((up, lo)) = self.band(&f, s) {
                    let mut poly = up;
                    poly.extend(lo.into_iter().rev());
                    c.polygon(&poly, rgba(PALETTE[i % PALETTE.len()], 0.2))?;
                }
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            let color = solid(PALETTE[i % PALETTE.len()]);
            for piece in clip_polyline(&self.pixels(&f, s), f.rect()) {
                c.line(&piece, color, LINE_W)?;
            }
        }
        if self.error_style == ErrorStyle::Bars {
            for (i, s) in self.series.iter().enumerate() {
                if let Some((up, lo)) = self.band(&f, s) {
                    let color = solid(PALETTE[i % PALETTE.len()]);
                    for (u, l) in up.iter().zip(&lo) {
                        if u.0 <= f.l || u.0 >= f.r {
                            continue;
                        }
                        c.line(&[*u, *l], color, 1.4)?;
                        c.line(&[(u.0 - 4.0, u.1), (u.0 + 4.0, u.1)], color, 1.4)?;
                        c.line(&[(l.0 - 4.0, l.1), (l.0 + 4.0, l.1)], color, 1.4)?;
                    }
                }
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            if !self.show_markers(s) {
                continue;
            }
            for p in self.pixels(&f, s) {
                if p.0 >= f.l - 0.5 && p.0 <= f.r + 0.5 && p.1 >= f.t - 0.5 && p.1 <= f.b + 0.5 {
                    draw_marker(c, i, p, 4.0, PALETTE[i % PALETTE.len()])?;
                }
            }
        }
        f.draw_axes(c)?;
        if let Some((at, _)) = self.window_label(c, &f)? {
            if let Some((_, _, label)) = &self.window {
                c.text(
                    label,
                    at,
                    Txt::new(14.0)
                        .color(solid((70, 70, 70)))
                        .anchor(HPos::Center, VPos::Top),
                )?;
            }
        }
        if let (Some(lg), Some(at)) = (&legend, legend_at) {
            lg.draw(c, at)?;
        }
        Ok(())
    }
}

/// Line chart of one or more series, with legend, markers, optional error
/// bands/bars and log-scale x and/or y axes. Writes `<stem>.svg` / `<stem>.png`.
pub fn line_chart(
    series: &[Series],
    opts: &LineOptions,
    stem: impl AsRef<Path>,
) -> Result<Vec<PathBuf>> {
    let fig = LineFigure::new(
        series,
        &opts.plot,
        (opts.log_x, opts.log_y),
        opts.error_style,
        opts.markers,
        None,
    )?;
    render_and_write(&fig, &opts.plot, stem.as_ref())
}

/// Several state variables over time. `values[t][i]` is the value of
/// `names[i]` at step `t` (row t has x = `x_start + t * x_step`); an
/// optional shaded `window` marks e.g. an intervention.
pub fn time_series<S: AsRef<str>>(
    names: &[S],
    values: &[Vec<f64>],
    opts: &TimeSeriesOptions,
    stem: impl AsRef<Path>,
) -> Result<Vec<PathBuf>> {
    non_empty("names", names.len())?;
    non_empty("values (no time steps)", values.len())?;
    if !opts.x_start.is_finite() || !opts.x_step.is_finite() || opts.x_step <= 0.0 {
        return Err(PlotError::InvalidOptions(format!(
            "x_start ({}) must be finite and x_step ({}) finite and > 0",
            opts.x_start, opts.x_step
        )));
    }
    for (t, row) in values.iter().enumerate() {
        same_len(format!("values row {t}"), names.len(), row.len())?;
        finite(&format!("values row {t}"), row)?;
    }
    let xs: Vec<f64> = (0..values.len())
        .map(|t| opts.x_start + t as f64 * opts.x_step)
        .collect();
    let series: Vec<Series> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Series::new(
                n.as_ref(),
                xs.clone(),
                values.iter().map(|r| r[i]).collect(),
            )
        })
        .collect();
    let mut plot = opts.plot.clone();
    if plot.x_label.is_empty() {
        plot.x_label = "step".into();
    }
    let window = opts.window.map(|(a, b)| (a, b, opts.window_label.clone()));
    let fig = LineFigure::new(
        &series,
        &plot,
        (false, false),
        ErrorStyle::Band,
        opts.markers,
        window,
    )?;
    render_and_write(&fig, &plot, stem.as_ref())
}
