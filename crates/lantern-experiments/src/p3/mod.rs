//! Paper P3 — "Emergence of psychopathological computations in large language models" (Lee et
//! al. 2025, arXiv 2504.08016), its method on any lantern-engine model:
//!
//! 1. **States**: directions over one layer's residual stream (`blocks.L.hook_resid_post`),
//!    learned from labelled sentences (mean-pooled over the sentence's tokens, standardised) by
//!    difference of means, logistic probes or a supervised SAE (`lantern-states`).
//! 2. **Sessions**: seeded multi-step question/answer exchanges; after each answer the states'
//!    activations are measured on the answer's tokens, giving one multivariate time series per
//!    session. Steering adds a state's direction during generation only, scaled to the hidden
//!    state's norm times a strength and renormalised (P3's scheme).
//! 3. **Graph**: time-lagged causal discovery over the series, structural equations, cycles,
//!    spectral radius, spread simulation (`lantern-causal`).
//! 4. **Intervention check**: steer each state at one step and compare the observed change of
//!    every state at the next step with the fitted equations' prediction. The control steers
//!    seeded random directions the same way: how much a state moves under its own direction,
//!    next to how much it moves under unrelated pushes of the same size.
//!
//! Sentences and answers are measured in the same context format (`Q: … \nA:` then the text), so
//! the probes see what the sessions produce; the first position of a sequence, whose residual is
//! an attention sink with a huge norm in many models, is never pooled.
//!
//! This folder: `steps` computes (re-exported here), [`artefacts`] writes each file and
//! figure, and [`run_all`] runs the steps and writes their artefacts in order.

pub mod artefacts;
pub mod reread;
mod steps;

pub use steps::*;

use std::path::Path;

use anyhow::Result;
use lantern_causal::analyse_series;
use lantern_engine::LoadedModel;

use crate::output::ResultsDir;
use crate::progress::BarFactory;

/// Runs every step and writes `out/`.
pub fn run_all(
    lm: &LoadedModel,
    cfg: &P3Config,
    base_dir: &Path,
    out: &Path,
    bar: BarFactory,
) -> Result<P3Report> {
    cfg.validate()?;
    let dir = ResultsDir::create(out)?;
    let questions = read_questions(&base_dir.join(&cfg.questions))?;
    let states = learn(lm, cfg, &base_dir.join(&cfg.data), &questions)?;
    states.save(dir.path("states.json"))?;
    artefacts::probe_accuracy_csv(&dir, &states.held_out)?;

    let sessions = run_sessions(
        lm,
        cfg,
        &states,
        &questions,
        cfg.sessions,
        cfg.steps,
        None,
        &mut *bar("sessions (steps)", cfg.steps),
    )?;
    artefacts::write_sessions(&dir, "", &sessions)?;
    let mut steered = None;
    if let Some(state) = &cfg.steer_state {
        let s = run_sessions(
            lm,
            cfg,
            &states,
            &questions,
            cfg.sessions,
            cfg.steps,
            Some((state.as_str(), &cfg.steer_steps)),
            &mut *bar("steered sessions (steps)", cfg.steps),
        )?;
        artefacts::write_sessions(&dir, "_steered", &s)?;
        steered = Some(s);
    }

    let report = analyse_series(&sessions.series(), &cfg.discovery())?;
    artefacts::graph_files(&dir, &report)?;
    let spread = spread_from_strongest(&report)?;
    if let Some(s) = &spread {
        dir.json("spread.json", s)?;
    }
    let check = if cfg.check_sessions > 0 && !report.edges.is_empty() {
        let results = intervention_check(
            lm,
            cfg,
            &states,
            &questions,
            &report,
            &mut *bar(
                "intervention check (states + random directions)",
                sessions.states.len() + cfg.control_directions,
            ),
        )?;
        dir.json("intervention_check.json", &results)?;
        Some(results)
    } else {
        None
    };
    let p3 = P3Report {
        model: lm.source.clone(),
        layer: cfg.layer,
        method: cfg.method.clone(),
        flagged: states
            .held_out
            .iter()
            .filter(|a| a.flagged)
            .map(|a| a.state.clone())
            .collect(),
        probe_accuracy: states.held_out.clone(),
        graph: report,
        spread,
        intervention_check: check.as_ref().map(|r| r.check.clone()),
        check_strength: check.as_ref().map(|r| r.strength),
        check_strength_is_fluent: check.as_ref().map(|r| r.strength_is_fluent),
        strength_sweep: check.as_ref().map(|r| r.sweep.clone()).unwrap_or_default(),
        edges_confirmed: check.as_ref().map(|r| r.edges_confirmed),
        edge_confirmations: check.as_ref().map(|r| r.edges.clone()).unwrap_or_default(),
        steering_control: check.and_then(|r| r.control),
    };
    artefacts::figures(&p3, &sessions, steered.as_ref(), cfg, &dir)?;
    dir.json("report.json", &p3)?;
    Ok(p3)
}
