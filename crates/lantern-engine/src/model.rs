//! The whole transformer in one file, every architecture switched by [`ModelConfig`].
//!
//! References: GPT-2 (Radford et al. 2019), GPT-NeoX (Black et al. 2022), Llama (Touvron et al.
//! 2023), Gemma 3 (Gemma Team 2025); numerics follow Hugging Face transformers' implementations,
//! checked against their dumped activations in `tests/parity.rs`.
//!
//! Shapes: B batch, T new positions, K key positions (cache + new), H query heads, G key/value
//! heads, D d_head, M d_model.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, D};

use crate::batch::Batch;
use crate::config::{Activation, ModelConfig, Rope};
use crate::error::{Error, Result};
use crate::hooks::{HookKind, HookPoint};
use crate::intervention::{HookContext, Hooks};
use crate::weights::{BlockWeights, Weights};

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

/// Which positions get logits. The unembedding is the costliest single matmul of a small model,
/// so sweeps ask only for the last position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Logits {
    #[default]
    All,
    Last,
    /// No unembedding at all (only the final residual is returned).
    None,
}

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct Output {
    /// `[B, T, vocab]`, or `[B, 1, vocab]` with [`Logits::Last`].
    pub logits: Option<Tensor>,
    /// The residual stream after the last block, before the final norm: `[B, T, M]`.
    pub resid_final: Tensor,
}

impl Output {
    /// Logits at the last position, `[B, vocab]`, in f32.
    pub fn last_logits(&self) -> Result<Tensor> {
        let logits = self
            .logits
            .as_ref()
            .ok_or_else(|| Error::invalid("this run computed no logits"))?;
        let t = logits.dim(1)?;
        Ok(logits
            .narrow(1, t - 1, 1)?
            .squeeze(1)?
            .to_dtype(DType::F32)?)
    }
}

/// One continuation in a packed run ([`Model::run_packed_from`]): positions
/// `start..start + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub len: usize,
}

/// Keys and values of past positions, for incremental decoding.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer: `([B, G, K, D], [B, G, K, D])`, keys after rotary.
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Left padding of each row (its first real position).
    pad_left: Vec<usize>,
    /// Positions held.
    len: usize,
}

impl KvCache {
    /// Errors unless the cache is empty or holds keys and values for every layer from `layer` on.
    fn check_layers_from(&self, layer: usize) -> Result<()> {
        match (layer..self.layers.len()).find(|&l| self.len > 0 && self.layers[l].is_none()) {
            Some(l) => Err(Error::invalid(format!(
                "the cache holds {} positions but no keys and values for layer {l}",
                self.len
            ))),
            None => Ok(()),
        }
    }

