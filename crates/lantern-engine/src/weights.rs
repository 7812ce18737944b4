//! Canonical weights: every architecture's checkpoint is mapped at load time onto one layout,
//! so the forward pass (`model.rs`) is written once. The mapping of each family lives in `arch/`;
//! this file holds the layout and the [`Loader`] the families read through.
//!
//! Linear weights are stored transposed, `[in, out]` and contiguous, so `x @ wt` needs no copy.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Tensor};

use crate::arch::TensorName;
use crate::config::{ModelConfig, NormKind};
use crate::error::{Error, Result};

/// `y = x @ wt + b`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[in, out]`.
    pub wt: Tensor,
    /// `[out]`.
    pub b: Option<Tensor>,
    /// The same weight quantized (`--dtype q8_0` / `gguf`, see [`crate::quant`]), `[out, in]`:
    /// when set, [`Linear::forward`] runs candle's quantized matmul on it (activations stay f32)
    /// and `wt` holds its dequantised values, so analyses that read weights (DLA, per-head
    /// results) see the weights the forward pass uses.
    pub q: Option<QMatMul>,
}

impl Linear {
    /// An f32/f16/bf16 layer from `wt: [in, out]`.
    pub fn new(wt: Tensor, b: Option<Tensor>) -> Self {
        Linear { wt, b, q: None }
    }
    /// From a PyTorch-layout weight `[out, in]`.
    pub fn from_out_in(w: Tensor, b: Option<Tensor>) -> Result<Self> {
        Ok(Linear::new(w.t()?.contiguous()?, b))
    }
    /// `x: [..., in] -> [..., out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (rows, d_in) = (
            dims[..dims.len() - 1].iter().product::<usize>(),
            dims[dims.len() - 1],
        );
        let x = x.reshape((rows, d_in))?;
        let y = match &self.q {
            Some(q) => q.forward(&x.contiguous()?)?,
            None => x.matmul(&self.wt)?,
        };
        let y = match &self.b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("rank >= 1") = self.wt.dim(1)?;
        Ok(y.reshape(out_dims)?)
    }
}

/// LayerNorm or RMSNorm with an optional weight and bias.
#[derive(Debug, Clone)]
pub struct Norm {
    pub kind: NormKind,
    pub w: Option<Tensor>,
    pub b: Option<Tensor>,
    pub eps: f64,
}

impl Norm {
    /// Returns `(output, scale)`, scale `[..., 1]` being the divisor (TransformerLens's `hook_scale`).
    /// Computed in f32 whatever the model's dtype.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let last = x.rank() - 1;
        let centred = match self.kind {
            NormKind::LayerNorm => x.broadcast_sub(&x.mean_keepdim(last)?)?,
            NormKind::RmsNorm => x,
        };
        let scale = (centred.sqr()?.mean_keepdim(last)? + self.eps)?.sqrt()?;
        let mut y = centred.broadcast_div(&scale)?;
        if let Some(w) = &self.w {
            y = y.broadcast_mul(&w.to_dtype(DType::F32)?)?;
        }
        if let Some(b) = &self.b {
            y = y.broadcast_add(&b.to_dtype(DType::F32)?)?;
        }
        Ok((y.to_dtype(dtype)?, scale.to_dtype(dtype)?))
    }
}

#[derive(Debug, Clone)]
pub struct AttentionWeights {
    /// `[d_model, n_heads * d_head]` (as `wt`).
    pub q: Linear,
    /// `[d_model, n_kv_heads * d_head]`.
    pub k: Linear,
    pub v: Linear,
    /// `[n_heads * d_head, d_model]`.
    pub o: Linear,
    pub q_norm: Option<Norm>,
    pub k_norm: Option<Norm>,
}

#[derive(Debug, Clone)]
pub struct MlpWeights {
    /// Gated MLPs only: `act(x W_gate) * (x W_up)`.
    pub gate: Option<Linear>,
    pub up: Linear,
    pub down: Linear,
}

