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
pub mod protocol;
mod steps;

pub use steps::*;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use lantern_engine::LoadedModel;
use serde::Serialize;

use crate::output::ResultsDir;
use crate::progress::BarFactory;
use protocol::{Counterbalanced, Framing};

/// What the pipeline found over every template.
#[derive(Debug, Clone, Serialize)]
pub struct P2Report {
    pub model: String,
    pub chat_template: bool,
    /// One per template, both orders joined.
    pub templates: Vec<Counterbalanced>,
    pub framing: Option<Framing>,
}

/// Checks everything that can be checked before the model runs: counts, frames, single-token
/// options, the informative swap on every template.
fn check_inputs(lm: &LoadedModel, cfg: &P2Config, base_dir: &Path) -> Result<()> {
    if cfg.templates.is_empty() {
        bail!("[p2] lists no templates");
    }
    if !cfg.swapped_templates.is_empty() {
        if cfg.swapped_templates.len() != cfg.templates.len() {
            bail!(
                "[p2] swapped_templates has {} files for {} templates; give one A/B-swapped file per template",
                cfg.swapped_templates.len(),
                cfg.templates.len()
            );
        }
        if cfg.options.len() != 2 {
            bail!(
                "[p2] counterbalancing (swapped_templates) needs exactly two options, got {}",
                cfg.options.len()
            );
        }
    }
    if !cfg.frames.is_empty() {
        if cfg.frames.len() != cfg.templates.len() {
            bail!(
                "[p2] frames has {} entries for {} templates",
                cfg.frames.len(),
                cfg.templates.len()
            );
        }
        if let Some(f) = cfg
            .frames
            .iter()
            .find(|f| !matches!(f.as_str(), "gain" | "loss"))
        {
            bail!("[p2] frames: unknown frame `{f}` (gain, loss)");
        }
    }
    protocol::check_single_token_options(lm, cfg)?;
    for path in template_paths(cfg, base_dir) {
        protocol::load_template(lm, cfg, &path, None)?;
        if let Some(s) = &cfg.informative {
            protocol::load_template(lm, cfg, &path, Some(s))?;
        }
    }
    Ok(())
}

fn template_paths(cfg: &P2Config, base_dir: &Path) -> Vec<PathBuf> {
    cfg.templates
        .iter()
        .chain(&cfg.swapped_templates)
        .map(|t| base_dir.join(t))
        .collect()
}

fn stem_of(t: &Path) -> String {
    t.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("template")
        .to_string()
}

/// Runs every template (in both orders when `swapped_templates` is set; the responsiveness
/// check first) and writes `out/`; nothing is written unless every step succeeds.
pub fn run_all(
    lm: &LoadedModel,
    cfg: &P2Config,
    base_dir: &Path,
    out: &Path,
    bar: BarFactory,
) -> Result<Vec<TemplateReport>> {
    check_inputs(lm, cfg, base_dir)?;
    ResultsDir::staged(out, |dir| {
        let mut reports = Vec::new();
        let mut joined = Vec::new();
        let mut chat_used = false;
        for (i, t) in cfg.templates.iter().enumerate() {
            let mut orders = vec![(base_dir.join(t), cfg.chosen, "original")];
            if let Some(s) = cfg.swapped_templates.get(i) {
                orders.push((base_dir.join(s), 1 - cfg.chosen, "swapped"));
            }
            let mut these = Vec::new();
            let mut resp = Vec::new();
            for (path, chosen, order) in orders {
                let stem = stem_of(&path);
                let parsed = protocol::load_template(lm, cfg, &path, None)?;
                chat_used |= parsed.1;
                let r = analyse_parsed(
                    lm,
                    cfg,
                    &path,
                    parsed,
                    chosen,
                    order,
                    &mut *bar(&format!("exact Shapley {stem}"), 0),
                )?;
                if let Some(s) = &cfg.informative {
                    resp.push(protocol::responsiveness(
                        lm,
                        cfg,
                        &path,
                        s,
                        chosen,
                        order,
                        r.exact.v_full,
                    )?);
                }
                artefacts::write_template(dir, &stem, &r)?;
                these.push(r);
            }
            let refs: Vec<&TemplateReport> = these.iter().collect();
            joined.push(protocol::counterbalance(
                &refs,
                cfg.frames.get(i).cloned(),
                &cfg.noise_players,
                resp,
            )?);
            reports.extend(these);
        }
        let report = P2Report {
            model: lm.source.clone(),
            chat_template: chat_used,
            framing: protocol::framing(&joined)?,
            templates: joined,
        };
        artefacts::summary_json(dir, &reports)?;
        artefacts::protocol_figures(dir, &report)?;
        dir.json("report.json", &report)?;
        Ok(reports)
    })
}
