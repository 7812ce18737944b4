//! One config for every supported architecture, in TransformerLens's spirit: the forward pass in
//! `model.rs` is a single function whose behaviour is switched by these fields.
//!
//! Parsed from a Hugging Face `config.json` ([`ModelConfig::from_hf_json`]) or from GGUF metadata
//! by each architecture family's file in `arch/`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arch::{self, Json};
use crate::error::{Error, Result};

/// The model families Lantern can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// GPT-2: learned positions, LayerNorm, gelu_new MLP, tied unembedding.
    Gpt2,
    /// GPT-NeoX / Pythia: parallel attention and MLP, partial rotary, untied unembedding.
    GptNeoX,
    /// Llama family (Llama 2/3, SmolLM2): RMSNorm, RoPE, GQA, SwiGLU.
    Llama,
    /// Mistral: Llama with an optional sliding window.
    Mistral,
    /// Qwen2 / Qwen2.5: Llama with biases on q, k and v.
    Qwen2,
    /// Gemma 3 (text): scaled embeddings, sandwich norms, QK-norm, local/global attention, GeGLU.
    Gemma3,
    /// Phi-3 / Phi-3.5 / Phi-4-mini: Llama with fused qkv and gate/up projections.
    Phi3,
}

impl Architecture {
    /// The architecture of a Hugging Face `model_type` (the names are listed in `arch/`).
    pub fn parse(model_type: &str) -> Result<Self> {
        arch::from_model_type(model_type)
    }
}

/// Which normalisation a block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NormKind {
    /// `(x - mean) / sqrt(var + eps) * w + b`.
    LayerNorm,
    /// `x / sqrt(mean(x²) + eps) * w` (an offset such as Gemma's `1 + w` is folded in at load
    /// time, see [`ModelConfig::norm_weight_offset`]).
    RmsNorm,
}

/// The MLP's nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// tanh approximation of GELU (GPT-2's `gelu_new`, Gemma's `gelu_pytorch_tanh`).
    GeluTanh,
    /// exact erf GELU (GPT-NeoX's `gelu`).
    Gelu,
    /// SiLU, used gated (SwiGLU) in the Llama family.
    Silu,
    Relu,
}

impl Activation {
    pub(crate) fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "gelu" => Self::Gelu,
            "silu" | "swish" => Self::Silu,
            "relu" => Self::Relu,
            other => return Err(Error::config(format!("unsupported activation `{other}`"))),
        })
    }
}

/// Rotary-embedding frequency scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RopeScaling {
    /// Positions divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.x's band-wise rescaling of the inverse frequencies.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position: f64,
    },
}

/// Rotary position embedding settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rope {
    /// Base of the inverse frequencies.
    pub theta: f64,
    /// How many leading dimensions of each head are rotated (`d_head` unless partial rotary).
    pub rotary_dim: usize,
    pub scaling: Option<RopeScaling>,
}

impl Rope {
    /// Inverse frequencies, `rotary_dim / 2` of them (after any scaling of the frequencies).
    pub fn inv_freq(&self) -> Vec<f64> {
        let half = self.rotary_dim / 2;
        let mut inv: Vec<f64> = (0..half)
            .map(|i| 1.0 / self.theta.powf((2 * i) as f64 / self.rotary_dim as f64))
            .collect();
        match self.scaling {
            Some(RopeScaling::Linear { factor }) => inv.iter_mut().for_each(|f| *f /= factor),
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position,
            }) => {
                let low_wavelen = original_max_position / low_freq_factor;
                let high_wavelen = original_max_position / high_freq_factor;
                for f in inv.iter_mut() {
                    let wavelen = 2.0 * std::f64::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (original_max_position / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
            None => {}
        }
        inv
    }
}

/// Everything the forward pass needs to know about a model's shape and behaviour.
///
/// Defaults follow the Hugging Face config of each architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    /// Key/value heads (`< n_heads` under grouped-query attention).
    pub n_kv_heads: usize,
    pub d_head: usize,
    /// Width of the MLP's hidden layer.
    pub d_mlp: usize,
    pub vocab_size: usize,
    /// Context window in tokens.
    pub max_positions: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub activation: Activation,
    /// SwiGLU/GeGLU: `act(x W_gate) * (x W_up)`.
    pub gated_mlp: bool,
    /// `None` for learned absolute positions (GPT-2).
    pub rope: Option<Rope>,
    /// Rotary settings of sliding-window layers when they differ (Gemma 3's local base).
    pub rope_local: Option<Rope>,
    /// Attention and MLP read the same residual and are added together (GPT-NeoX).
    pub parallel_residual: bool,
    pub tied_embeddings: bool,
    /// Multiply the token embedding by `sqrt(d_model)` (Gemma).
    pub embed_scale: bool,
    /// Sandwich norms after attention and after the MLP (Gemma 3). The residual stream is then
    /// no longer a sum of head outputs (direct logit attribution refuses such models).
    pub post_norms: bool,
    /// Norms scale by `offset + w` where the checkpoint stores `w` (Gemma: 1). Added to the
    /// weights at load time, so `Norm` always holds the effective scale.
    #[serde(default)]
    pub norm_weight_offset: f64,
    /// RMSNorm over `d_head` on queries and keys (Gemma 3).
    pub qk_norm: bool,
    /// Attention scores are multiplied by this (usually `1/sqrt(d_head)`).
    pub attn_scale: f64,
    /// Per layer: `Some(w)` when the layer attends only to the last `w` keys.
    pub sliding_window: Vec<Option<usize>>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

/// Largest layer, head or width count a config may declare. Real models stay far below it (the
/// widest vocabularies are ~260k); a file declaring more is corrupt, and the count must not size
/// an allocation (`vec![None; n_layers]`) or overflow `4 * d_model` first.
pub const MAX_COUNT: usize = 1 << 24;

impl ModelConfig {
    /// Total number of query heads over all layers.
    pub fn total_heads(&self) -> usize {
        self.n_layers * self.n_heads
    }

