//! P2's artefacts, one function per file or figure written. The pipeline ([`super::run_all`])
//! and the `lantern shapley` command both write through these, so a figure is drawn one way.

use anyhow::Result;
use lantern_plot::{
    bar_chart, grouped_bar_chart, heatmap, line_chart, waterfall, BarGroup, BarOptions,
    HeatmapOptions, LineOptions, PlotOptions, Series, WaterfallOptions,
};
use lantern_shapley::ShapleyResult;

use super::steps::TemplateReport;
use crate::output::{grid_csv, ResultsDir};

/// Everything the pipeline writes for one template (`stem` = the template file's stem).
pub fn write_template(dir: &ResultsDir, stem: &str, r: &TemplateReport) -> Result<()> {
    dir.json(&format!("shapley_{stem}.json"), r)?;
    template_csv(dir, stem, r)?;
    interaction_csv(dir, stem, r)?;
    estimator_bars(dir, stem, r)?;
    waterfall_chart(
        dir,
        &format!("waterfall_{stem}"),
        &r.exact,
        &format!("From v(none) to v(all): {stem}"),
        1100,
    )?;
    convergence_chart(dir, stem, r)?;
    interaction_heatmap(dir, stem, r)
}

/// `summary.json`: one row per template.
pub fn summary_json(dir: &ResultsDir, reports: &[TemplateReport]) -> Result<()> {
    let summary: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| serde_json::json!({"template": r.template, "noise_share": r.noise_share, "v_empty": r.exact.v_empty, "v_full": r.exact.v_full, "seconds_exact": r.seconds_exact, "evaluations": r.exact.evaluations}))
        .collect();
    dir.json("summary.json", &summary)?;
    Ok(())
}

/// What `lantern shapley --out` writes: `shapley.json`, its bar chart and waterfall.
pub fn write_shapley(dir: &ResultsDir, result: &ShapleyResult) -> Result<()> {
    dir.json("shapley.json", result)?;
    let bars = BarOptions::new(
        PlotOptions::new(format!(
            "Shapley values ({}, {} evaluations)",
            result.method, result.evaluations
        ))
        .x_label("component")
        .y_label("Shapley value")
        .size(1000, 650),
    );
    bar_chart(
        &result.players,
        &result.values,
        Some(&result.std_errors),
        &bars,
        dir.path("shapley"),
    )?;
    waterfall_chart(dir, "waterfall", result, "From v(none) to v(all)", 1000)
}

/// `shapley_<stem>.csv`: per player, exact values next to both estimates and their errors.
pub fn template_csv(dir: &ResultsDir, stem: &str, r: &TemplateReport) -> Result<()> {
    let mut rows = vec![vec![
        "player".into(),
        "exact".into(),
        "permutation".into(),
        "permutation_se".into(),
        "kernel".into(),
        "kernel_se".into(),
    ]];
    for i in 0..r.exact.players.len() {
        rows.push(vec![
            r.exact.players[i].clone(),
            format!("{:.6}", r.exact.values[i]),
            format!("{:.6}", r.permutation.values[i]),
            format!("{:.6}", r.permutation.std_errors[i]),
            format!("{:.6}", r.kernel.values[i]),
            format!("{:.6}", r.kernel.std_errors[i]),
        ]);
    }
    dir.csv(&format!("shapley_{stem}.csv"), &rows)?;
    Ok(())
}

/// `interaction_<stem>.csv`: the pairwise interaction matrix.
pub fn interaction_csv(dir: &ResultsDir, stem: &str, r: &TemplateReport) -> Result<()> {
    dir.csv(
        &format!("interaction_{stem}.csv"),
        &grid_csv(
            "player",
            &r.interaction.players,
            &r.interaction.players,
            &r.interaction.matrix,
        ),
    )?;
    Ok(())
}

