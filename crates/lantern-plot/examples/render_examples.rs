//! Renders one example of every figure type.
//!
//! `cargo run -p lantern-plot --example render_examples -- [OUT_DIR]`
//! (default OUT_DIR: /tmp/plot-examples)

use std::path::PathBuf;

use lantern_plot::*;

/// Tiny deterministic generator (no external dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

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
    let mut rng = Lcg(42);

    // 1a. Direct logit attribution per head (layer x head), diverging.
    let dla: Vec<Vec<f64>> = (0..12)
        .map(|l| {
            (0..12)
                .map(|h| {
                    let spike = if (l, h) == (9, 6) {
                        2.4
                    } else if (l, h) == (10, 7) {
                        -1.7
                    } else if (l, h) == (9, 9) {
                        1.3
                    } else {
                        0.0
                    };
                    spike + 0.15 * rng.normal()
                })
                .collect()
        })
        .collect();
    heatmap(
        &dla,
        &[] as &[&str],
        &[] as &[&str],
        &HeatmapOptions {
            colorbar_label: "logit difference".into(),
            ..PlotOptions::new("Direct logit attribution per head")
                .x_label("head")
                .y_label("layer")
                .into()
        },
        dir.join("heatmap_dla"),
    )?;

    // 1b. Large model: 32 layers x 32 heads (label thinning, no annotations).
    let big: Vec<Vec<f64>> = (0..32)
        .map(|l| {
            (0..32)
                .map(|h| ((l * 7 + h * 3) % 11) as f64 / 10.0 - 0.5 + 0.2 * rng.normal())
                .collect()
        })
        .collect();
    heatmap(
        &big,
        &[] as &[&str],
        &[] as &[&str],
        &HeatmapOptions {
            colorbar_label: "logit difference".into(),
            ..PlotOptions::new("Direct logit attribution (32 layers × 32 heads)")
                .x_label("head")
                .y_label("layer")
                .into()
        },
        dir.join("heatmap_dla_large"),
    )?;

    // 1c. Activation patching: layer x token position, sequential 0..1.
    let tokens = [
        "<|endoftext|>",
        "When",
        " Mary",
        " and",
        " John",
        " went",
        " to",
        " the",
        " store",
        ",",
        " John",
        " gave",
        " a",
        " drink",
        " to",
    ];
    let patch: Vec<Vec<f64>> = (0..12)
        .map(|l| {
            tokens
                .iter()
                .enumerate()
                .map(|(p, _)| {
                    let v: f64 = if p == 10 && l < 8 {
                        0.9 - 0.05 * l as f64
                    } else if p == 14 && l >= 8 {
                        0.6 + 0.04 * l as f64
                    } else {
                        0.03 * rng.next()
                    };
                    v.clamp(0.0, 1.0)
                })
                .collect()
        })
        .collect();
    heatmap(
        &patch,
        &[] as &[&str],
        &tokens,
        &HeatmapOptions {
            color_scale: ColorScale::Sequential {
                min: Some(0.0),
                max: Some(1.0),
            },
            colorbar_label: "fraction of logit diff. restored".into(),
            ..PlotOptions::new("Activation patching: residual stream")
                .x_label("token position")
                .y_label("layer")
                .into()
        },
        dir.join("heatmap_patching"),
    )?;

    // 1d. Shapley interaction matrix (small, annotated).
    let comps = ["embed", "L0 attn", "L0 MLP", "L1 attn", "L1 MLP", "unembed"];
    let inter: Vec<Vec<f64>> = (0..6)
        .map(|i| {
            (0..6)
                .map(|j| {
                    if i == j {
                        0.0
                    } else {
                        ((i * 5 + j * 3) % 7) as f64 / 10.0 - 0.3
                    }
                })
                .collect()
        })
        .collect();
    heatmap(
        &inter,
        &comps,
        &comps,
        &HeatmapOptions {
            colorbar_label: "interaction index".into(),
            ..PlotOptions::new("Shapley interaction indices")
                .x_label("component j")
                .y_label("component i")
                .into()
        },
        dir.join("heatmap_interactions"),
    )?;

    // 2. Estimator convergence (log-log) with error bands.
    let evals: Vec<f64> = (0..9).map(|k| 10f64.powf(1.0 + 0.5 * k as f64)).collect();
    let mk = |name: &str, c: f64, rate: f64| {
        let ys: Vec<f64> = evals.iter().map(|n| c * n.powf(-rate)).collect();
        let err: Vec<f64> = ys.iter().map(|y| 0.25 * y).collect();
        Series::new(name, evals.clone(), ys).with_errors(err)
    };
    line_chart(
        &[
            mk("Monte Carlo permutation", 2.0, 0.5),
            mk("Antithetic sampling", 1.2, 0.5),
            mk("KernelSHAP", 3.0, 0.75),
        ],
        &LineOptions {
            log_x: true,
            log_y: true,
            ..PlotOptions::new("Shapley estimator convergence")
                .x_label("number of model evaluations")
                .y_label("mean absolute error (logits)")
                .into()
        },
        dir.join("line_convergence"),
    )?;
    // 2b. Linear axes, error bars.
    let xs: Vec<f64> = (0..12).map(|i| i as f64).collect();
    let s1: Vec<f64> = xs
        .iter()
        .map(|x| 0.2 + 0.6 / (1.0 + (-(x - 6.0)).exp()))
        .collect();
    let s2: Vec<f64> = xs.iter().map(|x| 0.75 - 0.04 * x).collect();
    line_chart(
        &[
            Series::new("in-context accuracy", xs.clone(), s1).with_errors(vec![0.04; 12]),
            Series::new("memorized accuracy", xs.clone(), s2).with_errors(vec![0.03; 12]),
        ],
        &LineOptions {
            error_style: ErrorStyle::Bars,
            ..PlotOptions::new("Accuracy across layers")
                .x_label("layer")
                .y_label("accuracy")
                .into()
        },
        dir.join("line_errorbars"),
    )?;

    // 3a. Bar chart with ±1 SE, coloured by sign.
    let heads = [
        "L9H6", "L9H9", "L10H0", "L10H7", "L11H10", "L8H6", "L7H9", "L3H0",
    ];
    let vals = [2.31, 1.28, 0.64, -1.72, -0.83, 0.41, 0.22, -0.15];
    let errs = [0.12, 0.10, 0.08, 0.11, 0.09, 0.06, 0.05, 0.05];
    bar_chart(
        &heads,
        &vals,
        Some(&errs),
        &PlotOptions::new("Top heads by direct logit attribution")
            .x_label("head")
            .y_label("logit difference (±1 SE)")
            .into(),
        dir.join("bar_vertical"),
    )?;
    bar_chart(
        &heads,
        &vals,
        Some(&errs),
        &BarOptions {
            orientation: Orientation::Horizontal,
            ..PlotOptions::new("Top heads by direct logit attribution")
                .x_label("logit difference (±1 SE)")
                .into()
        },
        dir.join("bar_horizontal"),
    )?;
    // 3b. Grouped bars: baseline rates per condition.
    let conds = ["clean", "counterfactual", "shuffled context", "no context"];
    grouped_bar_chart(
        &conds,
        &[
            BarGroup::new("in-context", vec![0.71, 0.52, 0.18, 0.02])
                .with_errors(vec![0.03, 0.04, 0.03, 0.01]),
            BarGroup::new("memorized", vec![0.22, 0.41, 0.55, 0.81])
                .with_errors(vec![0.03, 0.04, 0.04, 0.03]),
            BarGroup::new("other", vec![0.07, 0.07, 0.27, 0.17])
                .with_errors(vec![0.02, 0.02, 0.03, 0.03]),
        ],
        &PlotOptions::new("Answer source by condition")
            .x_label("condition")
            .y_label("rate")
            .into(),
        dir.join("bar_grouped"),
    )?;

    // 4. Waterfall.
    let steps = [
        ("embed", 0.42),
        ("L0 attn", -0.18),
        ("L0 MLP", 0.65),
        ("L1 attn", 1.35),
        ("L1 MLP", -0.52),
        ("L2 attn", 0.88),
        ("L2 MLP", 0.21),
        ("L3 attn", -0.31),
    ];
    waterfall(
        "v(∅)",
        0.35,
        &steps,
        "v(all)",
        &PlotOptions::new("Shapley decomposition of the logit difference")
            .x_label("component")
            .y_label("logit difference")
            .into(),
        dir.join("waterfall"),
    )?;

    // 5. Causal graph of representational states.
    let nodes = ["sentiment", "topic", "negation", "certainty", "formality"];
    let edges = vec![
        GraphEdge::new(0, 0, 0.82, 1),
        GraphEdge::new(1, 1, 0.64, 1),
        GraphEdge::new(3, 3, 0.35, 1),
        GraphEdge::new(2, 0, -0.71, 0),
        GraphEdge::new(0, 2, 0.25, 1),
        GraphEdge::new(1, 0, 0.33, 0),
        GraphEdge::new(1, 3, 0.41, 1),
        GraphEdge::new(3, 4, -0.28, 0),
        GraphEdge::new(4, 1, 0.19, 1),
        GraphEdge::new(0, 3, 0.52, 0),
        GraphEdge::new(0, 3, -0.22, 1),
    ];
    graph_figure(
        &nodes,
        &edges,
        &PlotOptions::new("Causal graph of representational states").into(),
        dir.join("graph"),
    )?;

    // 6. Time series with an intervention window.
    let names = ["sentiment", "topic", "negation", "certainty"];
    let mut state = [0.2f64, -0.1, 0.0, 0.4];
    let values: Vec<Vec<f64>> = (0..100)
        .map(|t| {
            let push = if (40..60).contains(&t) { 0.08 } else { 0.0 };
            state[0] = 0.9 * state[0] + push + 0.04 * rng.normal();
            state[1] = 0.95 * state[1] + 0.03 * rng.normal();
            state[2] = 0.8 * state[2] - 0.3 * push + 0.04 * rng.normal();
            state[3] = 0.9 * state[3] + 0.05 * state[0] + 0.03 * rng.normal();
            state.to_vec()
        })
        .collect();
    time_series(
        &names,
        &values,
        &TimeSeriesOptions {
            window: Some((40.0, 60.0)),
            ..PlotOptions::new("Representational states during a session")
                .y_label("probe activation (a.u.)")
                .into()
        },
        dir.join("time_series"),
    )?;
    // 6b. Spread simulation.
    let n = 60;
    let spread: Vec<Vec<f64>> = (0..n)
        .map(|t| {
            let t = t as f64;
            let adopt = 1.0 / (1.0 + (-(t - 25.0) / 4.0).exp());
            let aware = 1.0 / (1.0 + (-(t - 15.0) / 3.0).exp());
            vec![aware, adopt, 1.0 - aware]
        })
        .collect();
    time_series(
        &["aware", "adopted", "unaware"],
        &spread,
        &TimeSeriesOptions {
            window: Some((10.0, 20.0)),
            window_label: "seeding".into(),
            ..PlotOptions::new("Belief spread simulation")
                .x_label("round")
                .y_label("fraction of agents")
                .into()
        },
        dir.join("time_series_spread"),
    )?;
    println!("wrote examples to {}", dir.display());
    Ok(())
}
