//! Quantized weights with every hook intact (`--dtype q8_0`, `--dtype gguf`): the linear layers
//! (q, k, v, o, the MLP and the unembedding) run candle's quantized matmul
//! (`candle_core::quantized::QMatMul`), which quantizes each activation row to 8 bits inside the
//! dot product and returns f32. Everything else — embeddings, norms, rotary, attention, every hook
//! point and every intervention — stays f32, so steering and capture work exactly as in f32 mode.
//!
//! Decoding one token is memory-bound (every weight is read once per step), so 8-bit weights
//! move about a quarter of f32's bytes. After quantizing, each layer's `wt` holds the dequantised
//! weight, so analyses that read weights (DLA, `hook_result`) see what the forward pass uses.
//!
//! Why requantize even in `gguf` mode: GGUF files store Llama's q/k rows permuted for llama.cpp's
//! rotary, which the loader undoes on the dequantised tensor; quantizing that tensor again with
//! the file's own type gives back the file's values (each row's blocks are unchanged by a row
//! permutation, and min/max-based block quantization is idempotent up to f16 rounding of the
//! scales).

use std::path::Path;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::DType;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::Model;
use crate::weights::Linear;

/// The weight formats `--dtype` accepts, for error messages.
pub const SUPPORTED_DTYPES: &str =
    "f32, f16, bf16, q8_0 (8-bit weights, CPU), gguf (the GGUF file's own quantization, CPU)";

/// GGUF storage types whose weights candle can multiply on the CPU. Q4_0, Q8_0 and the k-quants
/// have AVX2 kernels; Q4_1, Q5_0 and Q5_1 run on candle's portable (slow) path.
const RUNNABLE: [GgmlDType; 10] = [
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q2K,
    GgmlDType::Q3K,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
];

/// Which quantized weights to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// Every linear weight requantized to Q8_0 (from any source: safetensors or GGUF).
    Q8_0,
    /// Each linear weight in the type its GGUF file stores it in (f32/f16 tensors stay f32).
    Gguf,
}

/// What `--dtype` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightDType {
    /// Plain weights of this dtype.
    Float(DType),
    /// f32 activations over quantized linear weights.
    Quantized(Quantization),
}

impl WeightDType {
    /// `f32`, `f16`, `bf16`, `q8_0` or `gguf`.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "f32" => WeightDType::Float(DType::F32),
            "f16" => WeightDType::Float(DType::F16),
            "bf16" => WeightDType::Float(DType::BF16),
            "q8_0" | "q8" => WeightDType::Quantized(Quantization::Q8_0),
            "gguf" => WeightDType::Quantized(Quantization::Gguf),
            other => {
                return Err(Error::invalid(format!(
                    "unknown dtype `{other}` (supported: {SUPPORTED_DTYPES})"
                )))
            }
        })
    }
}

/// What [`quantize`] did: the number of layers per storage type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantSummary {
    /// `(type, layers)`, e.g. `("q8_0", 211)`; `f32` counts layers left unquantized.
    pub layers: Vec<(String, usize)>,
    /// Bytes of the quantized linear weights (what one decoding step reads).
    pub bytes: usize,
}

impl QuantSummary {
    fn add(&mut self, what: &str, bytes: usize) {
        self.bytes += bytes;
        match self.layers.iter_mut().find(|(n, _)| n == what) {
            Some((_, c)) => *c += 1,
            None => self.layers.push((what.to_string(), 1)),
        }
    }
}

/// The name of a storage type as llama.cpp writes it (`q8_0`, `q4_k`).
pub fn type_name(t: GgmlDType) -> String {
    format!("{t:?}").to_lowercase().replace('k', "_k")
}

