//! Arguments and helpers shared by the subcommands.

use anyhow::Result;
use clap::Args;
use lantern_engine::{load_as, Batch, Hooks, LoadOptions, LoadedModel, WeightDType};

/// Which model to load and how.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A model folder, a .gguf file, a model name (smollm2-135m, gemma3-270m, qwen2.5-coder-0.5b,
    /// qwen2.5-coder-1.5b; fetched on first use) or a hub id (default: the cached SmolLM2-135M).
    #[arg(value_name = "MODEL")]
    pub model_pos: Option<String>,
    /// Same as the positional MODEL.
    #[arg(long = "model", value_name = "MODEL", conflicts_with = "model_pos")]
    pub model: Option<String>,
    /// f32 (default), f16, bf16, q8_0 (linear weights requantized to 8 bits, CPU) or gguf (a
    /// GGUF file's own quantization, CPU); hooks and interventions stay f32 in every mode.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// cpu (default), cuda (GPU 0) or cuda:N (GPU N); a GPU needs the `cuda` build feature.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

impl ModelArgs {
    pub fn load(&self) -> Result<LoadedModel> {
        let dtype = WeightDType::parse(&self.dtype)?;
        let device = LoadOptions::parse_device(&self.device)?;
        let spec = match self.model.as_ref().or(self.model_pos.as_ref()) {
            Some(s) => s.clone(),
            None => lantern_engine::default_model_path()?.display().to_string(),
        };
        Ok(load_as(
            &spec,
            &LoadOptions {
                dtype: lantern_engine::DType::F32,
                device,
                progress: !self.quiet,
            },
            dtype,
        )?)
    }

    /// [`ModelArgs::load`], then one short forward pass: a corrupt weight (NaN or Inf) fails here,
    /// naming the first hook point where it shows, before a long pipeline (an α sweep, sessions,
    /// an experiment) carries it into results. Commands that run the user's own prompt check that
    /// prompt instead ([`check_finite`]).
    pub fn load_checked(&self) -> Result<LoadedModel> {
        let lm = self.load()?;
        check_finite(&lm, "The", &Hooks::new())?;
        Ok(lm)
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

/// One forward pass over `prompt` with `hooks`' interventions before a command's real work: a NaN
/// or Inf in its logits (a corrupt weight) fails with the first hook point where it appears,
/// instead of flowing silently into the command's results.
pub fn check_finite(lm: &LoadedModel, prompt: &str, hooks: &Hooks) -> Result<()> {
    let batch = Batch::from_prompts(&lm.tokenizer, &[prompt])?;
    Ok(lantern_engine::finite::check_forward(
        &lm.model, &batch, hooks,
    )?)
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
