//! The transformer forward pass, every architecture switched by [`ModelConfig`]: embeddings, then
//! each block (`resid_pre -> ln1 -> attention -> resid_mid -> ln2 -> MLP -> resid_post`), then the
//! final norm and unembedding, with a hook point at every named activation. [`Model::run`]
//! (`run.rs`) checks the input and options and calls [`Model::forward`]; the KV cache lives in
//! `kv_cache.rs`, positions and masks in `positions.rs`.
//!
//! References: GPT-2 (Radford et al. 2019), GPT-NeoX (Black et al. 2022), Llama (Touvron et al.
//! 2023), Gemma 3 (Gemma Team 2025); numerics follow Hugging Face transformers' implementations,
//! checked against their dumped activations in `tests/parity.rs`.
//!
//! Shapes: B batch, T new positions, K key positions (cache + new), H query heads, G key/value
//! heads, D d_head, M d_model.

use candle_core::{DType, Device, Tensor, D};

use crate::config::{Activation, ModelConfig, Rope};
use crate::error::{Error, Result};
use crate::hooks::HookKind::{self, *};
use crate::intervention::{Hooks, LayerHooks};
use crate::kv_cache::KvCache;
use crate::positions::SeqCtx;
use crate::run::{Logits, Output};
use crate::weights::{BlockWeights, Norm, Weights};

/// A loaded model: config, canonical weights, device and dtype.
pub struct Model {
    cfg: ModelConfig,
    w: Weights,
    device: Device,
    dtype: DType,
    /// `[rotary_dim / 2]` f32, global and (Gemma 3) local rotary frequencies.
    inv_freq: Option<Tensor>,
    inv_freq_local: Option<Tensor>,
}

/// One layer's place in a [`KvCache`]: the cache and the layer.
type KvSlot<'c> = (&'c mut KvCache, usize);

impl Model {
    pub fn new(cfg: ModelConfig, w: Weights, device: Device, dtype: DType) -> Result<Self> {
        cfg.validate()?;
        let freq = |rope: &Option<Rope>| -> Result<Option<Tensor>> {
            rope.as_ref()
                .map(|r| {
                    let f: Vec<f32> = r.inv_freq().into_iter().map(|v| v as f32).collect();
                    Tensor::from_vec(f, r.rotary_dim / 2, &device).map_err(Error::from)
                })
                .transpose()
        };
        let inv_freq = freq(&cfg.rope)?;
        let inv_freq_local = freq(&cfg.rope_local)?;
        Ok(Model {
            cfg,
            w,
            device,
            dtype,
            inv_freq,
            inv_freq_local,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }
    pub fn weights(&self) -> &Weights {
        &self.w
    }
    /// For [`crate::quant`], which swaps linear layers for quantized ones after loading.
    pub(crate) fn weights_mut(&mut self) -> &mut Weights {
        &mut self.w
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// An empty KV cache for rows with this left padding (see [`RunOptions::cache`](crate::RunOptions::cache)).
    pub fn new_kv_cache(&self, pad_left: &[usize]) -> KvCache {
        KvCache::empty(self.cfg.n_layers, pad_left)
    }

    /// The final norm and unembedding applied to residual vectors `[..., M]` -> logits `[..., V]`
    /// (what the forward pass does after the last block; no hooks).
    pub fn unembed(&self, resid: &Tensor) -> Result<Tensor> {
        let (normed, _) = self.w.ln_final.forward(&resid.to_dtype(self.dtype)?)?;
        self.w.unembed.forward(&normed)
    }

    /// Token ids `[B, T]` -> the residual stream entering block 0, `[B, T, M]`.
    pub(crate) fn embed(&self, ids: &Tensor, ctx: &SeqCtx, hooks: &mut Hooks) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let m = self.cfg.d_model;
        if let Some(bad) = ids
            .flatten_all()?
            .to_vec1::<u32>()?
            .into_iter()
            .find(|&i| i as usize >= self.cfg.vocab_size)
        {
            return Err(Error::OutOfRange {
                what: "token id",
                index: bad as usize,
                count: self.cfg.vocab_size,
            });
        }
        let mut x = self
            .w
            .embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, m))?;
        if self.cfg.embed_scale {
            // Hugging Face rounds the normaliser to the model's dtype first.
            let s = Tensor::new((m as f32).sqrt(), &self.device)?
                .to_dtype(self.dtype)?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
            x = x.affine(s, 0.0)?;
        }
        let h = &mut hooks.at_layer(None, ctx.pos_offset);
        let x = h.at(Embed, x)?;
        match &self.w.pos_embed {
            Some(wpe) => {
                let p = wpe.index_select(&ctx.pos_ids, 0)?.reshape((b, t, m))?;
                Ok((x + h.at(PosEmbed, p)?)?)
            }
            None => Ok(x),
        }
    }