#[derive(Debug, Clone)]
pub struct BlockWeights {
    pub ln1: Norm,
    pub attn: AttentionWeights,
    /// Gemma 3's norm on the attention output before the residual add.
    pub post_attn_norm: Option<Norm>,
    pub ln2: Norm,
    pub mlp: MlpWeights,
    pub post_mlp_norm: Option<Norm>,
}

#[derive(Debug, Clone)]
pub struct Weights {
    /// `[vocab, d_model]`.
    pub embed: Tensor,
    /// `[max_positions, d_model]` for learned positions.
    pub pos_embed: Option<Tensor>,
    pub blocks: Vec<BlockWeights>,
    pub ln_final: Norm,
    /// `[d_model, vocab]` (as `wt`), the transposed embedding when tied.
    pub unembed: Linear,
}

/// Reads named tensors, checking each against the shape the config implies and casting to the
/// model's dtype.
pub trait TensorSource {
    /// Whether a tensor exists.
    fn contains(&self, name: &str) -> bool;
    /// The raw tensor (any dtype).
    fn read(&mut self, name: &str) -> Result<Tensor>;
}

/// Reads a checkpoint's tensors for a family's loader: adds the body prefix, checks shapes, casts
/// to the model's dtype and counts progress.
pub(crate) struct Loader<'a> {
    pub source: &'a mut dyn TensorSource,
    pub dtype: DType,
    pub device: Device,
    /// Prepended to every name (`model.`, `transformer.`, ...; the family sets it).
    pub prefix: String,
    pub progress: Option<&'a indicatif::ProgressBar>,
    /// Full names of the family's tensor list ([`Loader::expect`]).
    expected: HashSet<String>,
    /// Full names read so far, in order.
    read: Vec<String>,
}

impl<'a> Loader<'a> {
    pub fn new(
        source: &'a mut dyn TensorSource,
        dtype: DType,
        device: Device,
        progress: Option<&'a indicatif::ProgressBar>,
    ) -> Self {
        Loader {
            source,
            dtype,
            device,
            prefix: String::new(),
            progress,
            expected: HashSet::new(),
            read: Vec::new(),
        }
    }

    /// Declares the family's tensors (names relative to `body_prefix`, or `root_prefix` for root
    /// tensors): the progress bar's length is the number of them the checkpoint holds.
    pub fn expect(&mut self, names: &[TensorName], body_prefix: &str, root_prefix: &str) {
        self.expected = names
            .iter()
            .map(|n| n.full(body_prefix, root_prefix))
            .collect();
        let present = self
            .expected
            .iter()
            .filter(|n| self.source.contains(n))
            .count();
        if let Some(pb) = self.progress {
            pb.set_length(present as u64);
        }
    }

    /// The full names declared by [`Loader::expect`].
    #[cfg(test)]
    pub fn expected(&self) -> &HashSet<String> {
        &self.expected
    }

    /// The full names read so far.
    #[cfg(test)]
    pub fn read_names(&self) -> &[String] {
        &self.read
    }

