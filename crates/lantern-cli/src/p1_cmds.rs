//! heads, patch, scale (paper P1).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lantern_attribution::patching::SweepOptions;
use lantern_attribution::{patch_sweep, rank_heads, MetricKind, PatchGrid, PatchTarget};
use lantern_engine::Batch;
use lantern_experiments::experiment::ExperimentFile;
use lantern_experiments::output::ResultsDir;
use lantern_experiments::p1::{self, artefacts, CommandJson, HeadIndex, PatchReport, ScaleReport};

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
    let map = if let Some(config) = &a.config {
        let (file, cfg) = p1_config(config)?;
        let prompts = p1::build_prompts(
            &cfg,
            &p1::read_capitals(&file.base_dir().join(&cfg.data))?,
            &lm.tokenizer,
        )?;
        let pb = progress(a.model.quiet, prompts.len(), "head attribution");
        let r = p1::head_attribution(&lm, &cfg, &prompts, &mut |d, _| pb.set_position(d as u64))?;
        pb.finish_and_clear();
        r.map()
    } else {
        let prompt = a.prompt.as_deref().context("--prompt is required")?;
        let target = a
            .target
            .as_deref()
            .context("--target is required with --prompt")?;
        p1::prompt_heads(&lm, prompt, target, a.versus.as_deref(), a.position)?
    };
    if let Some(out) = &a.out {
        artefacts::write_heads_map(&ResultsDir::create(out)?, &map)?;
    }
    if a.json {
        return print_json(&map.to_json()?);
    }
    println!("{}", map.metric);
    println!("largest |attribution|:");
    for (l, h, v) in rank_heads(&map.values, f64::abs).iter().take(10) {
        println!("  L{l}H{h}  {v:+.4}");
    }
    Ok(())
}

fn p1_config(path: &std::path::Path) -> Result<(ExperimentFile, p1::P1Config)> {
    let file = ExperimentFile::read(path)?;
    let cfg = file.p1_table()?;
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
    /// A results folder, or PART.jsonl: this shard's cells, one JSON line each (`lantern merge`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub shard: crate::shard_cmd::ShardArgs,
    /// Hold at most this many bytes of cached activations: above it the layers are swept in
    /// groups (same scores, more baseline runs) instead of caching every layer at once.
    #[arg(long, value_name = "BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_cache_bytes: Option<usize>,
    /// exact (patch every cell) or atp (attribution patching, AtP*: every cell estimated from one
    /// forward and one backward pass).
    #[arg(long, default_value = "exact")]
    pub method: String,
    /// With --method atp: patch AtP's top K cells (by |effect|) exactly and report both.
    #[arg(long, value_name = "K")]
    pub verify: Option<usize>,
    /// With --method atp: also compute AtP*'s GradDrop scores (one more pass per layer).
    #[arg(long)]
    pub grad_drop: bool,
    /// With --method atp: plain AtP for q/k cells (no recomputed attention softmax).
    #[arg(long)]
    pub no_qk_fix: bool,
}

pub fn patch(a: PatchArgs) -> Result<()> {
    crate::atp_cmd::check_flags(&a)?;
    if a.method == "atp" {
        return crate::atp_cmd::patch_atp(&a);
    }
    let part = a.shard.part(a.out.as_deref())?;
    let lm = a.model.load()?;
    let clean = Batch::from_prompts(&lm.tokenizer, &[a.clean.as_str()])?;
    let corrupted = Batch::from_prompts(&lm.tokenizer, &[a.corrupted.as_str()])?;
    let (target, versus) = (
        lm.tokenizer.single_token(&a.target)?,
        lm.tokenizer.single_token(&a.versus)?,
    );
    let metric = a.metric.parse::<MetricKind>()?.with_tokens(target, versus);
    let target_point: PatchTarget = a.hook.parse()?;
    let grid = PatchGrid::parse(&a.grid, a.layer)?;
    let pb = progress(a.model.quiet, 0, "patching");
    let mut tick = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    if let Some(shard) = part {
        let job =
            crate::shard_cmd::patch_job(&a, &lm, &clean, &corrupted, target_point, grid, metric);
        return crate::shard_cmd::patch_part(&a, &lm, &job, shard, &mut tick);
    }
    let start = std::time::Instant::now();
    let result = match a.max_cache_bytes {
        Some(bytes) => crate::shard_cmd::patch_sweep_within(
            &crate::shard_cmd::patch_job(&a, &lm, &clean, &corrupted, target_point, grid, metric),
            bytes,
            &mut tick,
        )?,
        None => patch_sweep(
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
        )?,
    };
    pb.finish_and_clear();
    let report = PatchReport {
        result,
        seconds: start.elapsed().as_secs_f64(),
        tokens: clean
            .row(0)
            .iter()
            .map(|&i| lm.tokenizer.token_text(i))
            .collect(),
    };
    if let Some(out) = &a.out {
        let dir = ResultsDir::create(out)?;
        artefacts::write_patch_report(&dir, &report, &a.hook, &a.metric)?;
    }
    if a.json {
        // The wall time goes to stderr: the JSON on stdout depends on the inputs alone, so two
        // runs give the same bytes.
        eprintln!("sweep_seconds {:.4}", report.seconds);
        let mut json = report.to_json()?;
        if let Some(fields) = json.as_object_mut() {
            fields.remove("seconds");
        }
        return print_json(&json);
    }
    let r = &report.result;
    println!(
        "clean {:.4}, corrupted {:.4}; {} patches in {:.2} s",
        r.clean, r.corrupted, r.patches, report.seconds
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
    /// A results folder, or PART.jsonl: this shard's αs, one JSON line each (`lantern merge`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub shard: crate::shard_cmd::ShardArgs,
}

pub fn scale(a: ScaleArgs) -> Result<()> {
    let part = a.shard.part(a.out.as_deref())?;
    let lm = a.model.load_checked()?;
    let (file, mut cfg) = p1_config(&a.config)?;
    if let Some(alphas) = &a.alphas {
        cfg.alphas = alphas.clone();
    }
    cfg.scale_bias |= a.scale_bias;
    let heads: Vec<(usize, usize)> = a
        .heads
        .iter()
        .map(|h| Ok(h.parse::<HeadIndex>()?.into()))
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
    if let Some(shard) = part {
        let job = lantern_experiments::shard::scale::ScaleJob {
            lm: &lm,
            prompts: &recall,
            heads,
            alphas: cfg.alphas.clone(),
            scale_bias: cfg.scale_bias,
            gen,
            batch_size: cfg.batch_size,
        };
        return crate::shard_cmd::scale_part(&a, &job, shard, &mut |d, _| {
            pb.set_position(d as u64)
        });
    }
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
    let report = ScaleReport {
        heads,
        points,
        scale_bias: cfg.scale_bias,
    };
    if let Some(out) = &a.out {
        artefacts::write_scale_report(&ResultsDir::create(out)?, &report)?;
    }
    if a.json {
        return print_json(&report.to_json()?);
    }
    println!(
        "{:>7} {:>11} {:>10} {:>7}",
        "alpha", "in-context", "memorized", "other"
    );
    for p in &report.points {
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
