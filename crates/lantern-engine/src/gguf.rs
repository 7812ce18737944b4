//! GGUF files (llama.cpp's format): config and tokenizer from the metadata, weights dequantised to
//! the chosen dtype and served under Hugging Face names so `weights::load_hf` maps them.
//!
//! llama.cpp's converter permutes the rows of `q_proj` and `k_proj` of Llama models for its
//! interleaved rotary; they are permuted back here so the model uses the Hugging Face
//! (rotate-half) convention throughout.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use crate::config::{Activation, Architecture, ModelConfig, NormKind, Rope, RopeScaling};
use crate::error::{Error, Result};
use crate::weights::TensorSource;

/// An open GGUF file.
pub struct GgufFile {
    path: PathBuf,
    content: Content,
    reader: BufReader<File>,
    arch: String,
    n_heads: usize,
    n_kv_heads: usize,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::file(path, e))?;
        let mut reader = BufReader::new(file);
        // candle 0.11's reader panics on some corrupt headers (`general.alignment = 0` divides by
        // zero); the panic is turned into the same error as its other refusals.
        let read =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Content::read(&mut reader)));
        let content = match read {
            Ok(r) => r.map_err(|e| {
                let e = crate::error::without_backtrace(e);
                Error::file(path, format!("not a valid GGUF file: {e}"))
            })?,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                return Err(Error::file(
                    path,
                    format!("not a valid GGUF file: the header is corrupt ({msg}; e.g. `general.alignment` is 0)"),
                ));
            }
        };
        let arch = meta_str(&content, "general.architecture").map_err(|e| Error::file(path, e))?;
        let n_heads = meta_count(&content, &format!("{arch}.attention.head_count"))
            .map_err(|e| Error::file(path, e))?;
        let n_kv_heads =
            meta_usize(&content, &format!("{arch}.attention.head_count_kv")).unwrap_or(n_heads);
        Ok(GgufFile {
            path: path.to_path_buf(),
            content,
            reader,
            arch,
            n_heads,
            n_kv_heads,
        })
    }

    /// The model config from the metadata.
    pub fn config(&self) -> Result<ModelConfig> {
        let c = &self.content;
        let a = self.arch.as_str();
        let err = |e: Error| Error::file(&self.path, e);
        let architecture = match a {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            "gemma3" => Architecture::Gemma3,
            other => return Err(Error::file(&self.path, format!("GGUF architecture `{other}` is not supported (supported: llama, qwen2, gemma3)"))),
        };
        let d_model = meta_count(c, &format!("{a}.embedding_length")).map_err(err)?;
        let n_layers = meta_count(c, &format!("{a}.block_count")).map_err(err)?;
        let d_head =
            meta_usize(c, &format!("{a}.attention.key_length")).unwrap_or(d_model / self.n_heads);
        let vocab_size = match meta_usize(c, &format!("{a}.vocab_size")) {
            Ok(v) => v,
            Err(_) => match c.metadata.get("tokenizer.ggml.tokens") {
                Some(Value::Array(tokens)) => tokens.len(),
                _ => {
                    return Err(Error::file(
                        &self.path,
                        "no vocabulary size in the metadata",
                    ))
                }
            },
        };
        let theta = meta_f64(c, &format!("{a}.rope.freq_base")).unwrap_or(10000.0);
        let scaling = match meta_str(c, &format!("{a}.rope.scaling.type"))
            .ok()
            .as_deref()
        {
            None | Some("none") => None,
            // Gemma 3 4B and larger: global layers' positions divided by 8.
            Some("linear") => Some(RopeScaling::Linear {
                factor: meta_f64(c, &format!("{a}.rope.scaling.factor")).map_err(err)?,
            }),
            Some(other) => {
                return Err(Error::file(
                    &self.path,
                    format!("rope scaling `{other}` is not supported (only linear)"),
                ))
            }
        };
        let gemma = architecture == Architecture::Gemma3;
        // Gemma 3 GGUFs carry neither the layer pattern nor the local rope base nor
        // query_pre_attn_scalar: llama.cpp hard-codes them, and so does this (checked against the
        // config transformers derives from the 270M GGUF: layer_types, rope_parameters, 256).
        let sliding_window = if gemma {
            let window = meta_usize(c, &format!("{a}.attention.sliding_window")).unwrap_or(512);
            // Five local layers, then one global: layers 5, 11, 17, ... attend to everything.
            (0..n_layers)
                .map(|i| ((i + 1) % 6 != 0).then_some(window))
                .collect()
        } else {
            vec![None; n_layers]
        };
        // Scores are scaled by 1/sqrt(query_pre_attn_scalar): head_dim, except for Gemma 3 27B
        // (62 layers), whose scalar is d_model / n_heads (llama.cpp's rule).
        let attn_scale = if gemma && n_layers == 62 {
            1.0 / ((d_model / self.n_heads) as f64).sqrt()
        } else {
            1.0 / (d_head as f64).sqrt()
        };
        let tied = !self.content.tensor_infos.contains_key("output.weight");
        let cfg = ModelConfig {
            architecture,
            n_layers,
            d_model,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            d_head,
            d_mlp: meta_usize(c, &format!("{a}.feed_forward_length")).map_err(err)?,
            vocab_size,
            max_positions: meta_usize(c, &format!("{a}.context_length")).unwrap_or(2048),
            norm: NormKind::RmsNorm,
            norm_eps: meta_f64(c, &format!("{a}.attention.layer_norm_rms_epsilon")).unwrap_or(1e-6),
            activation: if gemma {
                Activation::GeluTanh
            } else {
                Activation::Silu
            },
            gated_mlp: true,
            rope: Some(Rope {
                theta,
                rotary_dim: d_head,
                scaling,
            }),
            rope_local: gemma.then_some(Rope {
                theta: 10000.0,
                rotary_dim: d_head,
                scaling: None,
            }),
            parallel_residual: false,
            tied_embeddings: tied,
            embed_scale: gemma,
            post_norms: gemma,
            qk_norm: gemma,
            attn_scale,
            sliding_window,
            bos_token_id: meta_usize(c, "tokenizer.ggml.bos_token_id")
                .ok()
                .map(|v| v as u32),
            eos_token_id: meta_usize(c, "tokenizer.ggml.eos_token_id")
                .ok()
                .map(|v| v as u32),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// A byte-level BPE tokenizer from the vocabulary and merges in the metadata.
    pub fn tokenizer(&self) -> Result<crate::Tokenizer> {
        crate::tokenizer::from_gguf_metadata(&self.content.metadata)
            .map_err(|e| Error::file(&self.path, e))
    }

    /// The GGUF name of a Hugging Face tensor name, and whether its rows need un-permuting
    /// (`Some(heads)`).
    fn gguf_name(&self, hf: &str) -> Option<(String, Option<usize>)> {
        let hf = hf.strip_prefix("model.").unwrap_or(hf);
        let simple = match hf {
            "embed_tokens.weight" => Some("token_embd.weight"),
            "norm.weight" => Some("output_norm.weight"),
            "lm_head.weight" => Some("output.weight"),
            _ => None,
        };
        if let Some(s) = simple {
            return Some((s.to_string(), None));
        }
        let rest = hf.strip_prefix("layers.")?;
        let (layer, tail) = rest.split_once('.')?;
        let (module, kind) = tail.rsplit_once('.')?;
        let llama = self.arch == "llama";
        let (name, permute) = match module {
            "input_layernorm" => ("attn_norm", None),
            "post_attention_layernorm" if self.arch == "gemma3" => ("post_attention_norm", None),
            "post_attention_layernorm" | "pre_feedforward_layernorm" => ("ffn_norm", None),
            "post_feedforward_layernorm" => ("post_ffw_norm", None),
            "self_attn.q_proj" => (
                "attn_q",
                (llama && kind == "weight").then_some(self.n_heads),
            ),
            "self_attn.k_proj" => (
                "attn_k",
                (llama && kind == "weight").then_some(self.n_kv_heads),
            ),
            "self_attn.v_proj" => ("attn_v", None),
            "self_attn.o_proj" => ("attn_output", None),
            "self_attn.q_norm" => ("attn_q_norm", None),
            "self_attn.k_norm" => ("attn_k_norm", None),
            "mlp.gate_proj" => ("ffn_gate", None),
            "mlp.up_proj" => ("ffn_up", None),
            "mlp.down_proj" => ("ffn_down", None),
            _ => return None,
        };
        Some((format!("blk.{layer}.{name}.{kind}"), permute))
    }
}

impl TensorSource for GgufFile {
    fn contains(&self, name: &str) -> bool {
        self.gguf_name(name)
            .is_some_and(|(g, _)| self.content.tensor_infos.contains_key(&g))
    }

    fn read(&mut self, name: &str) -> Result<Tensor> {
        let (gguf, permute) = self
            .gguf_name(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        self.check_element_count(&gguf)?;
        let q = self
            .content
            .tensor(&mut self.reader, &gguf, &Device::Cpu)
            .map_err(|e| {
                Error::file(
                    &self.path,
                    format!(
                        "tensor `{gguf}` could not be read: {}",
                        crate::error::without_backtrace(e)
                    ),
                )
            })?;
        let mut t = q.dequantize(&Device::Cpu)?;
        // llama.cpp's converter stores Gemma's norm weights as `1 + w` (all of them: input,
        // post-attention, pre/post-feedforward, q/k and final norms; checked on Gemma 3 270M
        // against transformers, which subtracts the 1 again); the loader adds the 1 to HF's `w`.
        // Same f32 ops as transformers (`x - 1` here, `1 + w` in the norm). Gemma's q/k rows are
        // not permuted and the embedding is stored unscaled.
        if self.arch == "gemma3" && gguf.ends_with("norm.weight") {
            t = (t - 1.0)?;
        }
        if let Some(heads) = permute {
            t = unpermute_rows(&t, heads)?;
        }
        Ok(t)
    }
}

impl GgufFile {
    /// candle multiplies a tensor's declared dims without checking for overflow: dims of 2^60
    /// wrap to a small size that passes its size check, then its copy panics. GGUF's densest
    /// types hold about 5 elements per byte (IQ1_S: 256 in 50 bytes), so a tensor declaring more
    /// than 8 per byte of the file is corrupt.
    fn check_element_count(&self, gguf: &str) -> Result<()> {
        let Some(info) = self.content.tensor_infos.get(gguf) else {
            return Ok(()); // candle reports the missing tensor
        };
        let dims = info.shape.dims();
        let file_len = self
            .reader
            .get_ref()
            .metadata()
            .map_err(|e| Error::file(&self.path, e))?
            .len();
        let elements = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        match elements {
            Some(n) if n <= file_len.saturating_mul(8) => Ok(()),
            _ => Err(Error::file(
                &self.path,
                format!("tensor `{gguf}` declares shape {dims:?}, more elements than the file ({file_len} bytes) can hold"),
            )),
        }
    }
}

/// Inverse of llama.cpp's `permute`: rows `[head, d_head/2, 2]` back to `[head, 2, d_head/2]`.
pub fn unpermute_rows(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let dh = rows / heads;
    Ok(w.reshape((heads, dh / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))?)
}

fn meta<'a>(c: &'a Content, key: &str) -> Result<&'a Value> {
    c.metadata
        .get(key)
        .ok_or_else(|| Error::invalid(format!("metadata key `{key}` is missing")))
}

