//! One config for every supported architecture, in TransformerLens's spirit: the forward pass in
//! `model.rs` is a single function whose behaviour is switched by these fields.
//!
//! Parsed from a Hugging Face `config.json` ([`ModelConfig::from_hf_json`]) or from GGUF metadata
//! (`gguf.rs`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

impl Architecture {
    pub fn parse(model_type: &str) -> Result<Self> {
        Ok(match model_type {
            "gpt2" => Self::Gpt2,
            "gpt_neox" => Self::GptNeoX,
            "llama" => Self::Llama,
            "mistral" => Self::Mistral,
            "qwen2" => Self::Qwen2,
            "gemma3" | "gemma3_text" => Self::Gemma3,
            other => return Err(Error::UnknownArchitecture(other.to_string())),
        })
    }
}

/// Which normalisation a block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NormKind {
    /// `(x - mean) / sqrt(var + eps) * w + b`.
    LayerNorm,
    /// `x / sqrt(mean(x²) + eps) * w` (Gemma's `1 + w` is folded in at load time).
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
    fn parse(name: &str) -> Result<Self> {
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
    /// Sandwich norms after attention and after the MLP (Gemma 3).
    pub post_norms: bool,
    /// RMSNorm over `d_head` on queries and keys (Gemma 3).
    pub qk_norm: bool,
    /// Attention scores are multiplied by this (usually `1/sqrt(d_head)`).
    pub attn_scale: f64,
    /// Per layer: `Some(w)` when the layer attends only to the last `w` keys.
    pub sliding_window: Vec<Option<usize>>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

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

    /// Parses a Hugging Face `config.json`.
    pub fn from_hf_json(text: &str) -> Result<Self> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| Error::config(format!("invalid JSON: {e}")))?;
        let j = Json(&v);
        // Gemma 3 multimodal configs nest the language model.
        let j = match v.get("text_config") {
            Some(t) if j.str("model_type")? == "gemma3" => Json(t),
            _ => j,
        };
        let model_type = j.str("model_type")?;
        let arch = Architecture::parse(&model_type)?;
        let cfg = match arch {
            Architecture::Gpt2 => gpt2(&j)?,
            Architecture::GptNeoX => gpt_neox(&j)?,
            Architecture::Llama | Architecture::Mistral | Architecture::Qwen2 => {
                llama_like(&j, arch)?
            }
            Architecture::Gemma3 => gemma3(&j)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Largest layer, head or width count a config may declare. Real models stay far below it (the
/// widest vocabularies are ~260k); a file declaring more is corrupt, and the count must not size
/// an allocation (`vec![None; n_layers]`) or overflow `4 * d_model` first.
pub const MAX_COUNT: usize = 1 << 24;

/// Typed access to a JSON object with errors naming the missing key.
struct Json<'a>(&'a Value);

impl Json<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    fn usize(&self, key: &str) -> Result<usize> {
        self.get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| {
                Error::config(format!("`{key}` is missing or not a non-negative integer"))
            })
    }
    /// A count that divides or sizes something: at least 1 and at most [`MAX_COUNT`].
    fn count(&self, key: &str) -> Result<usize> {
        let v = self.usize(key)?;
        if v == 0 || v > MAX_COUNT {
            return Err(Error::config(format!(
                "`{key}` must be between 1 and {MAX_COUNT}, got {v}"
            )));
        }
        Ok(v)
    }
    fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.get(key).is_some() {
            self.usize(key)
        } else {
            Ok(default)
        }
    }
    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| Error::config(format!("`{key}` is not a number"))),
        }
    }
    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Error::config(format!("`{key}` is not a boolean"))),
        }
    }
    fn str(&self, key: &str) -> Result<String> {
        self.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::config(format!("`{key}` is missing or not a string")))
    }
    fn token_id(&self, key: &str) -> Option<u32> {
        match self.get(key)? {
            Value::Number(n) => n.as_u64().map(|v| v as u32),
            Value::Array(a) => a.first().and_then(Value::as_u64).map(|v| v as u32),
            _ => None,
        }
    }
}

