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

/// Runs every step and writes `out/`: JSON and CSV per step and the figures. Heads are chosen
/// (attribution, patching) on the selection half of a seeded split; the baseline and every
/// sweep are measured on the held-out half. Nothing is written before the inputs are checked.
pub fn run_all(
    lm: &LoadedModel,
    cfg: &P1Config,
    base_dir: &Path,
    out: &Path,
    bar: BarFactory,
) -> Result<P1Report> {
    let capitals = read_capitals(&base_dir.join(&cfg.data))?;
    let prompts = build_prompts(cfg, &capitals, &lm.tokenizer)?;
    let split = split_prompts(cfg, &prompts)?;
    ResultsDir::staged(out, |dir| {
        run_split(lm, cfg, &capitals, &prompts, &split, dir, bar)
    })
}

fn run_split(
    lm: &LoadedModel,
    cfg: &P1Config,
    capitals: &[(String, String)],
    prompts: &[P1Prompt],
    split: &PromptSplit,
    dir: &ResultsDir,
    bar: BarFactory,
) -> Result<P1Report> {
    let cities = all_cities(capitals);
    dir.json("prompts.json", split)?;

    let held = &split.held_out;
    let recall: Vec<_> = held.iter().map(P1Prompt::recall).collect();
    let mut baseline = baseline(lm, cfg, held, &mut *bar("baseline generations", 2))?;
    baseline.with_context.break_down_other(&recall, &cities);
    dir.json("baseline.json", &baseline)?;
    let heads = head_attribution(
        lm,
        cfg,
        &split.selection,
        &mut *bar("head attribution", split.selection.len()),
    )?;
    artefacts::write_head_attribution(dir, &heads)?;
    let pairs = patch_pairs(lm, cfg, &split.selection, capitals)?;
    let patching = patching(
        lm,
        cfg,
        &pairs,
        &mut *bar("patching", pairs.pairs.len() + 1),
    )?;
    artefacts::write_patching(dir, &patching)?;
    let mut sweeps = Vec::new();
    for (role, list) in [
        ("in-context", &heads.top_in_context),
        ("memorized", &heads.top_memorized),
    ] {
        for &(l, h, _) in list.iter().take(cfg.sweep_heads) {
            let mut s = head_sweep(
                lm,
                cfg,
                held,
                l,
                h,
                role,
                &mut *bar(&format!("alpha sweep L{l}H{h}"), cfg.alphas.len()),
            )?;
            for p in &mut s.points {
                p.break_down_other(&recall, &cities);
            }
            sweeps.push(s);
        }
    }
    artefacts::write_sweeps(dir, &sweeps)?;
    let report = P1Report {
        model: lm.source.clone(),
        n_prompts: prompts.len(),
        n_selection: split.selection.len(),
        n_held_out: held.len(),
        seed: cfg.seed,
        best_single_head: best_single_head(&sweeps, &baseline.with_context),
        baseline,
        heads,
        patching,
        sweeps,
    };
    artefacts::figures(&report, dir)?;
    dir.json("report.json", &report)?;
    Ok(report)
}
