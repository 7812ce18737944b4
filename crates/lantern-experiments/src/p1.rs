//! Paper P1 — "Characterizing Mechanisms for Factual Recall in Language Models" (Yu, Merullo &
//! Pavlick, EMNLP 2023, arXiv 2310.15910): when the context contradicts a memorised fact, which
//! answer does the model give, which heads push each way, and can scaling one head's value vectors
//! move the balance?
//!
//! Steps (each also a CLI subcommand): baseline rates, head attribution, activation patching,
//! alpha sweep. The prompt template is a parameter of the experiment file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lantern_attribution::patching::SweepOptions;
use lantern_attribution::{
    alpha_sweep, direct_logit_attribution, dla::mean_heads, patch_sweep, AlphaPoint,
    LogitDirection, Metric, PatchGrid, PatchResult, PatchTarget, RecallPrompt,
};
use lantern_engine::{Batch, GenerateConfig, LoadedModel};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::output::{grid_csv, ResultsDir};

fn default_n_prompts() -> usize {
    100
}
fn default_max_new_tokens() -> usize {
    15
}
fn default_stop() -> Vec<String> {
    vec!["Q:".to_string()]
}
fn default_alphas() -> Vec<f64> {
    vec![-10.0, -6.8, -2.8, -1.5, 0.0, 1.0, 1.5, 2.6, 6.8, 10.0]
}
fn default_patch_pairs() -> usize {
    8
}
fn default_batch_size() -> usize {
    16
}
fn default_top_heads() -> usize {
    5
}
fn default_template() -> String {
    "The capital of {country} is {ctx_city}. Q: What is the capital of {country}? A:".to_string()
}

/// The `[p1]` table of an experiment file. Defaults follow the paper where it states them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P1Config {
    /// CSV of `country,capital` (relative to the experiment file).
    pub data: PathBuf,
    /// Prompt template with `{country}` and `{ctx_city}`; default: the paper's Q/A template.
    #[serde(default = "default_template")]
    pub template: String,
    /// Prompts drawn (seeded) from the data; default 100.
    #[serde(default = "default_n_prompts")]
    pub n_prompts: usize,
    #[serde(default)]
    pub seed: u64,
    /// Greedy continuation length (default 15, as in the paper).
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// The continuation is cut at the first of these (default `Q:`).
    #[serde(default = "default_stop")]
    pub stop: Vec<String>,
    /// Scaling factors of the alpha sweep (default -10 .. 10 with the paper's values).
    #[serde(default = "default_alphas")]
    pub alphas: Vec<f64>,
    /// Scale b_V too (default false: b_V kept, as the paper's code after folding value biases).
    #[serde(default)]
    pub scale_bias: bool,
    /// Clean/corrupted pairs averaged in the head patching map (default 8).
    #[serde(default = "default_patch_pairs")]
    pub patch_pairs: usize,
    /// Prompts per forward batch (default 16).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Heads reported each way (default 5).
    #[serde(default = "default_top_heads")]
    pub top_heads: usize,
}

/// One counterfactual prompt.
#[derive(Debug, Clone, Serialize)]
pub struct P1Prompt {
    pub country: String,
    pub capital: String,
    pub ctx_city: String,
    pub prompt: String,
    /// First token of `" " + ctx_city` and of `" " + capital`.
    pub in_context_token: u32,
    pub memorized_token: u32,
}

impl P1Prompt {
    pub fn recall(&self) -> RecallPrompt {
        RecallPrompt {
            prompt: self.prompt.clone(),
            in_context: self.ctx_city.clone(),
            memorized: self.capital.clone(),
        }
    }
}

/// Reads `country,capital` rows.
pub fn read_capitals(path: &Path) -> Result<Vec<(String, String)>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = r.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no `{name}` column", path.display()))
    };
    let (ci, ki) = (col("country")?, col("capital")?);
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        rows.push((rec[ci].trim().to_string(), rec[ki].trim().to_string()));
    }
    if rows.len() < 2 {
        bail!("{}: need at least two countries", path.display());
    }
    Ok(rows)
}

