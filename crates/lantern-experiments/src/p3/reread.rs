//! Reading recorded sessions again with another state reader: the sessions' text does not
//! depend on the reader (nothing is steered), so a second reader — e.g. the supervised SAE
//! beside the logistic probes — needs only the measuring forward passes, not new generation.
//! The prompts are rebuilt exactly as [`super::run_sessions`] built them (the last
//! `context_turns` exchanges, then the question), and every answer is measured in context.

use std::path::Path;

use anyhow::{bail, Context, Result};
use lantern_causal::{analyse_series, GraphReport};
use lantern_engine::{Hooks, LoadedModel};
use lantern_states::{StateAccuracy, StateSet};
use serde::Serialize;

use super::steps::{
    learn, pooled_features, read_questions, usable_state_names, P3Config, Sessions,
};
use crate::output::ResultsDir;

/// What a second reader found on the same sessions.
#[derive(Debug, Clone, Serialize)]
pub struct RereadReport {
    pub model: String,
    pub layer: usize,
    pub method: String,
    pub probe_accuracy: Vec<StateAccuracy>,
    pub graph: GraphReport,
}

/// Measures `transcripts` (`[session][step] = (question, answer)`) with `states`.
pub fn measure_transcripts(
    lm: &LoadedModel,
    cfg: &P3Config,
    states: &StateSet,
    transcripts: &[Vec<(String, String)>],
) -> Result<Sessions> {
    let usable = usable_state_names(cfg, states)?;
    let idx: Vec<usize> = usable
        .iter()
        .map(|s| states.state_index(s).context("usable state exists"))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for session in transcripts {
        for (step, (q, a)) in session.iter().enumerate() {
            let history = &session[step.saturating_sub(cfg.context_turns)..step];
            let mut prompt: String = history
                .iter()
                .map(|(q, a)| format!("Q: {q}\nA:{a}\n"))
                .collect();
            prompt.push_str(&format!("Q: {q}\nA:"));
            let mut ids = lm.tokenizer.encode(&prompt)?;
            let answer = if a.is_empty() {
                Vec::new()
            } else {
                lm.tokenizer.encode_raw(a)?
            };
            let n = answer.len();
            ids.extend(answer);
            rows.push((ids, n));
        }
    }
    let features = pooled_features(lm, cfg.layer, &rows, cfg.batch_size, &Hooks::new())?;
    let mut activations = Vec::with_capacity(transcripts.len());
    let mut k = 0;
    for session in transcripts {
        let mut steps = Vec::with_capacity(session.len());
        for _ in session {
            let all = states.try_activations(&features[k])?;
            steps.push(idx.iter().map(|&i| all[i]).collect());
            k += 1;
        }
        activations.push(steps);
    }
    Ok(Sessions {
        states: usable,
        activations,
        transcripts: transcripts.to_vec(),
        steered: None,
        fluency: Vec::new(),
    })
}

/// Learns states with `cfg.method`, reads the sessions in `transcripts_json` (a previous run's
/// `transcripts.json`) with them, and writes `states.json`, `probe_accuracy.csv`,
/// `series.csv`, `graph.json`, `graph.dot`, the graph figure and `report.json` into `out`.
pub fn reread(
    lm: &LoadedModel,
    cfg: &P3Config,
    base_dir: &Path,
    transcripts_json: &Path,
    out: &Path,
) -> Result<RereadReport> {
    cfg.validate()?;
    let text = std::fs::read_to_string(transcripts_json)
        .with_context(|| format!("reading {}", transcripts_json.display()))?;
    let transcripts: Vec<Vec<(String, String)>> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a transcripts.json", transcripts_json.display()))?;
    if transcripts.is_empty() || transcripts.iter().any(Vec::is_empty) {
        bail!(
            "{} has no sessions or an empty session",
            transcripts_json.display()
        );
    }
    let dir = ResultsDir::create(out)?;
    let questions = read_questions(&base_dir.join(&cfg.questions))?;
    let states = learn(lm, cfg, &base_dir.join(&cfg.data), &questions)?;
    states.save(dir.path("states.json"))?;
    super::artefacts::probe_accuracy_csv(&dir, &states.held_out)?;
    let sessions = measure_transcripts(lm, cfg, &states, &transcripts)?;
    super::artefacts::series_csv(&dir, "series.csv", &sessions)?;
    let graph = analyse_series(&sessions.series(), &cfg.discovery())?;
    super::artefacts::graph_files(&dir, &graph)?;
    super::artefacts::graph_chart(&dir, &graph, Some(cfg.layer))?;
    let report = RereadReport {
        model: lm.source.clone(),
        layer: cfg.layer,
        method: cfg.method.clone(),
        probe_accuracy: states.held_out.clone(),
        graph,
    };
    dir.json("report.json", &report)?;
    Ok(report)
}
