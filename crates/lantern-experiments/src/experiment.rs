//! Experiment files: one TOML file names a model, a results folder and the steps of one paper.
//!
//! ```toml
//! model = "models/SmolLM2-135M-Instruct.Q4_1.gguf"   # optional; default: the cached SmolLM2
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
        Ok(file)
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
