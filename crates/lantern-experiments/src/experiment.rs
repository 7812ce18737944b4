//! Experiment files: one TOML file names a model, a results folder and the steps of one paper.
//!
//! ```toml
//! model = "qwen2.5-coder-0.5b"   # a path, a model name or a hub id; optional (default: SmolLM2)
//! out = "results/p1"                                   # relative to the working directory
//!
//! [p1]
//! data = "data/capitals.csv"                           # relative to this file
//! template = "The capital of {country} is {ctx_city}. The capital of {country} is"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::progress::BarFactory;
use crate::{p1, p2, p3};

/// A parsed experiment file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// Model folder, .gguf or hub id; default the cached SmolLM2.
    pub model: Option<String>,
    /// Results folder (default `results/<file stem>`).
    pub out: Option<PathBuf>,
    /// `cpu` (default), `cuda` or `cuda:N`.
    pub device: Option<String>,
    /// `f32` (default), `f16` or `bf16` (half precision is for GPUs).
    pub dtype: Option<String>,
    pub p1: Option<p1::P1Config>,
    pub p2: Option<p2::P2Config>,
    pub p3: Option<p3::P3Config>,
    #[serde(skip)]
    pub path: PathBuf,
}

impl ExperimentFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading experiment file {}", path.display()))?;
        let mut file: ExperimentFile = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid experiment file", path.display()))?;
        if file.p1.is_none() && file.p2.is_none() && file.p3.is_none() {
            bail!("{}: no step table; add [p1], [p2] or [p3]", path.display());
        }
        file.path = path.to_path_buf();
        file.check_numbers()
            .map_err(|m| anyhow::anyhow!("experiment file {}: {m}", path.display()))?;
        Ok(file)
    }
    /// The `[p1]` table, or an error naming the file that lacks it.
    pub fn p1_table(&self) -> Result<p1::P1Config> {
        self.p1
            .clone()
            .with_context(|| format!("{} has no [p1] table", self.path.display()))
    }
    /// The `[p3]` table, or an error naming the file that lacks it.
    pub fn p3_table(&self) -> Result<p3::P3Config> {
        self.p3
            .clone()
            .with_context(|| format!("{} has no [p3] table", self.path.display()))
    }

    /// Every number of the file is finite and in range, checked before any model is loaded;
    /// the message names the table and field (`[p3] top_p must be in (0, 1], got 0`).
    pub fn check_numbers(&self) -> std::result::Result<(), String> {
        use lantern_engine::check::{at_least, finite, fraction, positive, unit_interval};
        if let Some(c) = &self.p1 {
            at_least("[p1] n_prompts", c.n_prompts, 1)?;
            at_least("[p1] max_new_tokens", c.max_new_tokens, 1)?;
            at_least("[p1] patch_pairs", c.patch_pairs, 1)?;
            at_least("[p1] batch_size", c.batch_size, 1)?;
            at_least("[p1] top_heads", c.top_heads, 1)?;
            at_least("[p1] alphas (count)", c.alphas.len(), 1)?;
            for (i, &a) in c.alphas.iter().enumerate() {
                finite(&format!("[p1] alphas[{i}]"), a)?;
            }
        }
        if let Some(c) = &self.p2 {
            at_least("[p2] budgets (count)", c.budgets.len(), 1)?;
            for (i, &b) in c.budgets.iter().enumerate() {
                at_least(&format!("[p2] budgets[{i}]"), b, 1)?;
            }
            at_least("[p2] seeds", c.seeds, 1)?;
            at_least("[p2] batch_size", c.batch_size, 1)?;
            if c.chosen >= c.options.len() && !c.options.is_empty() {
                return Err(format!(
                    "[p2] chosen must be below the number of options ({}), got {}",
                    c.options.len(),
                    c.chosen
                ));
            }
        }
        if let Some(c) = &self.p3 {
            fraction("[p3] accuracy_threshold", c.accuracy_threshold)?;
            at_least("[p3] sessions", c.sessions, 1)?;
            at_least("[p3] steps", c.steps, 1)?;
            at_least("[p3] max_new_tokens", c.max_new_tokens, 1)?;
            positive("[p3] temperature", c.temperature)?;
            unit_interval("[p3] top_p", c.top_p, false)?;
            // Negative strengths steer away from a state: only finiteness is required.
            finite("[p3] steer_strength", c.steer_strength)?;
            for (i, &s) in c.steer_steps.iter().enumerate() {
                if s >= c.steps {
                    return Err(format!(
                        "[p3] steer_steps[{i}] must be below steps ({}), got {s}",
                        c.steps
                    ));
                }
            }
            at_least("[p3] check_sessions", c.check_sessions, 1)?;
            at_least("[p3] tau_max", c.tau_max, 1)?;
            unit_interval("[p3] alpha", c.alpha, true)?;
            at_least("[p3] batch_size", c.batch_size, 1)?;
            // Strength list, fluency limits, FDR level, min_frequency.
            c.validate().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    /// The folder paths inside the file are relative to.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            PathBuf::from("results").join(self.path.file_stem().unwrap_or_default())
        })
    }
}

