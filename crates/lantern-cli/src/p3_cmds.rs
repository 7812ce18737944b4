//! states, sessions, graph (paper P3).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lantern_causal::{analyse_series_with_progress, CiTestKind, DiscoveryConfig, TimeSeries};
use lantern_experiments::experiment::ExperimentFile;
use lantern_experiments::output::ResultsDir;
use lantern_experiments::p3;
use lantern_states::StateSet;

use crate::util::{print_json, progress, ModelArgs};

fn p3_config(path: &std::path::Path) -> Result<(ExperimentFile, p3::P3Config)> {
    let file = ExperimentFile::read(path)?;
    let cfg = file.p3_table()?;
    Ok((file, cfg))
}

#[derive(Args)]
pub struct StatesArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A P3 experiment file (data, layer, method, threshold).
    #[arg(long)]
    pub config: PathBuf,
    /// Where to write the learned states (JSON).
    #[arg(long, default_value = "states.json")]
    pub out: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn states(a: StatesArgs) -> Result<()> {
    let lm = a.model.load_checked()?;
    let (file, cfg) = p3_config(&a.config)?;
    let questions = p3::read_questions(&file.base_dir().join(&cfg.questions))?;
    let states = p3::learn(&lm, &cfg, &file.base_dir().join(&cfg.data), &questions)?;
    states.save(&a.out)?;
    if a.json {
        return print_json(
            &serde_json::json!({"states": a.out, "held_out": states.held_out, "warnings": states.warnings}),
        );
    }
    println!(
        "{} states ({}, layer {}) saved to {}",
        states.label_names.len(),
        cfg.method,
        cfg.layer,
        a.out.display()
    );
    for s in &states.held_out {
        println!(
            "  {:<14} balanced accuracy {:.3}  AUC {:.3}  (n_test {}){}",
            s.state,
            s.accuracy,
            s.auc,
            s.n_test,
            if s.flagged {
                "  FLAGGED: below threshold, not used"
            } else {
                ""
            }
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A P3 experiment file (questions, session settings, steering).
    #[arg(long)]
    pub config: PathBuf,
    /// States learned by `lantern states`.
    #[arg(long)]
    pub states: PathBuf,
    /// Steer this state (overrides the file's steer_state) at --steer-steps.
    #[arg(long)]
    pub steer: Option<String>,
    #[arg(long, value_delimiter = ',')]
    pub steer_steps: Option<Vec<usize>>,
    /// CSV of the recorded series (session,step,<states>), or PART.jsonl: this shard's
    /// sessions, one JSON line each (`lantern merge --out series.csv` joins them).
    #[arg(long, default_value = "series.csv")]
    pub out: PathBuf,
    #[command(flatten)]
    pub shard: crate::shard_cmd::ShardArgs,
}

pub fn sessions(a: SessionsArgs) -> Result<()> {
    let (file, cfg) = p3_config(&a.config)?;
    if let Some(bad) = a.steer_steps.iter().flatten().find(|&&s| s >= cfg.steps) {
        anyhow::bail!(
            "--steer-steps must be below the session length ({} steps), got {bad}",
            cfg.steps
        );
    }
    let lm = a.model.load_checked()?;
    let states = StateSet::load(&a.states)?;
    let questions = p3::read_questions(&file.base_dir().join(&cfg.questions))?;
    let steer_state = a.steer.clone().or(cfg.steer_state.clone());
    let steps = a.steer_steps.clone().unwrap_or(cfg.steer_steps.clone());
    if let Some(shard) = a.shard.part(Some(&a.out))? {
        let job = lantern_experiments::shard::sessions::SessionsJob {
            lm: &lm,
            cfg: &cfg,
            states: &states,
            questions: &questions,
            steer: steer_state.as_deref().map(|st| (st, steps.as_slice())),
        };
        let pb = progress(a.model.quiet, 0, "session blocks");
        return crate::shard_cmd::sessions_part(&a, &job, shard, &mut |d, n| {
            pb.set_length(n as u64);
            pb.set_position(d as u64)
        });
    }
    let pb = progress(a.model.quiet, cfg.steps, "session steps");
    let s = p3::run_sessions(
        &lm,
        &cfg,
        &states,
        &questions,
        cfg.sessions,
        cfg.steps,
        steer_state.as_deref().map(|st| (st, steps.as_slice())),
        &mut |d, _| pb.set_position(d as u64),
    )?;
    pb.finish_and_clear();
    let (dir, name) = ResultsDir::of_file(&a.out).context("--out must name a file")?;
    p3::artefacts::series_csv(&dir, &name, &s)?;
    eprintln!(
        "{} sessions × {} steps of {} states written to {}",
        cfg.sessions,
        cfg.steps,
        s.states.len(),
        a.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct GraphArgs {
    /// A recorded time series: header names the states, one row per step, optional `session` column.
    #[arg(long)]
    pub series: PathBuf,
    /// Columns to ignore (e.g. step), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "step")]
    pub ignore: Vec<String>,
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub tau_max: usize,
    #[arg(long, default_value_t = 0.01, value_parser = crate::util::significance)]
    pub alpha: f64,
    #[arg(long, default_value_t = 100)]
    pub bootstrap: usize,
    /// Keep an edge only if it reappears in at least this share of the bootstrap resamples.
    #[arg(long, default_value_t = 0.5)]
    pub min_frequency: f64,
    /// Benjamini-Hochberg false-discovery level over the MCI tests, in (0, 1) (default: off).
    #[arg(long)]
    pub fdr: Option<f64>,
    /// Per-session normalisation before pooling: center (default), standardize or none.
    #[arg(long, default_value = "center")]
    pub session_normalization: String,
    /// parcorr (linear) or rank (Spearman, monotone nonlinear).
    #[arg(long, default_value = "parcorr")]
    pub test: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub quiet: bool,
    #[arg(long)]
    pub json: bool,
    /// Write graph.json, graph.dot and graph.svg/png here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn graph(a: GraphArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.series)
        .with_context(|| format!("reading {}", a.series.display()))?;
    let opts = lantern_causal::CsvOptions {
        ignore_columns: a.ignore.clone(),
        ..Default::default()
    };
    let series = TimeSeries::from_csv_str_with(&text, &opts)
        .with_context(|| format!("{}", a.series.display()))?;
    let ci_test: CiTestKind = a.test.parse()?;
    let cfg = DiscoveryConfig {
        tau_max: a.tau_max,
        alpha: a.alpha,
        n_bootstrap: a.bootstrap,
        min_frequency: a.min_frequency,
        fdr: a.fdr,
        session_normalization: a.session_normalization.parse()?,
        ci_test,
        seed: a.seed,
        ..Default::default()
    };
    let pb = progress(a.quiet || a.json, a.bootstrap, "bootstrap");
    let mut tick = |d: usize, _: usize| pb.set_position(d as u64);
    let report = analyse_series_with_progress(&series, &cfg, Some(&mut tick))?;
    pb.finish_and_clear();
    if let Some(out) = &a.out {
        p3::artefacts::write_graph(&ResultsDir::create(out)?, &report)?;
    }
    if a.json {
        println!("{}", report.to_json()?);
        return Ok(());
    }
    println!(
        "{} states, {} samples, {} sessions; {} edges; spectral radius {:.3}",
        report.nodes.len(),
        report.n_samples,
        report.n_sessions,
        report.edges.len(),
        report.spectral_radius
    );
    println!(
        "alpha {}, bootstrap {} resamples, min_frequency {}; density {:.3}; {} feedback loop(s), {} self-loop(s)",
        cfg.alpha,
        report.bootstrap.requested,
        report.bootstrap.min_frequency,
        report.density,
        report.n_feedback_loops,
        report.self_loops.len()
    );
    for e in &report.edges {
        let arrow = if e.kind == lantern_causal::LinkKind::Directed {
            "->"
        } else {
            "o-o"
        };
        println!(
            "  {} {arrow} {} (lag {})  weight {:+.3}  frequency {:.2}",
            e.from, e.to, e.lag, e.weight, e.frequency
        );
    }
    for c in &report.cycles {
        println!(
            "  feedback loop {}  gain {:+.3}",
            c.nodes.join(" -> "),
            c.gain
        );
    }
    for l in &report.self_loops {
        println!(
            "  self-loop {} (lag {})  weight {:+.3}",
            l.state, l.lag, l.weight
        );
    }
    if report.n_unoriented > 0 {
        println!("  unoriented links: {}", report.unoriented_links);
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