    /// Blocks `start..` over `resid: [B, T, M]`, then the final norm and the logits asked for.
    pub(crate) fn forward(
        &self,
        start: usize,
        mut resid: Tensor,
        ctx: &SeqCtx,
        mut cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
        logits: Logits,
    ) -> Result<Output> {
        for layer in start..self.cfg.n_layers {
            let kv = cache.as_deref_mut().map(|c| (c, layer));
            let h = &mut hooks.at_layer(Some(layer), ctx.pos_offset);
            resid = self.block(layer, resid, ctx, kv, h)?;
        }
        let h = &mut hooks.at_layer(None, ctx.pos_offset);
        let normed = norm(&self.w.ln_final, &resid, h, LnFinalScale, LnFinalNormalized)?;
        let logits = match logits {
            Logits::None => None,
            Logits::All => Some(self.w.unembed.forward(&normed)?),
            Logits::Last => {
                let t = normed.dim(1)?;
                Some(self.w.unembed.forward(&normed.narrow(1, t - 1, 1)?)?)
            }
        };
        let logits = logits.map(|l| h.at(HookKind::Logits, l)).transpose()?;
        Ok(Output {
            logits,
            resid_final: resid,
        })
    }

    /// One transformer block: `resid_pre [B, T, M] -> resid_post [B, T, M]`.
    fn block(
        &self,
        layer: usize,
        resid: Tensor,
        ctx: &SeqCtx,
        kv: Option<KvSlot<'_>>,
        h: &mut LayerHooks,
    ) -> Result<Tensor> {
        let w = &self.w.blocks[layer];
        let resid = h.at(ResidPre, resid)?;

        let x = norm(&w.ln1, &resid, h, Ln1Scale, Ln1Normalized)?;
        let attn_out = self.attention(layer, w, &x, ctx, kv, h)?;
        let attn_out = h.at(AttnOut, post_norm(&w.post_attn_norm, attn_out)?)?;

        let mlp_in = if self.cfg.parallel_residual {
            resid.clone()
        } else {
            h.at(ResidMid, (&resid + &attn_out)?)?
        };
        let x = norm(&w.ln2, &mlp_in, h, Ln2Scale, Ln2Normalized)?;
        let mlp_out = post_norm(&w.post_mlp_norm, self.mlp(w, &x, h)?)?;
        let mlp_out = h.at(MlpOut, mlp_out)?;

        let resid_post = if self.cfg.parallel_residual {
            ((resid + attn_out)? + mlp_out)?
        } else {
            (mlp_in + mlp_out)?
        };
        h.at(ResidPost, resid_post)
    }