pub(crate) fn meta_str(c: &Content, key: &str) -> Result<String> {
    Ok(meta(c, key)?
        .to_string()
        .map_err(|e| Error::invalid(format!("`{key}`: {e}")))?
        .clone())
}

fn meta_usize(c: &Content, key: &str) -> Result<usize> {
    let v = meta(c, key)?;
    v.to_u64()
        .or_else(|_| v.to_u32().map(u64::from))
        .or_else(|_| v.to_i32().map(|x| x as u64))
        .map(|x| x as usize)
        .map_err(|e| Error::invalid(format!("`{key}`: {e}")))
}

/// A count that divides or sizes something (heads, layers, width): 1 to
/// [`crate::config::MAX_COUNT`], checked before `d_model / n_heads` or `vec![_; n_layers]`.
fn meta_count(c: &Content, key: &str) -> Result<usize> {
    let v = meta_usize(c, key)?;
    if v == 0 || v > crate::config::MAX_COUNT {
        return Err(Error::invalid(format!(
            "`{key}` must be between 1 and {}, got {v}",
            crate::config::MAX_COUNT
        )));
    }
    Ok(v)
}

fn meta_f64(c: &Content, key: &str) -> Result<f64> {
    let v = meta(c, key)?;
    v.to_f32()
        .map(f64::from)
        .or_else(|_| v.to_f64())
        .map_err(|e| Error::invalid(format!("`{key}`: {e}")))
}

/// GGUF metadata as a plain map, for the tokenizer builder.
pub(crate) type Metadata = HashMap<String, Value>;
