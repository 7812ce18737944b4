//! P3's steps: the config, states, sessions, steering, the intervention check and their results.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::DType;
use lantern_causal::{
    DiscoveryConfig, GraphReport, ObservedEffect, Session, SessionNormalization, SpreadConfig,
    SpreadResult, TimeSeries,
};
use lantern_engine::{
    Batch, GenerateConfig, HookPoint, Hooks, LoadedModel, Logits, RunOptions, Sampling,
};
use lantern_states::{
    learn_states, read_labelled_text, Dataset, ProbeMethod, StateSet, StatesConfig,
};
use lantern_steering::{random_direction, residual_steering_at, SteerScope};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

macro_rules! defaults {
    ($($name:ident: $t:ty = $v:expr;)*) => { $(fn $name() -> $t { $v })* };
}
defaults! {
    d_method: String = "logistic".into();
    d_baseline: Option<String> = Some("neutral".into());
    d_threshold: f64 = 0.7;
    d_sessions: usize = 32;
    d_steps: usize = 48;
    d_context: usize = 2;
    d_tokens: usize = 24;
    d_temperature: f64 = 0.8;
    d_top_p: f64 = 0.95;
    d_strength: f64 = 1.0;
    d_strengths: Vec<f64> = vec![0.25, 0.5, 1.0, 2.0];
    d_logprob_drop: f64 = 1.0;
    d_degenerate: f64 = 0.2;
    d_min_frequency: f64 = 0.5;
    d_true: bool = true;
    d_check_step: usize = 4;
    d_check_sessions: usize = 8;
    d_control_directions: usize = 3;
    d_tau: usize = 1;
    d_alpha: f64 = 0.01;
    d_bootstrap: usize = 100;
    d_batch: usize = 16;
}

/// The `[p3]` table of an experiment file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P3Config {
    /// Labelled sentences (`text,label` CSV or JSONL), relative to the experiment file.
    pub data: PathBuf,
    /// Residual stream read: `blocks.{layer}.hook_resid_post`.
    pub layer: usize,
    /// diff_means, logistic (default) or sae.
    #[serde(default = "d_method")]
    pub method: String,
    /// Label of the neutral class states are contrasted with (default "neutral").
    #[serde(default = "d_baseline")]
    pub baseline: Option<String>,
    /// Held-out balanced accuracy below which a state is flagged and left out (default 0.7).
    #[serde(default = "d_threshold")]
    pub accuracy_threshold: f64,
    /// Interviewer questions, one per line.
    pub questions: PathBuf,
    /// Sessions recorded (default 32) and steps per session (default 48).
    #[serde(default = "d_sessions")]
    pub sessions: usize,
    #[serde(default = "d_steps")]
    pub steps: usize,
    /// Previous exchanges kept in the prompt (default 2).
    #[serde(default = "d_context")]
    pub context_turns: usize,
    #[serde(default = "d_tokens")]
    pub max_new_tokens: usize,
    #[serde(default = "d_temperature")]
    pub temperature: f64,
    #[serde(default = "d_top_p")]
    pub top_p: f64,
    #[serde(default)]
    pub seed: u64,
    /// A state to steer in a second set of sessions, at `steer_steps` (default: none).
    pub steer_state: Option<String>,
    #[serde(default)]
    pub steer_steps: Vec<usize>,
    /// Added direction = strength × ‖h‖ × unit direction, for the steered demo sessions
    /// (default 1; strength 4 on every position left answers as fragments).
    #[serde(default = "d_strength")]
    pub steer_strength: f64,
    /// Steer the prompt (prefill) positions too (default false: only the positions that
    /// predict generated tokens, P3's "during generation only").
    #[serde(default)]
    pub steer_prefill: bool,
    /// Strengths the intervention check sweeps (default 0.25, 0.5, 1, 2); the check uses the
    /// strongest one whose answers stay fluent, and says which.
    #[serde(default = "d_strengths")]
    pub check_strengths: Vec<f64>,
    /// Fluent: the unsteered model's mean log-probability per token of the steered answers
    /// is at most this many nats below that of the unsteered answers (default 1) …
    #[serde(default = "d_logprob_drop")]
    pub fluency_max_logprob_drop: f64,
    /// … and the share of empty or repeated answers rises by at most this (default 0.2).
    #[serde(default = "d_degenerate")]
    pub fluency_max_degenerate_increase: f64,
    /// Rescale the steered hidden state to its original norm (default true).
    #[serde(default = "d_true")]
    pub renormalize: bool,
    /// Intervention check: steer each state at this step (default 4) in this many sessions (8).
    #[serde(default = "d_check_step")]
    pub check_step: usize,
    #[serde(default = "d_check_sessions")]
    pub check_sessions: usize,
    /// The check's control: this many seeded random directions, steered the same way (default 3).
    #[serde(default = "d_control_directions")]
    pub control_directions: usize,
    /// Causal discovery: maximum lag (1), significance (0.01), bootstrap resamples (100),
    /// bootstrap frequency an edge needs (0.5), optional Benjamini–Hochberg level, and the
    /// per-session normalisation before pooling (`center`, `standardize` or `none`).
    #[serde(default = "d_tau")]
    pub tau_max: usize,
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    #[serde(default = "d_bootstrap")]
    pub bootstrap: usize,
    #[serde(default = "d_min_frequency")]
    pub min_frequency: f64,
    #[serde(default)]
    pub fdr: Option<f64>,
    #[serde(default)]
    pub session_normalization: SessionNormalization,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
}

