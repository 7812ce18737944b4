//! Scales, tick generation, the cartesian frame (layout, grid, axes,
//! labels, title) and legends shared by the x/y figures.

use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};

use crate::canvas::{Canvas, Pt, Txt};
use crate::color::{rgba, solid, Rgb, BLACK, DARK, GRID, WHITE};
use crate::error::{PlotError, Result};
use crate::options::PlotOptions;

pub(crate) const PAD: f64 = 14.0;
pub(crate) const TITLE_SIZE: f64 = 22.0;
pub(crate) const LABEL_SIZE: f64 = 18.5;
pub(crate) const TICK_SIZE: f64 = 16.0;
pub(crate) const LEGEND_SIZE: f64 = 15.5;
pub(crate) const TICK_LEN: f64 = 5.0;

// ---------------------------------------------------------------- numbers

/// Replace a leading ASCII '-' by a typographic minus; drop the sign of zero.
pub(crate) fn minus(s: String) -> String {
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        Some(rest) => format!("\u{2212}{rest}"),
        None => s,
    }
}

pub(crate) fn fmt_fixed(v: f64, decimals: usize) -> String {
    minus(format!("{v:.decimals$}"))
}

/// Signed value, e.g. "+0.42" / "−0.13".
pub(crate) fn fmt_signed(v: f64, decimals: usize) -> String {
    let s = fmt_fixed(v, decimals);
    if s.starts_with('\u{2212}') || s.trim_start_matches(['0', '.']).is_empty() {
        s
    } else {
        format!("+{s}")
    }
}

/// Decimals that make `magnitude` readable with ~3 significant digits.
pub(crate) fn decimals_for(magnitude: f64) -> usize {
    let m = magnitude.abs();
    if m == 0.0 || !m.is_finite() {
        2
    } else if m >= 100.0 {
        0
    } else if m >= 10.0 {
        1
    } else if m >= 0.1 {
        2
    } else {
        ((-m.log10()).floor() as usize + 2).min(8)
    }
}

fn superscript(n: i32) -> String {
    n.to_string()
        .chars()
        .map(|c| match c {
            '-' => '\u{207B}',
            '0' => '\u{2070}',
            '1' => '\u{00B9}',
            '2' => '\u{00B2}',
            '3' => '\u{00B3}',
            '4' => '\u{2074}',
            '5' => '\u{2075}',
            '6' => '\u{2076}',
            '7' => '\u{2077}',
            '8' => '\u{2078}',
            _ => '\u{2079}',
        })
        .collect()
}

/// Scientific notation "m×10ⁿ" (or "10ⁿ" when m = 1).
pub(crate) fn fmt_sci(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mut e = v.abs().log10().floor() as i32;
    let mut m = v / 10f64.powi(e);
    m = (m * 100.0).round() / 100.0;
    if m.abs() >= 10.0 {
        m /= 10.0;
        e += 1;
    }
    let ms = format!("{m:.2}");
    let ms = ms.trim_end_matches('0').trim_end_matches('.').to_string();
    match ms.as_str() {
        "1" => format!("10{}", superscript(e)),
        "-1" => format!("\u{2212}10{}", superscript(e)),
        _ => format!("{}\u{00D7}10{}", minus(ms), superscript(e)),
    }
}

fn nice_step(raw: f64) -> f64 {
    let e = raw.log10().floor();
    let base = 10f64.powf(e);
    let f = raw / base;
    let nf = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    nf * base
}

// ---------------------------------------------------------------- scales

#[derive(Clone, Copy, Debug)]
pub(crate) struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
}

pub(crate) struct Ticks {
    pub major: Vec<(f64, String)>,
    pub minor: Vec<f64>,
}

