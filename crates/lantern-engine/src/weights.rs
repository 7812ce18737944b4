//! Canonical weights: every architecture's checkpoint is mapped at load time onto one layout,
//! so the forward pass (`model.rs`) is written once.
//!
//! Linear weights are stored transposed, `[in, out]` and contiguous, so `x @ wt` needs no copy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::{Architecture, ModelConfig, NormKind};
use crate::error::{Error, Result};

/// `y = x @ wt + b`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[in, out]`.
    pub wt: Tensor,
    /// `[out]`.
    pub b: Option<Tensor>,
}

impl Linear {
    /// From a PyTorch-layout weight `[out, in]`.
    pub fn from_out_in(w: Tensor, b: Option<Tensor>) -> Result<Self> {
        Ok(Linear {
            wt: w.t()?.contiguous()?,
            b,
        })
    }
    /// `x: [..., in] -> [..., out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (rows, d_in) = (
            dims[..dims.len() - 1].iter().product::<usize>(),
            dims[dims.len() - 1],
        );
        let y = x.reshape((rows, d_in))?.matmul(&self.wt)?;
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

pub(crate) struct Loader<'a> {
    pub source: &'a mut dyn TensorSource,
    pub dtype: DType,
    pub device: Device,
    pub prefix: String,
    pub progress: Option<&'a indicatif::ProgressBar>,
}

impl Loader<'_> {
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
            NormKind::RmsNorm if cfg.architecture == Architecture::Gemma3 => ((w + 1.0)?, None),
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

/// Maps a Hugging Face checkpoint onto the canonical layout.
pub(crate) fn load_hf(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    match cfg.architecture {
        Architecture::Gpt2 => load_gpt2(cfg, l),
        Architecture::GptNeoX => load_gpt_neox(cfg, l),
        Architecture::Llama
        | Architecture::Mistral
        | Architecture::Qwen2
        | Architecture::Gemma3 => load_llama_like(cfg, l),
    }
}

/// Number of tensors `load_hf` reads (for a progress bar).
pub(crate) fn tensor_count(cfg: &ModelConfig) -> u64 {
    let per_block = match cfg.architecture {
        Architecture::Gpt2 | Architecture::GptNeoX => 12,
        Architecture::Gemma3 => 13,
        _ => 9,
    };
    (cfg.n_layers * per_block + 4) as u64
}

fn load_gpt2(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    l.prefix = find_prefix(l.source, "wte.weight", &["transformer.", ""])?;
    let (d, v) = (cfg.d_model, cfg.vocab_size);
    let embed = l.get("wte.weight", &[v, d])?;
    let pos_embed = Some(l.get("wpe.weight", &[cfg.max_positions, d])?);
    // Conv1D weights are already [in, out].
    let conv =
        |l: &mut Loader, name: &str, d_in: usize, d_out: usize| -> Result<(Tensor, Tensor)> {
            Ok((
                l.get(&format!("{name}.weight"), &[d_in, d_out])?,
                l.get(&format!("{name}.bias"), &[d_out])?,
            ))
        };
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let p = format!("h.{i}");
        let ln1 = l.norm(&format!("{p}.ln_1"), cfg, d)?;
        let (w_qkv, b_qkv) = conv(l, &format!("{p}.attn.c_attn"), d, 3 * d)?;
        let split = |j: usize| -> Result<Linear> {
            Ok(Linear {
                wt: w_qkv.narrow(1, j * d, d)?.contiguous()?,
                b: Some(b_qkv.narrow(0, j * d, d)?.contiguous()?),
            })
        };
        let (w_o, b_o) = conv(l, &format!("{p}.attn.c_proj"), d, d)?;
        let ln2 = l.norm(&format!("{p}.ln_2"), cfg, d)?;
        let (w_in, b_in) = conv(l, &format!("{p}.mlp.c_fc"), d, cfg.d_mlp)?;
        let (w_out, b_out) = conv(l, &format!("{p}.mlp.c_proj"), cfg.d_mlp, d)?;
        blocks.push(BlockWeights {
            ln1,
            attn: AttentionWeights {
                q: split(0)?,
                k: split(1)?,
                v: split(2)?,
                o: Linear {
                    wt: w_o,
                    b: Some(b_o),
                },
                q_norm: None,
                k_norm: None,
            },
            post_attn_norm: None,
            ln2,
            mlp: MlpWeights {
                gate: None,
                up: Linear {
                    wt: w_in,
                    b: Some(b_in),
                },
                down: Linear {
                    wt: w_out,
                    b: Some(b_out),
                },
            },
            post_mlp_norm: None,
        });
    }
    let ln_final = l.norm("ln_f", cfg, d)?;
    let unembed = Linear {
        wt: embed.t()?.contiguous()?,
        b: None,
    };
    Ok(Weights {
        embed,
        pos_embed,
        blocks,
        ln_final,
        unembed,
    })
}