impl P3Config {
    pub fn discovery(&self) -> DiscoveryConfig {
        DiscoveryConfig {
            tau_max: self.tau_max,
            alpha: self.alpha,
            n_bootstrap: self.bootstrap,
            min_frequency: self.min_frequency,
            fdr: self.fdr,
            session_normalization: self.session_normalization,
            seed: self.seed,
            ..Default::default()
        }
    }

    /// Where steering acts.
    pub fn steer_scope(&self) -> SteerScope {
        if self.steer_prefill {
            SteerScope::All
        } else {
            SteerScope::Generated
        }
    }

    /// Checks what serde cannot: the strength list and the discovery settings.
    pub fn validate(&self) -> Result<()> {
        if self.check_strengths.is_empty() {
            bail!("[p3] check_strengths is empty: give at least one steering strength");
        }
        if let Some(s) = self
            .check_strengths
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0))
        {
            bail!("[p3] check_strengths must be positive and finite, got {s}");
        }
        if !(self.fluency_max_logprob_drop >= 0.0 && self.fluency_max_logprob_drop.is_finite()) {
            bail!("[p3] fluency_max_logprob_drop must be a finite number >= 0");
        }
        if !(0.0..=1.0).contains(&self.fluency_max_degenerate_increase) {
            bail!("[p3] fluency_max_degenerate_increase must be in [0, 1]");
        }
        self.discovery().validate()?;
        Ok(())
    }
}

/// Mean of `blocks.{layer}.hook_resid_post` over the last `text_len[i]` positions of each row.
/// Rows are `context ++ text` token ids (left-padded in batches).
pub fn pooled_features(
    lm: &LoadedModel,
    layer: usize,
    rows: &[(Vec<u32>, usize)],
    batch_size: usize,
    hooks: &Hooks,
) -> Result<Vec<Vec<f32>>> {
    let point = HookPoint::resid_post(layer);
    point.check(lm.model.config())?;
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(batch_size.max(1)) {
        let batch = Batch::from_ids(chunk.iter().map(|(ids, _)| ids.clone()).collect())?;
        let mut h = hooks.clone().capture(point);
        lm.model
            .run(&batch, &mut h, RunOptions::default().logits(Logits::None))?;
        let resid = h.cache.require(point)?.to_dtype(DType::F32)?;
        let t = batch.seq_len();
        for (i, (ids, n)) in chunk.iter().enumerate() {
            // Never pool position 0 (an attention sink); at least one position.
            let n = (*n).clamp(1, ids.len().saturating_sub(1).max(1));
            let pooled = resid.get(i)?.narrow(0, t - n, n)?.mean(0)?;
            out.push(pooled.to_vec1::<f32>()?);
        }
    }
    Ok(out)
}

/// Tokens of text that continues a context (no BOS, even for models that want one).
fn encode(lm: &LoadedModel, text: &str) -> Result<Vec<u32>> {
    Ok(if text.is_empty() {
        Vec::new()
    } else {
        lm.tokenizer.encode_raw(text)?
    })
}

