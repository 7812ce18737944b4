//! P3's steps: the config, states, sessions, steering, the intervention check and their results.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::DType;
use lantern_causal::{
    DiscoveryConfig, GraphReport, ObservedEffect, Session, SpreadConfig, SpreadResult, TimeSeries,
};
use lantern_engine::{
    Batch, GenerateConfig, HookPoint, Hooks, LoadedModel, Logits, RunOptions, Sampling,
};
use lantern_states::{
    learn_states, read_labelled_text, Dataset, ProbeMethod, StateSet, StatesConfig,
};
use lantern_steering::{random_direction, residual_steering};
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
    d_sessions: usize = 12;
    d_steps: usize = 30;
    d_context: usize = 2;
    d_tokens: usize = 24;
    d_temperature: f64 = 0.8;
    d_top_p: f64 = 0.95;
    d_strength: f64 = 4.0;
    d_true: bool = true;
    d_check_step: usize = 4;
    d_check_sessions: usize = 8;
    d_control_directions: usize = 3;
    d_tau: usize = 1;
    d_alpha: f64 = 0.05;
    d_bootstrap: usize = 50;
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
    /// Sessions recorded (default 12) and steps per session (default 30).
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
    /// Added direction = strength × ‖h‖ × unit direction (default 4).
    #[serde(default = "d_strength")]
    pub steer_strength: f64,
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
    /// Causal discovery: maximum lag (1), significance (0.05), bootstrap resamples (50).
    #[serde(default = "d_tau")]
    pub tau_max: usize,
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    #[serde(default = "d_bootstrap")]
    pub bootstrap: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
}

impl P3Config {
    pub fn discovery(&self) -> DiscoveryConfig {
        DiscoveryConfig {
            tau_max: self.tau_max,
            alpha: self.alpha,
            n_bootstrap: self.bootstrap,
            seed: self.seed,
            ..Default::default()
        }
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
            })
        }
        None => None,
    };
    record_sessions(
        lm, cfg, states, &usable, questions, n_sessions, n_steps, steer, progress,
    )
}

/// A direction steered during generation at some steps of every session.
struct Steer {
    /// A state's name, or a description of the direction (the control's).
    label: String,
    direction: Vec<f32>,
    steps: Vec<usize>,
}

#[allow(clippy::too_many_arguments)]
fn record_sessions(
    lm: &LoadedModel,
    cfg: &P3Config,
    states: &StateSet,
    usable: &[String],
    questions: &[String],
    n_sessions: usize,
    n_steps: usize,
    steer: Option<Steer>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Sessions> {
    let idx: Vec<usize> = usable
        .iter()
        .map(|s| states.state_index(s).expect("usable state exists"))
        .collect();
    let steer_iv = match &steer {
        Some(st) => Some((
            residual_steering(
                &st.direction,
                cfg.steer_strength,
                cfg.renormalize,
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
                cfg.seed.wrapping_add(s as u64),
            ));
            o
        })
        .collect();
    let mut transcripts: Vec<Vec<(String, String)>> = vec![Vec::new(); n_sessions];
    let mut activations: Vec<Vec<Vec<f64>>> = vec![Vec::new(); n_sessions];
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
    })
}

/// The intervention check's control: each state's mean change (in the graph's standard-deviation
/// units) when its own direction is steered at `check_step`, and when seeded random directions
/// are steered the same way (same strength, same renormalisation).
#[derive(Debug, Clone, Serialize)]
pub struct SteeringControl {
    /// Seeds of the random directions.
    pub seeds: Vec<u64>,
    pub states: Vec<ControlRow>,
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

/// Everything the intervention check measured.
#[derive(Debug, Clone, Serialize)]
pub struct InterventionResults {
    /// Observed effect of steering each state on every state one step later.
    pub observed: Vec<ObservedEffect>,
    /// The observed effects against the fitted equations' predictions.
    pub check: lantern_causal::InterventionCheck,
    /// None when `control_directions` is 0.
    pub control: Option<SteeringControl>,
}

/// Step 4: for each state, the observed effect at `check_step + 1` of steering it at
/// `check_step`, in standard-deviation units of the fitted graph, next to the prediction; and
/// the same measurements for seeded random directions, the control.
pub fn intervention_check(
    lm: &LoadedModel,
    cfg: &P3Config,
    states: &StateSet,
    questions: &[String],
    report: &GraphReport,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<InterventionResults> {
    let steps = cfg.check_step + 2;
    let base = run_sessions(
        lm,
        cfg,
        states,
        questions,
        cfg.check_sessions,
        steps,
        None,
        &mut |_, _| {},
    )?;
    let n = base.states.len();
    let sd = |k: usize| {
        report
            .state_sds
            .get(k)
            .copied()
            .filter(|v| *v > 0.0)
            .unwrap_or(1.0)
    };
    // Mean change of state k at step t, steered sessions minus the base sessions (sd units).
    let effect = |steered: &Sessions, t: usize, k: usize| -> f64 {
        steered
            .activations
            .iter()
            .zip(&base.activations)
            .map(|(a, b)| a[t][k] - b[t][k])
            .sum::<f64>()
            / cfg.check_sessions.max(1) as f64
            / sd(k)
    };
    let mut observed = Vec::new();
    let mut own = Vec::with_capacity(n);
    for (i, parent) in base.states.iter().enumerate() {
        let steered = run_sessions(
            lm,
            cfg,
            states,
            questions,
            cfg.check_sessions,
            steps,
            Some((parent.as_str(), &[cfg.check_step])),
            &mut |_, _| {},
        )?;
        let delta = effect(&steered, cfg.check_step, i);
        let next: Vec<f64> = (0..n)
            .map(|k| effect(&steered, cfg.check_step + 1, k))
            .collect();
        own.push((delta, next[i]));
        for (child, observed_next) in base.states.iter().zip(next) {
            observed.push(ObservedEffect {
                from: parent.clone(),
                to: child.clone(),
                delta,
                observed: observed_next,
            });
        }
        progress(i + 1, n + cfg.control_directions);
    }
    let seeds: Vec<u64> = (0..cfg.control_directions as u64)
        .map(|j| cfg.seed.wrapping_add(0x5eed + j))
        .collect();
    let mut random = Vec::with_capacity(seeds.len());
    for (j, &seed) in seeds.iter().enumerate() {
        random.push(record_sessions(
            lm,
            cfg,
            states,
            &base.states,
            questions,
            cfg.check_sessions,
            steps,
            Some(Steer {
                label: format!("random direction (seed {seed})"),
                direction: random_direction(lm.model.config().d_model, seed),
                steps: vec![cfg.check_step],
            }),
            &mut |_, _| {},
        )?);
        progress(n + j + 1, n + cfg.control_directions);
    }
    let control = (!seeds.is_empty()).then(|| SteeringControl {
        seeds,
        states: base
            .states
            .iter()
            .zip(own)
            .enumerate()
            .map(|(k, (state, (own_at_step, own_next)))| {
                let at: Vec<f64> = random
                    .iter()
                    .map(|r| effect(r, cfg.check_step, k))
                    .collect();
                let next: Vec<f64> = random
                    .iter()
                    .map(|r| effect(r, cfg.check_step + 1, k))
                    .collect();
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
    });
    let check = report.check_interventions(&observed)?;
    Ok(InterventionResults {
        observed,
        check,
        control,
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
