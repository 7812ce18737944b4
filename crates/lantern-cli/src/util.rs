//! Arguments and helpers shared by the subcommands.

use anyhow::{Context, Result};
use clap::Args;
use lantern_engine::{load, DType, Device, LoadOptions, LoadedModel};

/// Which model to load and how.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A model folder, a .gguf file or a hub id (default: the cached SmolLM2-135M-Instruct).
    #[arg(value_name = "MODEL")]
    pub model_pos: Option<String>,
    /// Same as the positional MODEL.
    #[arg(long = "model", value_name = "MODEL", conflicts_with = "model_pos")]
    pub model: Option<String>,
    /// f32 (default), f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// cpu (default) or cuda (needs the `cuda` build feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

impl ModelArgs {
    pub fn load(&self) -> Result<LoadedModel> {
        let dtype = match self.dtype.as_str() {
            "f32" => DType::F32,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            other => anyhow::bail!("unknown dtype `{other}` (f32, f16, bf16)"),
        };
        let device = match self.device.as_str() {
            "cpu" => Device::Cpu,
            "cuda" => Device::new_cuda(0)
                .context("opening CUDA device 0 (is this binary built with --features cuda?)")?,
            other => anyhow::bail!("unknown device `{other}` (cpu, cuda)"),
        };
        let spec = match self.model.as_ref().or(self.model_pos.as_ref()) {
            Some(s) => s.clone(),
            None => lantern_engine::default_model_path()?.display().to_string(),
        };
        Ok(load(
            &spec,
            &LoadOptions {
                dtype,
                device,
                progress: !self.quiet,
            },
        )?)
    }
}

/// A progress bar with counts and ETA, hidden with `--quiet`.
pub fn progress(quiet: bool, total: usize, what: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// clap value parsers for numeric flags: a NaN, an infinity or an out-of-range number is refused
/// before any work starts, and clap's message names the flag
/// (`invalid value 'NaN' for '--alpha <ALPHA>': value must be finite, got NaN`).
fn number(s: &str) -> std::result::Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("`{s}` is not a number"))
}

pub fn finite(s: &str) -> std::result::Result<f64, String> {
    lantern_engine::check::finite("value", number(s)?)
}

pub fn positive(s: &str) -> std::result::Result<f64, String> {
    lantern_engine::check::positive("value", number(s)?)
}

/// In (0, 1] (`--top-p`).
pub fn probability(s: &str) -> std::result::Result<f64, String> {
    lantern_engine::check::unit_interval("value", number(s)?, false)
}

/// In (0, 1) (significance levels).
pub fn significance(s: &str) -> std::result::Result<f64, String> {
    lantern_engine::check::unit_interval("value", number(s)?, true)
}