fn gpt2(j: &Json) -> Result<ModelConfig> {
    let d_model = j.count("n_embd")?;
    let n_heads = j.count("n_head")?;
    if j.bool_or("scale_attn_by_inverse_layer_idx", false)?
        || j.bool_or("reorder_and_upcast_attn", false)?
    {
        return Err(Error::config("GPT-2 variants with scale_attn_by_inverse_layer_idx or reorder_and_upcast_attn are not supported"));
    }
    let n_layers = j.count("n_layer")?;
    Ok(ModelConfig {
        architecture: Architecture::Gpt2,
        n_layers,
        d_model,
        n_heads,
        n_kv_heads: n_heads,
        d_head: d_model / n_heads,
        d_mlp: j.usize_or("n_inner", 4 * d_model)?,
        vocab_size: j.usize("vocab_size")?,
        max_positions: j.usize("n_positions")?,
        norm: NormKind::LayerNorm,
        norm_eps: j.f64_or("layer_norm_epsilon", 1e-5)?,
        activation: Activation::parse(
            &j.str("activation_function")
                .unwrap_or_else(|_| "gelu_new".into()),
        )?,
        gated_mlp: false,
        rope: None,
        rope_local: None,
        parallel_residual: false,
        tied_embeddings: true,
        embed_scale: false,
        post_norms: false,
        qk_norm: false,
        attn_scale: 1.0 / ((d_model / n_heads) as f64).sqrt(),
        sliding_window: vec![None; n_layers],
        bos_token_id: j.token_id("bos_token_id"),
        eos_token_id: j.token_id("eos_token_id"),
    })
}

fn gpt_neox(j: &Json) -> Result<ModelConfig> {
    let d_model = j.count("hidden_size")?;
    let n_heads = j.count("num_attention_heads")?;
    let d_head = d_model / n_heads;
    let rotary_pct = match j
        .get("rope_parameters")
        .and_then(|r| r.get("partial_rotary_factor"))
    {
        Some(v) => v.as_f64().unwrap_or(1.0),
        None => j.f64_or("rotary_pct", j.f64_or("partial_rotary_factor", 1.0)?)?,
    };
    let theta = rope_theta(j, 10000.0)?;
    let n_layers = j.count("num_hidden_layers")?;
    Ok(ModelConfig {
        architecture: Architecture::GptNeoX,
        n_layers,
        d_model,
        n_heads,
        n_kv_heads: n_heads,
        d_head,
        d_mlp: j.usize_or("intermediate_size", 4 * d_model)?,
        vocab_size: j.usize("vocab_size")?,
        max_positions: j.usize("max_position_embeddings")?,
        norm: NormKind::LayerNorm,
        norm_eps: j.f64_or("layer_norm_eps", 1e-5)?,
        activation: Activation::parse(&j.str("hidden_act").unwrap_or_else(|_| "gelu".into()))?,
        gated_mlp: false,
        rope: Some(Rope {
            theta,
            rotary_dim: (d_head as f64 * rotary_pct) as usize,
            scaling: rope_scaling(j)?,
        }),
        rope_local: None,
        parallel_residual: j.bool_or("use_parallel_residual", true)?,
        tied_embeddings: j.bool_or("tie_word_embeddings", false)?,
        embed_scale: false,
        post_norms: false,
        qk_norm: false,
        attn_scale: 1.0 / (d_head as f64).sqrt(),
        sliding_window: vec![None; n_layers],
        bos_token_id: j.token_id("bos_token_id"),
        eos_token_id: j.token_id("eos_token_id"),
    })
}

/// `rope_theta` (transformers < 5) or `rope_parameters.rope_theta` (transformers 5).
fn rope_theta(j: &Json, default: f64) -> Result<f64> {
    if let Some(t) = j
        .get("rope_parameters")
        .and_then(|r| r.get("rope_theta"))
        .and_then(Value::as_f64)
    {
        return Ok(t);
    }
    j.f64_or("rope_theta", j.f64_or("rotary_emb_base", default)?)
}

fn rope_scaling(j: &Json) -> Result<Option<RopeScaling>> {
    let Some(s) = j.get("rope_scaling").or_else(|| j.get("rope_parameters")) else {
        return Ok(None);
    };
    let s = Json(s);
    let kind = s
        .str("rope_type")
        .or_else(|_| s.str("type"))
        .unwrap_or_else(|_| "default".into());
    Ok(match kind.as_str() {
        "default" => None,
        "linear" => Some(RopeScaling::Linear {
            factor: s.f64_or("factor", 1.0)?,
        }),
        "llama3" => Some(RopeScaling::Llama3 {
            factor: s.f64_or("factor", 8.0)?,
            low_freq_factor: s.f64_or("low_freq_factor", 1.0)?,
            high_freq_factor: s.f64_or("high_freq_factor", 4.0)?,
            original_max_position: s.f64_or("original_max_position_embeddings", 8192.0)?,
        }),
        other => return Err(Error::config(format!("unsupported rope scaling `{other}`"))),
    })
}