/// Step 1: learn the states from labelled sentences, each read after a question.
pub fn learn(
    lm: &LoadedModel,
    cfg: &P3Config,
    data: &Path,
    questions: &[String],
) -> Result<StateSet> {
    let rows = read_labelled_text(data)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut ids = Vec::with_capacity(rows.len());
    for (text, _) in &rows {
        let q = questions.choose(&mut rng).context("no questions")?;
        let mut context = lm.tokenizer.encode(&format!("Q: {q}\nA:"))?;
        let sentence = encode(lm, &format!(" {text}"))?;
        let n = sentence.len();
        context.extend(sentence);
        ids.push((context, n));
    }
    let features = pooled_features(lm, cfg.layer, &ids, cfg.batch_size, &Hooks::new())?;
    let (labels, label_names) =
        lantern_states::encode_labels(&rows.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>());
    let method: ProbeMethod = cfg.method.parse()?;
    let states_cfg = StatesConfig {
        method,
        baseline: cfg.baseline.clone(),
        seed: cfg.seed,
        accuracy_threshold: cfg.accuracy_threshold,
        ..Default::default()
    };
    Ok(learn_states(
        &Dataset {
            features,
            labels,
            label_names,
        },
        &states_cfg,
    )?)
}

/// Recorded sessions: activations `[session][step][state]` and the transcripts.
#[derive(Debug, Clone, Serialize)]
pub struct Sessions {
    pub states: Vec<String>,
    pub activations: Vec<Vec<Vec<f64>>>,
    pub transcripts: Vec<Vec<(String, String)>>,
    /// Steps at which a state was steered (empty: none).
    pub steered: Option<(String, Vec<usize>)>,
    /// Fluency of the answers at the steps asked for (empty: none measured).
    pub fluency: Vec<Fluency>,
}

impl Sessions {
    pub fn series(&self) -> TimeSeries {
        TimeSeries {
            names: self.states.clone(),
            sessions: self
                .activations
                .iter()
                .enumerate()
                .map(|(i, v)| Session {
                    label: i.to_string(),
                    values: v.clone(),
                })
                .collect(),
        }
    }
    /// CSV rows: `session,step,<states...>`.
    pub fn csv_rows(&self) -> Vec<Vec<String>> {
        let mut rows = vec![["session", "step"]
            .iter()
            .map(|s| s.to_string())
            .chain(self.states.iter().cloned())
            .collect()];
        for (s, steps) in self.activations.iter().enumerate() {
            for (t, v) in steps.iter().enumerate() {
                rows.push(
                    [s.to_string(), t.to_string()]
                        .into_iter()
                        .chain(v.iter().map(|x| format!("{x:.6}")))
                        .collect(),
                );
            }
        }
        rows
    }
}

