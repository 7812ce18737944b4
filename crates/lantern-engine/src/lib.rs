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
//! let out = lm.model.run(&batch, &mut hooks)?;
//! let resid = hooks.cache.get_name("blocks.10.hook_resid_post")?; // [1, 5, 576]
//! # Ok(()) }
//! ```

pub mod alloc;
pub mod batch;
pub mod cache;
pub mod check;
pub mod config;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod hooks;
pub mod intervention;
pub mod load;
pub mod model;
pub mod spec;
pub mod tokenizer;
pub mod weights;

pub use alloc::keep_freed_memory;
pub use batch::Batch;
pub use cache::ActivationCache;
pub use candle_core::{DType, Device, Tensor};
pub use config::{Architecture, ModelConfig};
pub use error::{Error, Result};
pub use generate::{BatchGeneration, GenerateConfig, Generation, Sampling, StopReason};
pub use hooks::{HookKind, HookPoint};
pub use intervention::{HookContext, Hooks, Intervention, Op, Selection};
pub use load::{default_model_path, load, load_path, LoadOptions, LoadedModel};
pub use model::{KvCache, Logits, Model, Output, Segment};
pub use tokenizer::Tokenizer;

impl Model {
    /// Scales the value vectors of one query head by `alpha` at every position (paper P1's
    /// intervention). Returns the hook point and intervention to add to [`Hooks`].
    ///
    /// `scale_bias = false` (the default in the CLI and experiments) leaves the value bias `b_V`
    /// unscaled, as P1's reference code does after folding value biases into the output bias;
    /// `true` scales all of `v`. Models without value biases (Llama family) give the same result
    /// either way.
    ///
    /// With one KV head per query head this is `attn.hook_v` of that head. Under grouped-query
    /// attention a KV head is shared by several query heads, so the per-query-head equivalent is
    /// applied at `attn.hook_z` (z is linear in v at a fixed pattern: `z_h = A_h v`).
    pub fn scale_head_values(
        &self,
        layer: usize,
        head: usize,
        alpha: f64,
        scale_bias: bool,
    ) -> Result<(HookPoint, Intervention)> {
        let cfg = self.config();
        error::check_index("layer", layer, cfg.n_layers)?;
        error::check_index("head", head, cfg.n_heads)?;
        if cfg.n_kv_heads == cfg.n_heads {
            let point = HookPoint::attn(layer, HookKind::AttnV);
            return Ok((
                point,
                Intervention::new(Op::ScaleValues { alpha, scale_bias }).heads([head]),
            ));
        }
        let point = HookPoint::attn(layer, HookKind::AttnZ);
        let group = cfg.n_heads / cfg.n_kv_heads;
        let bias = match (&self.weights().blocks[layer].attn.v.b, scale_bias) {
            (Some(b), false) => Some(b.narrow(0, (head / group) * cfg.d_head, cfg.d_head)?),
            _ => None,
        };
        // Attention weights sum to one, so the bias passes into z unchanged: z = A (x W_V) + b_V.
        let iv = Intervention::custom(move |z, _| match &bias {
            Some(b) => {
                let b = b.to_dtype(z.dtype())?;
                z.broadcast_sub(&b)?.affine(alpha, 0.0)?.broadcast_add(&b)
            }
            None => z.affine(alpha, 0.0),
        })
        .heads([head]);
        Ok((point, iv))
    }
}