impl Scale {
    /// Range covering `[min, max]` with a relative margin `pad`.
    pub fn from_data(min: f64, max: f64, log: bool, pad: f64) -> Scale {
        if log {
            let (mut a, mut b) = (min.log10(), max.log10());
            if b - a < 1e-9 {
                a -= 0.5;
                b += 0.5;
            }
            let p = (b - a) * pad;
            Scale {
                lo: 10f64.powf(a - p),
                hi: 10f64.powf(b + p),
                log,
            }
        } else {
            let (mut a, mut b) = (min, max);
            if b - a <= 1e-12 * a.abs().max(b.abs()).max(1e-300) {
                let d = if a == 0.0 { 1.0 } else { a.abs() * 0.1 };
                a -= d;
                b += d;
            }
            let p = (b - a) * pad;
            Scale {
                lo: a - p,
                hi: b + p,
                log,
            }
        }
    }

    pub fn frac(&self, v: f64) -> f64 {
        if self.log {
            let v = v.max(f64::MIN_POSITIVE);
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    pub fn ticks(&self, target: usize) -> Ticks {
        if self.log {
            self.log_ticks()
        } else {
            self.linear_ticks(target)
        }
    }

    fn linear_ticks(&self, target: usize) -> Ticks {
        let step = nice_step((self.hi - self.lo) / target.max(2) as f64);
        let k0 = (self.lo / step - 1e-9).ceil() as i64;
        let k1 = (self.hi / step + 1e-9).floor() as i64;
        let vals: Vec<f64> = (k0..=k1.min(k0 + 200)).map(|k| k as f64 * step).collect();
        let maxabs = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let sci = maxabs >= 1e5 || (maxabs > 0.0 && maxabs < 1e-3);
        let dec = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
        let major = vals
            .into_iter()
            .map(|v| {
                let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
                let s = if sci { fmt_sci(v) } else { fmt_fixed(v, dec) };
                (v, s)
            })
            .collect();
        Ticks {
            major,
            minor: Vec::new(),
        }
    }

    fn log_ticks(&self) -> Ticks {
        let (a, b) = (self.lo.log10(), self.hi.log10());
        let inside = |v: f64| v >= self.lo * (1.0 - 1e-9) && v <= self.hi * (1.0 + 1e-9);
        let d0 = (a - 1e-9).ceil() as i32;
        let d1 = (b + 1e-9).floor() as i32;
        let mut major = Vec::new();
        let mut minor = Vec::new();
        if d1 - d0 >= 1 {
            let n = (d1 - d0 + 1) as f64;
            let stride = (n / 8.0).ceil().max(1.0) as i32;
            for k in d0..=d1 {
                let v = 10f64.powi(k);
                if (k - d0) % stride == 0 {
                    major.push((v, format!("10{}", superscript(k))));
                } else {
                    minor.push(v);
                }
            }
            if stride <= 2 {
                for k in (d0 - 1)..=d1 {
                    for m in 2..=9 {
                        let v = m as f64 * 10f64.powi(k);
                        if inside(v) {
                            minor.push(v);
                        }
                    }
                }
            }
        } else {
            let kmin = a.floor() as i32 - 1;
            let kmax = b.ceil() as i32;
            let pick = |ms: &[u32]| -> Vec<f64> {
                let mut out = Vec::new();
                for k in kmin..=kmax {
                    for &m in ms {
                        let v = m as f64 * 10f64.powi(k);
                        if inside(v) {
                            out.push(v);
                        }
                    }
                }
                out
            };
            let mut vals = pick(&[1, 2, 5]);
            if vals.len() < 3 {
                vals = pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
            }
            if vals.len() < 2 {
                // Less than one step of 1..9 in range: fall back to linear ticks.
                return self.linear_ticks(4);
            }
            let plain = vals.iter().all(|&v| (1e-3..1e5).contains(&v));
            for &v in &vals {
                let s = if plain {
                    fmt_fixed(v, (-(v.log10() + 1e-9).floor()).max(0.0) as usize)
                } else {
                    fmt_sci(v)
                };
                major.push((v, s));
            }
            for v in pick(&[1, 2, 3, 4, 5, 6, 7, 8, 9]) {
                if !vals.iter().any(|&m| (m - v).abs() < 1e-12 * v) {
                    minor.push(v);
                }
            }
        }
        Ticks { major, minor }
    }
}

// ---------------------------------------------------------------- text helpers

/// Abbreviate `s` to at most `max_chars` characters (with "…").
pub(crate) fn abbreviate(s: &str, max_chars: usize) -> String {
    let n = s.chars().count();
    if n <= max_chars.max(2) {
        return s.to_string();
    }
    let keep: String = s.chars().take(max_chars.max(2) - 1).collect();
    format!("{keep}\u{2026}")
}

/// Abbreviate `s` until it is at most `max_w` logical pixels wide.
pub(crate) fn fit_width<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    s: &str,
    size: f64,
    bold: bool,
    max_w: f64,
) -> Result<String> {
    let mut n = s.chars().count();
    let mut cur = s.to_string();
    // Measured in the weight it is drawn in: bold text is wider.
    while n > 2 && c.text_size(&cur, size, bold)?.0 > max_w {
        n -= 1;
        cur = abbreviate(s, n);
    }
    Ok(cur)
}

fn max_width<DB: DrawingBackend>(c: &Canvas<'_, DB>, labels: &[String], size: f64) -> Result<f64> {
    let mut w = 0.0f64;
    for l in labels {
        w = w.max(c.text_size(l, size, false)?.0);
    }
    Ok(w)
}

// ---------------------------------------------------------------- frame

pub(crate) enum Axis {
    Cont(Scale),
    /// Categories at 0, 1, 2, ... (centre of each band).
    Cat(Vec<String>),
}

impl Axis {
    fn frac(&self, v: f64) -> f64 {
        match self {
            Axis::Cont(s) => s.frac(v),
            Axis::Cat(l) => (v + 0.5) / l.len().max(1) as f64,
        }
    }

