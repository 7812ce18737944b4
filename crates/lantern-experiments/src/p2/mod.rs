//! Paper P2 — "Explaining Large Language Models Decisions Using Shapley Values" (Mohammadi 2024,
//! arXiv 2404.01332): Shapley values of prompt components on a model's choice, the share of
//! attribution taken by components that carry no decision information ("token noise"), how it
//! moves across paraphrased templates, and how the estimators agree.
//!
//! Every coalition's value is computed once by the model (exact enumeration); the sampled
//! estimators are then run at equal budgets on that table, so their error against the exact
//! values costs no further model evaluations.
//!
//! This folder: `steps` computes (re-exported here), [`artefacts`] writes each file and
//! figure, and [`run_all`] runs the steps and writes their artefacts in order.

pub mod artefacts;
mod steps;

pub use steps::*;

use std::path::Path;

use anyhow::{bail, Result};
use lantern_engine::LoadedModel;

use crate::output::ResultsDir;
use crate::progress::BarFactory;

/// Runs every template and writes `out/`.
pub fn run_all(
    lm: &LoadedModel,
    cfg: &P2Config,
    base_dir: &Path,
    out: &Path,
    bar: BarFactory,
) -> Result<Vec<TemplateReport>> {
    if cfg.templates.is_empty() {
        bail!("[p2] lists no templates");
    }
    let dir = ResultsDir::create(out)?;
    let mut reports = Vec::new();
    for t in &cfg.templates {
        let path = base_dir.join(t);
        let stem = t
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("template")
            .to_string();
        let r = analyse_template(
            lm,
            cfg,
            &path,
            &mut *bar(&format!("exact Shapley {stem}"), 0),
        )?;
        artefacts::write_template(&dir, &stem, &r)?;
        reports.push(r);
    }
    artefacts::summary_json(&dir, &reports)?;
    Ok(reports)
}