    /// Checks that the sizes are consistent before any weight is read.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("n_layers", self.n_layers),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("d_head", self.d_head),
            ("d_mlp", self.d_mlp),
            ("vocab_size", self.vocab_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::config(format!("{name} must be positive")));
            }
            if v > MAX_COUNT {
                return Err(Error::config(format!(
                    "{name} must be at most {MAX_COUNT}, got {v}"
                )));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::config(format!(
                "n_heads ({}) is not a multiple of n_kv_heads ({})",
                self.n_heads, self.n_kv_heads
            )));
        }
        if let Some(rope) = &self.rope {
            if rope.rotary_dim == 0
                || rope.rotary_dim > self.d_head
                || !rope.rotary_dim.is_multiple_of(2)
            {
                return Err(Error::config(format!(
                    "rotary dimension {} must be even and within d_head {}",
                    rope.rotary_dim, self.d_head
                )));
            }
        }
        if self.sliding_window.len() != self.n_layers {
            return Err(Error::config(
                "one sliding-window entry per layer is required",
            ));
        }
        self.validate_numbers().map_err(Error::config)
    }

    /// The floating-point hyperparameters: a NaN or negative epsilon, a rope base of 0 or a
    /// scaling factor of 0 would turn every activation into NaN without an error.
    fn validate_numbers(&self) -> std::result::Result<(), String> {
        use crate::check::{finite, non_negative, positive};
        non_negative("norm_eps", self.norm_eps)?;
        positive("attention scale", self.attn_scale)?;
        for rope in self.rope.iter().chain(&self.rope_local) {
            positive("rope theta", rope.theta)?;
            match rope.scaling {
                Some(RopeScaling::Linear { factor }) => {
                    positive("rope scaling factor", factor)?;
                }
                Some(RopeScaling::Llama3 {
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    original_max_position,
                }) => {
                    positive("rope scaling factor", factor)?;
                    positive("rope scaling low_freq_factor", low_freq_factor)?;
                    positive("rope scaling high_freq_factor", high_freq_factor)?;
                    positive(
                        "rope scaling original_max_position_embeddings",
                        original_max_position,
                    )?;
                    // The smoothing divides by their difference.
                    if high_freq_factor <= low_freq_factor {
                        return Err(format!(
                            "rope scaling high_freq_factor ({high_freq_factor}) must be above low_freq_factor ({low_freq_factor})"
                        ));
                    }
                }
                None => {}
            }
            let inv = rope.inv_freq();
            if let Some(f) = inv.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                finite("rope inverse frequency", *f)?;
                return Err(format!("rope inverse frequency must be > 0, got {f}"));
            }
        }
        Ok(())
    }

    /// Parses a Hugging Face `config.json` (the family's own parser lives in `arch/`).
    pub fn from_hf_json(text: &str) -> Result<Self> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| Error::config(format!("invalid JSON: {e}")))?;
        let j = Json(&v);
        // Gemma 3 multimodal configs nest the language model.
        let j = match v.get("text_config") {
            Some(t) if j.str("model_type")? == "gemma3" => Json(t),
            _ => j,
        };
        arch::config_from_hf(&j)
    }
}
