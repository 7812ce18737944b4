//! Edge-case layouts (crowded labels, legend outside, narrow log ranges).
//!
//! `cargo run -p lantern-plot --example stress_examples -- [OUT_DIR]`

use std::path::PathBuf;

use lantern_plot::*;

fn main() -> Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/plot-examples".into()),
    );
    std::fs::create_dir_all(&dir).map_err(|e| PlotError::Io {
        path: dir.clone(),
        source: e,
    })?;

    // 30 layers x 48 token positions with long token strings.
    let toks: Vec<String> = (0..48)
        .map(|i| match i % 6 {
            0 => " internationalization".to_string(),
            1 => "\n".to_string(),
            2 => " the".to_string(),
            3 => "<|endoftext|>".to_string(),
            4 => format!(" tok{i}"),
            _ => ",".to_string(),
        })
        .collect();
    let vals: Vec<Vec<f64>> = (0..30)
        .map(|l| {
            (0..48)
                .map(|p| ((l as f64 - p as f64 * 0.6) / 6.0).sin() * 0.8 - 0.1)
                .collect()
        })
        .collect();
    heatmap(
        &vals,
        &[] as &[&str],
        &toks,
        &HeatmapOptions {
            color_scale: ColorScale::Sequential {
                min: None,
                max: None,
            },
            colorbar_label: "patching effect".into(),
            ..PlotOptions::new("Crowded heatmap: 30 layers × 48 positions")
                .x_label("position")
                .y_label("layer")
                .into()
        },
        dir.join("stress_heatmap"),
    )?;

    // Many series whose lines fill every corner -> legend outside.
    let xs: Vec<f64> = (0..50).map(|i| i as f64 / 49.0).collect();
    let series: Vec<Series> = (0..7)
        .map(|k| {
            let ys = xs
                .iter()
                .map(|x| (x * 6.0 + k as f64).sin() * 0.5 + 0.5)
                .collect();
            Series::new(format!("estimator variant {k}"), xs.clone(), ys)
        })
        .collect();
    line_chart(
        &series,
        &PlotOptions::new("Many series (legend outside)")
            .x_label("fraction")
            .y_label("value")
            .into(),
        dir.join("stress_lines"),
    )?;

    // Narrow log range.
    let xs: Vec<f64> = vec![20.0, 30.0, 45.0, 60.0, 80.0];
    line_chart(
        &[Series::new(
            "",
            xs.clone(),
            vec![0.05, 0.041, 0.033, 0.029, 0.025],
        )],
        &LineOptions {
            log_x: true,
            log_y: true,
            ..PlotOptions::new("Narrow log-log range")
                .x_label("n")
                .y_label("error")
                .into()
        },
        dir.join("stress_loglog_narrow"),
    )?;

    // Many long bar labels -> rotated x labels.
    let labels: Vec<String> = (0..24).map(|i| format!("component number {i}")).collect();
    let values: Vec<f64> = (0..24).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
    bar_chart(
        &labels,
        &values,
        None,
        &PlotOptions::new("Many long labels")
            .y_label("effect (logits)")
            .into(),
        dir.join("stress_bars"),
    )?;

    // Two-node graph with reciprocal and parallel edges, no title, small size.
    graph_figure(
        &["X", "Y"],
        &[
            GraphEdge::new(0, 1, 0.5, 0),
            GraphEdge::new(1, 0, -0.4, 0),
            GraphEdge::new(0, 1, 0.2, 1),
            GraphEdge::new(0, 0, 0.9, 1),
            GraphEdge::new(1, 1, 0.3, 2),
        ],
        &PlotOptions::new("Two-node graph").size(640, 420).into(),
        dir.join("stress_graph2"),
    )?;

    // Waterfall with all-negative totals.
    waterfall(
        "clean",
        -0.5,
        &[("a", -1.2), ("b", 0.3), ("c", -0.4)],
        "patched",
        &PlotOptions::new("Negative waterfall")
            .y_label("logit diff")
            .into(),
        dir.join("stress_waterfall"),
    )?;
    println!("wrote stress examples to {}", dir.display());
    Ok(())
}
