//! heads, patch, scale, experiment (paper P1 and experiment files).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use lantern_attribution::patching::SweepOptions;
use lantern_attribution::{
    direct_logit_attribution, patch_sweep, LogitDirection, Metric, PatchGrid, PatchTarget,
};
use lantern_engine::Batch;
use lantern_experiments::experiment::ExperimentFile;
use lantern_experiments::output::{grid_csv, ResultsDir};
use lantern_experiments::p1;
use serde_json::json;

use crate::util::{print_json, progress, ModelArgs};

#[derive(Args)]
pub struct HeadsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A single prompt (or use --config to average over a P1 experiment's prompts).
    #[arg(long, required_unless_present = "config")]
    pub prompt: Option<String>,
    /// Token whose logit is attributed, as text, e.g. " London" (must be one token).
    #[arg(long, requires = "prompt")]
    pub target: Option<String>,
    /// Attribute logit(TARGET) - logit(VERSUS).
    #[arg(long)]
    pub versus: Option<String>,
    /// Position (default: last).
    #[arg(long)]
    pub position: Option<usize>,
    /// A P1 experiment file: averages over its prompts (in-context minus memorized).
    #[arg(long, conflicts_with = "prompt")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Write heads.json, heads.csv and the heatmap here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn heads(a: HeadsArgs) -> Result<()> {
    let lm = a.model.load()?;
    let (metric, values) = if let Some(config) = &a.config {
        let (file, cfg) = p1_config(config)?;
        let prompts = p1::build_prompts(
            &cfg,
            &p1::read_capitals(&file.base_dir().join(&cfg.data))?,
            &lm.tokenizer,
        )?;
        let pb = progress(a.model.quiet, prompts.len(), "head attribution");
        let r = p1::head_attribution(&lm, &cfg, &prompts, &mut |d, _| pb.set_position(d as u64))?;
        pb.finish_and_clear();
        (r.metric, r.values)
    } else {
        let prompt = a.prompt.as_deref().context("--prompt is required")?;
        let target = a
            .target
            .as_deref()
            .context("--target is required with --prompt")?;
        let batch = Batch::from_prompts(&lm.tokenizer, &[prompt])?;
        let dir = LogitDirection {
            target: lm.tokenizer.single_token(target)?,
            versus: a
                .versus
                .as_deref()
                .map(|v| lm.tokenizer.single_token(v))
                .transpose()?,
        };
        let d = direct_logit_attribution(&lm.model, &batch, &[dir], a.position)?.remove(0);
        let metric = match &a.versus {
            Some(v) => format!(
                "logit({target:?}) - logit({v:?}) at position {}",
                d.position
            ),
            None => format!("logit({target:?}) at position {}", d.position),
        };
        (metric, d.heads)
    };
    let cfg = lm.model.config();
    if let Some(out) = &a.out {
        let dir = ResultsDir::create(out)?;
        let labels = |n: usize, p: &str| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        dir.json("heads.json", &json!({"metric": metric, "layers": cfg.n_layers, "heads": cfg.n_heads, "values": values}))?;
        dir.csv(
            "heads.csv",
            &grid_csv(
                "layer\\head",
                &labels(cfg.n_layers, "L"),
                &labels(cfg.n_heads, "H"),
                &values,
            ),
        )?;
        let mut opts = lantern_plot::HeatmapOptions::new(
            lantern_plot::PlotOptions::new("Direct logit attribution per head")
                .x_label("head")
                .y_label("layer")
                .size(760, 900),
        );
        opts.colorbar_label = metric.clone();
        lantern_plot::heatmap(
            &values,
            &labels(cfg.n_layers, ""),
            &labels(cfg.n_heads, ""),
            &opts,
            dir.path("heads_dla"),
        )?;
    }
    if a.json {
        return print_json(
            &json!({"metric": metric, "layers": cfg.n_layers, "heads": cfg.n_heads, "values": values}),
        );
    }
    println!("{metric}");
    let mut ranked: Vec<(usize, usize, f64)> = values
        .iter()
        .enumerate()
        .flat_map(|(l, r)| r.iter().enumerate().map(move |(h, &v)| (l, h, v)))
        .collect();
    ranked.sort_by(|x, y| y.2.abs().total_cmp(&x.2.abs()));
    println!("largest |attribution|:");
    for (l, h, v) in ranked.iter().take(10) {
        println!("  L{l}H{h}  {v:+.4}");
    }
    Ok(())
}

fn p1_config(path: &std::path::Path) -> Result<(ExperimentFile, p1::P1Config)> {
    let file = ExperimentFile::read(path)?;
    let cfg = file
        .p1
        .clone()
        .with_context(|| format!("{} has no [p1] table", path.display()))?;
    Ok((file, cfg))
}

