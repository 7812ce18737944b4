//! Paper P1's intervention: scale the value vectors of a head by alpha at every position.
//!
//! Two conventions for the value bias `b_V` (GPT-2, Pythia and Qwen2 have one; the Llama family
//! does not, where both give the same result):
//!
//! - bias kept (`scale_bias = false`, the default in the CLI and experiments):
//!   `v' = alpha (v - b_V) + b_V`, as P1's reference code computes after folding value biases into
//!   the output bias (TransformerLens);
//! - bias scaled (`scale_bias = true`): `v' = alpha v`.
//!
//! Both are general interventions: a plain [`Intervention::scale`], or a custom function holding
//! `b_V`.

use lantern_engine::error::check_index;
use lantern_engine::{HookKind, HookPoint, Intervention, Model, Result, Tensor};

/// Scales the value vectors at `blocks.{layer}.attn.hook_v` (`[B, T, G, D]`) by `alpha`, on every
/// KV head: narrow it with [`Intervention::heads`] and friends.
pub fn scale_values(
    model: &Model,
    layer: usize,
    alpha: f64,
    scale_bias: bool,
) -> Result<Intervention> {
    let cfg = model.config();
    check_index("layer", layer, cfg.n_layers)?;
    match (&model.weights().blocks[layer].attn.v.b, scale_bias) {
        (Some(b), false) => {
            let b = b.reshape((1, 1, cfg.n_kv_heads, cfg.d_head))?; // [1, 1, G, D]
            Ok(keep_bias_scale(b, alpha))
        }
        _ => Ok(Intervention::scale(alpha)),
    }
}

/// Scales the value vectors of one query head by `alpha` at every position. Returns the hook
/// point and intervention to add to [`Hooks`](lantern_engine::Hooks).
///
/// With one KV head per query head this is `attn.hook_v` of that head. Under grouped-query
/// attention a KV head is shared by several query heads, so the per-query-head equivalent is
/// applied at `attn.hook_z` (z is linear in v at a fixed pattern: `z_h = A_h v`).
pub fn scale_head_values(
    model: &Model,
    layer: usize,
    head: usize,
    alpha: f64,
    scale_bias: bool,
) -> Result<(HookPoint, Intervention)> {
    let cfg = model.config();
    check_index("layer", layer, cfg.n_layers)?;
    check_index("head", head, cfg.n_heads)?;
    if cfg.n_kv_heads == cfg.n_heads {
        let point = HookPoint::attn(layer, HookKind::AttnV);
        return Ok((
            point,
            scale_values(model, layer, alpha, scale_bias)?.heads([head]),
        ));
    }
    let point = HookPoint::attn(layer, HookKind::AttnZ);
    let group = cfg.n_heads / cfg.n_kv_heads;
    // Attention weights sum to one, so the bias passes into z unchanged: z = A (x W_V) + b_V.
    let iv = match (&model.weights().blocks[layer].attn.v.b, scale_bias) {
        (Some(b), false) => {
            keep_bias_scale(b.narrow(0, (head / group) * cfg.d_head, cfg.d_head)?, alpha)
        }
        _ => Intervention::scale(alpha),
    };
    Ok((point, iv.heads([head])))
}

/// `x -> alpha (x - b) + b`, `b` broadcast over the activation (the bias-kept convention).
fn keep_bias_scale(b: Tensor, alpha: f64) -> Intervention {
    Intervention::custom(move |x, _| {
        let b = b.to_dtype(x.dtype())?.broadcast_as(x.shape())?;
        (x - &b)?.affine(alpha, 0.0)? + b
    })
}