/// Step 2: runs `n_sessions` seeded sessions of `n_steps` steps together, measuring the usable
/// states after every answer; `steer = (state, steps)` steers during generation at those steps.
#[allow(clippy::too_many_arguments)]
pub fn run_sessions(
    lm: &LoadedModel,
    cfg: &P3Config,
    states: &StateSet,
    questions: &[String],
    n_sessions: usize,
    n_steps: usize,
    steer: Option<(&str, &[usize])>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Sessions> {
    run_session_range(
        lm,
        cfg,
        states,
        questions,
        0..n_sessions,
        n_steps,
        steer,
        progress,
    )
}

/// [`run_sessions`] for the sessions `range` of a larger run (a shard's block): session `s`
/// asks its questions in the order seeded by its global index, and generation is seeded per
/// step, so a range aligned on `cfg.batch_size` records exactly what the whole run records
/// for those sessions (same batches, same padding, same sampling streams).
#[allow(clippy::too_many_arguments)]
pub fn run_session_range(
    lm: &LoadedModel,
    cfg: &P3Config,
    states: &StateSet,
    questions: &[String],
    range: std::ops::Range<usize>,
    n_steps: usize,
    steer: Option<(&str, &[usize])>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Sessions> {
    let usable = usable_state_names(cfg, states)?;
    let steer = match steer {
        Some((name, steps)) => {
            let d = states.direction(name).with_context(|| {
                format!(
                    "unknown state `{name}` (states: {})",
                    states.label_names.join(", ")
                )
            })?;
            if !usable.iter().any(|u| u == name) {
                bail!("state `{name}` is flagged (held-out accuracy below the threshold) and is not steered");
            }
            Some(Steer {
                label: name.to_string(),
                direction: d.to_vec(),
                steps: steps.to_vec(),
                strength: cfg.steer_strength,
            })
        }
        None => None,
    };
    record_sessions(
        lm,
        cfg,
        states,
        &usable,
        questions,
        range,
        n_steps,
        steer,
        &[],
        progress,
    )
}

/// A direction steered during generation at some steps of every session.
struct Steer {
    /// A state's name, or a description of the direction (the control's).
    label: String,
    direction: Vec<f32>,
    steps: Vec<usize>,
    strength: f64,
}

#[allow(clippy::too_many_arguments)]
fn record_sessions(
    lm: &LoadedModel,
    cfg: &P3Config,
    states: &StateSet,
    usable: &[String],
    questions: &[String],
    range: std::ops::Range<usize>,
    n_steps: usize,
    steer: Option<Steer>,
    fluency_steps: &[usize],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Sessions> {
    let (first, n_sessions) = (range.start, range.len());
    let idx: Vec<usize> = usable
        .iter()
        .map(|s| states.state_index(s).expect("usable state exists"))
        .collect();
    let steer_iv = match &steer {
        Some(st) => Some((
            residual_steering_at(
                &st.direction,
                st.strength,
                cfg.renormalize,
                cfg.steer_scope(),
                lm.model.device(),
            )?,
            &st.steps,
        )),
        None => None,
    };
    let point = HookPoint::resid_post(cfg.layer);
    // Each session asks the questions in its own seeded order.
    let orders: Vec<Vec<usize>> = (0..n_sessions)
        .map(|s| {
            let mut o: Vec<usize> = (0..questions.len()).collect();
            o.shuffle(&mut ChaCha8Rng::seed_from_u64(
                cfg.seed.wrapping_add((first + s) as u64),
            ));
            o
        })
        .collect();
    let mut transcripts: Vec<Vec<(String, String)>> = vec![Vec::new(); n_sessions];
    let mut activations: Vec<Vec<Vec<f64>>> = vec![Vec::new(); n_sessions];
    let mut fluency = Vec::new();
    for step in 0..n_steps {
        let prompts: Vec<String> = (0..n_sessions)
            .map(|s| {
                let history =
                    &transcripts[s][transcripts[s].len().saturating_sub(cfg.context_turns)..];
                let mut p: String = history
                    .iter()
                    .map(|(q, a)| format!("Q: {q}\nA:{a}\n"))
                    .collect();
                p.push_str(&format!(
                    "Q: {}\nA:",
                    questions[orders[s][step % questions.len()]]
                ));
                p
            })
            .collect();
        let mut hooks = Hooks::new();
        if let Some((iv, steps)) = &steer_iv {
            if steps.contains(&step) {
                hooks = hooks.intervene(point, iv.clone());
            }
        }
        let gen = GenerateConfig {
            max_new_tokens: cfg.max_new_tokens,
            sampling: Sampling::Sample {
                temperature: cfg.temperature,
                top_k: None,
                top_p: Some(cfg.top_p),
                seed: cfg.seed.wrapping_mul(1_000_003).wrapping_add(step as u64),
            },
            stop_strings: vec!["\n".into(), "Q:".into()],
            ..Default::default()
        };
        let mut rows = Vec::with_capacity(n_sessions);
        let mut answers = Vec::with_capacity(n_sessions);
        for chunk in prompts.chunks(cfg.batch_size.max(1)) {
            let g = lm
                .model
                .generate_batch(&lm.tokenizer, chunk, &gen, &mut hooks.clone())?;
            for row in g.rows {
                // Measure on the kept answer's tokens, in context.
                let answer = row.text.clone();
                let answer_ids = encode(lm, &answer)?;
                let n = answer_ids.len();
                let mut ids = row.prompt_ids.clone();
                ids.extend(answer_ids);
                rows.push((ids, n));
                answers.push(answer);
            }
        }
        let features = pooled_features(lm, cfg.layer, &rows, cfg.batch_size, &Hooks::new())?;
        if fluency_steps.contains(&step) {
            let logprobs = answer_logprobs(lm, &rows)?;
            let degenerate = (0..n_sessions)
                .filter(|&s| {
                    is_degenerate(&answers[s], transcripts[s].last().map(|p| p.1.as_str()))
                })
                .count();
            fluency.push(Fluency::new(step, &logprobs, degenerate, n_sessions));
        }
        for s in 0..n_sessions {
            let all = states.try_activations(&features[s])?;
            activations[s].push(idx.iter().map(|&i| all[i]).collect());
            transcripts[s].push((
                questions[orders[s][step % questions.len()]].clone(),
                answers[s].clone(),
            ));
        }
        progress(step + 1, n_steps);
    }
    Ok(Sessions {
        states: usable.to_vec(),
        activations,
        transcripts,
        steered: steer.map(|st| (st.label, st.steps)),
        fluency,
    })
}

/// Fluency of the answers at one step, judged by the unsteered model.
#[derive(Debug, Clone, Serialize)]
pub struct Fluency {
    pub step: usize,
    /// Mean over answers of the unsteered model's mean log-probability per answer token
    /// (`None` when every answer is empty).
    pub mean_logprob: Option<f64>,
    /// Share of answers that are empty, repeat the session's previous answer, or mostly
    /// repeat one word.
    pub degenerate_share: f64,
    pub n_answers: usize,
}

impl Fluency {
    fn new(step: usize, logprobs: &[Option<f64>], degenerate: usize, n: usize) -> Self {
        let lp: Vec<f64> = logprobs.iter().flatten().copied().collect();
        Self {
            step,
            mean_logprob: (!lp.is_empty()).then(|| lp.iter().sum::<f64>() / lp.len() as f64),
            degenerate_share: degenerate as f64 / n.max(1) as f64,
            n_answers: n,
        }
    }
}

/// Empty, a copy of the previous answer, or at least half its words repeating the word before.
fn is_degenerate(answer: &str, previous: Option<&str>) -> bool {
    let a = answer.trim();
    if a.is_empty() || previous.is_some_and(|p| p.trim() == a) {
        return true;
    }
    let words: Vec<&str> = a.split_whitespace().collect();
    let repeats = words.windows(2).filter(|w| w[0] == w[1]).count();
    words.len() >= 3 && repeats * 2 >= words.len()
}

/// The unsteered model's mean log-probability per token of each row's last `n` tokens
/// (`None` for `n = 0`). Rows run in chunks of 4: full logits are `[B, T, vocab]`.
pub fn answer_logprobs(lm: &LoadedModel, rows: &[(Vec<u32>, usize)]) -> Result<Vec<Option<f64>>> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(4) {
        let batch = Batch::from_ids(chunk.iter().map(|(ids, _)| ids.clone()).collect())?;
        let run = lm.model.run(
            &batch,
            &mut Hooks::new(),
            RunOptions::default().logits(Logits::All),
        )?;
        let logits = run.logits.context("the run returned no logits")?;
        let t = batch.seq_len();
        for (i, (ids, n)) in chunk.iter().enumerate() {
            let n = (*n).min(ids.len().saturating_sub(1));
            if n == 0 {
                out.push(None);
                continue;
            }
            // Logits at position p predict the token at p + 1 (rows are right-aligned).
            let rows_logits = logits
                .get(i)?
                .narrow(0, t - n - 1, n)?
                .to_dtype(DType::F32)?
                .to_vec2::<f32>()?;
            let mut total = 0.0;
            for (k, l) in rows_logits.iter().enumerate() {
                let target = ids[ids.len() - n + k] as usize;
                let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let lse = max + l.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
                total += l.get(target).copied().unwrap_or(f32::NEG_INFINITY) as f64 - lse;
            }
            out.push(Some(total / n as f64));
        }
    }
    Ok(out)
}

/// The intervention check's control: each state's mean change (in the graph's standard-deviation
/// units) when its own direction is steered at `check_step`, and when seeded random directions
/// are steered the same way (same strength, same renormalisation); and, for every steered
/// state, every other state's change next to its change under the random directions.
#[derive(Debug, Clone, Serialize)]
pub struct SteeringControl {
    /// Seeds of the random directions.
    pub seeds: Vec<u64>,
    /// Strength used (the check's chosen strength).
    pub strength: f64,
    pub states: Vec<ControlRow>,
    /// Every (steered state, measured state) pair one step after steering, own pairs included.
    pub pairs: Vec<ControlPair>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlRow {
    pub state: String,
    /// Change at the steered step under the state's own direction.
    pub own_at_step: f64,
    /// Change at the steered step under each random direction, their mean and sample SD
    /// (0 with one direction).
    pub random_at_step: Vec<f64>,
    pub random_at_step_mean: f64,
    pub random_at_step_sd: f64,
    /// The same one step later, after steering has stopped.
    pub own_next: f64,
    pub random_next: Vec<f64>,
    pub random_next_mean: f64,
    pub random_next_sd: f64,
}

/// One measured state's change one step after a state was steered, against the same state's
/// changes under the random directions.
#[derive(Debug, Clone, Serialize)]
pub struct ControlPair {
    pub steered: String,
    pub measured: String,
    pub observed: f64,
    pub random_mean: f64,
    pub random_sd: f64,
    /// `|observed|` above every random direction's `|change|` of the measured state.
    pub exceeds_random: bool,
}

/// Mean and sample standard deviation (0 for fewer than two values).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// One strength of the sweep: the steered answers' fluency next to the unsteered ones'.
#[derive(Debug, Clone, Serialize)]
pub struct StrengthFluency {
    pub strength: f64,
    /// Over every state's steered sessions at the steered step.
    pub mean_logprob: Option<f64>,
    pub degenerate_share: f64,
    pub fluent: bool,
}

/// A graph edge (direct lag-1 link) confirmed by steering: the observed change has the
/// predicted sign, its 95% interval over sessions excludes 0, and it exceeds every random
/// direction's change of the same state.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeConfirmation {
    pub from: String,
    pub to: String,
    pub predicted: f64,
    pub observed: f64,
    pub interval: Option<(f64, f64)>,
    pub confirmed: bool,
}

/// Everything the intervention check measured.
#[derive(Debug, Clone, Serialize)]
pub struct InterventionResults {
    /// Unsteered answers' fluency at the steered step (the reference).
    pub unsteered_fluency: Fluency,
    /// The strength sweep.
    pub sweep: Vec<StrengthFluency>,
    /// The strength the check used: the strongest fluent one (the weakest if none is fluent).
    pub strength: f64,
    pub strength_is_fluent: bool,
    /// Observed effect of steering each state on every state one step later.
    pub observed: Vec<ObservedEffect>,
    /// The observed effects against the fitted equations' predictions.
    pub check: lantern_causal::InterventionCheck,
    /// None when `control_directions` is 0.
    pub control: Option<SteeringControl>,
    /// Each direct lag-1 edge between two states, confirmed or not.
    pub edges: Vec<EdgeConfirmation>,
    pub edges_confirmed: usize,
}

/// Step 4: sweep the strengths, steering each state at `check_step`; keep the strongest
/// strength whose answers stay fluent; at it, the observed effect at `check_step + 1` on every
/// state (in standard-deviation units of the fitted graph, with per-session values) next to
/// the prediction, and the same measurements for seeded random directions, the control.
pub fn intervention_check(
    lm: &LoadedModel,
    cfg: &P3Config,
    states: &StateSet,
    questions: &[String],
    report: &GraphReport,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<InterventionResults> {
    cfg.validate()?;
    let steps = cfg.check_step + 2;
    let at = [cfg.check_step];
    let names = report.nodes.clone();
    let n = names.len();
    let record = |steer: Option<Steer>| {
        record_sessions(
            lm,
            cfg,
            states,
            &names,
            questions,
            0..cfg.check_sessions,
            steps,
            steer,
            &at,
            &mut |_, _| {},
        )
    };
    let total = cfg.check_strengths.len() * n + cfg.control_directions + 1;
    let base = record(None)?;
    progress(1, total);
    let base_fluency = base.fluency[0].clone();
    let sd = |k: usize| {
        report
            .state_sds
            .get(k)
            .copied()
            .filter(|v| *v > 0.0)
            .unwrap_or(1.0)
    };
    // Change of state k at step t in each session, steered minus base (sd units).
    let per_session = |steered: &Sessions, t: usize, k: usize| -> Vec<f64> {
        steered
            .activations
            .iter()
            .zip(&base.activations)
            .map(|(a, b)| (a[t][k] - b[t][k]) / sd(k))
            .collect()
    };
    let effect = |steered: &Sessions, t: usize, k: usize| -> f64 {
        let v = per_session(steered, t, k);
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let mut strengths = cfg.check_strengths.clone();
    strengths.sort_by(f64::total_cmp);
    let mut sweep = Vec::new();
    let mut runs: Vec<Vec<Sessions>> = Vec::new();
    let mut done = 1;
    for &strength in &strengths {
        let mut by_state = Vec::with_capacity(n);
        for name in &names {
            let direction = states
                .direction(name)
                .with_context(|| format!("no direction for state `{name}`"))?
                .to_vec();
            by_state.push(record(Some(Steer {
                label: name.clone(),
                direction,
                steps: at.to_vec(),
                strength,
            }))?);
            done += 1;
            progress(done, total);
        }
        let lps: Vec<f64> = by_state
            .iter()
            .filter_map(|r| r.fluency[0].mean_logprob)
            .collect();
        let mean_logprob = (!lps.is_empty()).then(|| lps.iter().sum::<f64>() / lps.len() as f64);
        let degenerate_share = by_state
            .iter()
            .map(|r| r.fluency[0].degenerate_share)
            .sum::<f64>()
            / n.max(1) as f64;
        let fluent = match (mean_logprob, base_fluency.mean_logprob) {
            (Some(lp), Some(base_lp)) => lp >= base_lp - cfg.fluency_max_logprob_drop,
            _ => false,
        } && degenerate_share
            <= base_fluency.degenerate_share + cfg.fluency_max_degenerate_increase;
        sweep.push(StrengthFluency {
            strength,
            mean_logprob,
            degenerate_share,
            fluent,
        });
        runs.push(by_state);
    }
    let chosen = sweep.iter().rposition(|f| f.fluent);
    let k_used = chosen.unwrap_or(0);
    let strength = strengths[k_used];
    let used = &runs[k_used];
    let mut observed = Vec::new();
    let mut own = Vec::with_capacity(n);
    for (i, parent) in names.iter().enumerate() {
        let steered = &used[i];
        let delta = effect(steered, cfg.check_step, i);
        own.push((delta, effect(steered, cfg.check_step + 1, i)));
        for (k, child) in names.iter().enumerate() {
            let v = per_session(steered, cfg.check_step + 1, k);
            observed.push(ObservedEffect {
                from: parent.clone(),
                to: child.clone(),
                delta,
                observed: v.iter().sum::<f64>() / v.len().max(1) as f64,
                per_session: v,
            });
        }
    }
    let seeds: Vec<u64> = (0..cfg.control_directions as u64)
        .map(|j| cfg.seed.wrapping_add(0x5eed + j))
        .collect();
    let mut random = Vec::with_capacity(seeds.len());
    for &seed in &seeds {
        random.push(record(Some(Steer {
            label: format!("random direction (seed {seed})"),
            direction: random_direction(lm.model.config().d_model, seed),
            steps: at.to_vec(),
            strength,
        }))?);
        done += 1;
        progress(done, total);
    }
    let random_next: Vec<Vec<f64>> = (0..n)
        .map(|k| {
            random
                .iter()
                .map(|r| effect(r, cfg.check_step + 1, k))
                .collect()
        })
        .collect();
    let exceeds = |k: usize, obs: f64| {
        !random_next[k].is_empty() && random_next[k].iter().all(|r| obs.abs() > r.abs())
    };
    let control = (!seeds.is_empty()).then(|| SteeringControl {
        seeds: seeds.clone(),
        strength,
        states: names
            .iter()
            .zip(&own)
            .enumerate()
            .map(|(k, (state, &(own_at_step, own_next)))| {
                let at: Vec<f64> = random
                    .iter()
                    .map(|r| effect(r, cfg.check_step, k))
                    .collect();
                let next = random_next[k].clone();
                let ((at_mean, at_sd), (next_mean, next_sd)) = (mean_sd(&at), mean_sd(&next));
                ControlRow {
                    state: state.clone(),
                    own_at_step,
                    random_at_step: at,
                    random_at_step_mean: at_mean,
                    random_at_step_sd: at_sd,
                    own_next,
                    random_next: next,
                    random_next_mean: next_mean,
                    random_next_sd: next_sd,
                }
            })
            .collect(),
        pairs: observed
            .iter()
            .map(|o| {
                let k = names.iter().position(|m| *m == o.to).unwrap_or(0);
                let (mean, sd) = mean_sd(&random_next[k]);
                ControlPair {
                    steered: o.from.clone(),
                    measured: o.to.clone(),
                    observed: o.observed,
                    random_mean: mean,
                    random_sd: sd,
                    exceeds_random: exceeds(k, o.observed),
                }
            })
            .collect(),
    });
    let check = report.check_interventions(&observed)?;
    let edges: Vec<EdgeConfirmation> = check
        .comparisons
        .iter()
        .filter(|c| c.has_edge && c.from != c.to)
        .map(|c| {
            let k = names.iter().position(|m| *m == c.to).unwrap_or(0);
            let excludes_zero = c.interval.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0);
            EdgeConfirmation {
                from: c.from.clone(),
                to: c.to.clone(),
                predicted: c.predicted,
                observed: c.observed,
                interval: c.interval,
                confirmed: c.sign_agrees == Some(true) && excludes_zero && exceeds(k, c.observed),
            }
        })
        .collect();
    Ok(InterventionResults {
        unsteered_fluency: base_fluency,
        strength,
        strength_is_fluent: chosen.is_some(),
        sweep,
        observed,
        check,
        control,
        edges_confirmed: edges.iter().filter(|e| e.confirmed).count(),
        edges,
    })
}

/// Everything P3 produced.
#[derive(Debug, Clone, Serialize)]
pub struct P3Report {
    pub model: String,
    pub layer: usize,
    pub method: String,
    pub probe_accuracy: Vec<lantern_states::StateAccuracy>,
    pub flagged: Vec<String>,
    pub graph: GraphReport,
    pub spread: Option<lantern_causal::SpreadResult>,
    pub intervention_check: Option<lantern_causal::InterventionCheck>,
    /// The strength the check used (the strongest fluent one of the sweep) and whether it
    /// was fluent (false: no strength was, the weakest was used).
    pub check_strength: Option<f64>,
    pub check_strength_is_fluent: Option<bool>,
    pub strength_sweep: Vec<StrengthFluency>,
    /// Direct lag-1 edges between states confirmed by steering, and each edge's verdict.
    pub edges_confirmed: Option<usize>,
    pub edge_confirmations: Vec<EdgeConfirmation>,
    pub steering_control: Option<SteeringControl>,
}

/// The spread simulation from the state with the largest out-strength (`+2` SD held for one
/// step, 12 steps); `None` when the graph has no edge.
pub fn spread_from_strongest(report: &GraphReport) -> Result<Option<SpreadResult>> {
    let source = report
        .centrality
        .iter()
        .max_by(|a, b| a.out_strength.total_cmp(&b.out_strength))
        .map(|c| c.node.clone());
    Ok(match source {
        Some(source) if !report.edges.is_empty() => {
            Some(report.simulate_spread(&SpreadConfig {
                source,
                magnitude: 2.0,
                hold_steps: 1,
                steps: 12,
                threshold: 0.1,
            })?)
        }
        _ => None,
    })
}

pub fn read_questions(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading questions {}", path.display()))?;
    let q: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if q.is_empty() {
        bail!("{} has no questions", path.display());
    }
    Ok(q)
}

/// The names of the states whose reader reached `cfg.accuracy_threshold`; an error when there is
/// none, since a graph over no states measures nothing.
pub(crate) fn usable_state_names(cfg: &P3Config, states: &StateSet) -> Result<Vec<String>> {
    let usable: Vec<String> = states
        .usable_states()
        .iter()
        .map(|s| s.to_string())
        .collect();
    if usable.is_empty() {
        bail!(
            "no state reached the accuracy threshold {}; nothing to measure",
            cfg.accuracy_threshold
        );
    }
    Ok(usable)
}