/// Swaps the model's linear layers for quantized ones. `gguf` is the file the model was loaded
/// from (needed for [`Quantization::Gguf`]). Errors, before changing anything it cannot finish,
/// when the device or dtype has no quantized kernels, a layer's input width is not a multiple of
/// the block size, or the file stores a layer in a type candle cannot run.
pub fn quantize(model: &mut Model, q: Quantization, gguf: Option<&Path>) -> Result<QuantSummary> {
    if !model.device().is_cpu() {
        return Err(Error::invalid(format!(
            "quantized weights (--dtype q8_0/gguf) run on the CPU only in Lantern; got device {:?}",
            model.device()
        )));
    }
    if model.dtype() != DType::F32 {
        return Err(Error::invalid(format!(
            "quantized weights need f32 activations, but the model was loaded as {:?}",
            model.dtype()
        )));
    }
    let file =
        match (q, gguf) {
            (Quantization::Gguf, Some(p)) => Some(GgufFile::open(p)?),
            (Quantization::Gguf, None) => return Err(Error::invalid(
                "--dtype gguf needs a .gguf model file (use --dtype q8_0 for other checkpoints)",
            )),
            (Quantization::Q8_0, _) => None,
        };
    // Plan every layer first (names, types), so a refusal leaves the model as it was.
    let n_layers = model.config().n_layers;
    let tied = model.config().tied_embeddings;
    let mut plan: Vec<(String, Option<GgmlDType>)> = Vec::new();
    {
        let w = model.weights();
        let mut each = |name: String, lin: &Linear| -> Result<()> {
            let target = match &file {
                None => Some(GgmlDType::Q8_0),
                Some(f) => {
                    let stored = f.stored_type(&name).ok_or_else(|| {
                        Error::invalid(format!(
                            "--dtype gguf: the file has no tensor `{name}` to take the type of (fused or renamed layers); use --dtype q8_0"
                        ))
                    })?;
                    match stored {
                        GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => None,
                        t if RUNNABLE.contains(&t) => Some(t),
                        t => {
                            return Err(Error::invalid(format!(
                                "--dtype gguf: `{name}` is stored as {}, which candle cannot multiply on the CPU (runnable: {}); use --dtype q8_0",
                                type_name(t),
                                RUNNABLE.map(type_name).join(", ")
                            )))
                        }
                    }
                }
            };
            if let Some(t) = target {
                let d_in = lin.wt.dim(0)?;
                if d_in % t.block_size() != 0 {
                    return Err(Error::invalid(format!(
                        "{} weights need input widths that are multiples of {}; `{name}` has {d_in}",
                        type_name(t),
                        t.block_size()
                    )));
                }
            }
            plan.push((name, target));
            Ok(())
        };
        for (i, b) in w.blocks.iter().enumerate() {
            each(format!("blk.{i}.attn_q.weight"), &b.attn.q)?;
            each(format!("blk.{i}.attn_k.weight"), &b.attn.k)?;
            each(format!("blk.{i}.attn_v.weight"), &b.attn.v)?;
            each(format!("blk.{i}.attn_output.weight"), &b.attn.o)?;
            if let Some(g) = &b.mlp.gate {
                each(format!("blk.{i}.ffn_gate.weight"), g)?;
            }
            each(format!("blk.{i}.ffn_up.weight"), &b.mlp.up)?;
            each(format!("blk.{i}.ffn_down.weight"), &b.mlp.down)?;
        }
        let unembed = if tied {
            "token_embd.weight"
        } else {
            "output.weight"
        };
        each(unembed.to_string(), &w.unembed)?;
    }
    debug_assert!(plan.len() >= n_layers);
    let mut summary = QuantSummary::default();
    let mut targets = plan.into_iter().map(|(_, t)| t);
    let mut apply = |lin: &mut Linear| -> Result<()> {
        match targets.next().flatten() {
            Some(t) => {
                let qt = QTensor::quantize(&lin.wt.t()?.contiguous()?, t)?; // [out, in]
                summary.add(&type_name(t), qt.storage_size_in_bytes());
                lin.wt = qt
                    .dequantize(&candle_core::Device::Cpu)?
                    .t()?
                    .contiguous()?;
                lin.q = Some(QMatMul::from_qtensor(qt)?);
            }
            None => summary.add("f32", lin.wt.elem_count() * 4),
        }
        Ok(())
    };
    let w = model.weights_mut();
    for b in w.blocks.iter_mut() {
        apply(&mut b.attn.q)?;
        apply(&mut b.attn.k)?;
        apply(&mut b.attn.v)?;
        apply(&mut b.attn.o)?;
        if let Some(g) = b.mlp.gate.as_mut() {
            apply(g)?;
        }
        apply(&mut b.mlp.up)?;
        apply(&mut b.mlp.down)?;
    }
    apply(&mut w.unembed)?;
    Ok(summary)
}

/// Whether the model runs any quantized layer.
pub fn is_quantized(model: &Model) -> bool {
    model.weights().unembed.q.is_some()
        || model
            .weights()
            .blocks
            .iter()
            .any(|b| b.attn.q.q.is_some() || b.mlp.up.q.is_some())
}