/// Fills the template for a seeded sample of countries, each with another country's capital as
/// the in-context city.
pub fn build_prompts(
    cfg: &P1Config,
    capitals: &[(String, String)],
    tokenizer: &lantern_engine::Tokenizer,
) -> Result<Vec<P1Prompt>> {
    if !cfg.template.contains("{country}") || !cfg.template.contains("{ctx_city}") {
        bail!(
            "the template must contain {{country}} and {{ctx_city}}: {:?}",
            cfg.template
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..capitals.len()).collect();
    order.shuffle(&mut rng);
    let first = |city: &str| -> Result<u32> {
        tokenizer
            .encode_raw(&format!(" {city}"))?
            .first()
            .copied()
            .with_context(|| format!("{city:?} tokenises to nothing"))
    };
    let mut prompts = Vec::new();
    for &i in order.iter().take(cfg.n_prompts) {
        let (country, capital) = &capitals[i];
        // Another country's capital, chosen with the same seeded stream.
        let mut j = i;
        while j == i {
            j = rand::Rng::random_range(&mut rng, 0..capitals.len());
        }
        let ctx_city = capitals[j].1.clone();
        let prompt = cfg
            .template
            .replace("{country}", country)
            .replace("{ctx_city}", &ctx_city);
        prompts.push(P1Prompt {
            country: country.clone(),
            capital: capital.clone(),
            in_context_token: first(&ctx_city)?,
            memorized_token: first(capital)?,
            ctx_city,
            prompt,
        });
    }
    Ok(prompts)
}

fn gen_config(cfg: &P1Config) -> GenerateConfig {
    GenerateConfig {
        max_new_tokens: cfg.max_new_tokens,
        stop_strings: cfg.stop.clone(),
        stop_at_eos: true,
        ..Default::default()
    }
}

/// Step 1: answer rates with the counterfactual context, and without it (the plain question,
/// which measures what the model has memorised).
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub with_context: AlphaPoint,
    pub without_context: AlphaPoint,
}

