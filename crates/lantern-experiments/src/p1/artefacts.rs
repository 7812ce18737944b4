//! P1's artefacts, one function per file or figure written. The pipeline ([`super::run_all`])
//! and the `lantern heads`, `patch` and `scale` commands both write through these, so each
//! table and figure is built one way.

use anyhow::Result;
use lantern_attribution::{AlphaPoint, PatchGrid};
use lantern_plot::{
    grouped_bar_chart, heatmap, line_chart, BarGroup, BarOptions, ColorScale, HeatmapOptions,
    LineOptions, PlotOptions, Series,
};

use super::steps::{
    Baseline, CommandJson, HeadAttribution, HeadSweep, HeadsMap, P1Report, PatchReport, Patching,
    ScaleReport,
};
use crate::output::{grid_csv, ResultsDir};

/// `L0, L1, …` / `H0, H1, …` (tables) or `0, 1, …` (figure axes).
fn labels(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// What `lantern heads --out` writes: `heads.json`, `heads.csv` and the `heads_dla` heatmap.
pub fn write_heads_map(dir: &ResultsDir, map: &HeadsMap) -> Result<()> {
    dir.json("heads.json", &map.to_json()?)?;
    heads_csv(dir, "heads.csv", &map.values)?;
    heads_heatmap(
        dir,
        &map.values,
        "Direct logit attribution per head".into(),
        &map.metric,
    )
}

/// The pipeline's head attribution: `heads.json` (with the rankings) and `heads.csv`.
pub fn write_head_attribution(dir: &ResultsDir, heads: &HeadAttribution) -> Result<()> {
    dir.json("heads.json", heads)?;
    heads_csv(dir, "heads.csv", &heads.values)
}

/// A `[layer][head]` map as CSV, rows `L0…`, columns `H0…`.
pub fn heads_csv(dir: &ResultsDir, name: &str, values: &[Vec<f64>]) -> Result<()> {
    let n_heads = values.first().map_or(0, Vec::len);
    dir.csv(
        name,
        &grid_csv(
            "layer\\head",
            &labels(values.len(), "L"),
            &labels(n_heads, "H"),
            values,
        ),
    )?;
    Ok(())
}

/// `heads_dla`: a `[layer][head]` attribution map as a heatmap (760 × 900).
pub fn heads_heatmap(
    dir: &ResultsDir,
    values: &[Vec<f64>],
    title: String,
    colorbar: &str,
) -> Result<()> {
    let n_heads = values.first().map_or(0, Vec::len);
    let mut opts = HeatmapOptions::new(
        PlotOptions::new(title)
            .x_label("head")
            .y_label("layer")
            .size(760, 900),
    );
    opts.colorbar_label = colorbar.to_string();
    heatmap(
        values,
        &labels(values.len(), ""),
        &labels(n_heads, ""),
        &opts,
        dir.path("heads_dla"),
    )?;
    Ok(())
}

/// What `lantern patch --out` writes: `patching.json`, `patching.csv` and the `patching`
/// heatmap, titled by the hook patched and coloured by the metric's name.
pub fn write_patch_report(
    dir: &ResultsDir,
    report: &PatchReport,
    hook: &str,
    metric: &str,
) -> Result<()> {
    let r = &report.result;
    dir.json("patching.json", &report.to_json()?)?;
    dir.csv(
        "patching.csv",
        &grid_csv("row\\col", &r.row_labels, &r.col_labels, &r.values),
    )?;
    // Position grids are labelled by the clean prompt's tokens.
    let cols: Vec<String> = if matches!(
        r.grid,
        PatchGrid::LayerPosition | PatchGrid::HeadPosition { .. }
    ) {
        token_labels(&report.tokens)
    } else {
        r.col_labels.clone()
    };
    let mut opts = HeatmapOptions::new(
        PlotOptions::new(format!("Activation patching: {hook}"))
            .x_label(if cols.len() == report.tokens.len() {
                "position (token)"
            } else {
                "head"
            })
            .y_label("layer")
            .size(1000, 900),
    );
    opts.colorbar_label = metric.to_string();
    heatmap(&r.values, &r.row_labels, &cols, &opts, dir.path("patching"))?;
    Ok(())
}

/// `0:tok, 1:tok, …`: positions labelled by their tokens.
fn token_labels(tokens: &[String]) -> Vec<String> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{i}:{t}"))
        .collect()
}

/// The pipeline's patching tables: `patching.json`, `patching_resid_pre.csv` and
/// `patching_heads.csv`.
pub fn write_patching(dir: &ResultsDir, patching: &Patching) -> Result<()> {
    dir.json("patching.json", patching)?;
    dir.csv(
        "patching_resid_pre.csv",
        &grid_csv(
            "layer\\position",
            &patching.resid_pre.row_labels,
            &patching.resid_pre.col_labels,
            &patching.resid_pre.values,
        ),
    )?;
    heads_csv(dir, "patching_heads.csv", &patching.heads)
}

