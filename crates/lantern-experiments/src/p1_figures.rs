//! P1's figures: head-attribution heatmap, patching heatmaps, alpha-vs-rate curves, baseline bars.

use anyhow::Result;
use lantern_plot::{
    grouped_bar_chart, heatmap, line_chart, BarGroup, BarOptions, ColorScale, HeatmapOptions,
    LineOptions, PlotOptions, Series,
};

use crate::output::ResultsDir;
use crate::p1::P1Report;

pub fn all(r: &P1Report, dir: &ResultsDir) -> Result<()> {
    let layers: Vec<String> = (0..r.heads.layers).map(|l| l.to_string()).collect();
    let heads: Vec<String> = (0..r.heads.heads).map(|h| h.to_string()).collect();

    let mut opts = HeatmapOptions::new(
        PlotOptions::new(format!(
            "Direct logit attribution per head (mean over {} prompts)",
            r.heads.prompts_used
        ))
        .x_label("head")
        .y_label("layer")
        .size(760, 900),
    );
    opts.colorbar_label = "logit(in-context) − logit(memorized)".into();
    heatmap(
        &r.heads.values,
        &layers,
        &heads,
        &opts,
        dir.path("heads_dla"),
    )?;

    let p = &r.patching;
    let mut opts = HeatmapOptions::new(
        PlotOptions::new("Activation patching: resid_pre (clean → corrupted)")
            .x_label("position (token)")
            .y_label("layer")
            .size(1000, 900),
    );
    opts.colorbar_label = "normalised logit difference (1 = clean)".into();
    opts.color_scale = ColorScale::Diverging { limit: None };
    let cols: Vec<String> = p
        .resid_pre_tokens
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{i}:{t}"))
        .collect();
    heatmap(
        &p.resid_pre.values,
        &layers,
        &cols,
        &opts,
        dir.path("patching_resid_pre"),
    )?;

    let mut opts = HeatmapOptions::new(
        PlotOptions::new(format!(
            "Activation patching: head outputs (hook_z), mean over {} pairs",
            p.pairs
        ))
        .x_label("head")
        .y_label("layer")
        .size(760, 900),
    );
    opts.colorbar_label = "normalised logit difference (1 = clean)".into();
    heatmap(&p.heads, &layers, &heads, &opts, dir.path("patching_heads"))?;

    let mut series = Vec::new();
    for s in &r.sweeps {
        let xs: Vec<f64> = s.points.iter().map(|p| p.alpha).collect();
        series.push(Series::new(
            format!("L{}H{} ({} head): in-context", s.layer, s.head, s.role),
            xs.clone(),
            s.points.iter().map(|p| 100.0 * p.in_context).collect(),
        ));
        series.push(Series::new(
            format!("L{}H{} ({} head): memorized", s.layer, s.head, s.role),
            xs,
            s.points.iter().map(|p| 100.0 * p.memorized).collect(),
        ));
    }
    if !series.is_empty() {
        let opts = LineOptions::new(
            PlotOptions::new(format!(
                "Scaling one head's value vectors ({} prompts)",
                r.n_prompts
            ))
            .x_label("alpha (value-vector scale)")
            .y_label("answer rate (%)")
            .y_range(0.0, 100.0),
        );
        line_chart(&series, &opts, dir.path("alpha_sweep"))?;
    }

    let b = &r.baseline;
    let cats = ["no context", "counterfactual context"];
    let groups = [
        BarGroup::new(
            "in-context city",
            vec![
                100.0 * b.without_context.in_context,
                100.0 * b.with_context.in_context,
            ],
        ),
        BarGroup::new(
            "memorized capital",
            vec![
                100.0 * b.without_context.memorized,
                100.0 * b.with_context.memorized,
            ],
        ),
        BarGroup::new(
            "other",
            vec![
                100.0 * b.without_context.other,
                100.0 * b.with_context.other,
            ],
        ),
    ];
    let opts = BarOptions::new(
        PlotOptions::new(format!(
            "Answer rates, greedy continuation ({} prompts)",
            r.n_prompts
        ))
        .x_label("prompt")
        .y_label("share of prompts (%)")
        .y_range(0.0, 100.0),
    );
    grouped_bar_chart(&cats, &groups, &opts, dir.path("baseline"))?;
    Ok(())
}