/// `shapley_<stem>`: exact values next to both estimates (±1 SE) per component.
pub fn estimator_bars(dir: &ResultsDir, stem: &str, r: &TemplateReport) -> Result<()> {
    let players = &r.exact.players;
    let groups = [
        BarGroup::new("exact", r.exact.values.clone()),
        BarGroup::new(
            format!("permutation ({} evals) ±1 SE", r.permutation.evaluations),
            r.permutation.values.clone(),
        )
        .with_errors(r.permutation.std_errors.clone()),
        BarGroup::new(
            format!("kernel ({} evals) ±1 SE", r.kernel.evaluations),
            r.kernel.values.clone(),
        )
        .with_errors(r.kernel.std_errors.clone()),
    ];
    let opts = BarOptions::new(
        PlotOptions::new(format!(
            "Shapley value per prompt component ({stem}; no-information share {:.0}%)",
            100.0 * r.noise_share
        ))
        .x_label("component")
        .y_label("Shapley value (change in value)")
        .size(1100, 650),
    );
    grouped_bar_chart(
        players,
        &groups,
        &opts,
        dir.path(&format!("shapley_{stem}")),
    )?;
    Ok(())
}

/// A waterfall from v(none) through each component's Shapley value to v(all), `width` × 650.
pub fn waterfall_chart(
    dir: &ResultsDir,
    name: &str,
    result: &ShapleyResult,
    title: &str,
    width: u32,
) -> Result<()> {
    let steps: Vec<(String, f64)> = result
        .players
        .iter()
        .cloned()
        .zip(result.values.iter().copied())
        .collect();
    let opts = WaterfallOptions::new(
        PlotOptions::new(title)
            .x_label("component")
            .y_label("value")
            .size(width, 650),
    );
    waterfall(
        "v(none)",
        result.v_empty,
        &steps,
        "v(all)",
        &opts,
        dir.path(name),
    )?;
    Ok(())
}

/// `convergence_<stem>`: each estimator's error against the exact values by budget (log-log);
/// skipped when no estimate differs from the exact values.
pub fn convergence_chart(dir: &ResultsDir, stem: &str, r: &TemplateReport) -> Result<()> {
    let mut series = Vec::new();
    for method in ["permutation", "kernel"] {
        let pts: Vec<_> = r
            .convergence
            .iter()
            .filter(|c| c.method == method && c.mean_abs_error > 0.0)
            .collect();
        if !pts.is_empty() {
            series.push(Series::new(
                method,
                pts.iter().map(|c| c.evaluations).collect(),
                pts.iter().map(|c| c.mean_abs_error).collect(),
            ));
        }
    }
    if !series.is_empty() {
        let mut opts = LineOptions::new(
            PlotOptions::new(format!("Estimator error vs budget ({stem})"))
                .x_label("model evaluations (distinct coalitions)")
                .y_label("mean |estimate − exact|"),
        );
        opts.log_x = true;
        opts.log_y = true;
        line_chart(&series, &opts, dir.path(&format!("convergence_{stem}")))?;
    }
    Ok(())
}

/// `interaction_<stem>`: the pairwise Shapley interaction index as a heatmap.
pub fn interaction_heatmap(dir: &ResultsDir, stem: &str, r: &TemplateReport) -> Result<()> {
    let mut opts = HeatmapOptions::new(
        PlotOptions::new(format!("Pairwise Shapley interaction index ({stem})"))
            .x_label("component")
            .y_label("component")
            .size(900, 800),
    );
    opts.colorbar_label = "interaction".into();
    heatmap(
        &r.interaction.matrix,
        &r.interaction.players,
        &r.interaction.players,
        &opts,
        dir.path(&format!("interaction_{stem}")),
    )?;
    Ok(())
}