fn llama_like(j: &Json, arch: Architecture) -> Result<ModelConfig> {
    let d_model = j.count("hidden_size")?;
    let n_heads = j.count("num_attention_heads")?;
    let d_head = j.usize_or("head_dim", d_model / n_heads)?;
    let n_layers = j.count("num_hidden_layers")?;
    let window = match arch {
        Architecture::Mistral | Architecture::Qwen2
            if j.bool_or("use_sliding_window", arch == Architecture::Mistral)? =>
        {
            j.get("sliding_window")
                .and_then(Value::as_u64)
                .map(|w| w as usize)
        }
        _ => None,
    };
    Ok(ModelConfig {
        architecture: arch,
        n_layers,
        d_model,
        n_heads,
        n_kv_heads: j.usize_or("num_key_value_heads", n_heads)?,
        d_head,
        d_mlp: j.usize("intermediate_size")?,
        vocab_size: j.usize("vocab_size")?,
        max_positions: j.usize_or("max_position_embeddings", 2048)?,
        norm: NormKind::RmsNorm,
        norm_eps: j.f64_or("rms_norm_eps", 1e-6)?,
        activation: Activation::parse(&j.str("hidden_act").unwrap_or_else(|_| "silu".into()))?,
        gated_mlp: true,
        rope: Some(Rope {
            theta: rope_theta(j, 10000.0)?,
            rotary_dim: d_head,
            scaling: rope_scaling(j)?,
        }),
        rope_local: None,
        parallel_residual: false,
        tied_embeddings: j.bool_or("tie_word_embeddings", false)?,
        embed_scale: false,
        post_norms: false,
        qk_norm: false,
        attn_scale: 1.0 / (d_head as f64).sqrt(),
        sliding_window: vec![window; n_layers],
        bos_token_id: j.token_id("bos_token_id"),
        eos_token_id: j.token_id("eos_token_id"),
    })
}

fn gemma3(j: &Json) -> Result<ModelConfig> {
    let d_model = j.count("hidden_size")?;
    let n_heads = j.count("num_attention_heads")?;
    let d_head = j.usize_or("head_dim", 256)?;
    let n_layers = j.count("num_hidden_layers")?;
    let window = j.usize_or("sliding_window", 4096)?;
    let sliding: Vec<bool> = match j.get("layer_types").and_then(Value::as_array) {
        Some(types) => types
            .iter()
            .map(|t| t.as_str() == Some("sliding_attention"))
            .collect(),
        None => {
            let pattern = if j.get("sliding_window_pattern").is_some() {
                j.count("sliding_window_pattern")?
            } else {
                6
            };
            (0..n_layers).map(|i| (i + 1) % pattern != 0).collect()
        }
    };
    if sliding.len() != n_layers {
        return Err(Error::config(format!(
            "`layer_types` has {} entries for {n_layers} layers",
            sliding.len()
        )));
    }
    // transformers 5 nests per-layer-type rope settings under rope_parameters.
    let (global_theta, local_theta, scaling) = match j.get("rope_parameters") {
        Some(rp) if rp.get("full_attention").is_some() => {
            let full = Json(&rp["full_attention"]);
            let local = Json(&rp["sliding_attention"]);
            let scaling = rope_scaling(&Json(
                &serde_json::json!({ "rope_scaling": rp["full_attention"] }),
            ))?;
            (
                full.f64_or("rope_theta", 1e6)?,
                local.f64_or("rope_theta", 1e4)?,
                scaling,
            )
        }
        _ => (
            j.f64_or("rope_theta", 1e6)?,
            j.f64_or("rope_local_base_freq", 1e4)?,
            rope_scaling(j)?,
        ),
    };
    let act = j
        .str("hidden_activation")
        .or_else(|_| j.str("hidden_act"))
        .unwrap_or_else(|_| "gelu_pytorch_tanh".into());
    Ok(ModelConfig {
        architecture: Architecture::Gemma3,
        n_layers,
        d_model,
        n_heads,
        n_kv_heads: j.usize_or("num_key_value_heads", n_heads)?,
        d_head,
        d_mlp: j.usize("intermediate_size")?,
        vocab_size: j.usize("vocab_size")?,
        max_positions: j.usize_or("max_position_embeddings", 32768)?,
        norm: NormKind::RmsNorm,
        norm_eps: j.f64_or("rms_norm_eps", 1e-6)?,
        activation: Activation::parse(&act)?,
        gated_mlp: true,
        rope: Some(Rope {
            theta: global_theta,
            rotary_dim: d_head,
            scaling,
        }),
        rope_local: Some(Rope {
            theta: local_theta,
            rotary_dim: d_head,
            scaling: None,
        }),
        parallel_residual: false,
        tied_embeddings: j.bool_or("tie_word_embeddings", true)?,
        embed_scale: true,
        post_norms: true,
        qk_norm: true,
        attn_scale: 1.0 / j.f64_or("query_pre_attn_scalar", d_head as f64)?.sqrt(),
        sliding_window: sliding.into_iter().map(|s| s.then_some(window)).collect(),
        bos_token_id: j.token_id("bos_token_id"),
        eos_token_id: j.token_id("eos_token_id"),
    })
}
