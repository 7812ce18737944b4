//! P3's figures: the causal graph, one session's time series (and a steered one), the spread
//! simulation, probe accuracies, and the steering control (own direction vs random ones).

use anyhow::Result;
use lantern_plot::{
    bar_chart, graph_figure, grouped_bar_chart, time_series, BarGroup, BarOptions, GraphEdge,
    GraphOptions, PlotOptions, TimeSeriesOptions,
};

use crate::output::ResultsDir;
use crate::p3::{ControlRow, P3Config, P3Report, Sessions};

pub fn all(
    r: &P3Report,
    sessions: &Sessions,
    steered: Option<&Sessions>,
    cfg: &P3Config,
    dir: &ResultsDir,
) -> Result<()> {
    let g = &r.graph;
    let index = |name: &str| g.nodes.iter().position(|n| n == name);
    let edges: Vec<GraphEdge> = g
        .edges
        .iter()
        .filter_map(|e| {
            Some(GraphEdge::new(
                index(&e.from)?,
                index(&e.to)?,
                e.weight,
                e.lag,
            ))
        })
        .collect();
    let opts = GraphOptions::new(
        PlotOptions::new(format!(
            "Time-lagged causal graph of states (layer {}, spectral radius {:.2})",
            r.layer, g.spectral_radius
        ))
        .size(900, 800),
    );
    graph_figure(&g.nodes, &edges, &opts, dir.path("graph"))?;

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
                cfg.steer_strength,
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