pub fn baseline(
    lm: &LoadedModel,
    cfg: &P1Config,
    prompts: &[P1Prompt],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Baseline> {
    let gen = gen_config(cfg);
    let recall: Vec<RecallPrompt> = prompts.iter().map(P1Prompt::recall).collect();
    let with = lantern_attribution::scaling::continuations(
        &lm.model,
        &lm.tokenizer,
        &recall,
        &gen,
        &lantern_engine::Hooks::new(),
        cfg.batch_size,
    )?;
    progress(1, 2);
    // The same template with the context sentence removed: everything from the first
    // `{ctx_city}` through its sentence end.
    let plain: Vec<RecallPrompt> = prompts
        .iter()
        .map(|p| RecallPrompt {
            prompt: strip_context(&cfg.template, &p.country),
            ..p.recall()
        })
        .collect();
    let without = lantern_attribution::scaling::continuations(
        &lm.model,
        &lm.tokenizer,
        &plain,
        &gen,
        &lantern_engine::Hooks::new(),
        cfg.batch_size,
    )?;
    progress(2, 2);
    Ok(Baseline {
        with_context: AlphaPoint::from_answers(1.0, with, &recall),
        without_context: AlphaPoint::from_answers(1.0, without, &plain),
    })
}

/// The template without its context sentence (`... {ctx_city}.` and the space after it).
fn strip_context(template: &str, country: &str) -> String {
    let filled = template.replace("{country}", country);
    match filled.find("{ctx_city}") {
        Some(i) => {
            let after = &filled[i + "{ctx_city}".len()..];
            let rest = after.find(". ").map(|j| &after[j + 2..]).unwrap_or(after);
            // Drop the context sentence's start, back to the beginning of the prompt.
            rest.to_string()
        }
        None => filled,
    }
}

/// Step 2: per-head direct logit attribution of `logit(in-context) - logit(memorised)` at the last
/// position, averaged over prompts whose two answers start with different tokens.
#[derive(Debug, Clone, Serialize)]
pub struct HeadAttribution {
    pub metric: String,
    pub layers: usize,
    pub heads: usize,
    /// `[layer][head]`, mean over prompts.
    pub values: Vec<Vec<f64>>,
    /// `(layer, head, mean)`, most positive first: heads pushing the in-context answer.
    pub top_in_context: Vec<(usize, usize, f64)>,
    /// Most negative first: heads pushing the memorised answer.
    pub top_memorized: Vec<(usize, usize, f64)>,
    pub prompts_used: usize,
    pub prompts_skipped: usize,
}

pub fn head_attribution(
    lm: &LoadedModel,
    cfg: &P1Config,
    prompts: &[P1Prompt],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<HeadAttribution> {
    let usable: Vec<&P1Prompt> = prompts
        .iter()
        .filter(|p| p.in_context_token != p.memorized_token)
        .collect();
    if usable.is_empty() {
        bail!("no prompt has in-context and memorised answers with different first tokens");
    }
    let mut dlas = Vec::with_capacity(usable.len());
    for (i, chunk) in usable.chunks(cfg.batch_size.max(1)).enumerate() {
        let texts: Vec<&str> = chunk.iter().map(|p| p.prompt.as_str()).collect();
        let batch = Batch::from_prompts(&lm.tokenizer, &texts)?;
        let dirs: Vec<LogitDirection> = chunk
            .iter()
            .map(|p| LogitDirection {
                target: p.in_context_token,
                versus: Some(p.memorized_token),
            })
            .collect();
        dlas.extend(direct_logit_attribution(&lm.model, &batch, &dirs, None)?);
        progress(
            (i + 1) * cfg.batch_size.max(1).min(usable.len()),
            usable.len(),
        );
    }
    let values = mean_heads(&dlas);
    let mut ranked: Vec<(usize, usize, f64)> = values
        .iter()
        .enumerate()
        .flat_map(|(l, r)| r.iter().enumerate().map(move |(h, &v)| (l, h, v)))
        .collect();
    ranked.sort_by(|a, b| b.2.total_cmp(&a.2));
    let k = cfg.top_heads.min(ranked.len());
    let top_in_context = ranked[..k].to_vec();
    let top_memorized = ranked.iter().rev().take(k).copied().collect();
    let c = lm.model.config();
    Ok(HeadAttribution {
        metric: "logit(in-context city) - logit(memorized capital), last position".into(),
        layers: c.n_layers,
        heads: c.n_heads,
        values,
        top_in_context,
        top_memorized,
        prompts_used: usable.len(),
        prompts_skipped: prompts.len() - usable.len(),
    })
}

/// Step 3: activation patching. Clean = a counterfactual prompt, corrupted = the same country
/// with a different in-context city (same token length); metric = normalised logit difference
/// between the two in-context cities (1 = clean behaviour restored).
#[derive(Debug, Clone, Serialize)]
pub struct Patching {
    /// resid_pre, layer × position, of the first pair (columns labelled by its tokens).
    pub resid_pre: PatchResult,
    pub resid_pre_tokens: Vec<String>,
    /// Heads (hook_z, all positions), layer × head, mean over `pairs` pairs.
    pub heads: Vec<Vec<f64>>,
    pub pairs: usize,
}

/// Finds clean/corrupted pairs: for each prompt, a second prompt of the same country and length
/// with a different in-context city whose first token differs.
pub fn patch_pairs(
    lm: &LoadedModel,
    cfg: &P1Config,
    prompts: &[P1Prompt],
    capitals: &[(String, String)],
) -> Result<Vec<(P1Prompt, P1Prompt)>> {
    let mut pairs = Vec::new();
    for p in prompts {
        let clean_ids = lm.tokenizer.encode(&p.prompt)?;
        for (_, city) in capitals {
            if city == &p.ctx_city || city == &p.capital {
                continue;
            }
            let prompt = cfg
                .template
                .replace("{country}", &p.country)
                .replace("{ctx_city}", city);
            let first = lm.tokenizer.encode_raw(&format!(" {city}"))?[0];
            if first == p.in_context_token || lm.tokenizer.encode(&prompt)?.len() != clean_ids.len()
            {
                continue;
            }
            let corrupted = P1Prompt {
                ctx_city: city.clone(),
                prompt,
                in_context_token: first,
                ..p.clone()
            };
            pairs.push((p.clone(), corrupted));
            break;
        }
        if pairs.len() >= cfg.patch_pairs {
            break;
        }
    }
    if pairs.is_empty() {
        bail!("no clean/corrupted pair of equal token length was found");
    }
    Ok(pairs)
}

pub fn patching(
    lm: &LoadedModel,
    cfg: &P1Config,
    pairs: &[(P1Prompt, P1Prompt)],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Patching> {
    let c = lm.model.config();
    let metric_of = |clean: &P1Prompt, corrupted: &P1Prompt| Metric::Normalized {
        target: clean.in_context_token,
        versus: corrupted.in_context_token,
    };
    let batches = |clean: &P1Prompt, corrupted: &P1Prompt| -> Result<(Batch, Batch)> {
        Ok((
            Batch::from_prompts(&lm.tokenizer, &[clean.prompt.as_str()])?,
            Batch::from_prompts(&lm.tokenizer, &[corrupted.prompt.as_str()])?,
        ))
    };
    let total = pairs.len() + 1;
    let (clean, corrupted) = &pairs[0];
    let (cb, xb) = batches(clean, corrupted)?;
    let opts = SweepOptions {
        batch_size: cfg.batch_size.max(1) * 2,
        progress: None,
    };
    let resid_pre = patch_sweep(
        &lm.model,
        &cb,
        &xb,
        PatchTarget::ResidPre,
        PatchGrid::LayerPosition,
        metric_of(clean, corrupted),
        opts,
    )?;
    progress(1, total);
    let resid_pre_tokens = cb
        .row(0)
        .iter()
        .map(|&i| lm.tokenizer.token_text(i))
        .collect();
    let mut heads = vec![vec![0.0; c.n_heads]; c.n_layers];
    let mut used = 0;
    for (i, (clean, corrupted)) in pairs.iter().enumerate() {
        let (cb, xb) = batches(clean, corrupted)?;
        let opts = SweepOptions {
            batch_size: cfg.batch_size.max(1) * 2,
            progress: None,
        };
        match patch_sweep(
            &lm.model,
            &cb,
            &xb,
            PatchTarget::HeadZ,
            PatchGrid::LayerHead,
            metric_of(clean, corrupted),
            opts,
        ) {
            Ok(r) => {
                for (acc, row) in heads.iter_mut().zip(&r.values) {
                    for (a, v) in acc.iter_mut().zip(row) {
                        *a += v;
                    }
                }
                used += 1;
            }
            // A pair whose clean and corrupted logit differences coincide has no normalised score.
            Err(lantern_engine::Error::Invalid(_)) => {}
            Err(e) => return Err(e.into()),
        }
        progress(i + 2, total);
    }
    if used == 0 {
        bail!("no pair gave a usable head patching map");
    }
    heads.iter_mut().flatten().for_each(|v| *v /= used as f64);
    Ok(Patching {
        resid_pre,
        resid_pre_tokens,
        heads,
        pairs: used,
    })
}

/// Step 4: alpha sweep of one head.
#[derive(Debug, Clone, Serialize)]
pub struct HeadSweep {
    pub layer: usize,
    pub head: usize,
    /// Why this head: "in-context" or "memorized" (top of the attribution ranking).
    pub role: String,
    pub points: Vec<AlphaPoint>,
}

pub fn head_sweep(
    lm: &LoadedModel,
    cfg: &P1Config,
    prompts: &[P1Prompt],
    layer: usize,
    head: usize,
    role: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<HeadSweep> {
    let recall: Vec<RecallPrompt> = prompts.iter().map(P1Prompt::recall).collect();
    let points = alpha_sweep(
        &lm.model,
        &lm.tokenizer,
        &recall,
        &[(layer, head)],
        &cfg.alphas,
        cfg.scale_bias,
        &gen_config(cfg),
        cfg.batch_size,
        progress,
    )?;
    Ok(HeadSweep {
        layer,
        head,
        role: role.to_string(),
        points,
    })
}

/// Everything P1 produced.
#[derive(Debug, Clone, Serialize)]
pub struct P1Report {
    pub model: String,
    pub n_prompts: usize,
    pub baseline: Baseline,
    pub heads: HeadAttribution,
    pub patching: Patching,
    pub sweeps: Vec<HeadSweep>,
}

/// Runs every step and writes `out/`: JSON and CSV per step and the figures.
pub fn run_all(
    lm: &LoadedModel,
    cfg: &P1Config,
    base_dir: &Path,
    out: &Path,
    bar: crate::experiment::BarFactory,
) -> Result<P1Report> {
    let capitals = read_capitals(&base_dir.join(&cfg.data))?;
    let prompts = build_prompts(cfg, &capitals, &lm.tokenizer)?;
    let dir = ResultsDir::create(out)?;
    dir.json("prompts.json", &prompts)?;

    let baseline = baseline(lm, cfg, &prompts, &mut *bar("baseline generations", 2))?;
    dir.json("baseline.json", &baseline)?;
    let heads = head_attribution(
        lm,
        cfg,
        &prompts,
        &mut *bar("head attribution", prompts.len()),
    )?;
    dir.json("heads.json", &heads)?;
    let labels = |n: usize, p: &str| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    dir.csv(
        "heads.csv",
        &grid_csv(
            "layer\\head",
            &labels(heads.layers, "L"),
            &labels(heads.heads, "H"),
            &heads.values,
        ),
    )?;
    let pairs = patch_pairs(lm, cfg, &prompts, &capitals)?;
    let patching = patching(lm, cfg, &pairs, &mut *bar("patching", pairs.len() + 1))?;
    dir.json("patching.json", &patching)?;
    dir.csv(
        "patching_resid_pre.csv",
        &grid_csv(
            "layer\\position",
            &patching.resid_pre.row_labels,
            &patching.resid_pre.col_labels,
            &patching.resid_pre.values,
        ),
    )?;
    dir.csv(
        "patching_heads.csv",
        &grid_csv(
            "layer\\head",
            &labels(heads.layers, "L"),
            &labels(heads.heads, "H"),
            &patching.heads,
        ),
    )?;
    let mut sweeps = Vec::new();
    for (role, list) in [
        ("in-context", &heads.top_in_context),
        ("memorized", &heads.top_memorized),
    ] {
        if let Some(&(l, h, _)) = list.first() {
            sweeps.push(head_sweep(
                lm,
                cfg,
                &prompts,
                l,
                h,
                role,
                &mut *bar(&format!("alpha sweep L{l}H{h}"), cfg.alphas.len()),
            )?);
        }
    }
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
    ]];
    for s in &sweeps {
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
            ]);
        }
    }
    dir.csv("alpha_sweep.csv", &rows)?;
    let report = P1Report {
        model: lm.source.clone(),
        n_prompts: prompts.len(),
        baseline,
        heads,
        patching,
        sweeps,
    };
    crate::p1_figures::all(&report, &dir)?;
    dir.json("report.json", &report)?;
    Ok(report)
}
