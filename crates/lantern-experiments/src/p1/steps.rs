//! P1's steps: the config, the counterfactual prompts, the four steps and their results.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lantern_attribution::patching::SweepOptions;
use lantern_attribution::{
    alpha_sweep, direct_logit_attribution, dla::mean_heads, patch_sweep, rank_heads, AlphaPoint,
    LogitDirection, Metric, PatchGrid, PatchResult, PatchTarget, RecallPrompt,
};
use lantern_engine::{Batch, GenerateConfig, LoadedModel};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
fn default_selection_fraction() -> f64 {
    0.5
}
fn default_sweep_heads() -> usize {
    3
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
    /// Share of the prompts (seeded split) on which heads are chosen; the rest are held out and
    /// every rate is measured on them (default 0.5).
    #[serde(default = "default_selection_fraction")]
    pub selection_fraction: f64,
    /// Top heads swept in each direction (default 3).
    #[serde(default = "default_sweep_heads")]
    pub sweep_heads: usize,
}

impl P1Config {
    /// The paper's Q/A template (the default of `template`).
    pub fn default_template_for_tests() -> String {
        default_template()
    }
}

/// The prompts split in two: heads are chosen on `selection` and evaluated on `held_out`.
#[derive(Debug, Clone, Serialize)]
pub struct PromptSplit {
    pub selection: Vec<P1Prompt>,
    pub held_out: Vec<P1Prompt>,
}

/// Splits the prompts with a seeded shuffle (stream `seed + 1`, apart from the one that drew
/// them); either half empty is an error, since then selection and evaluation would share data.
pub fn split_prompts(cfg: &P1Config, prompts: &[P1Prompt]) -> Result<PromptSplit> {
    if !(cfg.selection_fraction > 0.0 && cfg.selection_fraction < 1.0) {
        bail!(
            "[p1] selection_fraction must be in (0, 1), got {}",
            cfg.selection_fraction
        );
    }
    let n_sel = (cfg.selection_fraction * prompts.len() as f64).round() as usize;
    if n_sel == 0 || n_sel >= prompts.len() {
        bail!(
            "[p1] selection_fraction {} of {} prompts leaves {} for head selection and {} held out; \
             both need at least one (raise n_prompts)",
            cfg.selection_fraction,
            prompts.len(),
            n_sel,
            prompts.len().saturating_sub(n_sel)
        );
    }
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1)));
    let (sel, held) = order.split_at(n_sel);
    let pick = |ix: &[usize]| ix.iter().map(|&i| prompts[i].clone()).collect();
    Ok(PromptSplit {
        selection: pick(sel),
        held_out: pick(held),
    })
}

/// Every city the data names: the "another city" check of the answer breakdown.
pub fn all_cities(capitals: &[(String, String)]) -> Vec<String> {
    let mut c: Vec<String> = capitals.iter().map(|(_, k)| k.clone()).collect();
    c.sort();
    c.dedup();
    c
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
    let ranked = rank_heads(&values, |v| v);
    // Enough to report `top_heads` and to sweep `sweep_heads`.
    let k = cfg.top_heads.max(cfg.sweep_heads).min(ranked.len());
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
/// with a different in-context city (same token length); metric = the raw logit difference
/// between the two in-context cities. The head map averages raw differences over pairs and is
/// normalised once, `(mean patched − mean corrupted) / (mean clean − mean corrupted)` (1 = clean
/// behaviour restored), so no pair with a tiny clean−corrupted gap can dominate it.
#[derive(Debug, Clone, Serialize)]
pub struct Patching {
    /// resid_pre, layer × position, of the first usable pair, normalised by its own gap.
    pub resid_pre: PatchResult,
    pub resid_pre_tokens: Vec<String>,
    /// Heads (hook_z, all positions), layer × head, normalised mean over the used pairs.
    pub heads: Vec<Vec<f64>>,
    /// Raw mean logit differences of the clean and corrupted runs over the used pairs.
    pub raw_clean: f64,
    pub raw_corrupted: f64,
    /// Pairs in the head map.
    pub pairs: usize,
    /// Pairs run but left out, with why.
    pub pairs_skipped: Vec<SkippedPair>,
    /// Prompts examined for which no corrupted partner exists (same token length, different
    /// first token).
    pub prompts_without_pair: Vec<String>,
}

/// A clean/corrupted pair that could not be used.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedPair {
    pub clean: String,
    pub corrupted: String,
    pub reason: String,
}

/// Clean/corrupted pairs and the prompts that found none.
#[derive(Debug, Clone)]
pub struct PatchPairs {
    pub pairs: Vec<(P1Prompt, P1Prompt)>,
    pub prompts_without_pair: Vec<String>,
}