/// What `lantern scale --out` writes: `scale.json` and the `scale` chart of answer rates
/// against alpha.
pub fn write_scale_report(dir: &ResultsDir, report: &ScaleReport) -> Result<()> {
    dir.json("scale.json", &report.to_json()?)?;
    let heads: Vec<String> = report
        .heads
        .iter()
        .map(|(l, h)| format!("{l}.{h}"))
        .collect();
    let series = [
        rate_series("in-context", &report.points, |p| p.in_context),
        rate_series("memorized", &report.points, |p| p.memorized),
        rate_series("other", &report.points, |p| p.other),
    ];
    let opts = LineOptions::new(
        PlotOptions::new(format!("Scaling value vectors of {}", heads.join(", ")))
            .x_label("alpha")
            .y_label("answer rate (%)")
            .y_range(0.0, 100.0),
    );
    line_chart(&series, &opts, dir.path("scale"))?;
    Ok(())
}

/// One answer rate (%) against alpha.
fn rate_series(
    name: impl Into<String>,
    points: &[AlphaPoint],
    rate: fn(&AlphaPoint) -> f64,
) -> Series {
    Series::new(
        name,
        points.iter().map(|p| p.alpha).collect(),
        points.iter().map(|p| 100.0 * rate(p)).collect(),
    )
}

/// The pipeline's alpha sweeps: `alpha_sweep.json` and `alpha_sweep.csv`.
pub fn write_sweeps(dir: &ResultsDir, sweeps: &[HeadSweep]) -> Result<()> {
    dir.json("alpha_sweep.json", &sweeps)?;
    let mut rows = vec![vec![
        "layer".into(),
        "head".into(),
        "role".into(),
        "alpha".into(),
        "in_context".into(),
        "memorized".into(),
        "other".into(),
        "n".into(),
        "in_context_lo".into(),
        "in_context_hi".into(),
        "memorized_lo".into(),
        "memorized_hi".into(),
    ]];
    for s in sweeps {
        for p in &s.points {
            rows.push(vec![
                s.layer.to_string(),
                s.head.to_string(),
                s.role.clone(),
                p.alpha.to_string(),
                format!("{:.4}", p.in_context),
                format!("{:.4}", p.memorized),
                format!("{:.4}", p.other),
                p.n.to_string(),
                format!("{:.4}", p.in_context_ci[0]),
                format!("{:.4}", p.in_context_ci[1]),
                format!("{:.4}", p.memorized_ci[0]),
                format!("{:.4}", p.memorized_ci[1]),
            ]);
        }
    }
    dir.csv("alpha_sweep.csv", &rows)?;
    Ok(())
}

/// The pipeline's figures: head attribution, both patching maps, the alpha sweeps and the
/// baseline answer rates.
pub fn figures(r: &P1Report, dir: &ResultsDir) -> Result<()> {
    heads_heatmap(
        dir,
        &r.heads.values,
        format!(
            "Direct logit attribution per head (mean over {} prompts)",
            r.heads.prompts_used
        ),
        "logit(in-context) − logit(memorized)",
    )?;
    patching_figures(&r.patching, dir)?;
    sweeps_chart(&r.sweeps, r.n_held_out, dir)?;
    other_bars(&r.baseline, dir)?;
    baseline_bars(&r.baseline, r.n_held_out, dir)
}

/// `patching_resid_pre` (layer × position of the first pair) and `patching_heads` (layer ×
/// head, mean over pairs).
pub fn patching_figures(p: &Patching, dir: &ResultsDir) -> Result<()> {
    let mut opts = HeatmapOptions::new(
        PlotOptions::new("Activation patching: resid_pre (clean → corrupted)")
            .x_label("position (token)")
            .y_label("layer")
            .size(1000, 900),
    );
    opts.colorbar_label = "normalised logit difference (1 = clean)".into();
    opts.color_scale = ColorScale::Diverging { limit: None };
    let layers = labels(p.heads.len(), "");
    heatmap(
        &p.resid_pre.values,
        &layers,
        &token_labels(&p.resid_pre_tokens),
        &opts,
        dir.path("patching_resid_pre"),
    )?;

    let mut opts = HeatmapOptions::new(
        PlotOptions::new(format!(
            "Activation patching: head outputs (hook_z), {} pairs ({} skipped), raw means normalised once",
            p.pairs,
            p.pairs_skipped.len()
        ))
        .x_label("head")
        .y_label("layer")
        .size(760, 900),
    );
    opts.colorbar_label = "normalised logit difference (1 = clean)".into();
    let heads = labels(p.heads.first().map_or(0, Vec::len), "");
    heatmap(&p.heads, &layers, &heads, &opts, dir.path("patching_heads"))?;
    Ok(())
}