fn load_gpt_neox(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    l.prefix = find_prefix(l.source, "embed_in.weight", &["gpt_neox.", ""])?;
    let (d, v, h, dh) = (cfg.d_model, cfg.vocab_size, cfg.n_heads, cfg.d_head);
    let embed = l.get("embed_in.weight", &[v, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let p = format!("layers.{i}");
        let ln1 = l.norm(&format!("{p}.input_layernorm"), cfg, d)?;
        let ln2 = l.norm(&format!("{p}.post_attention_layernorm"), cfg, d)?;
        // Fused QKV rows are ordered [head, (q|k|v), d_head].
        let w = l
            .get(
                &format!("{p}.attention.query_key_value.weight"),
                &[3 * h * dh, d],
            )?
            .reshape((h, 3, dh, d))?;
        let b = l
            .get(
                &format!("{p}.attention.query_key_value.bias"),
                &[3 * h * dh],
            )?
            .reshape((h, 3, dh))?;
        let split = |j: usize| -> Result<Linear> {
            let wj = w.narrow(1, j, 1)?.reshape((h * dh, d))?;
            let bj = b.narrow(1, j, 1)?.reshape(h * dh)?;
            Linear::from_out_in(wj, Some(bj))
        };
        let o = l.linear(&format!("{p}.attention.dense"), d, h * dh, Bias::Required)?;
        let up = l.linear(
            &format!("{p}.mlp.dense_h_to_4h"),
            cfg.d_mlp,
            d,
            Bias::Required,
        )?;
        let down = l.linear(
            &format!("{p}.mlp.dense_4h_to_h"),
            d,
            cfg.d_mlp,
            Bias::Required,
        )?;
        blocks.push(BlockWeights {
            ln1,
            attn: AttentionWeights {
                q: split(0)?,
                k: split(1)?,
                v: split(2)?,
                o,
                q_norm: None,
                k_norm: None,
            },
            post_attn_norm: None,
            ln2,
            mlp: MlpWeights {
                gate: None,
                up,
                down,
            },
            post_mlp_norm: None,
        });
    }
    let ln_final = l.norm("final_layer_norm", cfg, d)?;
    let unembed = if cfg.tied_embeddings {
        Linear {
            wt: embed.t()?.contiguous()?,
            b: None,
        }
    } else {
        l.prefix.clear();
        l.linear("embed_out", v, d, Bias::None)?
    };
    Ok(Weights {
        embed,
        pos_embed: None,
        blocks,
        ln_final,
        unembed,
    })
}

fn load_llama_like(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    l.prefix = find_prefix(
        l.source,
        "embed_tokens.weight",
        &[
            "model.",
            "model.language_model.",
            "language_model.model.",
            "",
        ],
    )?;
    let outer_prefix = l.prefix.trim_end_matches("model.").to_string();
    let (d, v, dh) = (cfg.d_model, cfg.vocab_size, cfg.d_head);
    let (dq, dkv) = (cfg.n_heads * dh, cfg.n_kv_heads * dh);
    let qkv_bias = if cfg.architecture == Architecture::Qwen2 {
        Bias::Required
    } else {
        Bias::Optional
    };
    let gemma = cfg.architecture == Architecture::Gemma3;
    let embed = l.get("embed_tokens.weight", &[v, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let p = format!("layers.{i}");
        let ln1 = l.norm(&format!("{p}.input_layernorm"), cfg, d)?;
        let attn = AttentionWeights {
            q: l.linear(&format!("{p}.self_attn.q_proj"), dq, d, qkv_bias)?,
            k: l.linear(&format!("{p}.self_attn.k_proj"), dkv, d, qkv_bias)?,
            v: l.linear(&format!("{p}.self_attn.v_proj"), dkv, d, qkv_bias)?,
            o: l.linear(&format!("{p}.self_attn.o_proj"), d, dq, Bias::Optional)?,
            q_norm: if cfg.qk_norm {
                Some(l.norm(&format!("{p}.self_attn.q_norm"), cfg, dh)?)
            } else {
                None
            },
            k_norm: if cfg.qk_norm {
                Some(l.norm(&format!("{p}.self_attn.k_norm"), cfg, dh)?)
            } else {
                None
            },
        };
        let (post_attn_norm, ln2, post_mlp_norm) = if gemma {
            (
                Some(l.norm(&format!("{p}.post_attention_layernorm"), cfg, d)?),
                l.norm(&format!("{p}.pre_feedforward_layernorm"), cfg, d)?,
                Some(l.norm(&format!("{p}.post_feedforward_layernorm"), cfg, d)?),
            )
        } else {
            (
                None,
                l.norm(&format!("{p}.post_attention_layernorm"), cfg, d)?,
                None,
            )
        };
        let mlp = MlpWeights {
            gate: Some(l.linear(&format!("{p}.mlp.gate_proj"), cfg.d_mlp, d, Bias::Optional)?),
            up: l.linear(&format!("{p}.mlp.up_proj"), cfg.d_mlp, d, Bias::Optional)?,
            down: l.linear(&format!("{p}.mlp.down_proj"), d, cfg.d_mlp, Bias::Optional)?,
        };
        blocks.push(BlockWeights {
            ln1,
            attn,
            post_attn_norm,
            ln2,
            mlp,
            post_mlp_norm,
        });
    }
    let ln_final = l.norm("norm", cfg, d)?;
    l.prefix = outer_prefix;
    let unembed = if cfg.tied_embeddings || !l.has("lm_head.weight") {
        if !cfg.tied_embeddings {
            return Err(Error::MissingTensor(format!(
                "{}lm_head.weight (the config says the embeddings are untied)",
                l.prefix
            )));
        }
        Linear {
            wt: embed.t()?.contiguous()?,
            b: None,
        }
    } else {
        l.linear("lm_head", v, d, Bias::None)?
    };
    Ok(Weights {
        embed,
        pos_embed: None,
        blocks,
        ln_final,
        unembed,
    })
}