/// Runs every step table of a file on a loaded model; returns the results folder.
pub fn run_experiment_file(
    file: &ExperimentFile,
    lm: &lantern_engine::LoadedModel,
    bar: BarFactory,
) -> Result<PathBuf> {
    let out = file.out_dir();
    if let Some(p1) = &file.p1 {
        p1::run_all(lm, p1, &file.base_dir(), &out.join("p1"), bar)?;
    }
    if let Some(p2) = &file.p2 {
        p2::run_all(lm, p2, &file.base_dir(), &out.join("p2"), bar)?;
    }
    if let Some(p3) = &file.p3 {
        p3::run_all(lm, p3, &file.base_dir(), &out.join("p3"), bar)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> std::result::Result<(), String> {
        let file: ExperimentFile = toml::from_str(toml_text).expect("valid TOML");
        file.check_numbers()
    }

    #[test]
    fn numbers_are_checked_with_the_field_named() {
        let p3 = "[p3]\ndata = \"d.csv\"\nquestions = \"q.txt\"\nlayer = 1\n";
        assert_eq!(check(p3), Ok(()));
        let bad = [
            ("top_p = 0.0", "[p3] top_p must be in (0, 1], got 0"),
            ("top_p = nan", "[p3] top_p must be finite, got NaN"),
            (
                "temperature = -0.5",
                "[p3] temperature must be > 0, got -0.5",
            ),
            (
                "temperature = inf",
                "[p3] temperature must be finite, got inf",
            ),
            (
                "steer_strength = nan",
                "[p3] steer_strength must be finite, got NaN",
            ),
            ("sessions = 0", "[p3] sessions must be at least 1, got 0"),
            ("alpha = 1.0", "[p3] alpha must be in (0, 1), got 1"),
            (
                "accuracy_threshold = 1.5",
                "[p3] accuracy_threshold must be in [0, 1], got 1.5",
            ),
            (
                "steps = 5\nsteer_steps = [5]",
                "[p3] steer_steps[0] must be below steps (5), got 5",
            ),
            ("tau_max = 0", "[p3] tau_max must be at least 1, got 0"),
            (
                "check_strengths = []",
                "[p3] check_strengths is empty: give at least one steering strength",
            ),
            (
                "check_strengths = [0.5, nan]",
                "[p3] check_strengths must be positive and finite, got NaN",
            ),
            (
                "check_strengths = [inf]",
                "[p3] check_strengths must be positive and finite, got inf",
            ),
            (
                "fdr = 1.0",
                "invalid configuration: the FDR level must be in (0, 1), got 1",
            ),
            (
                "fdr = 0.0",
                "invalid configuration: the FDR level must be in (0, 1), got 0",
            ),
        ];
        for (line, msg) in bad {
            assert_eq!(check(&format!("{p3}{line}\n")).unwrap_err(), msg, "{line}");
        }
        let p1 = "[p1]\ndata = \"c.csv\"\n";
        assert_eq!(check(p1), Ok(()));
        assert_eq!(
            check(&format!("{p1}alphas = [1.0, nan]\n")).unwrap_err(),
            "[p1] alphas[1] must be finite, got NaN"
        );
        assert!(check(&format!("{p1}batch_size = 0\n"))
            .unwrap_err()
            .contains("batch_size"));
        let p2 = "[p2]\ntemplates = [\"t.txt\"]\n";
        assert_eq!(check(p2), Ok(()));
        assert_eq!(
            check(&format!("{p2}budgets = [64, 0]\n")).unwrap_err(),
            "[p2] budgets[1] must be at least 1, got 0"
        );
        assert!(check(&format!("{p2}chosen = 2\n"))
            .unwrap_err()
            .contains("chosen"));
    }
}
