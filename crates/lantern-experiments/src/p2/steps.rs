//! P2's steps: the config, one template's exact values, interactions and estimator comparison.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use lantern_engine::LoadedModel;
use lantern_shapley::{
    exact, interaction, kernel, permutation, Absent, Coalition, ExactOptions, FnGame,
    InteractionResult, KernelOptions, MemoGame, PermutationOptions, PromptGame, ShapleyResult,
    Template, ValueKind,
};
use serde::{Deserialize, Serialize};

use crate::scorer::EngineScorer;

/// Coalitions handed to the scorer at once.
pub const COALITIONS_PER_CALL: usize = 1024;

fn default_value() -> String {
    "option_prob".into()
}
fn default_options() -> Vec<String> {
    vec![" A".into(), " B".into()]
}
fn default_budgets() -> Vec<usize> {
    vec![64, 128, 256, 512]
}
fn default_seeds() -> usize {
    5
}
fn default_batch() -> usize {
    16
}
fn default_absent() -> String {
    "remove".into()
}
fn default_true() -> bool {
    true
}

/// The `[p2]` table of an experiment file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2Config {
    /// Template files (relative to the experiment file), e.g. paraphrases of one prompt.
    pub templates: Vec<PathBuf>,
    /// logprob, prob, option_prob (default) or option_diff.
    #[serde(default = "default_value")]
    pub value: String,
    /// For logprob/prob: the continuation scored.
    pub target: Option<String>,
    /// For option_prob/option_diff (default `[" A", " B"]`).
    #[serde(default = "default_options")]
    pub options: Vec<String>,
    /// option_prob: which option's probability (default 0).
    #[serde(default)]
    pub chosen: usize,
    /// remove (default) or filler.
    #[serde(default = "default_absent")]
    pub absent: String,
    /// Players that carry no decision information (formatting, politeness, filler).
    #[serde(default)]
    pub noise_players: Vec<String>,
    /// Budgets (distinct coalition evaluations) for the estimator comparison.
    #[serde(default = "default_budgets")]
    pub budgets: Vec<usize>,
    /// Seeds averaged per budget (default 5).
    #[serde(default = "default_seeds")]
    pub seeds: usize,
    /// Requests per forward batch (default 16).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// The A/B-swapped version of each template (same order and players): counterbalancing.
    /// Each is scored on the other option, so both orders measure the same option's content.
    #[serde(default)]
    pub swapped_templates: Vec<PathBuf>,
    /// The responsiveness check run before attribution: exchanging two strings inside one
    /// player (e.g. the prices) must move the choice.
    #[serde(default)]
    pub informative: Option<InformativeSwap>,
    /// The frame of each template (`gain` or `loss`; same order as `templates`): the framing
    /// effect is the mean gain − loss difference of p(chosen) over matched pairs.
    #[serde(default)]
    pub frames: Vec<String>,
    /// Wrap prompts in the model's chat template when it has one (default true).
    #[serde(default = "default_true")]
    pub chat_template: bool,
}

/// Two strings exchanged inside one player's text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InformativeSwap {
    pub player: String,
    pub swap: [String; 2],
}

impl P2Config {
    pub fn value_kind(&self) -> Result<ValueKind> {
        Ok(ValueKind::from_name(
            &self.value,
            self.target.clone(),
            self.options.clone(),
            self.chosen,
        )?)
    }
}

/// Error of one estimator at one budget against the exact values (mean over seeds).
#[derive(Debug, Clone, Serialize)]
pub struct ConvergencePoint {
    pub method: String,
    pub budget: usize,
    /// Mean (over seeds) of the mean absolute error over players.
    pub mean_abs_error: f64,
    /// Mean (over seeds) distinct evaluations actually used.
    pub evaluations: f64,
    /// Share of player estimates within 2 reported standard errors of the exact value.
    pub within_2se: f64,
}

/// Everything computed for one template.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateReport {
    pub template: String,
    pub exact: ShapleyResult,
    pub seconds_exact: f64,
    pub forwards: usize,
    /// Permutation and kernel estimates at the largest budget (first seed).
    pub permutation: ShapleyResult,
    pub kernel: ShapleyResult,
    pub interaction: InteractionResult,
    pub convergence: Vec<ConvergencePoint>,
    /// Σ|φ| of the no-information players / Σ|φ| of all players.
    pub noise_share: f64,
    pub noise_players: Vec<String>,
    /// The noise share against exchangeable components (exact permutation test).
    pub noise_null: crate::p2::protocol::NoiseNull,
    /// Which option's probability is the value (1 − the configured one in a swapped order).
    pub chosen: usize,
    /// `original` or `swapped` (A/B labels exchanged).
    pub order: String,
    /// Whether the model's chat template wrapped the prompt.
    pub chat_template: bool,
}

