//! GGUF files (llama.cpp's format): the generic reader. Config and tokenizer come from the
//! metadata, weights are dequantised and served under Hugging Face names so each family's loader
//! (`arch/`) maps them. Which metadata keys and tensor names a family uses, and how a stored tensor
//! becomes the Hugging Face one (llama.cpp's q/k row permutation, Gemma's `1 + w` norms), is
//! declared by the family in `arch/`.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use crate::arch::{self, FromGguf};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::weights::TensorSource;

/// An open GGUF file.
pub struct GgufFile {
    path: PathBuf,
    content: Content,
    reader: BufReader<File>,
    arch: String,
    /// Hugging Face name -> GGUF name and conversion, from the family's tensor list (built on
    /// first use; empty when the config cannot be read).
    names: OnceLock<HashMap<String, (String, FromGguf)>>,
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
        meta_count(&content, &format!("{arch}.attention.head_count"))
            .map_err(|e| Error::file(path, e))?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            content,
            reader,
            arch,
            names: OnceLock::new(),
        })
    }

    /// The model config from the metadata (parsed by the family of `general.architecture`).
    pub fn config(&self) -> Result<ModelConfig> {
        let cfg = arch::config_from_gguf(&self.meta()).map_err(|e| Error::file(&self.path, e))?;
        // Every block has tensors of its own, so a file declaring more blocks than it holds
        // tensors is corrupt; the count must not size the tensor-name list (found by the long
        // fuzz run: a block_count of ~10^6 allocated 377 MB of names).
        let tensors = self.content.tensor_infos.len();
        if cfg.n_layers > tensors {
            return Err(Error::file(
                &self.path,
                format!(
                    "the metadata declares {} blocks but the file holds only {tensors} tensors",
                    cfg.n_layers
                ),
            ));
        }
        Ok(cfg)
    }

    fn meta(&self) -> GgufMeta<'_> {
        GgufMeta {
            content: &self.content,
            arch: &self.arch,
        }
    }

    /// The Jinja chat template (`tokenizer.chat_template`), if the file has one.
    pub fn chat_template(&self) -> Option<String> {
        meta_str(&self.content, "tokenizer.chat_template").ok()
    }

    /// A byte-level BPE tokenizer from the vocabulary and merges in the metadata.
    pub fn tokenizer(&self) -> Result<crate::Tokenizer> {
        crate::tokenizer::from_gguf_metadata(&self.content.metadata)
            .map_err(|e| Error::file(&self.path, e))
    }

    /// How the file stores a tensor (by its GGUF name, e.g. `blk.0.attn_q.weight`): `None` when
    /// the file has no such tensor.
    pub fn stored_type(&self, gguf_name: &str) -> Option<candle_core::quantized::GgmlDType> {
        self.content
            .tensor_infos
            .get(gguf_name)
            .map(|i| i.ggml_dtype)
    }

    fn names(&self) -> &HashMap<String, (String, FromGguf)> {
        self.names.get_or_init(|| {
            let Ok(cfg) = self.config() else {
                return HashMap::new();
            };
            (arch::family(cfg.architecture).tensor_names)(&cfg)
                .into_iter()
                .filter_map(|t| Some((t.hf, (t.gguf?, t.from_gguf))))
                .collect()
        })
    }
}

/// The metadata of one GGUF file, keys of the model read under its architecture's prefix.
pub(crate) struct GgufMeta<'a> {
    content: &'a Content,
    arch: &'a str,
}

impl GgufMeta<'_> {
    /// `general.architecture`.
    pub fn arch(&self) -> &str {
        self.arch
    }
    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.arch)
    }
    /// `{arch}.{key}`, required.
    pub fn usize(&self, key: &str) -> Result<usize> {
        meta_usize(self.content, &self.key(key))
    }
    /// A count that divides or sizes something (heads, layers, width), checked before it does.
    pub fn count(&self, key: &str) -> Result<usize> {
        meta_count(self.content, &self.key(key))
    }
    pub fn opt_usize(&self, key: &str) -> Option<usize> {
        meta_usize(self.content, &self.key(key)).ok()
    }
    pub fn f64(&self, key: &str) -> Result<f64> {
        meta_f64(self.content, &self.key(key))
    }
    pub fn opt_f64(&self, key: &str) -> Option<f64> {
        meta_f64(self.content, &self.key(key)).ok()
    }
    pub fn opt_str(&self, key: &str) -> Option<String> {
        meta_str(self.content, &self.key(key)).ok()
    }
    /// A key outside the architecture's prefix (`tokenizer.ggml.bos_token_id`).
    pub fn global_token_id(&self, key: &str) -> Option<u32> {
        meta_usize(self.content, key).ok().map(|v| v as u32)
    }
    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }
    /// `{arch}.vocab_size`, else the length of the tokenizer's vocabulary.
    pub fn vocab_size(&self) -> Result<usize> {
        match self.opt_usize("vocab_size") {
            Some(v) => Ok(v),
            None => match self.content.metadata.get("tokenizer.ggml.tokens") {
                Some(Value::Array(tokens)) => Ok(tokens.len()),
                _ => Err(Error::invalid("no vocabulary size in the metadata")),
            },
        }
    }
}

impl TensorSource for GgufFile {
    fn contains(&self, name: &str) -> bool {
        self.names()
            .get(name)
            .is_some_and(|(g, _)| self.content.tensor_infos.contains_key(g))
    }

    fn read(&mut self, name: &str) -> Result<Tensor> {
        let (gguf, how) = self
            .names()
            .get(name)
            .cloned()
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
        let t = q.dequantize(&Device::Cpu)?;
        Ok(match how {
            FromGguf::AsStored => t,
            // Same f32 op as transformers' GGUF loader (`x - 1`); the loader adds the 1 again.
            FromGguf::MinusOne => (t - 1.0)?,
            FromGguf::UnpermuteRows { heads } => unpermute_rows(&t, heads)?,
        })
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

pub(crate) fn meta_usize(c: &Content, key: &str) -> Result<usize> {
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

pub(crate) fn meta_f64(c: &Content, key: &str) -> Result<f64> {
    let v = meta(c, key)?;
    v.to_f32()
        .map(f64::from)
        .or_else(|_| v.to_f64())
        .map_err(|e| Error::invalid(format!("`{key}`: {e}")))
}

/// GGUF metadata as a plain map, for the tokenizer builder.
pub(crate) type Metadata = HashMap<String, Value>;
