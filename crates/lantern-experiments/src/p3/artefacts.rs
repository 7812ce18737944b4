//! P3's artefacts, one function per file or figure written. The pipeline ([`super::run_all`])
//! and the `lantern sessions` and `graph` commands both write through these: the causal graph,
//! one session's time series (and a steered one), the spread simulation, probe accuracies, and
//! the steering control (own direction vs random ones).

use anyhow::Result;
use lantern_causal::GraphReport;
use lantern_plot::{
    bar_chart, graph_figure, grouped_bar_chart, time_series, BarGroup, BarOptions, GraphEdge,
    GraphOptions, PlotOptions, TimeSeriesOptions,
};
use lantern_states::StateAccuracy;

use super::steps::{ControlRow, P3Config, P3Report, Sessions};
use crate::output::ResultsDir;

/// `probe_accuracy.csv`: each state's held-out accuracy, AUC, test size and flag.
pub fn probe_accuracy_csv(dir: &ResultsDir, held_out: &[StateAccuracy]) -> Result<()> {
    let mut rows = vec![vec![
        "state".to_string(),
        "balanced_accuracy".into(),
        "auc".into(),
        "n_test".into(),
        "flagged".into(),
    ]];
    for a in held_out {
        rows.push(vec![
            a.state.clone(),
            format!("{:.4}", a.accuracy),
            format!("{:.4}", a.auc),
            a.n_test.to_string(),
            a.flagged.to_string(),
        ]);
    }
    dir.csv("probe_accuracy.csv", &rows)?;
    Ok(())
}

/// `<name>` (CSV): the recorded series, `session,step,<states…>`.
pub fn series_csv(dir: &ResultsDir, name: &str, sessions: &Sessions) -> Result<()> {
    dir.csv(name, &sessions.csv_rows())?;
    Ok(())
}

/// `series<suffix>.csv` and `transcripts<suffix>.json` of one set of sessions.
pub fn write_sessions(dir: &ResultsDir, suffix: &str, sessions: &Sessions) -> Result<()> {
    series_csv(dir, &format!("series{suffix}.csv"), sessions)?;
    dir.json(&format!("transcripts{suffix}.json"), &sessions.transcripts)?;
    Ok(())
}

/// `graph.json` and `graph.dot`.
pub fn graph_files(dir: &ResultsDir, report: &GraphReport) -> Result<()> {
    dir.text("graph.json", &report.to_json()?)?;
    dir.text("graph.dot", &report.to_dot())?;
    Ok(())
}

/// What `lantern graph --out` writes: `graph.json`, `graph.dot` and the `graph` figure.
pub fn write_graph(dir: &ResultsDir, report: &GraphReport) -> Result<()> {
    graph_files(dir, report)?;
    graph_chart(dir, report, None)
}

/// `graph`: the time-lagged causal graph; `layer` (the residual stream the states read) goes
/// into the title when known.
pub fn graph_chart(dir: &ResultsDir, g: &GraphReport, layer: Option<usize>) -> Result<()> {
    let index = |name: &str| g.nodes.iter().position(|n| n == name);
    let edges: Vec<GraphEdge> = g
        .edges
        .iter()
        .filter_map(|e| {
            let edge = GraphEdge::new(index(&e.from)?, index(&e.to)?, e.weight, e.lag);
            // Unoriented lag-0 links stay unoriented in the figure (no arrowhead).
            Some(if e.kind == lantern_causal::LinkKind::Directed {
                edge
            } else {
                edge.undirected()
            })
        })
        .collect();
    let title = match layer {
        Some(layer) => format!(
            "Causal graph of states (layer {layer}; spectral radius {:.2}; {} feedback loops)",
            g.spectral_radius, g.n_feedback_loops
        ),
        None => format!(
            "Time-lagged causal graph (spectral radius {:.2})",
            g.spectral_radius
        ),
    };
    let opts = GraphOptions::new(PlotOptions::new(title).size(900, 800));
    graph_figure(&g.nodes, &edges, &opts, dir.path("graph"))?;
    Ok(())
}