/// Exact Shapley values of one template with the model, plus the estimator comparison.
pub fn analyse_template(
    lm: &LoadedModel,
    cfg: &P2Config,
    path: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TemplateReport> {
    let t = crate::p2::protocol::load_template(lm, cfg, path, None)?;
    analyse_parsed(lm, cfg, path, t, cfg.chosen, "original", progress)
}

/// [`analyse_template`] of a parsed (possibly chat-wrapped or swapped) template, scored on
/// option `chosen`.
pub fn analyse_parsed(
    lm: &LoadedModel,
    cfg: &P2Config,
    path: &Path,
    (template, chat): (Template, bool),
    chosen: usize,
    order: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TemplateReport> {
    let absent: Absent = cfg.absent.parse()?;
    let names = template.player_names();
    for p in &cfg.noise_players {
        if !names.contains(p) {
            bail!(
                "noise player `{p}` is not a player of {} (players: {})",
                path.display(),
                names.join(", ")
            );
        }
    }
    let mut scorer = EngineScorer::new(lm);
    scorer.batch_size = cfg.batch_size;
    let value = ValueKind::from_name(&cfg.value, cfg.target.clone(), cfg.options.clone(), chosen)?;
    let game = PromptGame::new(template, absent, value, scorer)?;
    // Many coalitions per call let the scorer sort them into batches with long shared prefixes.
    let mut memo = MemoGame::new(game, COALITIONS_PER_CALL)?;
    let start = Instant::now();
    let opts = ExactOptions {
        batch_size: COALITIONS_PER_CALL,
        ..Default::default()
    };
    let exact_result = exact(&mut memo, &opts, Some(progress))?;
    let seconds_exact = start.elapsed().as_secs_f64();
    let interaction_result = interaction(&mut memo, &opts, None)?;
    let n = names.len();
    let table: Vec<f64> = (0..1u64 << n)
        .map(|bits| {
            memo.value(Coalition::from_bits(bits))
                .context("every coalition was evaluated")
        })
        .collect::<Result<_>>()?;
    let forwards = memo.into_inner().into_scorer().forwards;

    let mut convergence = Vec::new();
    let mut top = (None, None);
    let max_budget = cfg.budgets.iter().copied().max().unwrap_or(0);
    for method in ["permutation", "kernel"] {
        for &budget in &cfg.budgets {
            let (mut err, mut evals, mut within) = (0.0, 0.0, 0.0);
            for seed in 0..cfg.seeds.max(1) as u64 {
                let mut g =
                    FnGame::with_names(names.clone(), |c: Coalition| table[c.bits() as usize]);
                let r = match method {
                    "permutation" => permutation(
                        &mut g,
                        &PermutationOptions {
                            budget,
                            seed,
                            batch_size: cfg.batch_size,
                        },
                        None,
                    )?,
                    _ => kernel(
                        &mut g,
                        &KernelOptions {
                            budget,
                            seed,
                            batch_size: cfg.batch_size,
                            ..Default::default()
                        },
                        None,
                    )?,
                };
                err += mean_abs_error(&r.values, &exact_result.values);
                evals += r.evaluations as f64;
                within += r
                    .values
                    .iter()
                    .zip(&exact_result.values)
                    .zip(&r.std_errors)
                    .filter(|((v, e), se)| (*v - *e).abs() <= 2.0 * **se + 1e-12)
                    .count() as f64
                    / n as f64;
                if budget == max_budget && seed == 0 {
                    if method == "permutation" {
                        top.0 = Some(r);
                    } else {
                        top.1 = Some(r);
                    }
                }
            }
            let k = cfg.seeds.max(1) as f64;
            convergence.push(ConvergencePoint {
                method: method.into(),
                budget,
                mean_abs_error: err / k,
                evaluations: evals / k,
                within_2se: within / k,
            });
        }
    }
    let noise: f64 = names
        .iter()
        .zip(&exact_result.values)
        .filter(|(p, _)| cfg.noise_players.contains(p))
        .map(|(_, v)| v.abs())
        .sum();
    let all: f64 = exact_result.values.iter().map(|v| v.abs()).sum();
    let noise_null =
        crate::p2::protocol::noise_null(&names, &exact_result.values, &cfg.noise_players);
    Ok(TemplateReport {
        noise_null,
        chosen,
        order: order.to_string(),
        chat_template: chat,
        template: path.display().to_string(),
        seconds_exact,
        forwards,
        permutation: top.0.context("budgets must not be empty")?,
        kernel: top.1.context("budgets must not be empty")?,
        interaction: interaction_result,
        convergence,
        noise_share: if all > 0.0 { noise / all } else { 0.0 },
        noise_players: cfg.noise_players.clone(),
        exact: exact_result,
    })
}

fn mean_abs_error(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
}
