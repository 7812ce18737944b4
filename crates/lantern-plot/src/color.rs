//! Colour maps and palettes.

use plotters::style::RGBAColor;

/// An opaque sRGB colour.
pub type Rgb = (u8, u8, u8);

/// ColorBrewer RdBu (9 classes, reversed) with a pure white centre.
const DIVERGING: [Rgb; 9] = [
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (255, 255, 255),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
];

/// Viridis, sampled at 9 evenly spaced points.
const VIRIDIS: [Rgb; 9] = [
    (68, 1, 84),
    (72, 40, 120),
    (62, 73, 137),
    (49, 104, 142),
    (38, 130, 142),
    (31, 158, 137),
    (53, 183, 121),
    (109, 205, 89),
    (253, 231, 37),
];

/// Blue end of the diverging map (value `-limit`).
pub const DIVERGING_BLUE: Rgb = DIVERGING[0];
/// Red end of the diverging map (value `+limit`).
pub const DIVERGING_RED: Rgb = DIVERGING[8];

/// Qualitative palette (matplotlib "tab10") for series and groups.
pub const PALETTE: [Rgb; 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Bar colours for positive / negative values.
pub(crate) const POS_BAR: Rgb = (214, 96, 77);
pub(crate) const NEG_BAR: Rgb = (67, 147, 195);
/// Edge colours for positive / negative weights.
pub(crate) const POS_EDGE: Rgb = (192, 32, 40);
pub(crate) const NEG_EDGE: Rgb = (33, 102, 172);

fn interpolate(anchors: &[Rgb], t: f64) -> Rgb {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * (anchors.len() - 1) as f64;
    let i = (pos.floor() as usize).min(anchors.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (anchors[i], anchors[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + f * (y as f64 - x as f64)).round() as u8;
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Diverging blue–white–red map centred at 0: `-limit` → blue end,
/// `0` → white, `+limit` → red end; values beyond ±limit are clamped.
/// A non-positive or non-finite `limit` is treated as 1.
pub fn diverging_color(value: f64, limit: f64) -> Rgb {
    let lim = if limit.is_finite() && limit > 0.0 {
        limit
    } else {
        1.0
    };
    interpolate(&DIVERGING, (value / lim + 1.0) / 2.0)
}

/// Sequential (viridis) map: `min` → dark purple, `max` → yellow.
/// If `max <= min` every value maps to the middle colour.
pub fn sequential_color(value: f64, min: f64, max: f64) -> Rgb {
    let t = if max > min {
        (value - min) / (max - min)
    } else {
        0.5
    };
    interpolate(&VIRIDIS, t)
}

/// Black or white, whichever is more legible on `bg`.
pub(crate) fn text_on(bg: Rgb) -> Rgb {
    let lum = 0.299 * bg.0 as f64 + 0.587 * bg.1 as f64 + 0.114 * bg.2 as f64;
    if lum < 135.0 {
        (255, 255, 255)
    } else {
        (20, 20, 20)
    }
}

pub(crate) fn rgba(c: Rgb, alpha: f64) -> RGBAColor {
    RGBAColor(c.0, c.1, c.2, alpha)
}

pub(crate) fn solid(c: Rgb) -> RGBAColor {
    rgba(c, 1.0)
}

pub(crate) const BLACK: Rgb = (20, 20, 20);
pub(crate) const DARK: Rgb = (51, 51, 51);
pub(crate) const GRID: Rgb = (228, 228, 228);
pub(crate) const WHITE: Rgb = (255, 255, 255);