/// Finds clean/corrupted pairs: for each prompt, a second prompt of the same country and length
/// with a different in-context city whose first token differs.
pub fn patch_pairs(
    lm: &LoadedModel,
    cfg: &P1Config,
    prompts: &[P1Prompt],
    capitals: &[(String, String)],
) -> Result<PatchPairs> {
    let mut pairs = Vec::new();
    let mut without = Vec::new();
    for p in prompts {
        if pairs.len() >= cfg.patch_pairs {
            break;
        }
        let clean_ids = lm.tokenizer.encode(&p.prompt)?;
        let mut found = false;
        for (_, city) in capitals {
            if city == &p.ctx_city || city == &p.capital {
                continue;
            }
            let prompt = cfg
                .template
                .replace("{country}", &p.country)
                .replace("{ctx_city}", city);
            let Some(&first) = lm.tokenizer.encode_raw(&format!(" {city}"))?.first() else {
                continue;
            };
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
            found = true;
            break;
        }
        if !found {
            without.push(p.prompt.clone());
        }
    }
    if pairs.is_empty() {
        bail!(
            "no clean/corrupted pair of equal token length was found ({} prompts tried)",
            without.len()
        );
    }
    Ok(PatchPairs {
        pairs,
        prompts_without_pair: without,
    })
}

/// Smallest |mean clean − mean corrupted| logit difference that is normalised by.
const MIN_GAP: f64 = 1e-6;