    fn ticks(&self, target: usize) -> Ticks {
        match self {
            Axis::Cont(s) => s.ticks(target),
            Axis::Cat(l) => Ticks {
                major: l
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i as f64, abbreviate(s, 28)))
                    .collect(),
                minor: Vec::new(),
            },
        }
    }

    fn is_cat(&self) -> bool {
        matches!(self, Axis::Cat(_))
    }
}

/// A laid-out cartesian plot: the plot rectangle `[l, r] × [t, b]` in
/// logical pixels plus everything needed to draw axes around it.
pub(crate) struct Frame {
    pub l: f64,
    pub t: f64,
    pub r: f64,
    pub b: f64,
    pub x: Axis,
    pub y: Axis,
    xt: Ticks,
    yt: Ticks,
    x_rot: bool,
    x_stride: usize,
    y_stride: usize,
    title: String,
    x_label: String,
    y_label: String,
}

impl Frame {
    pub fn layout<DB: DrawingBackend>(
        c: &Canvas<'_, DB>,
        plot: &PlotOptions,
        x: Axis,
        y: Axis,
        reserve_right: f64,
    ) -> Result<Frame> {
        let title_h = c.text_size(&plot.title, TITLE_SIZE, true)?.1;
        let t = PAD + if title_h > 0.0 { title_h + 14.0 } else { 6.0 };
        let xl_h = c.text_size(&plot.x_label, LABEL_SIZE, false)?.1;
        let yl_h = c.text_size(&plot.y_label, LABEL_SIZE, false)?.1;
        let th = c.text_size("0", TICK_SIZE, false)?.1;

        let yt = y.ticks(6);
        let y_labels: Vec<String> = yt.major.iter().map(|m| m.1.clone()).collect();
        let yw = max_width(c, &y_labels, TICK_SIZE)?;
        let l = PAD + if yl_h > 0.0 { yl_h + 12.0 } else { 0.0 } + yw + TICK_LEN + 5.0;

        let mut xt = x.ticks(7);
        let overhang = match (&x, xt.major.last()) {
            (Axis::Cont(s), Some((v, lab))) if s.frac(*v) > 0.9 => {
                c.text_size(lab, TICK_SIZE, false)?.0 / 2.0
            }
            _ => 0.0,
        };
        let r = c.w - reserve_right - PAD.max(overhang + 4.0) - 4.0;
        let pw = r - l;
        let pos: Vec<f64> = xt.major.iter().map(|m| x.frac(m.0) * pw).collect();
        let min_gap = pos
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(pw, f64::min)
            .max(1.0);
        let x_labels: Vec<String> = xt.major.iter().map(|m| m.1.clone()).collect();
        let xw = max_width(c, &x_labels, TICK_SIZE)?;
        let (x_rot, x_stride) = if xw + 10.0 <= min_gap {
            (false, 1)
        } else if x.is_cat() {
            (true, ((th * 1.25) / min_gap).ceil().max(1.0) as usize)
        } else {
            (false, ((xw + 10.0) / min_gap).ceil().max(1.0) as usize)
        };
        let ext = if x_rot {
            let max_ext = c.h * 0.3;
            for m in xt.major.iter_mut() {
                m.1 = fit_width(c, &m.1, TICK_SIZE, false, max_ext)?;
            }
            let labels: Vec<String> = xt.major.iter().map(|m| m.1.clone()).collect();
            max_width(c, &labels, TICK_SIZE)?
        } else {
            th
        };
        let b = c.h - PAD - if xl_h > 0.0 { xl_h + 10.0 } else { 0.0 } - ext - TICK_LEN - 6.0;
        if b - t < 40.0 || r - l < 40.0 {
            return Err(PlotError::InvalidOptions(format!(
                "figure size {}x{} is too small for its labels",
                c.w, c.h
            )));
        }
        let y_stride = match &y {
            Axis::Cat(labels) => {
                let band = (b - t) / labels.len().max(1) as f64;
                ((th * 1.2) / band).ceil().max(1.0) as usize
            }
            Axis::Cont(_) => 1,
        };
        Ok(Frame {
            l,
            t,
            r,
            b,
            x,
            y,
            xt,
            yt,
            x_rot,
            x_stride,
            y_stride,
            title: plot.title.clone(),
            x_label: plot.x_label.clone(),
            y_label: plot.y_label.clone(),
        })
    }