/// The protocol's figures: `counterbalanced_<stem>` per template (values in each order and
/// their mean), `noise_share` (observed against the exchangeable null), `responsiveness` (when
/// checked) and `framing` (when frames are given).
pub fn protocol_figures(dir: &ResultsDir, r: &super::P2Report) -> Result<()> {
    for t in &r.templates {
        let stem = std::path::Path::new(&t.template)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("template");
        let order_names = ["original order", "A/B swapped"];
        let mut groups: Vec<BarGroup> = t
            .values_by_order
            .iter()
            .zip(order_names)
            .map(|(v, name)| BarGroup::new(name, v.clone()))
            .collect();
        if t.values_by_order.len() > 1 {
            groups.push(BarGroup::new("mean of orders", t.values_mean.clone()));
        }
        let opts = BarOptions::new(
            PlotOptions::new(format!("Exact Shapley values by option order: {stem}"))
                .x_label("component")
                .y_label("Shapley value (p of the option's content)")
                .size(1100, 650),
        );
        grouped_bar_chart(
            &t.players,
            &groups,
            &opts,
            dir.path(&format!("counterbalanced_{stem}")),
        )?;
    }
    let stems: Vec<String> = r
        .templates
        .iter()
        .map(|t| {
            std::path::Path::new(&t.template)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("template")
                .to_string()
        })
        .collect();
    let groups = [
        BarGroup::new(
            "observed (mean of orders)",
            r.templates
                .iter()
                .map(|t| 100.0 * t.noise_null_mean.share)
                .collect(),
        ),
        BarGroup::new(
            "exchangeable null (k/n)",
            r.templates
                .iter()
                .map(|t| 100.0 * t.noise_null_mean.null_share)
                .collect(),
        ),
    ];
    let opts = BarOptions::new(
        PlotOptions::new("Share of |Shapley| taken by no-information components")
            .x_label("template")
            .y_label("noise share (%)")
            .y_range(0.0, 100.0)
            .size(1000, 600),
    );
    grouped_bar_chart(&stems, &groups, &opts, dir.path("noise_share"))?;

    if r.templates.iter().any(|t| !t.responsiveness.is_empty()) {
        let (mut cats, mut before, mut after) = (Vec::new(), Vec::new(), Vec::new());
        for (t, stem) in r.templates.iter().zip(&stems) {
            for x in &t.responsiveness {
                cats.push(format!("{stem} ({})", x.order));
                before.push(100.0 * x.p_chosen);
                after.push(100.0 * x.p_chosen_swapped_attribute);
            }
        }
        let player = &r.templates[0].responsiveness[0].player;
        let groups = [
            BarGroup::new("as written", before),
            BarGroup::new(format!("`{player}` values exchanged"), after),
        ];
        let opts = BarOptions::new(
            PlotOptions::new(format!(
                "Responsiveness: exchanging the {player} values must move the choice"
            ))
            .x_label("template (order)")
            .y_label("p(chosen option's content) (%)")
            .y_range(0.0, 100.0)
            .size(1100, 600),
        );
        grouped_bar_chart(&cats, &groups, &opts, dir.path("responsiveness"))?;
    }

    if let Some(f) = &r.framing {
        let mut labels: Vec<String> = f
            .differences
            .iter()
            .map(|d| {
                let g = std::path::Path::new(&d.gain)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("gain");
                format!("{g} ({})", ["original", "swapped"][d.order.min(1)])
            })
            .collect();
        let mut values: Vec<f64> = f.differences.iter().map(|d| 100.0 * d.difference).collect();
        let mut errors = vec![0.0; values.len()];
        labels.push("mean (95% t interval)".into());
        values.push(100.0 * f.gain_minus_loss);
        errors.push(f.ci95.map_or(0.0, |ci| 100.0 * (ci[1] - ci[0]) / 2.0));
        let opts = BarOptions::new(
            PlotOptions::new("Framing: p(sure option | gain frame) − p(sure option | loss frame)")
                .x_label("paraphrase (order)")
                .y_label("difference (percentage points)")
                .size(1000, 600),
        );
        bar_chart(&labels, &values, Some(&errors), &opts, dir.path("framing"))?;
    }
    Ok(())
}
