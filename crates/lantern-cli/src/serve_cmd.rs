//! `lantern serve`: the model behind an OpenAI-compatible HTTP API (see lantern-serve).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::util::ModelArgs;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Interventions active for every request (repeatable), e.g.
    /// 'scale blocks.11.attn.hook_v head=11 alpha=6'.
    #[arg(long = "intervene", value_name = "SPEC")]
    pub intervene: Vec<String>,
    /// A JSON file of named intervention lists, `{"name": ["spec", ...]}`, chosen per request
    /// with `"lantern": {"preset": "name"}`.
    #[arg(long, value_name = "FILE")]
    pub presets: Option<PathBuf>,
    /// Rows (prompts × n) decoded together at most; 1 serves one request at a time.
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_batch: usize,
    /// Requests that may wait beyond the running ones; more get 503 with Retry-After.
    #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub queue: usize,
    /// The model id clients name (default: the model file's name without extension).
    #[arg(long)]
    pub served_name: Option<String>,
}

pub fn serve(a: ServeArgs) -> Result<()> {
    let lm = a.model.load_checked()?;
    let opts = lantern_serve::ServeOptions {
        host: a.host,
        port: a.port,
        intervene: a.intervene,
        presets: a.presets,
        max_batch: a.max_batch,
        queue: a.queue,
        model_name: a.served_name,
        ..Default::default()
    };
    lantern_serve::serve_blocking(lm, &opts)
}