    /// Every cached layer's keys and values through `f`.
    fn map_layers(
        &self,
        f: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Vec<Option<(Tensor, Tensor)>>> {
        self.layers
            .iter()
            .map(|l| l.as_ref().map(|(k, v)| Ok((f(k)?, f(v)?))).transpose())
            .collect()
    }

    /// A one-row cache repeated to `rows` rows (a shared prompt prefix reused across a batch).
    pub fn expand(&self, rows: usize) -> Result<KvCache> {
        if self.pad_left.len() != 1 {
            return Err(Error::invalid(format!(
                "only a one-row cache can be expanded (this one has {} rows)",
                self.pad_left.len()
            )));
        }
        let grow = |t: &Tensor| -> Result<Tensor> {
            let mut dims = t.dims().to_vec();
            dims[0] = rows;
            Ok(t.broadcast_as(dims)?.contiguous()?)
        };
        let layers = self.map_layers(grow)?;
        Ok(KvCache {
            layers,
            pad_left: vec![self.pad_left[0]; rows],
            len: self.len,
        })
    }

    /// The first `len` positions (keys and values of the positions after are dropped).
    pub fn truncated(&self, len: usize) -> Result<KvCache> {
        if len > self.len {
            return Err(Error::invalid(format!(
                "cannot truncate a cache of {} positions to {len}",
                self.len
            )));
        }
        let cut = |t: &Tensor| Ok(t.narrow(2, 0, len)?);
        let layers = self.map_layers(cut)?;
        Ok(KvCache {
            layers,
            pad_left: self.pad_left.clone(),
            len,
        })
    }

    /// Row `row`'s first `len` real positions (after its left padding), as a one-row cache.
    /// A view: no keys or values are copied.
    pub fn row(&self, row: usize, len: usize) -> Result<KvCache> {
        crate::error::check_index("cache row", row, self.pad_left.len())?;
        let pad = self.pad_left[row];
        if pad + len > self.len {
            return Err(Error::invalid(format!(
                "row {row} holds {} positions, not {len}",
                self.len - pad
            )));
        }
        let cut = |t: &Tensor| -> Result<Tensor> { Ok(t.narrow(0, row, 1)?.narrow(2, pad, len)?) };
        let layers = self.map_layers(cut)?;
        Ok(KvCache {
            layers,
            pad_left: vec![0],
            len,
        })
    }

    /// One-row caches of different lengths as one batch, each left-padded to the longest (the
    /// padding is masked and positions count from each row's first real token).
    pub fn stack(rows: &[KvCache]) -> Result<KvCache> {
        let Some(first) = rows.first() else {
            return Err(Error::invalid("no caches to stack"));
        };
        if let Some(r) = rows.iter().find(|r| r.pad_left != [0]) {
            return Err(Error::invalid(format!(
                "only unpadded one-row caches can be stacked (found left padding {:?})",
                r.pad_left
            )));
        }
        let len = rows.iter().map(|r| r.len).max().unwrap_or(0);
        let n_layers = first.layers.len();
        let mut layers = Vec::with_capacity(n_layers);
        for l in 0..n_layers {
            let held: Vec<&(Tensor, Tensor)> = rows
                .iter()
                .filter_map(|r| r.layers.get(l)?.as_ref())
                .collect();
            if held.is_empty() {
                layers.push(None);
                continue;
            }
            if held.len() != rows.len() {
                return Err(Error::invalid(format!(
                    "layer {l} is cached in some rows and not in others"
                )));
            }
            let pad = |t: &Tensor| -> Result<Tensor> {
                let (b, g, k, d) = t.dims4()?;
                if k == len {
                    return Ok(t.clone());
                }
                let zeros = Tensor::zeros((b, g, len - k, d), t.dtype(), t.device())?;
                Ok(Tensor::cat(&[&zeros, t], 2)?)
            };
            let ks = held
                .iter()
                .map(|(k, _)| pad(k))
                .collect::<Result<Vec<_>>>()?;
            let vs = held
                .iter()
                .map(|(_, v)| pad(v))
                .collect::<Result<Vec<_>>>()?;
            layers.push(Some((Tensor::cat(&ks, 0)?, Tensor::cat(&vs, 0)?)));
        }
        Ok(KvCache {
            layers,
            pad_left: rows.iter().map(|r| len - r.len).collect(),
            len,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Per-forward position data shared by every layer.
struct SeqCtx {
    /// Rotary angles' positions, `[B, T, 1]` f32.
    positions: Tensor,
    /// Learned-position indices, `[B * T]` u32.
    pos_ids: Tensor,
    /// Additive masks `[B, 1, T, K]` (f32, 0 or -inf) by sliding window.
    masks: HashMap<Option<usize>, Tensor>,
    pos_offset: usize,
}

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
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Full forward pass over a batch, with logits at every position.
    pub fn run(&self, batch: &Batch, hooks: &mut Hooks) -> Result<Output> {
        self.run_with(batch, hooks, Logits::All)
    }

    /// Full forward pass with a choice of logits.
    pub fn run_with(&self, batch: &Batch, hooks: &mut Hooks, logits: Logits) -> Result<Output> {
        hooks.check(&self.cfg)?;
        let ctx = self.seq_ctx(&batch.pad_left, 0, batch.seq_len())?;
        let resid = self.embed(&batch.ids_tensor(&self.device)?, &ctx, hooks)?;
        self.blocks_from(0, resid, &ctx, None, hooks, logits)
    }

    /// Resumes a forward pass at block `layer` from its residual stream `resid_pre: [B, T, M]`
    /// (hooks at `blocks.{layer}.hook_resid_pre` still apply). Patching sweeps use this to skip the
    /// blocks below a patch.
    pub fn run_from(
        &self,
        layer: usize,
        resid_pre: &Tensor,
        batch: &Batch,
        hooks: &mut Hooks,
        logits: Logits,
    ) -> Result<Output> {
        hooks.check(&self.cfg)?;
        crate::error::check_index("layer", layer, self.cfg.n_layers)?;
        let expected = [batch.len(), batch.seq_len(), self.cfg.d_model];
        if resid_pre.dims() != expected {
            return Err(Error::ShapeMismatch {
                name: format!("resid_pre for layer {layer}"),
                expected: expected.to_vec(),
                found: resid_pre.dims().to_vec(),
            });
        }
        let ctx = self.seq_ctx(&batch.pad_left, 0, batch.seq_len())?;
        self.blocks_from(
            layer,
            resid_pre.to_dtype(self.dtype)?,
            &ctx,
            None,
            hooks,
            logits,
        )
    }

    /// An empty KV cache for a batch.
    pub fn new_kv_cache(&self, pad_left: &[usize]) -> KvCache {
        KvCache {
            layers: vec![None; self.cfg.n_layers],
            pad_left: pad_left.to_vec(),
            len: 0,
        }
    }

    /// Runs new tokens `ids: [B, T]` after the positions held in `cache`, appending their keys and
    /// values. Interventions see absolute positions (`HookContext::pos_offset`).
    pub fn run_cached(
        &self,
        ids: &Tensor,
        cache: &mut KvCache,
        hooks: &mut Hooks,
        logits: Logits,
    ) -> Result<Output> {
        hooks.check(&self.cfg)?;
        let (b, t) = ids.dims2()?;
        if b != cache.pad_left.len() {
            return Err(Error::invalid(format!(
                "{b} rows of tokens for a cache of {} rows",
                cache.pad_left.len()
            )));
        }
        let ctx = self.seq_ctx(&cache.pad_left, cache.len, t)?;
        let resid = self.embed(ids, &ctx, hooks)?;
        let out = self.blocks_from(0, resid, &ctx, Some(cache), hooks, logits)?;
        cache.len += t;
        Ok(out)
    }

    /// Resumes at block `layer` for new positions after those held in `cache`:
    /// `resid_pre: [B, T, M]` is the residual stream of the new positions at `layer`, and the
    /// cache must hold the earlier positions' keys and values for every block from `layer` on.
    /// Blocks below `layer` are neither read nor extended, so afterwards the cache is only valid
    /// from `layer` on. Patching sweeps use this to skip both the blocks below a patch and the
    /// positions before it (which a causal model leaves unchanged).
    pub fn run_cached_from(
        &self,
        layer: usize,
        resid_pre: &Tensor,
        cache: &mut KvCache,
        hooks: &mut Hooks,
        logits: Logits,
    ) -> Result<Output> {
        hooks.check(&self.cfg)?;
        crate::error::check_index("layer", layer, self.cfg.n_layers)?;
        let (b, t, m) = resid_pre.dims3()?;
        if b != cache.pad_left.len() || m != self.cfg.d_model {
            return Err(Error::ShapeMismatch {
                name: format!("resid_pre for layer {layer}"),
                expected: vec![cache.pad_left.len(), t, self.cfg.d_model],
                found: resid_pre.dims().to_vec(),
            });
        }
        cache.check_layers_from(layer)?;
        let ctx = self.seq_ctx(&cache.pad_left, cache.len, t)?;
        let out = self.blocks_from(
            layer,
            resid_pre.to_dtype(self.dtype)?,
            &ctx,
            Some(cache),
            hooks,
            logits,
        )?;
        cache.len += t;
        Ok(out)
    }

    /// Runs several continuations of one cached row as a single packed sequence, from block
    /// `layer` on. Segment `s` is the positions `start_s..start_s + len_s` of a sequence whose
    /// positions before `start_s` are the ones `past` holds (a one-row cache); `resid_pre:
    /// [1, N, M]` is the segments' residual streams at `layer`, concatenated (N = sum of lens).
    /// Each segment attends to the cached positions before its start and to itself, never to
    /// another segment, so it computes what a separate run would, without the padding a batch of
    /// different lengths would need. Returns the logits of each segment's last position
    /// (`[S, 1, V]`, so [`Output::last_logits`] gives `[S, V]`).
    ///
    /// Hooks see the packed `[1, N, ...]` tensors, and `HookContext::pos_offset` is 0: select by
    /// packed index (a custom intervention), not by position. Points with a key axis
    /// (`hook_attn_scores`, `hook_pattern`) hold the cached keys first, then the packed ones.
    pub fn run_packed_from(
        &self,
        layer: usize,
        resid_pre: &Tensor,
        segments: &[Segment],
        past: &KvCache,
        hooks: &mut Hooks,
    ) -> Result<Output> {
        hooks.check(&self.cfg)?;
        crate::error::check_index("layer", layer, self.cfg.n_layers)?;
        let n: usize = segments.iter().map(|s| s.len).sum();
        let expected = [1, n, self.cfg.d_model];
        if resid_pre.dims() != expected {
            return Err(Error::ShapeMismatch {
                name: format!("packed resid_pre for layer {layer}"),
                expected: expected.to_vec(),
                found: resid_pre.dims().to_vec(),
            });
        }
        if past.pad_left != [0] {
            return Err(Error::invalid(
                "a packed run continues one unpadded cached row",
            ));
        }
        if let Some(s) = segments.iter().find(|s| s.len == 0 || s.start > past.len) {
            return Err(Error::invalid(format!(
                "segment {s:?} is empty or starts after the {} cached positions",
                past.len
            )));
        }
        past.check_layers_from(layer)?;
        let ctx = self.packed_ctx(segments, past.len)?;
        let mut cache = past.clone();
        let out = self.blocks_from(
            layer,
            resid_pre.to_dtype(self.dtype)?,
            &ctx,
            Some(&mut cache),
            hooks,
            Logits::None,
        )?;
        let mut ends = Vec::with_capacity(segments.len());
        let mut at = 0u32;
        for s in segments {
            at += s.len as u32;
            ends.push(at - 1);
        }
        let ends = Tensor::new(ends.as_slice(), &self.device)?;
        let last = out.resid_final.squeeze(0)?.index_select(&ends, 0)?;
        let logits = self.unembed(&last)?.unsqueeze(1)?;
        Ok(Output {
            logits: Some(logits),
            resid_final: out.resid_final,
        })
    }

    /// The final norm and unembedding applied to residual vectors `[..., M]` -> logits `[..., V]`
    /// (what the forward pass does after the last block; no hooks).
    pub fn unembed(&self, resid: &Tensor) -> Result<Tensor> {
        let (normed, _) = self.w.ln_final.forward(&resid.to_dtype(self.dtype)?)?;
        self.w.unembed.forward(&normed)
    }

    fn hook(
        &self,
        hooks: &mut Hooks,
        point: HookPoint,
        x: Tensor,
        pos_offset: usize,
    ) -> Result<Tensor> {
        if !hooks.is_active(point) {
            return Ok(x);
        }
        hooks.run(x, || HookContext {
            point,
            pos_offset,
            value_bias: None,
        })
    }

    fn seq_ctx(&self, pad_left: &[usize], past: usize, t: usize) -> Result<SeqCtx> {
        let b = pad_left.len();
        let k = past + t;
        let mut positions = Vec::with_capacity(b * t);
        for &pad in pad_left {
            let real = k.saturating_sub(pad);
            if real > self.cfg.max_positions {
                return Err(Error::PromptTooLong {
                    len: real,
                    max: self.cfg.max_positions,
                });
            }
            positions.extend((past..k).map(|i| i.saturating_sub(pad) as u32));
        }
        let pos_ids = Tensor::from_vec(positions.clone(), b * t, &self.device)?;
        let positions = Tensor::from_vec(
            positions.iter().map(|&p| p as f32).collect::<Vec<_>>(),
            (b, t, 1),
            &self.device,
        )?;
        let mut masks = HashMap::new();
        for window in self.cfg.sliding_window.iter().copied() {
            if masks.contains_key(&window) {
                continue;
            }
            let mut m = vec![0f32; b * t * k];
            for (row, &pad) in pad_left.iter().enumerate() {
                for qi in 0..t {
                    let q = past + qi;
                    for key in 0..k {
                        let visible = key <= q && key >= pad && window.is_none_or(|w| q - key < w);
                        // A padding query sees itself only, so its (unused) row stays finite.
                        let visible = visible || (q < pad && key == q);
                        if !visible {
                            m[(row * t + qi) * k + key] = f32::NEG_INFINITY;
                        }
                    }
                }
            }
            masks.insert(window, Tensor::from_vec(m, (b, 1, t, k), &self.device)?);
        }
        Ok(SeqCtx {
            positions,
            pos_ids,
            masks,
            pos_offset: past,
        })
    }

    /// Positions and masks of packed segments after `past` cached positions (see
    /// [`Model::run_packed_from`]): keys are the cached positions, then the packed tokens.
    fn packed_ctx(&self, segments: &[Segment], past: usize) -> Result<SeqCtx> {
        // Per packed token: its segment and absolute position.
        let mut seg_of = Vec::new();
        let mut positions = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            let end = s.start + s.len;
            if end > self.cfg.max_positions {
                return Err(Error::PromptTooLong {
                    len: end,
                    max: self.cfg.max_positions,
                });
            }
            seg_of.extend(std::iter::repeat_n(i, s.len));
            positions.extend((s.start..end).map(|p| p as u32));
        }
        let n = positions.len();
        let k = past + n;
        let mut masks = HashMap::new();
        for window in self.cfg.sliding_window.iter().copied() {
            if masks.contains_key(&window) {
                continue;
            }
            let near = |q: u32, key: u32| window.is_none_or(|w| ((q - key) as usize) < w);
            let mut m = vec![f32::NEG_INFINITY; n * k];
            for qi in 0..n {
                let (seg, q) = (&segments[seg_of[qi]], positions[qi]);
                let row = &mut m[qi * k..(qi + 1) * k];
                for (key, v) in row.iter_mut().enumerate().take(seg.start) {
                    if near(q, key as u32) {
                        *v = 0.0;
                    }
                }
                // Own segment, up to and including this token.
                let first = qi - (q as usize - seg.start);
                for kj in first..=qi {
                    if near(q, positions[kj]) {
                        row[past + kj] = 0.0;
                    }
                }
            }
            masks.insert(window, Tensor::from_vec(m, (1, 1, n, k), &self.device)?);
        }
        Ok(SeqCtx {
            positions: Tensor::from_vec(
                positions.iter().map(|&p| p as f32).collect::<Vec<_>>(),
                (1, n, 1),
                &self.device,
            )?,
            pos_ids: Tensor::from_vec(positions, n, &self.device)?,
            masks,
            pos_offset: 0,
        })
    }

    fn embed(&self, ids: &Tensor, ctx: &SeqCtx, hooks: &mut Hooks) -> Result<Tensor> {
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
        let x = self.hook(hooks, HookPoint::global(HookKind::Embed), x, ctx.pos_offset)?;
        match &self.w.pos_embed {
            Some(wpe) => {
                let p = wpe.index_select(&ctx.pos_ids, 0)?.reshape((b, t, m))?;
                let p = self.hook(
                    hooks,
                    HookPoint::global(HookKind::PosEmbed),
                    p,
                    ctx.pos_offset,
                )?;
                Ok((x + p)?)
            }
            None => Ok(x),
        }
    }

    fn blocks_from(
        &self,
        start: usize,
        mut resid: Tensor,
        ctx: &SeqCtx,
        mut cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
        logits: Logits,
    ) -> Result<Output> {
        for layer in start..self.cfg.n_layers {
            let kv = cache.as_deref_mut().map(|c| &mut c.layers[layer]);
            resid = self.block(layer, resid, ctx, kv, hooks)?;
        }
        let off = ctx.pos_offset;
        let (normed, scale) = self.w.ln_final.forward(&resid)?;
        self.hook(hooks, HookPoint::global(HookKind::LnFinalScale), scale, off)?;
        let normed = self.hook(
            hooks,
            HookPoint::global(HookKind::LnFinalNormalized),
            normed,
            off,
        )?;
        let logits = match logits {
            Logits::None => None,
            Logits::All => Some(self.w.unembed.forward(&normed)?),
            Logits::Last => {
                let t = normed.dim(1)?;
                Some(self.w.unembed.forward(&normed.narrow(1, t - 1, 1)?)?)
            }
        };
        let logits = match logits {
            Some(l) => Some(self.hook(hooks, HookPoint::logits(), l, off)?),
            None => None,
        };
        Ok(Output {
            logits,
            resid_final: resid,
        })
    }

    /// One transformer block: `resid_pre -> resid_post`.
    fn block(
        &self,
        layer: usize,
        resid: Tensor,
        ctx: &SeqCtx,
        kv: Option<&mut Option<(Tensor, Tensor)>>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let w = &self.w.blocks[layer];
        let off = ctx.pos_offset;
        let p = |kind| HookPoint::block(layer, kind);
        let resid = self.hook(hooks, p(HookKind::ResidPre), resid, off)?;

        let (x, scale) = w.ln1.forward(&resid)?;
        self.hook(hooks, p(HookKind::Ln1Scale), scale, off)?;
        let x = self.hook(hooks, p(HookKind::Ln1Normalized), x, off)?;
        let attn_out = self.attention(layer, w, &x, ctx, kv, hooks)?;
        let attn_out = match &w.post_attn_norm {
            Some(n) => n.forward(&attn_out)?.0,
            None => attn_out,
        };
        let attn_out = self.hook(hooks, p(HookKind::AttnOut), attn_out, off)?;

        let mlp_in_resid = if self.cfg.parallel_residual {
            resid.clone()
        } else {
            self.hook(hooks, p(HookKind::ResidMid), (&resid + &attn_out)?, off)?
        };
        let (x, scale) = w.ln2.forward(&mlp_in_resid)?;
        self.hook(hooks, p(HookKind::Ln2Scale), scale, off)?;
        let x = self.hook(hooks, p(HookKind::Ln2Normalized), x, off)?;
        let mlp_out = self.mlp(layer, w, &x, off, hooks)?;
        let mlp_out = match &w.post_mlp_norm {
            Some(n) => n.forward(&mlp_out)?.0,
            None => mlp_out,
        };
        let mlp_out = self.hook(hooks, p(HookKind::MlpOut), mlp_out, off)?;

        let resid_post = if self.cfg.parallel_residual {
            ((resid + attn_out)? + mlp_out)?
        } else {
            (mlp_in_resid + mlp_out)?
        };
        self.hook(hooks, p(HookKind::ResidPost), resid_post, off)
    }

    /// `x: [B, T, M]` (normalised) -> attention output `[B, T, M]`.
    fn attention(
        &self,
        layer: usize,
        w: &BlockWeights,
        x: &Tensor,
        ctx: &SeqCtx,
        kv: Option<&mut Option<(Tensor, Tensor)>>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (b, t, _) = x.dims3()?;
        let (h, g, d) = (cfg.n_heads, cfg.n_kv_heads, cfg.d_head);
        let off = ctx.pos_offset;
        let p = |kind| HookPoint::block(layer, kind);
        let a = &w.attn;

        let q = self.hook(
            hooks,
            p(HookKind::AttnQ),
            a.q.forward(x)?.reshape((b, t, h, d))?,
            off,
        )?;
        let k = self.hook(
            hooks,
            p(HookKind::AttnK),
            a.k.forward(x)?.reshape((b, t, g, d))?,
            off,
        )?;
        let v = a.v.forward(x)?.reshape((b, t, g, d))?;
        let v_point = p(HookKind::AttnV);
        let v = if hooks.is_active(v_point) {
            let value_bias =
                a.v.b
                    .as_ref()
                    .map(|bias| bias.reshape((1, 1, g, d)))
                    .transpose()?;
            hooks.run(v, || HookContext {
                point: v_point,
                pos_offset: off,
                value_bias,
            })?
        } else {
            v
        };
        let (q, k) = match (&a.q_norm, &a.k_norm) {
            (Some(qn), Some(kn)) => (qn.forward(&q)?.0, kn.forward(&k)?.0),
            _ => (q, k),
        };
        let local = cfg.sliding_window[layer].is_some() && self.inv_freq_local.is_some();
        let (q, k) = match if local {
            &self.inv_freq_local
        } else {
            &self.inv_freq
        } {
            Some(inv_freq) => {
                let (cos, sin) = rotary_cos_sin(&ctx.positions, inv_freq)?;
                let q = self.hook(
                    hooks,
                    p(HookKind::AttnRotQ),
                    apply_rotary(&q, &cos, &sin)?,
                    off,
                )?;
                let k = self.hook(
                    hooks,
                    p(HookKind::AttnRotK),
                    apply_rotary(&k, &cos, &sin)?,
                    off,
                )?;
                (q, k)
            }
            None => (q, k),
        };

        // [B, G, K, D], with the cached positions in front.
        let mut kh = k.transpose(1, 2)?.contiguous()?;
        let mut vh = v.transpose(1, 2)?.contiguous()?;
        if let Some(slot) = kv {
            if let Some((pk, pv)) = slot.as_ref() {
                kh = Tensor::cat(&[pk, &kh], 2)?;
                vh = Tensor::cat(&[pv, &vh], 2)?;
            }
            *slot = Some((kh.clone(), vh.clone()));
        }
        let (kh, vh) = (repeat_kv(&kh, h / g)?, repeat_kv(&vh, h / g)?);
        let qh = q.transpose(1, 2)?.contiguous()?; // [B, H, T, D]

        let scores = (qh.matmul(&kh.t()?)?.to_dtype(DType::F32)? * cfg.attn_scale)?;
        let scores = scores.broadcast_add(&ctx.masks[&cfg.sliding_window[layer]])?;
        let scores = self.hook(hooks, p(HookKind::AttnScores), scores, off)?;
        let pattern = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(self.dtype)?;
        let pattern = self.hook(hooks, p(HookKind::AttnPattern), pattern, off)?;
        let z = pattern.matmul(&vh)?.transpose(1, 2)?; // [B, T, H, D]
        let z = self.hook(hooks, p(HookKind::AttnZ), z, off)?;

        let result_point = p(HookKind::AttnResult);
        if !hooks.is_active(result_point) {
            return a.o.forward(&z.contiguous()?.reshape((b, t, h * d))?);
        }
        // Per-head contributions [B, T, H, M]; their sum plus b_O is the attention output.
        let result = self.head_results(&a.o.wt, &z)?;
        if !hooks.intervenes(result_point) {
            // Captured only: the output is the usual projection, which is cheaper than summing
            // the strided per-head view.
            self.hook(hooks, result_point, result, off)?;
            return a.o.forward(&z.contiguous()?.reshape((b, t, h * d))?);
        }
        let result = self.hook(hooks, result_point, result, off)?;
        let out = result.sum(2)?;
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

    /// `x: [B, T, M]` -> `[B, T, M]`.
    fn mlp(
        &self,
        layer: usize,
        w: &BlockWeights,
        x: &Tensor,
        off: usize,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let p = |kind| HookPoint::block(layer, kind);
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
                let pre = self.hook(hooks, p(HookKind::MlpPre), gate.forward(x)?, off)?;
                let lin = self.hook(hooks, p(HookKind::MlpPreLinear), m.up.forward(x)?, off)?;
                (act(&pre)? * lin)?
            }
            None => {
                let pre = self.hook(hooks, p(HookKind::MlpPre), m.up.forward(x)?, off)?;
                act(&pre)?
            }
        };
        let post = self.hook(hooks, p(HookKind::MlpPost), post, off)?;
        m.down.forward(&post)
    }
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

/// `[B, G, K, D]` -> `[B, G * n_rep, K, D]`, query head `h` reading KV head `h / n_rep`.
fn repeat_kv(x: &Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x.clone());
    }
    let (b, g, k, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .broadcast_as((b, g, n_rep, k, d))?
        .reshape((b, g * n_rep, k, d))?)
}