    pub fn px(&self, v: f64) -> f64 {
        self.l + self.x.frac(v) * (self.r - self.l)
    }

    pub fn py(&self, v: f64) -> f64 {
        let f = self.y.frac(v);
        // Categories read top to bottom.
        let f = if self.y.is_cat() { 1.0 - f } else { f };
        self.b - f * (self.b - self.t)
    }

    /// Pixel size of one category band along x / y.
    pub fn band_w(&self) -> f64 {
        match &self.x {
            Axis::Cat(l) => (self.r - self.l) / l.len().max(1) as f64,
            Axis::Cont(_) => self.r - self.l,
        }
    }

    pub fn band_h(&self) -> f64 {
        match &self.y {
            Axis::Cat(l) => (self.b - self.t) / l.len().max(1) as f64,
            Axis::Cont(_) => self.b - self.t,
        }
    }

    pub fn rect(&self) -> (f64, f64, f64, f64) {
        (self.l, self.t, self.r, self.b)
    }

    pub fn draw_grid<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()> {
        if !self.x.is_cat() {
            for (v, _) in &self.xt.major {
                let x = self.px(*v);
                c.line(&[(x, self.t), (x, self.b)], solid(GRID), 1.0)?;
            }
        }
        if !self.y.is_cat() {
            for (v, _) in &self.yt.major {
                let y = self.py(*v);
                c.line(&[(self.l, y), (self.r, y)], solid(GRID), 1.0)?;
            }
        }
        Ok(())
    }

