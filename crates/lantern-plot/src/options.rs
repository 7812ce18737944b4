use serde::{Deserialize, Serialize};

use crate::error::{PlotError, Result};

/// Which files a figure function writes (`<stem>.svg`, `<stem>.png`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formats {
    pub svg: bool,
    pub png: bool,
}

impl Formats {
    pub const BOTH: Formats = Formats {
        svg: true,
        png: true,
    };
    pub const SVG: Formats = Formats {
        svg: true,
        png: false,
    };
    pub const PNG: Formats = Formats {
        svg: false,
        png: true,
    };
}

impl Default for Formats {
    fn default() -> Self {
        Formats::BOTH
    }
}

/// Options shared by every figure.
///
/// `size` is in pixels (SVG user units). The PNG is rendered with 2x
/// supersampling (anti-aliased) and written at `size * png_scale` pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlotOptions {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub size: (u32, u32),
    pub formats: Formats,
    /// PNG resolution multiplier (1..=8); e.g. 3 for print-resolution PNGs.
    pub png_scale: u32,
    /// Fixed x-axis range (continuous x axes only); data outside is clipped.
    pub x_range: Option<(f64, f64)>,
    /// Fixed y-axis range (continuous y axes only); data outside is clipped.
    pub y_range: Option<(f64, f64)>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            size: (900, 650),
            formats: Formats::BOTH,
            png_scale: 1,
            x_range: None,
            y_range: None,
        }
    }
}

impl PlotOptions {
    pub fn new(title: impl Into<String>) -> Self {
        PlotOptions {
            title: title.into(),
            ..Default::default()
        }
    }
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }
    pub fn formats(mut self, formats: Formats) -> Self {
        self.formats = formats;
        self
    }
    pub fn png_scale(mut self, scale: u32) -> Self {
        self.png_scale = scale;
        self
    }
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let (w, h) = self.size;
        if !(200..=10_000).contains(&w) || !(150..=10_000).contains(&h) {
            return Err(PlotError::InvalidOptions(format!(
                "size {w}x{h} px is out of range (width 200..=10000, height 150..=10000)"
            )));
        }
        if !(1..=8).contains(&self.png_scale) {
            return Err(PlotError::InvalidOptions(format!(
                "png_scale {} is out of range 1..=8",
                self.png_scale
            )));
        }
        if !self.formats.svg && !self.formats.png {
            return Err(PlotError::InvalidOptions(
                "no output format selected (formats.svg and formats.png are both false)".into(),
            ));
        }
        for (name, r) in [("x_range", self.x_range), ("y_range", self.y_range)] {
            if let Some((lo, hi)) = r {
                if !lo.is_finite() || !hi.is_finite() || lo >= hi {
                    return Err(PlotError::InvalidOptions(format!(
                        "{name} ({lo}, {hi}) must be finite with lo < hi"
                    )));
                }
            }
        }
        Ok(())
    }
}

macro_rules! with_plot {
    ($t:ty) => {
        impl From<PlotOptions> for $t {
            fn from(plot: PlotOptions) -> Self {
                Self {
                    plot,
                    ..Default::default()
                }
            }
        }
        impl $t {
            /// Figure-specific defaults with the given common options.
            pub fn new(plot: PlotOptions) -> Self {
                plot.into()
            }
        }
    };
}

/// Colour mapping for [`crate::heatmap`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ColorScale {
    /// Blue–white–red, centred at 0 with symmetric limits `±limit`
    /// (default `limit` = max |v|).
    Diverging { limit: Option<f64> },
    /// Viridis from `min` to `max` (defaults: data min / max).
    Sequential { min: Option<f64>, max: Option<f64> },
}

impl Default for ColorScale {
    fn default() -> Self {
        ColorScale::Diverging { limit: None }
    }
}

/// Whether to print each cell's value inside a heatmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Annotate {
    /// Annotate small grids when the numbers fit in the cells.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeatmapOptions {
    /// `x_label` names the columns, `y_label` the rows.
    pub plot: PlotOptions,
    pub color_scale: ColorScale,
    pub annotate: Annotate,
    /// Label drawn next to the colour bar (e.g. "logit difference").
    pub colorbar_label: String,
    /// Row/column labels longer than this are abbreviated with "…".
    pub max_label_chars: usize,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        HeatmapOptions {
            plot: PlotOptions::default(),
            color_scale: ColorScale::default(),
            annotate: Annotate::Auto,
            colorbar_label: String::new(),
            max_label_chars: 16,
        }
    }
}
with_plot!(HeatmapOptions);

/// How `Series::y_err` is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ErrorStyle {
    /// Shaded band `y ± err`.
    #[default]
    Band,
    /// Error bars with caps.
    Bars,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LineOptions {
    pub plot: PlotOptions,
    pub log_x: bool,
    pub log_y: bool,
    pub error_style: ErrorStyle,
    /// Draw point markers (automatically omitted for series longer than 60 points).
    pub markers: bool,
}

impl Default for LineOptions {
    fn default() -> Self {
        LineOptions {
            plot: PlotOptions::default(),
            log_x: false,
            log_y: false,
            error_style: ErrorStyle::Band,
            markers: true,
        }
    }
}
with_plot!(LineOptions);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Orientation {
    /// Categories along x, values up the y axis.
    #[default]
    Vertical,
    /// Categories down the y axis (first at the top), values along x.
    Horizontal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BarOptions {
    /// Axis labels refer to the drawn axes (for horizontal bars `x_label`
    /// is the value axis). The value axis range is `y_range` for vertical
    /// and `x_range` for horizontal bars.
    pub plot: PlotOptions,
    pub orientation: Orientation,
    /// Single-series bars: red for positive, blue for negative values.
    pub color_by_sign: bool,
}

impl Default for BarOptions {
    fn default() -> Self {
        BarOptions {
            plot: PlotOptions::default(),
            orientation: Orientation::Vertical,
            color_by_sign: true,
        }
    }
}
with_plot!(BarOptions);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WaterfallOptions {
    pub plot: PlotOptions,
    /// Print each bar's value / contribution next to it (when it fits).
    pub show_values: bool,
}

impl Default for WaterfallOptions {
    fn default() -> Self {
        WaterfallOptions {
            plot: PlotOptions::default(),
            show_values: true,
        }
    }
}
with_plot!(WaterfallOptions);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GraphOptions {
    /// Axis labels are unused.
    pub plot: PlotOptions,
    /// Print each edge's weight on the edge.
    pub edge_labels: bool,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            plot: PlotOptions::default(),
            edge_labels: true,
        }
    }
}
with_plot!(GraphOptions);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeSeriesOptions {
    /// `x_label` defaults to "step" when empty.
    pub plot: PlotOptions,
    /// x value of row 0 of the matrix.
    pub x_start: f64,
    /// x increment per row.
    pub x_step: f64,
    /// Shaded window `[start, end]` in x units (e.g. an intervention).
    pub window: Option<(f64, f64)>,
    pub window_label: String,
    pub markers: bool,
}

impl Default for TimeSeriesOptions {
    fn default() -> Self {
        TimeSeriesOptions {
            plot: PlotOptions::default(),
            x_start: 0.0,
            x_step: 1.0,
            window: None,
            window_label: "intervention".into(),
            markers: false,
        }
    }
}
with_plot!(TimeSeriesOptions);