/// The pipeline's figures: the graph, session 0 (and its steered twin), the spread
/// simulation, probe accuracies and the steering control.
pub fn figures(
    r: &P3Report,
    sessions: &Sessions,
    steered: Option<&Sessions>,
    cfg: &P3Config,
    dir: &ResultsDir,
) -> Result<()> {
    let g = &r.graph;
    graph_chart(dir, g, Some(r.layer))?;

    let mut opts = TimeSeriesOptions::new(
        PlotOptions::new("State activations over one session (session 0)")
            .x_label("step")
            .y_label("state activation (probe score)"),
    );
    opts.markers = true;
    time_series(
        &sessions.states,
        &sessions.activations[0],
        &opts,
        dir.path("session_0"),
    )?;
    if let (Some(s), Some(state)) = (steered, &cfg.steer_state) {
        let mut opts = TimeSeriesOptions::new(
            PlotOptions::new(format!(
                "Session 0 with `{state}` steered (strength {})",
                cfg.steer_strength
            ))
            .x_label("step")
            .y_label("state activation (probe score)"),
        );
        if let (Some(&lo), Some(&hi)) = (cfg.steer_steps.iter().min(), cfg.steer_steps.iter().max())
        {
            opts.window = Some((lo as f64 - 0.5, hi as f64 + 0.5));
            opts.window_label = format!("steering {state}");
        }
        time_series(
            &s.states,
            &s.activations[0],
            &opts,
            dir.path("session_0_steered"),
        )?;
    }
    if let Some(spread) = &r.spread {
        let values: Vec<Vec<f64>> = (0..spread.trajectories.first().map_or(0, Vec::len))
            .map(|t| spread.trajectories.iter().map(|tr| tr[t]).collect())
            .collect();
        if !values.is_empty() {
            let mut opts = TimeSeriesOptions::new(
                PlotOptions::new(format!(
                    "Spread simulation: `{}` set to +2 SD at step 0",
                    spread.source
                ))
                .x_label("step")
                .y_label("state (SD units)"),
            );
            opts.window = Some((-0.5, 0.5));
            opts.window_label = "input".into();
            time_series(&g.nodes, &values, &opts, dir.path("spread"))?;
        }
    }
    let labels: Vec<String> = r
        .probe_accuracy
        .iter()
        .map(|a| {
            if a.flagged {
                format!("{} (flagged)", a.state)
            } else {
                a.state.clone()
            }
        })
        .collect();
    let values: Vec<f64> = r.probe_accuracy.iter().map(|a| a.accuracy).collect();
    let mut opts = BarOptions::new(
        PlotOptions::new(format!(
            "Held-out probe accuracy ({}, layer {}; threshold {})",
            r.method, r.layer, cfg.accuracy_threshold
        ))
        .x_label("state")
        .y_label("balanced accuracy")
        .y_range(0.0, 1.0),
    );
    opts.color_by_sign = false;
    bar_chart(&labels, &values, None, &opts, dir.path("probe_accuracy"))?;

    if let Some(control) = &r.steering_control {
        let rows = &control.states;
        let names: Vec<&str> = rows.iter().map(|c| c.state.as_str()).collect();
        let step = cfg.check_step;
        let k = control.seeds.len();
        let random = |name: String, mean: fn(&ControlRow) -> f64, sd: fn(&ControlRow) -> f64| {
            let mut g = BarGroup::new(name, rows.iter().map(mean).collect());
            if k > 1 {
                g.errors = Some(rows.iter().map(sd).collect());
            }
            g
        };
        let groups = [
            BarGroup::new(
                format!("own direction, step {step}"),
                rows.iter().map(|c| c.own_at_step).collect(),
            ),
            random(
                format!("random directions, step {step}"),
                |c| c.random_at_step_mean,
                |c| c.random_at_step_sd,
            ),
            BarGroup::new(
                format!("own direction, step {}", step + 1),
                rows.iter().map(|c| c.own_next).collect(),
            ),
            random(
                format!("random directions, step {}", step + 1),
                |c| c.random_next_mean,
                |c| c.random_next_sd,
            ),
        ];
        let opts = BarOptions::new(
            PlotOptions::new(format!(
                "Steering at step {step}: own direction vs {k} random direction{} \
                 (strength {}{})",
                if k == 1 { "" } else { "s" },
                control.strength,
                if k > 1 { "; mean ± SD" } else { "" },
            ))
            .x_label("state")
            .y_label("mean change of the state (SD units)")
            .size(1100, 650),
        );
        grouped_bar_chart(&names, &groups, &opts, dir.path("steering_control"))?;
    }
    Ok(())
}