pub fn patching(
    lm: &LoadedModel,
    cfg: &P1Config,
    pairs: &PatchPairs,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Patching> {
    let c = lm.model.config();
    let metric_of = |clean: &P1Prompt, corrupted: &P1Prompt| Metric::LogitDiff {
        target: clean.in_context_token,
        versus: corrupted.in_context_token,
    };
    let batches = |clean: &P1Prompt, corrupted: &P1Prompt| -> Result<(Batch, Batch)> {
        Ok((
            Batch::from_prompts(&lm.tokenizer, &[clean.prompt.as_str()])?,
            Batch::from_prompts(&lm.tokenizer, &[corrupted.prompt.as_str()])?,
        ))
    };
    let opts = || SweepOptions {
        batch_size: cfg.batch_size.max(1) * 2,
        progress: None,
    };
    let total = pairs.pairs.len() + 1;
    let mut skipped = Vec::new();
    let skip = |clean: &P1Prompt, corrupted: &P1Prompt, reason: String| SkippedPair {
        clean: clean.prompt.clone(),
        corrupted: corrupted.prompt.clone(),
        reason,
    };
    let mut raw = vec![vec![0.0; c.n_heads]; c.n_layers];
    let (mut sum_clean, mut sum_corrupted, mut used) = (0.0, 0.0, 0usize);
    for (i, (clean, corrupted)) in pairs.pairs.iter().enumerate() {
        let (cb, xb) = batches(clean, corrupted)?;
        let r = patch_sweep(
            &lm.model,
            &cb,
            &xb,
            PatchTarget::HeadZ,
            PatchGrid::LayerHead,
            metric_of(clean, corrupted),
            opts(),
        )?;
        if r.values
            .iter()
            .flatten()
            .chain([&r.clean, &r.corrupted])
            .all(|v| v.is_finite())
        {
            for (acc, row) in raw.iter_mut().zip(&r.values) {
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            sum_clean += r.clean;
            sum_corrupted += r.corrupted;
            used += 1;
        } else {
            skipped.push(skip(clean, corrupted, "non-finite logit difference".into()));
        }
        progress(i + 1, total);
    }
    if used == 0 {
        bail!(
            "no pair gave a usable head patching map ({} skipped: {})",
            skipped.len(),
            skipped.first().map_or("", |s| s.reason.as_str())
        );
    }
    let (mc, mx) = (sum_clean / used as f64, sum_corrupted / used as f64);
    if (mc - mx).abs() < MIN_GAP {
        bail!(
            "the mean clean and corrupted logit differences coincide ({mc:.3e} vs {mx:.3e} over {used} pairs): no patching map can be normalised"
        );
    }
    let heads = raw
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| (v / used as f64 - mx) / (mc - mx))
                .collect()
        })
        .collect();

    // resid_pre of the first pair whose own gap can be normalised by.
    let mut resid = None;
    for (clean, corrupted) in &pairs.pairs {
        let (cb, xb) = batches(clean, corrupted)?;
        let mut r = patch_sweep(
            &lm.model,
            &cb,
            &xb,
            PatchTarget::ResidPre,
            PatchGrid::LayerPosition,
            metric_of(clean, corrupted),
            opts(),
        )?;
        let gap = r.clean - r.corrupted;
        if gap.abs() < MIN_GAP || !gap.is_finite() {
            continue;
        }
        for v in r.values.iter_mut().flatten() {
            *v = (*v - r.corrupted) / gap;
        }
        let tokens = cb
            .row(0)
            .iter()
            .map(|&i| lm.tokenizer.token_text(i))
            .collect();
        resid = Some((r, tokens));
        break;
    }
    progress(total, total);
    let (resid_pre, resid_pre_tokens) =
        resid.context("no pair has distinct clean and corrupted logit differences")?;
    Ok(Patching {
        resid_pre,
        resid_pre_tokens,
        heads,
        raw_clean: mc,
        raw_corrupted: mx,
        pairs: used,
        pairs_skipped: skipped,
        prompts_without_pair: pairs.prompts_without_pair.clone(),
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
    /// Prompts heads were chosen on / evaluated on.
    pub n_selection: usize,
    pub n_held_out: usize,
    pub seed: u64,
    /// The swept head whose sweep reached the highest in-context rate (held-out prompts).
    pub best_single_head: Option<BestHead>,
    pub baseline: Baseline,
    pub heads: HeadAttribution,
    pub patching: Patching,
    pub sweeps: Vec<HeadSweep>,
}

/// The best single-head intervention: the highest held-out in-context rate over every swept
/// head and alpha (alpha = 1, the unscaled model, excluded).
#[derive(Debug, Clone, Serialize)]
pub struct BestHead {
    pub layer: usize,
    pub head: usize,
    pub role: String,
    pub alpha: f64,
    pub in_context: f64,
    pub in_context_ci: [f64; 2],
    pub n: usize,
    /// The unscaled model's in-context rate on the same prompts, for comparison.
    pub baseline_in_context: f64,
    pub baseline_in_context_ci: [f64; 2],
}

/// Picks [`BestHead`] (ties: first in sweep order).
pub fn best_single_head(sweeps: &[HeadSweep], baseline: &AlphaPoint) -> Option<BestHead> {
    let mut best: Option<BestHead> = None;
    for s in sweeps {
        for p in s.points.iter().filter(|p| p.alpha != 1.0) {
            if best.as_ref().is_none_or(|b| p.in_context > b.in_context) {
                best = Some(BestHead {
                    layer: s.layer,
                    head: s.head,
                    role: s.role.clone(),
                    alpha: p.alpha,
                    in_context: p.in_context,
                    in_context_ci: p.in_context_ci,
                    n: p.n,
                    baseline_in_context: baseline.in_context,
                    baseline_in_context_ci: baseline.in_context_ci,
                });
            }
        }
    }
    best
}

/// One `[layer][head]` attribution map and what it measures: what `lantern heads` prints and
/// writes.
#[derive(Debug, Clone, Serialize)]
pub struct HeadsMap {
    pub heads: usize,
    pub layers: usize,
    pub metric: String,
    /// `[layer][head]`.
    pub values: Vec<Vec<f64>>,
}

impl HeadAttribution {
    /// The mean map without the rankings and counts.
    pub fn map(&self) -> HeadsMap {
        HeadsMap {
            heads: self.heads,
            layers: self.layers,
            metric: self.metric.clone(),
            values: self.values.clone(),
        }
    }
}

/// Direct logit attribution of one prompt per head: `logit(target)`, or `logit(target) -
/// logit(versus)`, at `position` (default: the last). `target` and `versus` are text, one
/// token each.
pub fn prompt_heads(
    lm: &LoadedModel,
    prompt: &str,
    target: &str,
    versus: Option<&str>,
    position: Option<usize>,
) -> Result<HeadsMap> {
    let batch = Batch::from_prompts(&lm.tokenizer, &[prompt])?;
    let dir = LogitDirection {
        target: lm.tokenizer.single_token(target)?,
        versus: versus.map(|v| lm.tokenizer.single_token(v)).transpose()?,
    };
    let d = direct_logit_attribution(&lm.model, &batch, &[dir], position)?.remove(0);
    let metric = match versus {
        Some(v) => format!(
            "logit({target:?}) - logit({v:?}) at position {}",
            d.position
        ),
        None => format!("logit({target:?}) at position {}", d.position),
    };
    let c = lm.model.config();
    Ok(HeadsMap {
        heads: c.n_heads,
        layers: c.n_layers,
        metric,
        values: d.heads,
    })
}

/// One patching sweep with the clean prompt's tokens and its run time: what `lantern patch`
/// prints and writes.
#[derive(Debug, Clone, Serialize)]
pub struct PatchReport {
    pub result: PatchResult,
    pub seconds: f64,
    pub tokens: Vec<String>,
}

/// An alpha sweep of one or more heads scaled together: what `lantern scale` prints and writes.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    /// `(layer, head)`.
    pub heads: Vec<(usize, usize)>,
    pub points: Vec<AlphaPoint>,
    pub scale_bias: bool,
}

/// A head written `LAYER.HEAD`, e.g. `11.3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadIndex {
    pub layer: usize,
    pub head: usize,
}

impl std::str::FromStr for HeadIndex {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (l, h) = s
            .split_once('.')
            .with_context(|| format!("head `{s}` is not LAYER.HEAD"))?;
        Ok(HeadIndex {
            layer: l.parse().with_context(|| format!("bad layer in `{s}`"))?,
            head: h.parse().with_context(|| format!("bad head in `{s}`"))?,
        })
    }
}

impl From<HeadIndex> for (usize, usize) {
    fn from(h: HeadIndex) -> Self {
        (h.layer, h.head)
    }
}

/// The JSON of the `heads`, `patch` and `scale` commands (printed with `--json`, written to
/// `--out`): keys sorted at every level, the layout these outputs have always had.
pub trait CommandJson: Serialize {
    fn to_json(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(self)?)
    }
}

impl CommandJson for HeadsMap {}
impl CommandJson for PatchReport {}
impl CommandJson for ScaleReport {}