/// A rate and its interval read from a point.
type RateWithInterval = fn(&AlphaPoint) -> (f64, [f64; 2]);

/// One answer rate (%) against alpha with its 95% Wilson band.
fn banded_series(name: impl Into<String>, points: &[AlphaPoint], rate: RateWithInterval) -> Series {
    let pct: Vec<(f64, [f64; 2])> = points.iter().map(rate).collect();
    Series::new(
        name,
        points.iter().map(|p| p.alpha).collect(),
        pct.iter().map(|(r, _)| 100.0 * r).collect(),
    )
    .with_interval(
        pct.iter().map(|(_, ci)| 100.0 * ci[0]).collect(),
        pct.iter().map(|(_, ci)| 100.0 * ci[1]).collect(),
    )
}

/// `alpha_sweep` (in-context rate) and `alpha_sweep_memorized` (memorised rate) against alpha,
/// one line per swept head with its 95% Wilson band (skipped when no head was swept).
pub fn sweeps_chart(sweeps: &[HeadSweep], n_prompts: usize, dir: &ResultsDir) -> Result<()> {
    if sweeps.is_empty() {
        return Ok(());
    }
    let charts: [(&str, &str, RateWithInterval); 2] = [
        ("alpha_sweep", "in-context", |p| {
            (p.in_context, p.in_context_ci)
        }),
        ("alpha_sweep_memorized", "memorized", |p| {
            (p.memorized, p.memorized_ci)
        }),
    ];
    for (file, answer, rate) in charts {
        let series: Vec<Series> = sweeps
            .iter()
            .map(|s| {
                banded_series(
                    format!("L{}H{} ({} head)", s.layer, s.head, s.role),
                    &s.points,
                    rate,
                )
            })
            .collect();
        let opts = LineOptions::new(
            PlotOptions::new(format!(
                "Scaling one head's value vectors: {answer} answers ({n_prompts} held-out prompts, 95% Wilson band)"
            ))
            .x_label("alpha (value-vector scale)")
            .y_label(format!("{answer} answer rate (%)"))
            .y_range(0.0, 100.0),
        );
        line_chart(&series, &opts, dir.path(file))?;
    }
    Ok(())
}

/// `other_answers`: what the answers naming neither city are, without intervention (held-out
/// prompts with context).
pub fn other_bars(b: &Baseline, dir: &ResultsDir) -> Result<()> {
    let Some(o) = &b.with_context.other_kinds else {
        return Ok(());
    };
    let n = b.with_context.n.max(1) as f64;
    let cats = [
        "empty",
        "another city",
        "repeats prompt",
        "broken text",
        "other text",
    ];
    let counts = [
        o.empty,
        o.another_city,
        o.repeats_prompt,
        o.broken,
        o.other_text,
    ];
    let groups = [BarGroup::new(
        "share of prompts",
        counts.iter().map(|&c| 100.0 * c as f64 / n).collect(),
    )];
    let opts = BarOptions::new(
        PlotOptions::new(format!(
            "Answers naming neither city ({} of {} held-out prompts)",
            counts.iter().sum::<usize>(),
            b.with_context.n
        ))
        .x_label("kind of answer")
        .y_label("share of prompts (%)"),
    );
    grouped_bar_chart(&cats, &groups, &opts, dir.path("other_answers"))?;
    Ok(())
}

/// `baseline`: answer rates without and with the counterfactual context.
pub fn baseline_bars(b: &Baseline, n_prompts: usize, dir: &ResultsDir) -> Result<()> {
    let cats = ["no context", "counterfactual context"];
    let rates = |rate: fn(&AlphaPoint) -> f64| {
        vec![
            100.0 * rate(&b.without_context),
            100.0 * rate(&b.with_context),
        ]
    };
    let groups = [
        BarGroup::new("in-context city", rates(|p| p.in_context)),
        BarGroup::new("memorized capital", rates(|p| p.memorized)),
        BarGroup::new("other", rates(|p| p.other)),
    ];
    let opts = BarOptions::new(
        PlotOptions::new(format!(
            "Answer rates, greedy continuation ({n_prompts} held-out prompts)"
        ))
        .x_label("prompt")
        .y_label("share of prompts (%)")
        .y_range(0.0, 100.0),
    );
    grouped_bar_chart(&cats, &groups, &opts, dir.path("baseline"))?;
    Ok(())
}