#[derive(Args)]
pub struct PatchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The clean prompt (its activations are patched in).
    #[arg(long)]
    pub clean: String,
    /// The corrupted prompt (run with patches); same token length as --clean.
    #[arg(long)]
    pub corrupted: String,
    /// The metric's target token (text, one token), e.g. the clean answer.
    #[arg(long)]
    pub target: String,
    /// The metric's other token, e.g. the corrupted answer.
    #[arg(long)]
    pub versus: String,
    /// resid_pre, resid_mid, resid_post, attn_out, mlp_out, z, q, k, v, pattern.
    #[arg(long, default_value = "resid_pre")]
    pub hook: String,
    /// layer, layer_pos, layer_head, head_pos (with --layer).
    #[arg(long, default_value = "layer_pos")]
    pub grid: String,
    #[arg(long)]
    pub layer: Option<usize>,
    /// normalized (0 = corrupted, 1 = clean), logit_diff, or prob (of --target).
    #[arg(long, default_value = "normalized")]
    pub metric: String,
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn patch(a: PatchArgs) -> Result<()> {
    let lm = a.model.load()?;
    let clean = Batch::from_prompts(&lm.tokenizer, &[a.clean.as_str()])?;
    let corrupted = Batch::from_prompts(&lm.tokenizer, &[a.corrupted.as_str()])?;
    let (target, versus) = (
        lm.tokenizer.single_token(&a.target)?,
        lm.tokenizer.single_token(&a.versus)?,
    );
    let metric = match a.metric.as_str() {
        "normalized" => Metric::Normalized { target, versus },
        "logit_diff" => Metric::LogitDiff { target, versus },
        "prob" => Metric::Prob { token: target },
        other => bail!("unknown metric `{other}` (normalized, logit_diff, prob)"),
    };
    let target_point = PatchTarget::parse(&a.hook)?;
    let grid = PatchGrid::parse(&a.grid, a.layer)?;
    let pb = progress(a.model.quiet, 0, "patching");
    let mut tick = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let start = std::time::Instant::now();
    let r = patch_sweep(
        &lm.model,
        &clean,
        &corrupted,
        target_point,
        grid,
        metric,
        SweepOptions {
            batch_size: a.batch_size,
            progress: Some(&mut tick),
        },
    )?;
    pb.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let tokens: Vec<String> = clean
        .row(0)
        .iter()
        .map(|&i| lm.tokenizer.token_text(i))
        .collect();
    if let Some(out) = &a.out {
        let dir = ResultsDir::create(out)?;
        dir.json(
            "patching.json",
            &json!({"result": r, "tokens": tokens, "seconds": seconds}),
        )?;
        dir.csv(
            "patching.csv",
            &grid_csv("row\\col", &r.row_labels, &r.col_labels, &r.values),
        )?;
        let cols: Vec<String> = if matches!(
            grid,
            PatchGrid::LayerPosition | PatchGrid::HeadPosition { .. }
        ) {
            tokens
                .iter()
                .enumerate()
                .map(|(i, t)| format!("{i}:{t}"))
                .collect()
        } else {
            r.col_labels.clone()
        };
        let mut opts = lantern_plot::HeatmapOptions::new(
            lantern_plot::PlotOptions::new(format!("Activation patching: {}", a.hook))
                .x_label(if cols.len() == tokens.len() {
                    "position (token)"
                } else {
                    "head"
                })
                .y_label("layer")
                .size(1000, 900),
        );
        opts.colorbar_label = a.metric.clone();
        lantern_plot::heatmap(&r.values, &r.row_labels, &cols, &opts, dir.path("patching"))?;
    }
    if a.json {
        return print_json(&json!({"result": r, "tokens": tokens, "seconds": seconds}));
    }
    println!(
        "clean {:.4}, corrupted {:.4}; {} patches in {seconds:.2} s",
        r.clean, r.corrupted, r.patches
    );
    println!(
        "{:>6} {}",
        "",
        r.col_labels
            .iter()
            .map(|c| format!("{c:>7}"))
            .collect::<String>()
    );
    for (label, row) in r.row_labels.iter().zip(&r.values) {
        println!(
            "{label:>6} {}",
            row.iter().map(|v| format!("{v:>7.3}")).collect::<String>()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A P1 experiment file (its prompts, generation settings and alphas).
    #[arg(long)]
    pub config: PathBuf,
    /// Head as LAYER.HEAD (repeatable: all listed heads are scaled together).
    #[arg(long = "head", required = true)]
    pub heads: Vec<String>,
    /// Override the file's alphas, comma-separated.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, value_parser = crate::util::finite)]
    pub alphas: Option<Vec<f64>>,
    /// Scale b_V too (default: keep it, as the paper's code).
    #[arg(long)]
    pub scale_bias: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn scale(a: ScaleArgs) -> Result<()> {
    let lm = a.model.load()?;
    let (file, mut cfg) = p1_config(&a.config)?;
    if let Some(alphas) = &a.alphas {
        cfg.alphas = alphas.clone();
    }
    cfg.scale_bias |= a.scale_bias;
    let heads: Vec<(usize, usize)> = a
        .heads
        .iter()
        .map(|h| {
            let (l, hh) = h
                .split_once('.')
                .with_context(|| format!("head `{h}` is not LAYER.HEAD"))?;
            Ok((
                l.parse().with_context(|| format!("bad layer in `{h}`"))?,
                hh.parse().with_context(|| format!("bad head in `{h}`"))?,
            ))
        })
        .collect::<Result<_>>()?;
    let prompts = p1::build_prompts(
        &cfg,
        &p1::read_capitals(&file.base_dir().join(&cfg.data))?,
        &lm.tokenizer,
    )?;
    let recall: Vec<_> = prompts.iter().map(p1::P1Prompt::recall).collect();
    let pb = progress(a.model.quiet, cfg.alphas.len(), "alpha sweep");
    let gen = lantern_engine::GenerateConfig {
        max_new_tokens: cfg.max_new_tokens,
        stop_strings: cfg.stop.clone(),
        ..Default::default()
    };
    let points = lantern_attribution::alpha_sweep(
        &lm.model,
        &lm.tokenizer,
        &recall,
        &heads,
        &cfg.alphas,
        cfg.scale_bias,
        &gen,
        cfg.batch_size,
        |d, _| pb.set_position(d as u64),
    )?;
    pb.finish_and_clear();
    let value = json!({"heads": heads, "scale_bias": cfg.scale_bias, "points": points});
    if let Some(out) = &a.out {
        let dir = ResultsDir::create(out)?;
        dir.json("scale.json", &value)?;
        let xs: Vec<f64> = points.iter().map(|p| p.alpha).collect();
        let series = [
            lantern_plot::Series::new(
                "in-context",
                xs.clone(),
                points.iter().map(|p| 100.0 * p.in_context).collect(),
            ),
            lantern_plot::Series::new(
                "memorized",
                xs.clone(),
                points.iter().map(|p| 100.0 * p.memorized).collect(),
            ),
            lantern_plot::Series::new(
                "other",
                xs,
                points.iter().map(|p| 100.0 * p.other).collect(),
            ),
        ];
        let opts = lantern_plot::LineOptions::new(
            lantern_plot::PlotOptions::new(format!(
                "Scaling value vectors of {}",
                a.heads.join(", ")
            ))
            .x_label("alpha")
            .y_label("answer rate (%)")
            .y_range(0.0, 100.0),
        );
        lantern_plot::line_chart(&series, &opts, dir.path("scale"))?;
    }
    if a.json {
        return print_json(&value);
    }
    println!(
        "{:>7} {:>11} {:>10} {:>7}",
        "alpha", "in-context", "memorized", "other"
    );
    for p in &points {
        println!(
            "{:>7.2} {:>10.1}% {:>9.1}% {:>6.1}%",
            p.alpha,
            100.0 * p.in_context,
            100.0 * p.memorized,
            100.0 * p.other
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct ExperimentArgs {
    /// The experiment file (TOML).
    pub file: PathBuf,
    /// Override the file's model.
    #[arg(long)]
    pub model: Option<String>,
    /// Override the file's results folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn experiment(a: ExperimentArgs) -> Result<()> {
    let mut file = ExperimentFile::read(&a.file)?;
    if let Some(out) = a.out {
        file.out = Some(out);
    }
    let model = ModelArgs {
        model_pos: None,
        model: a.model.or(file.model.clone()),
        dtype: "f32".into(),
        device: "cpu".into(),
        quiet: a.quiet,
    };
    let lm = model.load()?;
    let quiet = a.quiet;
    let bar = move |label: &str, total: usize| -> Box<dyn FnMut(usize, usize)> {
        let pb = progress(quiet, total, label);
        Box::new(move |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
            if done >= total {
                pb.finish_and_clear();
            }
        })
    };
    let out = lantern_experiments::run_experiment_file(&file, &lm, &bar)?;
    eprintln!("results in {}", out.display());
    Ok(())
}