    /// `x: [B, T, M]` (normalised) -> attention output `[B, T, M]`.
    fn attention(
        &self,
        layer: usize,
        w: &BlockWeights,
        x: &Tensor,
        ctx: &SeqCtx,
        kv: Option<KvSlot<'_>>,
        h: &mut LayerHooks,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (b, t, _) = x.dims3()?;
        let (n_h, g, d) = (cfg.n_heads, cfg.n_kv_heads, cfg.d_head);
        let a = &w.attn;

        let q = h.at(AttnQ, a.q.forward(x)?.reshape((b, t, n_h, d))?)?;
        let k = h.at(AttnK, a.k.forward(x)?.reshape((b, t, g, d))?)?;
        let v = h.at(AttnV, a.v.forward(x)?.reshape((b, t, g, d))?)?;
        let (q, k) = match (&a.q_norm, &a.k_norm) {
            (Some(qn), Some(kn)) => (qn.forward(&q)?.0, kn.forward(&k)?.0),
            _ => (q, k),
        };
        let local = cfg.sliding_window[layer].is_some() && self.inv_freq_local.is_some();
        let inv_freq = if local {
            &self.inv_freq_local
        } else {
            &self.inv_freq
        };
        let (q, k) = match inv_freq {
            Some(inv_freq) => {
                let (cos, sin) = rotary_cos_sin(&ctx.positions, inv_freq)?;
                let q = h.at(AttnRotQ, apply_rotary(&q, &cos, &sin)?)?;
                let k = h.at(AttnRotK, apply_rotary(&k, &cos, &sin)?)?;
                (q, k)
            }
            None => (q, k),
        };

        // [B, G, K, D], with the cached positions in front.
        let kh = k.transpose(1, 2)?.contiguous()?;
        let vh = v.transpose(1, 2)?.contiguous()?;
        let (kh, vh) = match kv {
            Some((cache, layer)) => cache.append(layer, kh, vh)?,
            None => (kh, vh),
        };
        let qh = q.transpose(1, 2)?.contiguous()?; // [B, H, T, D]
        let k_len = kh.dim(2)?;
        // Grouped-query attention without copying each KV head n_rep times: query heads
        // g * n_rep .. (g + 1) * n_rep share KV head g, so [B, H, T, D] is viewed as
        // [B, G, n_rep * T, D] and multiplied by that head's keys and values directly.
        let qg = qh.reshape((b, g, (n_h / g) * t, d))?;
        let scores = qg.matmul(&kh.t()?)?.reshape((b, n_h, t, k_len))?;
        let scores = (scores.to_dtype(DType::F32)? * cfg.attn_scale)?;
        let scores = scores.broadcast_add(&ctx.masks[&cfg.sliding_window[layer]])?;
        let scores = h.at(AttnScores, scores)?; // [B, H, T, K]
        let pattern = softmax_keys(&scores)?.to_dtype(self.dtype)?;
        let pattern = h.at(AttnPattern, pattern)?;
        let z = pattern
            .contiguous()?
            .reshape((b, g, (n_h / g) * t, k_len))?
            .matmul(&vh)? // [B, G, n_rep * T, D]
            .reshape((b, n_h, t, d))?;
        let z = h.at(AttnZ, z.transpose(1, 2)?)?; // [B, T, H, D]
        self.attention_output(a, &z, h)
    }

    /// `z: [B, T, H, D]` -> `[B, T, M]` through `W_O`, via the per-head results `[B, T, H, M]`
    /// only when `attn.hook_result` is hooked.
    fn attention_output(
        &self,
        a: &crate::weights::AttentionWeights,
        z: &Tensor,
        h: &mut LayerHooks,
    ) -> Result<Tensor> {
        let (b, t, n_h, d) = z.dims4()?;
        let project = || a.o.forward(&z.contiguous()?.reshape((b, t, n_h * d))?);
        if !h.is_active(AttnResult) {
            return project();
        }
        // Per-head contributions; their sum plus b_O is the attention output.
        let result = self.head_results(&a.o.wt, z)?;
        if !h.intervenes(AttnResult) {
            // Captured only: the output is the usual projection, which is cheaper than summing
            // the strided per-head view.
            h.at(AttnResult, result)?;
            return project();
        }
        let out = h.at(AttnResult, result)?.sum(2)?;
        Ok(match &a.o.b {
            Some(bias) => out.broadcast_add(bias)?,
            None => out,
        })
    }