    /// Spines, ticks, tick labels, axis labels and title.
    pub fn draw_axes<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<()> {
        let axis = solid(DARK);
        c.line(&[(self.l, self.t), (self.l, self.b)], axis, 1.0)?;
        c.line(&[(self.l, self.b), (self.r, self.b)], axis, 1.0)?;
        let tick_txt = Txt::new(TICK_SIZE).color(solid(BLACK));
        for (i, (v, lab)) in self.xt.major.iter().enumerate() {
            let x = self.px(*v);
            c.line(&[(x, self.b), (x, self.b + TICK_LEN)], axis, 1.0)?;
            if i % self.x_stride == 0 {
                let y = self.b + TICK_LEN + 4.0;
                if self.x_rot {
                    c.text(
                        lab,
                        (x, y),
                        tick_txt.anchor(HPos::Right, VPos::Center).rot(),
                    )?;
                } else {
                    c.text(lab, (x, y), tick_txt.anchor(HPos::Center, VPos::Top))?;
                }
            }
        }
        for v in &self.xt.minor {
            let x = self.px(*v);
            c.line(&[(x, self.b), (x, self.b + TICK_LEN * 0.6)], axis, 1.0)?;
        }
        for (i, (v, lab)) in self.yt.major.iter().enumerate() {
            let y = self.py(*v);
            c.line(&[(self.l - TICK_LEN, y), (self.l, y)], axis, 1.0)?;
            if i % self.y_stride == 0 {
                let at = (self.l - TICK_LEN - 4.0, y);
                c.text(lab, at, tick_txt.anchor(HPos::Right, VPos::Center))?;
            }
        }
        for v in &self.yt.minor {
            let y = self.py(*v);
            c.line(&[(self.l - TICK_LEN * 0.6, y), (self.l, y)], axis, 1.0)?;
        }
        let lab = Txt::new(LABEL_SIZE).color(solid(BLACK));
        c.text(
            &self.x_label,
            ((self.l + self.r) / 2.0, c.h - PAD),
            lab.anchor(HPos::Center, VPos::Bottom),
        )?;
        c.text(
            &self.y_label,
            (PAD, (self.t + self.b) / 2.0),
            lab.anchor(HPos::Center, VPos::Top).rot(),
        )?;
        draw_title(c, &self.title, (self.l + self.r) / 2.0)
    }
}

/// Bold title centred at `cx` (kept inside the canvas).
pub(crate) fn draw_title<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    title: &str,
    cx: f64,
) -> Result<()> {
    if title.is_empty() {
        return Ok(());
    }
    let title = fit_width(c, title, TITLE_SIZE, true, c.w - 2.0 * PAD)?;
    let w = c.text_size(&title, TITLE_SIZE, true)?.0;
    let cx = cx.clamp(PAD + w / 2.0, (c.w - PAD - w / 2.0).max(PAD + w / 2.0));
    c.text(
        &title,
        (cx, PAD),
        Txt::new(TITLE_SIZE)
            .bold()
            .color(solid(BLACK))
            .anchor(HPos::Center, VPos::Top),
    )
}

// ---------------------------------------------------------------- markers & clipping

pub(crate) fn draw_marker<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    kind: usize,
    (x, y): Pt,
    r: f64,
    color: Rgb,
) -> Result<()> {
    let fill = solid(color);
    // A thin white halo keeps overlapping markers distinguishable.
    let halo = solid(WHITE);
    let poly = |pts: &[(f64, f64)], rr: f64| -> Vec<Pt> {
        pts.iter().map(|p| (x + p.0 * rr, y + p.1 * rr)).collect()
    };
    let shape: &[(f64, f64)] = match kind % 5 {
        0 => &[],
        1 => &[(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)],
        2 => &[(0.0, -1.2), (1.1, 0.75), (-1.1, 0.75)],
        3 => &[(0.0, -1.25), (1.05, 0.0), (0.0, 1.25), (-1.05, 0.0)],
        _ => &[(0.0, 1.2), (1.1, -0.75), (-1.1, -0.75)],
    };
    if shape.is_empty() {
        c.circle((x, y), r + 1.0, halo)?;
        c.circle((x, y), r, fill)
    } else {
        c.polygon(&poly(shape, r + 1.3), halo)?;
        c.polygon(&poly(shape, r), fill)
    }
}

