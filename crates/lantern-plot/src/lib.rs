//! Publication-quality figures for Lantern.
//!
//! Every figure function takes plain data (no tensors), a per-figure options
//! struct (whose `plot` field holds title / axis labels / size / formats) and
//! an output path *stem*; it writes `<stem>.svg` and/or `<stem>.png` and
//! returns the written paths. All input is validated first, and each file
//! is written atomically (temp file in the same directory + rename), so an
//! error never leaves a partial file behind.
//!
//! Text is rendered with DejaVu Sans, embedded in the binary (see `fonts`),
//! so figures need no system fonts and are the same on every machine.

mod axis;
mod bars;
mod canvas;
pub mod color;
mod error;
mod fonts;
mod graph;
mod heatmap;
mod lines;
mod options;
mod output;
mod validate;
mod waterfall;

pub use bars::{bar_chart, grouped_bar_chart, BarGroup};
pub use color::{diverging_color, sequential_color, Rgb};
pub use error::{PlotError, Result};
pub use graph::{graph_figure, GraphEdge};
pub use heatmap::heatmap;
pub use lines::{line_chart, time_series, Series};
pub use options::{
    Annotate, BarOptions, ColorScale, ErrorStyle, Formats, GraphOptions, HeatmapOptions,
    LineOptions, Orientation, PlotOptions, TimeSeriesOptions, WaterfallOptions,
};
pub use waterfall::waterfall;
