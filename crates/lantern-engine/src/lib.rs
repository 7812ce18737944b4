//! # lantern-engine
//!
//! Open-weight transformers on candle with TransformerLens-style named hook points: load a model,
//! run it, capture any activation by name, and change any activation during the forward pass.
//!
//! ```no_run
//! use lantern_engine::*;
//! # fn main() -> Result<()> {
//! let lm = load(default_model_path()?.to_str().unwrap(), &LoadOptions::default())?;
//! let batch = Batch::from_prompts(&lm.tokenizer, &["The capital of France is"])?;
//! let mut hooks = Hooks::new().capture_pattern(lm.model.config(), "blocks.*.hook_resid_post")?;
//! let out = lm.model.run(&batch, &mut hooks, RunOptions::default())?;
//! let resid = hooks.cache.get_name("blocks.10.hook_resid_post")?; // [1, 5, 576]
//! # Ok(()) }
//! ```

pub mod alloc;
mod arch;
pub mod batch;
pub mod bench;
pub mod cache;
pub mod check;
pub mod config;
pub mod error;
pub mod finite;
pub mod generate;
pub mod generate_many;
pub mod gguf;
pub mod hooks;
pub mod hub;
pub mod intervention;
pub mod kv_cache;
pub mod load;
pub mod model;
pub mod models;
pub mod positions;
pub mod quant;
pub mod run;
pub mod tokenizer;
pub mod weights;

pub use alloc::keep_freed_memory;
pub use batch::Batch;
pub use cache::ActivationCache;
pub use candle_core::{DType, Device, Tensor};
pub use config::{Architecture, ModelConfig};
pub use error::{Error, Result};
pub use generate::{BatchGeneration, GenerateConfig, Generation, Sampling, StopReason};
pub use generate_many::{generate_many, ManyGenerator, RowOutput, RowSpec, RowStop};
pub use hooks::{HookKind, HookPoint};
pub use intervention::{HookContext, Hooks, Intervention, Op, Selection};
pub use kv_cache::KvCache;
pub use load::{default_model_path, load, load_as, load_path, LoadOptions, LoadedModel};
pub use model::Model;
pub use positions::Segment;
pub use quant::{Quantization, WeightDType};
pub use run::{Input, Logits, Output, Packed, RunOptions};
pub use tokenizer::Tokenizer;