/// Clip a polyline to a rectangle; returns the visible pieces.
pub(crate) fn clip_polyline(pts: &[Pt], (x0, y0, x1, y1): (f64, f64, f64, f64)) -> Vec<Vec<Pt>> {
    let mut out: Vec<Vec<Pt>> = Vec::new();
    let mut cur: Vec<Pt> = Vec::new();
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        let mut visible = true;
        for (p, q) in [
            (-dx, a.0 - x0),
            (dx, x1 - a.0),
            (-dy, a.1 - y0),
            (dy, y1 - a.1),
        ] {
            if p.abs() < 1e-12 {
                if q < 0.0 {
                    visible = false;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
        if !visible || t0 > t1 {
            if cur.len() >= 2 {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            continue;
        }
        let pa = (a.0 + t0 * dx, a.1 + t0 * dy);
        let pb = (a.0 + t1 * dx, a.1 + t1 * dy);
        if cur.is_empty() || t0 > 0.0 {
            if cur.len() >= 2 {
                out.push(std::mem::take(&mut cur));
            }
            cur = vec![pa];
        }
        cur.push(pb);
        if t1 < 1.0 {
            out.push(std::mem::take(&mut cur));
        }
    }
    if cur.len() >= 2 {
        out.push(cur);
    }
    out
}

// ---------------------------------------------------------------- legend

pub(crate) enum Swatch {
    Line {
        color: Rgb,
        width: f64,
        dash: Option<(f64, f64)>,
        marker: Option<usize>,
    },
    Patch(Rgb),
}

pub(crate) struct LegendEntry {
    pub label: String,
    pub swatch: Swatch,
}

pub(crate) struct Legend {
    pub entries: Vec<LegendEntry>,
    pub w: f64,
    pub h: f64,
    row: f64,
}

const LEG_PAD: f64 = 9.0;
const SWATCH_W: f64 = 30.0;

impl Legend {
    pub fn measure<DB: DrawingBackend>(
        c: &Canvas<'_, DB>,
        entries: Vec<LegendEntry>,
    ) -> Result<Legend> {
        let mut tw = 0.0f64;
        let mut th = 0.0f64;
        for e in &entries {
            let (w, h) = c.text_size(&e.label, LEGEND_SIZE, false)?;
            tw = tw.max(w);
            th = th.max(h);
        }
        let row = (th * 1.55).max(18.0);
        Ok(Legend {
            w: LEG_PAD * 2.0 + SWATCH_W + 8.0 + tw,
            h: LEG_PAD * 2.0 + row * entries.len() as f64 - (row - th) * 0.4,
            row,
            entries,
        })
    }

    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>, (x, y): Pt) -> Result<()> {
        c.rect((x, y), (x + self.w, y + self.h), rgba(WHITE, 0.92))?;
        c.rect_outline(
            (x, y),
            (x + self.w, y + self.h),
            solid((200, 200, 200)),
            1.0,
        )?;
        let top = y + LEG_PAD + self.row * 0.3;
        for (i, e) in self.entries.iter().enumerate() {
            let cy = top + i as f64 * self.row + self.row * 0.2;
            let sx = x + LEG_PAD;
            match &e.swatch {
                Swatch::Line {
                    color,
                    width,
                    dash,
                    marker,
                } => {
                    let pts = [(sx, cy), (sx + SWATCH_W, cy)];
                    match dash {
                        Some(d) => c.dashed(&pts, solid(*color), *width, *d)?,
                        None => c.line(&pts, solid(*color), *width)?,
                    }
                    if let Some(m) = marker {
                        draw_marker(c, *m, (sx + SWATCH_W / 2.0, cy), 4.0, *color)?;
                    }
                }
                Swatch::Patch(color) => {
                    let hh = self.row * 0.32;
                    c.rect(
                        (sx + 4.0, cy - hh),
                        (sx + SWATCH_W - 4.0, cy + hh),
                        solid(*color),
                    )?;
                }
            }
            c.text(
                &e.label,
                (sx + SWATCH_W + 8.0, cy),
                Txt::new(LEGEND_SIZE)
                    .color(solid(BLACK))
                    .anchor(HPos::Left, VPos::Center),
            )?;
        }
        Ok(())
    }
}

pub(crate) type Rect = (f64, f64, f64, f64);

fn overlaps(a: Rect, b: Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Choose a position for a `w × h` legend inside `plot` that overlaps none
/// of the `obstacles`; `None` if every candidate collides.
pub(crate) fn place_inside(plot: Rect, w: f64, h: f64, obstacles: &[Rect]) -> Option<Pt> {
    let (l, t, r, b) = plot;
    let m = 8.0;
    if r - l < w + 2.0 * m || b - t < h + 2.0 * m {
        return None;
    }
    let (xl, xr, xc) = (l + m, r - m - w, (l + r - w) / 2.0);
    let (yt, yb, yc) = (t + m, b - m - h, (t + b - h) / 2.0);
    let candidates = [
        (xr, yt),
        (xl, yt),
        (xr, yb),
        (xl, yb),
        (xc, yt),
        (xc, yb),
        (xr, yc),
        (xl, yc),
    ];
    candidates.into_iter().find(|&(x, y)| {
        let rect = (x - 4.0, y - 4.0, x + w + 4.0, y + h + 4.0);
        !obstacles.iter().any(|&o| overlaps(rect, o))
    })
}

/// Obstacle rectangles along a polyline (sampled every few pixels).
pub(crate) fn polyline_obstacles(pts: &[Pt], out: &mut Vec<Rect>) {
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let n = (len / 4.0).ceil().max(1.0) as usize;
        for i in 0..=n {
            let f = i as f64 / n as f64;
            let p = (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1));
            out.push((p.0 - 2.0, p.1 - 2.0, p.0 + 2.0, p.1 + 2.0));
        }
    }
    if pts.len() == 1 {
        let p = pts[0];
        out.push((p.0 - 4.0, p.1 - 4.0, p.0 + 4.0, p.1 + 4.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::dash_polyline;
    use plotters::prelude::{IntoDrawingArea, SVGBackend};

    #[test]
    fn a_long_bold_title_is_shortened_to_fit_in_bold() {
        let mut svg = String::new();
        let area = SVGBackend::with_string(&mut svg, (600, 400)).into_drawing_area();
        let c = Canvas::new(&area, 1.0, 600.0, 400.0);
        let title = "Steering control: each state steered at step 4 vs 3 random directions \
                     (mean ± SD over directions; strength 4, 6 sessions)";
        let max_w = c.w - 2.0 * PAD;
        let fitted = fit_width(&c, title, TITLE_SIZE, true, max_w).unwrap();
        assert!(fitted.chars().count() < title.chars().count(), "{fitted}");
        assert!(c.text_size(&fitted, TITLE_SIZE, true).unwrap().0 <= max_w);
        let short = "Probe accuracy";
        assert_eq!(
            fit_width(&c, short, TITLE_SIZE, true, max_w).unwrap(),
            short
        );
    }

    #[test]
    fn linear_ticks_are_nice_and_cover_range() {
        let t = Scale::from_data(0.0, 11.0, false, 0.0).ticks(6);
        let v: Vec<f64> = t.major.iter().map(|m| m.0).collect();
        assert_eq!(v, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let labels: Vec<&str> = t.major.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(labels, vec!["0", "2", "4", "6", "8", "10"]);
        let t = Scale {
            lo: -0.3,
            hi: 0.3,
            log: false,
        }
        .ticks(6);
        let labels: Vec<&str> = t.major.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "\u{2212}0.3",
                "\u{2212}0.2",
                "\u{2212}0.1",
                "0.0",
                "0.1",
                "0.2",
                "0.3"
            ]
        );
    }

    #[test]
    fn log_ticks_use_decades_and_superscripts() {
        let t = Scale {
            lo: 5.0,
            hi: 2e5,
            log: true,
        }
        .ticks(6);
        let labels: Vec<&str> = t.major.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "10\u{00B9}",
                "10\u{00B2}",
                "10\u{00B3}",
                "10\u{2074}",
                "10\u{2075}"
            ]
        );
        assert!(t.minor.contains(&20.0));
        let t = Scale {
            lo: 1e-4,
            hi: 1e-2,
            log: true,
        }
        .ticks(6);
        assert_eq!(t.major[0].1, "10\u{207B}\u{2074}");
        // Narrow range: 1..9 multiples with plain numbers.
        let t = Scale {
            lo: 15.0,
            hi: 90.0,
            log: true,
        }
        .ticks(6);
        let labels: Vec<&str> = t.major.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(labels, vec!["20", "30", "40", "50", "60", "70", "80", "90"]);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(fmt_fixed(-0.0001, 2), "0.00");
        assert_eq!(fmt_fixed(-1.5, 1), "\u{2212}1.5");
        assert_eq!(fmt_signed(0.42, 2), "+0.42");
        assert_eq!(fmt_signed(-0.18, 2), "\u{2212}0.18");
        assert_eq!(fmt_signed(0.0, 2), "0.00");
        assert_eq!(fmt_sci(1e-5), "10\u{207B}\u{2075}");
        assert_eq!(fmt_sci(2.5e6), "2.5\u{00D7}10\u{2076}");
        assert_eq!(abbreviate("internationalization", 8), "interna\u{2026}");
        assert_eq!(abbreviate("short", 8), "short");
    }

    #[test]
    fn clipping_and_dashing() {
        let rect = (0.0, 0.0, 10.0, 10.0);
        let pieces = clip_polyline(&[(-5.0, 5.0), (5.0, 5.0), (15.0, 5.0)], rect);
        assert_eq!(pieces, vec![vec![(0.0, 5.0), (5.0, 5.0), (10.0, 5.0)]]);
        let pieces = clip_polyline(&[(5.0, 5.0), (5.0, 20.0), (6.0, 20.0), (6.0, 5.0)], rect);
        assert_eq!(pieces.len(), 2);
        assert!(clip_polyline(&[(20.0, 20.0), (30.0, 30.0)], rect).is_empty());
        let dashes = dash_polyline(&[(0.0, 0.0), (10.0, 0.0)], 2.0, 3.0);
        assert_eq!(dashes.len(), 2);
        assert_eq!(dashes[0], vec![(0.0, 0.0), (2.0, 0.0)]);
        assert_eq!(dashes[1], vec![(5.0, 0.0), (7.0, 0.0)]);
    }

    #[test]
    fn legend_avoids_obstacles() {
        let plot = (0.0, 0.0, 400.0, 300.0);
        // Block the top-right corner: the legend must go elsewhere.
        let at = place_inside(plot, 100.0, 50.0, &[(250.0, 0.0, 400.0, 100.0)]).unwrap();
        assert!(at.0 < 250.0 || at.1 > 100.0);
        // Everything blocked -> None (caller puts it outside).
        assert!(place_inside(plot, 100.0, 50.0, &[(0.0, 0.0, 400.0, 300.0)]).is_none());
    }
}
