//! The one way to run a model: [`Model::run`] with an [`Input`] (tokens or a residual stream) and
//! [`RunOptions`] (start layer, KV cache, packed segments, which logits). Every option is checked
//! here, in one place, before the forward pass in `model.rs` begins.
//!
//! ```no_run
//! # use lantern_engine::*;
//! # fn demo(model: &Model, batch: &Batch, resid: &Tensor, ids: &Tensor) -> Result<()> {
//! // A whole forward pass, logits at every position.
//! let out = model.run(batch, &mut Hooks::new(), RunOptions::default())?;
//! // Resume at block 12 from its residual stream (patching sweeps), last-position logits only.
//! let opts = RunOptions::from_layer(12).padding(&batch.pad_left).logits(Logits::Last);
//! let out = model.run(Input::Resid(resid), &mut Hooks::new(), opts)?;
//! // Incremental decoding: new tokens after the positions a KV cache holds.
//! let mut cache = model.new_kv_cache(&batch.pad_left);
//! let out = model.run(Input::Tokens(ids), &mut Hooks::new(), RunOptions::default().cache(&mut cache))?;
//! # Ok(()) }
//! ```
//!
//! Shapes: B batch, T new positions, M d_model, V vocabulary, S packed segments.

use candle_core::{DType, Tensor};

use crate::batch::Batch;
use crate::error::{check_index, Error, Result};
use crate::intervention::Hooks;
use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::positions::{Segment, SeqCtx};

/// What a forward pass starts from.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Prompts: token ids `[B, T]` and each row's left padding.
    Batch(&'a Batch),
    /// Token ids `[B, T]` (u32). With a [`RunOptions::cache`] they follow the cached positions
    /// and the cache's rows carry the padding; without one, rows are padded as
    /// [`RunOptions::padding`] says (unpadded by default).
    Tokens(&'a Tensor),
    /// The residual stream `[B, T, M]` entering block [`RunOptions::start_layer`] (its
    /// `hook_resid_pre` still applies). Patching sweeps use this to skip the blocks below a patch.
    Resid(&'a Tensor),
}

impl<'a> From<&'a Batch> for Input<'a> {
    fn from(batch: &'a Batch) -> Self {
        Input::Batch(batch)
    }
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

/// Several continuations of one cached row, run as a single packed sequence (see
/// [`RunOptions::packed`]).
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    pub segments: &'a [Segment],
    /// A one-row, unpadded cache of the positions before the segments (left unchanged).
    pub past: &'a KvCache,
}

/// How a forward pass runs; the default is a whole pass from the embeddings with logits at every
/// position.
#[derive(Debug, Default)]
pub struct RunOptions<'a> {
    /// The first block run (`0`: all of them). Needs an [`Input::Resid`] when above 0.
    pub start_layer: usize,
    /// Keys and values of earlier positions; the new positions' are appended. When resuming at a
    /// `start_layer` above 0, the cache must hold every block from there on, and blocks below are
    /// neither read nor extended (the cache is then only valid from `start_layer` on).
    pub cache: Option<&'a mut KvCache>,
    /// Left padding of each row of an [`Input::Tokens`]/[`Input::Resid`] run without a cache
    /// (an [`Input::Batch`] and a cache carry their own).
    pub pad_left: Option<&'a [usize]>,
    /// Packed continuations of a cached row (exclusive with `cache` and `pad_left`).
    pub packed: Option<Packed<'a>>,
    pub logits: Logits,
}