    pub fn has(&self, name: &str) -> bool {
        self.source.contains(&format!("{}{name}", self.prefix))
    }
    /// Reads `prefix + name` and checks its shape.
    pub fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        if !self.source.contains(&full) {
            return Err(Error::MissingTensor(full));
        }
        let t = self.source.read(&full)?;
        if t.dims() != shape {
            return Err(Error::ShapeMismatch {
                name: full,
                expected: shape.to_vec(),
                found: t.dims().to_vec(),
            });
        }
        if let Some(pb) = self.progress {
            pb.inc(1);
        }
        self.read.push(full);
        Ok(t.to_dtype(self.dtype)?.to_device(&self.device)?)
    }
    pub fn opt(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if self.has(name) {
            self.get(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }
    pub fn linear(&mut self, name: &str, d_out: usize, d_in: usize, bias: Bias) -> Result<Linear> {
        let w = self.get(&format!("{name}.weight"), &[d_out, d_in])?;
        let b = match bias {
            Bias::Required => Some(self.get(&format!("{name}.bias"), &[d_out])?),
            Bias::Optional => self.opt(&format!("{name}.bias"), &[d_out])?,
            Bias::None => None,
        };
        Linear::from_out_in(w, b)
    }
    pub fn norm(&mut self, name: &str, cfg: &ModelConfig, dim: usize) -> Result<Norm> {
        let w = self.get(&format!("{name}.weight"), &[dim])?;
        let (w, b) = match cfg.norm {
            NormKind::LayerNorm => (w, Some(self.get(&format!("{name}.bias"), &[dim])?)),
            // Gemma stores `w` for a `(1 + w)` scale.
            NormKind::RmsNorm if cfg.norm_weight_offset != 0.0 => {
                ((w + cfg.norm_weight_offset)?, None)
            }
            NormKind::RmsNorm => (w, None),
        };
        Ok(Norm {
            kind: cfg.norm,
            w: Some(w),
            b,
            eps: cfg.norm_eps,
        })
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Bias {
    Required,
    Optional,
    None,
}

/// Safetensors files (one, or the shards of a `model.safetensors.index.json`), memory-mapped.
pub struct SafetensorsSource {
    files: candle_core::safetensors::MmapedSafetensors,
    names: std::collections::HashSet<String>,
}

impl SafetensorsSource {
    /// Opens `model.safetensors` or the shards listed in `model.safetensors.index.json` in `dir`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let paths: Vec<PathBuf> = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| Error::file(&index, e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::file(&index, format!("invalid JSON: {e}")))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::file(&index, "no `weight_map`"))?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            shards.into_iter().map(|s| dir.join(s)).collect()
        } else {
            let single = dir.join("model.safetensors");
            if !single.exists() {
                return Err(Error::file(
                    dir,
                    "no model.safetensors or model.safetensors.index.json in this folder",
                ));
            }
            vec![single]
        };
        Self::open(&paths)
    }

    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        for p in paths {
            if !p.exists() {
                return Err(Error::file(p, "missing safetensors file"));
            }
        }
        // SAFETY: the files are only read; a concurrent writer would be a user error, as for any mmap.
        let files =
            unsafe { candle_core::safetensors::MmapedSafetensors::multi(paths) }.map_err(|e| {
                Error::file(
                    paths.first().cloned().unwrap_or_default(),
                    format!("not a valid safetensors file: {e}"),
                )
            })?;
        let names = files.tensors().into_iter().map(|(n, _)| n).collect();
        Ok(SafetensorsSource { files, names })
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.names.iter()
    }
}

impl TensorSource for SafetensorsSource {
    fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }
    fn read(&mut self, name: &str) -> Result<Tensor> {
        self.files
            .load(name, &Device::Cpu)
            .map_err(|e| Error::invalid(format!("tensor `{name}` could not be read: {e}")))
    }
}

/// An in-memory source (tests, conversions).
impl TensorSource for HashMap<String, Tensor> {
    fn contains(&self, name: &str) -> bool {
        self.contains_key(name)
    }
    fn read(&mut self, name: &str) -> Result<Tensor> {
        self.get(name)
            .cloned()
            .ok_or_else(|| Error::MissingTensor(name.to_string()))
    }
}

/// The first prefix under which `probe` exists (e.g. `model.`, `transformer.`, ``).
pub(crate) fn find_prefix(
    source: &dyn TensorSource,
    probe: &str,
    prefixes: &[&str],
) -> Result<String> {
    prefixes
        .iter()
        .find(|p| source.contains(&format!("{p}{probe}")))
        .map(|p| p.to_string())
        .ok_or_else(|| {
            Error::MissingTensor(format!(
                "{}{probe} (also tried the prefixes {:?})",
                prefixes[0],
                &prefixes[1..]
            ))
        })
}
