//! experiment: every step table of an experiment file (TOML), run by the library's pipelines.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lantern_experiments::experiment::ExperimentFile;

use crate::util::{progress, ModelArgs};

#[derive(Args)]
pub struct ExperimentArgs {
    /// The experiment file (TOML).
    pub file: PathBuf,
    /// Override the file's model.
    #[arg(long)]
    pub model: Option<String>,
    /// Override the file's results folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the file's device: cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Override the file's dtype: f32, f16 or bf16.
    #[arg(long)]
    pub dtype: Option<String>,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn experiment(a: ExperimentArgs) -> Result<()> {
    let mut file = ExperimentFile::read(&a.file)?;
    if let Some(out) = a.out {
        file.out = Some(out);
    }
    let model = ModelArgs {
        model_pos: None,
        model: a.model.or(file.model.clone()),
        dtype: a
            .dtype
            .or(file.dtype.clone())
            .unwrap_or_else(|| "f32".into()),
        device: a
            .device
            .or(file.device.clone())
            .unwrap_or_else(|| "cpu".into()),
        quiet: a.quiet,
    };
    let lm = model.load_checked()?;
    let quiet = a.quiet;
    // One progress bar per pipeline step, cleared when the step is done.
    let bar = move |label: &str, total: usize| -> Box<dyn FnMut(usize, usize)> {
        let pb = progress(quiet, total, label);
        Box::new(move |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
            if done >= total {
                pb.finish_and_clear();
            }
        })
    };
    let out = lantern_experiments::run_experiment_file(&file, &lm, &bar)?;
    eprintln!("results in {}", out.display());
    Ok(())
}
