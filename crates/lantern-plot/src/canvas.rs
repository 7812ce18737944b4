//! A thin wrapper over a plotters drawing area that works in *logical*
//! pixels (the figure's nominal size) and scales to the device, so the same
//! drawing code produces the SVG (scale 1) and the supersampled PNG.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, FontTransform, RGBAColor};

use crate::error::{PlotError, Result};

pub(crate) type Pt = (f64, f64);

pub(crate) fn render_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Render(e.to_string())
}

/// Text placement / style.
#[derive(Clone, Copy)]
pub(crate) struct Txt {
    pub size: f64,
    pub color: RGBAColor,
    pub h: HPos,
    pub v: VPos,
    /// Rotate 90° counter-clockwise (reads bottom to top).
    pub rot: bool,
    pub bold: bool,
}

impl Txt {
    pub fn new(size: f64) -> Self {
        Txt {
            size,
            color: RGBAColor(20, 20, 20, 1.0),
            h: HPos::Left,
            v: VPos::Top,
            rot: false,
            bold: false,
        }
    }
    pub fn color(mut self, c: RGBAColor) -> Self {
        self.color = c;
        self
    }
    pub fn anchor(mut self, h: HPos, v: VPos) -> Self {
        self.h = h;
        self.v = v;
        self
    }
    pub fn rot(mut self) -> Self {
        self.rot = true;
        self
    }
    pub fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
}

pub(crate) struct Canvas<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    s: f64,
    pub w: f64,
    pub h: f64,
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB> {
    pub fn new(area: &'a DrawingArea<DB, Shift>, scale: f64, w: f64, h: f64) -> Self {
        crate::fonts::ensure_registered();
        Canvas {
            area,
            s: scale,
            w,
            h,
        }
    }

    fn p(&self, (x, y): Pt) -> (i32, i32) {
        ((x * self.s).round() as i32, (y * self.s).round() as i32)
    }

    fn stroke(&self, width: f64) -> u32 {
        (width * self.s).round().max(1.0) as u32
    }

    fn font<'t>(&self, t: &'t Txt) -> TextStyle<'t> {
        // Note: `FontDesc::style()` keeps the regular glyph data (plotters
        // 0.3.7), so the bold face must be requested in `FontDesc::new`.
        let weight = if t.bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        let f = FontDesc::new(FontFamily::SansSerif, t.size * self.s, weight);
        let mut style = TextStyle::from(f).color(&t.color).pos(Pos::new(t.h, t.v));
        if t.rot {
            style = style.transform(FontTransform::Rotate270);
        }
        style
    }

    /// Unrotated (width, height) of `text` in logical pixels.
    pub fn text_size(&self, text: &str, size: f64, bold: bool) -> Result<(f64, f64)> {
        if text.is_empty() {
            return Ok((0.0, 0.0));
        }
        let mut t = Txt::new(size);
        t.bold = bold;
        let (w, h) = self
            .area
            .estimate_text_size(text, &self.font(&t))
            .map_err(render_err)?;
        Ok((w as f64 / self.s, h as f64 / self.s))
    }

    pub fn text(&self, text: &str, at: Pt, t: Txt) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.area
            .draw(&Text::new(text.to_string(), self.p(at), self.font(&t)))
            .map_err(render_err)
    }

    pub fn rect(&self, a: Pt, b: Pt, fill: RGBAColor) -> Result<()> {
        let style = ShapeStyle {
            color: fill,
            filled: true,
            stroke_width: 0,
        };
        self.area
            .draw(&Rectangle::new([self.p(a), self.p(b)], style))
            .map_err(render_err)
    }

    pub fn rect_outline(&self, a: Pt, b: Pt, color: RGBAColor, width: f64) -> Result<()> {
        let pts = vec![a, (b.0, a.1), b, (a.0, b.1), a];
        self.line(&pts, color, width)
    }

    pub fn line(&self, pts: &[Pt], color: RGBAColor, width: f64) -> Result<()> {
        if pts.len() < 2 {
            return Ok(());
        }
        let style = ShapeStyle {
            color,
            filled: false,
            stroke_width: self.stroke(width),
        };
        let dev: Vec<(i32, i32)> = pts.iter().map(|&q| self.p(q)).collect();
        self.area
            .draw(&PathElement::new(dev, style))
            .map_err(render_err)
    }

    /// A polyline with a dash pattern `(on, off)` in logical pixels.
    pub fn dashed(&self, pts: &[Pt], color: RGBAColor, width: f64, dash: (f64, f64)) -> Result<()> {
        for seg in dash_polyline(pts, dash.0, dash.1) {
            self.line(&seg, color, width)?;
        }
        Ok(())
    }

    pub fn polygon(&self, pts: &[Pt], fill: RGBAColor) -> Result<()> {
        if pts.len() < 3 {
            return Ok(());
        }
        let style = ShapeStyle {
            color: fill,
            filled: true,
            stroke_width: 0,
        };
        let dev: Vec<(i32, i32)> = pts.iter().map(|&q| self.p(q)).collect();
        self.area
            .draw(&Polygon::new(dev, style))
            .map_err(render_err)
    }

    pub fn circle(&self, c: Pt, r: f64, fill: RGBAColor) -> Result<()> {
        let style = ShapeStyle {
            color: fill,
            filled: true,
            stroke_width: 0,
        };
        let rad = (r * self.s).round().max(1.0) as i32;
        self.area
            .draw(&Circle::new(self.p(c), rad, style))
            .map_err(render_err)
    }
}

/// Split a polyline into dash segments.
pub(crate) fn dash_polyline(pts: &[Pt], on: f64, off: f64) -> Vec<Vec<Pt>> {
    let mut out = Vec::new();
    if pts.len() < 2 || on <= 0.0 {
        return out;
    }
    let off = off.max(0.0);
    let mut drawing = true;
    let mut remaining = on;
    let mut cur: Vec<Pt> = vec![pts[0]];
    for w in pts.windows(2) {
        let (mut a, b) = (w[0], w[1]);
        let mut seg_len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        while seg_len > 1e-9 {
            if remaining >= seg_len {
                remaining -= seg_len;
                if drawing {
                    cur.push(b);
                }
                seg_len = 0.0;
            } else {
                let f = remaining / seg_len;
                let m = (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1));
                if drawing {
                    cur.push(m);
                    out.push(std::mem::take(&mut cur));
                } else {
                    cur = vec![m];
                }
                drawing = !drawing;
                remaining = if drawing { on } else { off };
                seg_len -= ((m.0 - a.0).powi(2) + (m.1 - a.1).powi(2)).sqrt();
                a = m;
            }
        }
    }
    if drawing && cur.len() >= 2 {
        out.push(cur);
    }
    out
}
