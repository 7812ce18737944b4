//! P2's figures: per-component bars with error bars, waterfall, estimator convergence, interactions.

use anyhow::Result;
use lantern_plot::{
    grouped_bar_chart, heatmap, line_chart, waterfall, BarGroup, BarOptions, HeatmapOptions,
    LineOptions, PlotOptions, Series, WaterfallOptions,
};

use crate::output::ResultsDir;
use crate::p2::TemplateReport;

pub fn template(r: &TemplateReport, stem: &str, dir: &ResultsDir) -> Result<()> {
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

    let steps: Vec<(String, f64)> = players
        .iter()
        .cloned()
        .zip(r.exact.values.iter().copied())
        .collect();
    let opts = WaterfallOptions::new(
        PlotOptions::new(format!("From v(none) to v(all): {stem}"))
            .x_label("component")
            .y_label("value")
            .size(1100, 650),
    );
    waterfall(
        "v(none)",
        r.exact.v_empty,
        &steps,
        "v(all)",
        &opts,
        dir.path(&format!("waterfall_{stem}")),
    )?;

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