    /// `z: [B, T, H, D]`, `wo_t: [H*D, M]` -> `[B, T, H, M]`, a strided view of a head-major
    /// `[H, B, T, M]` product (one batched matmul, no copy of the result).
    fn head_results(&self, wo_t: &Tensor, z: &Tensor) -> Result<Tensor> {
        let (b, t, h, d) = z.dims4()?;
        let m = wo_t.dim(1)?;
        let zh = z
            .permute((2, 0, 1, 3))?
            .contiguous()?
            .reshape((h, b * t, d))?; // [H, B*T, D]
        let wo = wo_t.reshape((h, d, m))?;
        let r = zh.matmul(&wo)?.reshape((h, b, t, m))?; // [H, B, T, M]
        Ok(r.permute((1, 2, 0, 3))?)
    }

    /// `x: [B, T, M]` (normalised) -> `[B, T, M]`.
    fn mlp(&self, w: &BlockWeights, x: &Tensor, h: &mut LayerHooks) -> Result<Tensor> {
        let m = &w.mlp;
        let act = |t: &Tensor| -> Result<Tensor> {
            Ok(match self.cfg.activation {
                Activation::GeluTanh => t.gelu()?,
                Activation::Gelu => t.gelu_erf()?,
                Activation::Silu => t.silu()?,
                Activation::Relu => t.relu()?,
            })
        };
        let post = match &m.gate {
            Some(gate) => {
                let pre = h.at(MlpPre, gate.forward(x)?)?;
                let lin = h.at(MlpPreLinear, m.up.forward(x)?)?;
                (act(&pre)? * lin)?
            }
            None => act(&h.at(MlpPre, m.up.forward(x)?)?)?,
        };
        m.down.forward(&h.at(MlpPost, post)?)
    }
}

/// Softmax over the key axis. candle's fused kernel has no backward pass, so when the scores are
/// part of a tracked graph (gradients wrt activations, as attribution patching takes them) the
/// composed, differentiable softmax runs instead; untracked runs keep the fused kernel.
fn softmax_keys(scores: &Tensor) -> Result<Tensor> {
    Ok(if scores.track_op() {
        candle_nn::ops::softmax(scores, D::Minus1)?
    } else {
        candle_nn::ops::softmax_last_dim(scores)?
    })
}

/// A norm with its two hook points: `x: [B, T, M]` -> normalised `[B, T, M]` (the divisor
/// `[B, T, 1]` is hooked at `scale_kind`).
fn norm(
    n: &Norm,
    x: &Tensor,
    h: &mut LayerHooks,
    scale_kind: HookKind,
    normalized_kind: HookKind,
) -> Result<Tensor> {
    let (normed, scale) = n.forward(x)?;
    h.at(scale_kind, scale)?;
    h.at(normalized_kind, normed)
}

/// Gemma 3's extra norm on a sublayer's output, where the model has one.
fn post_norm(n: &Option<Norm>, x: Tensor) -> Result<Tensor> {
    Ok(match n {
        Some(n) => n.forward(&x)?.0,
        None => x,
    })
}

/// `positions: [B, T, 1]`, `inv_freq: [R/2]` -> cos, sin `[B, T, 1, R/2]` (f32).
fn rotary_cos_sin(positions: &Tensor, inv_freq: &Tensor) -> Result<(Tensor, Tensor)> {
    let angles = positions
        .broadcast_mul(&inv_freq.unsqueeze(0)?.unsqueeze(0)?)?
        .unsqueeze(2)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// Rotate-half rotary on the first `R` dims of each head: `x: [B, T, H, D]`.
fn apply_rotary(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    let d = x.dim(D::Minus1)?;
    let half = cos.dim(D::Minus1)?;
    let xf = x.to_dtype(DType::F32)?;
    let x1 = xf.narrow(D::Minus1, 0, half)?;
    let x2 = xf.narrow(D::Minus1, half, half)?;
    let r1 = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let r2 = (x2.broadcast_mul(cos)? + x1.broadcast_mul(sin)?)?;
    let mut parts = vec![r1, r2];
    if 2 * half < d {
        parts.push(xf.narrow(D::Minus1, 2 * half, d - 2 * half)?);
    }
    Ok(Tensor::cat(&parts, D::Minus1)?.to_dtype(dtype)?)
}
