//! Paper P1 — "Characterizing Mechanisms for Factual Recall in Language Models" (Yu, Merullo &
//! Pavlick, EMNLP 2023, arXiv 2310.15910): when the context contradicts a memorised fact, which
//! answer does the model give, which heads push each way, and can scaling one head's value vectors
//! move the balance?
//!
//! Steps (each also a CLI subcommand): baseline rates, head attribution, activation patching,
//! alpha sweep. The prompt template is a parameter of the experiment file.
//!
//! This folder: `steps` computes (re-exported here), [`artefacts`] writes each file and
//! figure, and [`run_all`] runs the steps and writes their artefacts in order.

pub mod artefacts;
mod steps;

pub use steps::*;

use std::path::Path;

use anyhow::Result;
use lantern_engine::LoadedModel;

use crate::output::ResultsDir;
use crate::progress::BarFactory;

/// Runs every step and writes `out/`: JSON and CSV per step and the figures.
pub fn run_all(
    lm: &LoadedModel,
    cfg: &P1Config,
    base_dir: &Path,
    out: &Path,
    bar: BarFactory,
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
    artefacts::write_head_attribution(&dir, &heads)?;
    let pairs = patch_pairs(lm, cfg, &prompts, &capitals)?;
    let patching = patching(lm, cfg, &pairs, &mut *bar("patching", pairs.len() + 1))?;
    artefacts::write_patching(&dir, &patching)?;
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
    artefacts::write_sweeps(&dir, &sweeps)?;
    let report = P1Report {
        model: lm.source.clone(),
        n_prompts: prompts.len(),
        baseline,
        heads,
        patching,
        sweeps,
    };
    artefacts::figures(&report, &dir)?;
    dir.json("report.json", &report)?;
    Ok(report)
}