impl<'a> RunOptions<'a> {
    /// Resumes at block `layer` (the input is its residual stream).
    pub fn from_layer(layer: usize) -> Self {
        RunOptions {
            start_layer: layer,
            ..Default::default()
        }
    }
    pub fn logits(mut self, logits: Logits) -> Self {
        self.logits = logits;
        self
    }
    pub fn cache(mut self, cache: &'a mut KvCache) -> Self {
        self.cache = Some(cache);
        self
    }
    pub fn padding(mut self, pad_left: &'a [usize]) -> Self {
        self.pad_left = Some(pad_left);
        self
    }
    /// Runs several continuations of one cached row as a single packed sequence. Segment `s` is
    /// the positions `start_s..start_s + len_s` of a sequence whose positions before `start_s`
    /// are the ones `past` holds; the input is the segments' residual streams at `start_layer`,
    /// concatenated: `[1, N, M]` (N = sum of lens). Each segment attends to the cached positions
    /// before its start and to itself, never to another segment, so it computes what a separate
    /// run would, without the padding a batch of different lengths would need. The logits are
    /// each segment's last position's (`[S, 1, V]`, so [`Output::last_logits`] gives `[S, V]`),
    /// unless [`Logits::None`].
    ///
    /// Hooks see the packed `[1, N, ...]` tensors, and `HookContext::pos_offset` is 0: select by
    /// packed index (a custom intervention), not by position. Points with a key axis
    /// (`hook_attn_scores`, `hook_pattern`) hold the cached keys first, then the packed ones.
    pub fn packed(mut self, segments: &'a [Segment], past: &'a KvCache) -> Self {
        self.packed = Some(Packed { segments, past });
        self
    }
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

impl Model {
    /// Runs the model (see the [module docs](crate::run) for examples). Interventions see
    /// absolute positions (`HookContext::pos_offset` is the number of cached positions).
    pub fn run<'a>(
        &self,
        input: impl Into<Input<'a>>,
        hooks: &mut Hooks,
        opts: RunOptions<'_>,
    ) -> Result<Output> {
        let input = input.into();
        let RunOptions {
            start_layer: layer,
            mut cache,
            pad_left,
            packed,
            logits,
        } = opts;
        let cfg = self.config();
        hooks.check(cfg)?;
        check_index("layer", layer, cfg.n_layers)?;

        // The rows' padding comes from exactly one place.
        let batch_pad = match input {
            Input::Batch(b) => Some(b.pad_left.as_slice()),
            _ => None,
        };
        let given = [
            batch_pad.is_some(),
            pad_left.is_some(),
            cache.is_some(),
            packed.is_some(),
        ];
        if given.iter().filter(|&&g| g).count() > 1 {
            return Err(Error::invalid(
                "give the rows' padding once: a Batch, `padding`, a KV cache or packed segments",
            ));
        }

        // The input: token ids [B, T] to embed, or a residual stream [B, T, M] at `layer`.
        let (ids, resid) = match input {
            Input::Batch(b) => (Some(b.ids_tensor(self.device())?), None),
            Input::Tokens(ids) => (Some(ids.clone()), None),
            Input::Resid(r) => (None, Some(r)),
        };
        let (b, t) = match (&ids, resid) {
            (Some(ids), _) => {
                if layer > 0 {
                    return Err(Error::invalid(format!(
                        "a run from layer {layer} starts from its residual stream, not from tokens"
                    )));
                }
                ids.dims2()?
            }
            (None, Some(r)) => {
                let (b, t, m) = r.dims3().map_err(|_| Error::ShapeMismatch {
                    name: format!("resid_pre for layer {layer}"),
                    expected: vec![0, 0, cfg.d_model],
                    found: r.dims().to_vec(),
                })?;
                if m != cfg.d_model {
                    return Err(Error::ShapeMismatch {
                        name: format!("resid_pre for layer {layer}"),
                        expected: vec![b, t, cfg.d_model],
                        found: r.dims().to_vec(),
                    });
                }
                (b, t)
            }
            (None, None) => unreachable!("every input is tokens or a residual stream"),
        };
        let rows_must_be = |rows: usize, what: &str| -> Result<()> {
            if b == rows {
                return Ok(());
            }
            Err(Error::invalid(format!(
                "the input has {b} rows but {what} has {rows}"
            )))
        };

        // Positions and masks, from the padding's one source.
        let ctx = if let Some(Packed { segments, past }) = packed {
            let n: usize = segments.iter().map(|s| s.len).sum();
            if (b, t) != (1, n) {
                return Err(Error::ShapeMismatch {
                    name: format!("packed resid_pre for layer {layer}"),
                    expected: vec![1, n, cfg.d_model],
                    found: resid.map_or(vec![b, t], |r| r.dims().to_vec()),
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
            SeqCtx::packed(cfg, self.device(), segments, past.len)?
        } else if let Some(c) = cache.as_deref() {
            rows_must_be(c.pad_left.len(), "the KV cache")?;
            c.check_layers_from(layer)?;
            SeqCtx::padded(cfg, self.device(), &c.pad_left, c.len, t)?
        } else {
            let zeros = vec![0; b];
            let pad = batch_pad.or(pad_left).unwrap_or(&zeros);
            rows_must_be(pad.len(), "the padding")?;
            if let Some(&p) = pad.iter().find(|&&p| p >= t) {
                return Err(Error::invalid(format!(
                    "a row padded by {p} positions has no real token among the {t} positions"
                )));
            }
            SeqCtx::padded(cfg, self.device(), pad, 0, t)?
        };

        let resid = match (ids, resid) {
            (Some(ids), _) => self.embed(&ids, &ctx, hooks)?,
            (None, Some(r)) => r.to_dtype(self.dtype())?,
            (None, None) => unreachable!("every input is tokens or a residual stream"),
        };
        if let Some(Packed { segments, past }) = packed {
            let mut scratch = past.clone();
            let out = self.forward(layer, resid, &ctx, Some(&mut scratch), hooks, Logits::None)?;
            let logits = match logits {
                Logits::None => None,
                _ => Some(self.segment_logits(&out.resid_final, segments)?),
            };
            return Ok(Output {
                logits,
                resid_final: out.resid_final,
            });
        }
        let out = self.forward(layer, resid, &ctx, cache.as_deref_mut(), hooks, logits)?;
        if let Some(c) = cache {
            c.len += t;
        }
        Ok(out)
    }

    /// Logits of each packed segment's last position, `[S, 1, V]` (no hooks).
    fn segment_logits(&self, resid_final: &Tensor, segments: &[Segment]) -> Result<Tensor> {
        let ends: Vec<u32> = segments
            .iter()
            .scan(0u32, |at, s| {
                *at += s.len as u32;
                Some(*at - 1)
            })
            .collect();
        let ends = Tensor::new(ends.as_slice(), self.device())?;
        let last = resid_final.squeeze(0)?.index_select(&ends, 0)?;
        Ok(self.unembed(&last)?.unsqueeze(1)?)
    }
}
