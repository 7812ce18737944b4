//! The Llama family (transformers `modeling_llama.py`, `modeling_mistral.py`,
//! `modeling_qwen2.py`; llama.cpp's `llama` and `qwen2` GGUF architectures): RMSNorm, rotary,
//! grouped-query attention, SwiGLU. Mistral adds an optional sliding window, Qwen2 biases on q, k
//! and v. The pieces every Llama-like family shares (embedding, attention, gated MLP, final norm,
//! unembedding and the GGUF metadata) are `pub(super)` here for `gemma3.rs` and `phi3.rs`.

use super::parse::{rope_scaling, rope_theta};
use super::{weight_and_bias, Family, FromGguf, Json, TensorName, Variant};
use crate::config::{Activation, Architecture, ModelConfig, NormKind, Rope, RopeScaling};
use crate::error::{Error, Result};
use crate::gguf::GgufMeta;
use crate::weights::{
    find_prefix, AttentionWeights, Bias, BlockWeights, Linear, Loader, MlpWeights, Weights,
};

pub(super) static FAMILY: Family = Family {
    variants: &[
        Variant {
            architecture: Architecture::Llama,
            model_types: &["llama"],
            gguf: Some("llama"),
        },
        // Mistral GGUFs say `llama`.
        Variant {
            architecture: Architecture::Mistral,
            model_types: &["mistral"],
            gguf: None,
        },
        Variant {
            architecture: Architecture::Qwen2,
            model_types: &["qwen2"],
            gguf: Some("qwen2"),
        },
    ],
    config_from_hf,
    config_from_gguf: Some(config_from_gguf),
    tensor_names,
    load,
};

fn config_from_hf(j: &Json, arch: Architecture) -> Result<ModelConfig> {
    let mut cfg = hf_base(j, arch)?;
    let sliding = match arch {
        Architecture::Mistral => j.bool_or("use_sliding_window", true)?,
        Architecture::Qwen2 => j.bool_or("use_sliding_window", false)?,
        _ => false,
    };
    if sliding {
        let window = j
            .get("sliding_window")
            .and_then(serde_json::Value::as_u64)
            .map(|w| w as usize);
        cfg.sliding_window = vec![window; cfg.n_layers];
    }
    Ok(cfg)
}

/// The Llama config every Llama-like family starts from (Hugging Face keys).
pub(super) fn hf_base(j: &Json, arch: Architecture) -> Result<ModelConfig> {
    let d_model = j.count("hidden_size")?;
    let n_heads = j.count("num_attention_heads")?;
    let d_head = j.usize_or("head_dim", d_model / n_heads)?;
    let n_layers = j.count("num_hidden_layers")?;
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
        norm_weight_offset: 0.0,
        qk_norm: false,
        attn_scale: 1.0 / (d_head as f64).sqrt(),
        sliding_window: vec![None; n_layers],
        bos_token_id: j.token_id("bos_token_id"),
        eos_token_id: j.token_id("eos_token_id"),
    })
}

fn config_from_gguf(m: &GgufMeta, arch: Architecture) -> Result<ModelConfig> {
    gguf_base(m, arch)
}

/// The Llama config every Llama-like family starts from (llama.cpp metadata keys).
pub(super) fn gguf_base(m: &GgufMeta, arch: Architecture) -> Result<ModelConfig> {
    let d_model = m.count("embedding_length")?;
    let n_layers = m.count("block_count")?;
    let n_heads = m.count("attention.head_count")?;
    let d_head = m
        .opt_usize("attention.key_length")
        .unwrap_or(d_model / n_heads);
    let scaling = match m.opt_str("rope.scaling.type").as_deref() {
        None | Some("none") => None,
        // Gemma 3 4B and larger: global layers' positions divided by 8.
        Some("linear") => Some(RopeScaling::Linear {
            factor: m.f64("rope.scaling.factor")?,
        }),
        Some(other) => {
            return Err(Error::invalid(format!(
                "rope scaling `{other}` is not supported (only linear)"
            )))
        }
    };
    Ok(ModelConfig {
        architecture: arch,
        n_layers,
        d_model,
        n_heads,
        n_kv_heads: m.opt_usize("attention.head_count_kv").unwrap_or(n_heads),
        d_head,
        d_mlp: m.usize("feed_forward_length")?,
        vocab_size: m.vocab_size()?,
        max_positions: m.opt_usize("context_length").unwrap_or(2048),
        norm: NormKind::RmsNorm,
        norm_eps: m
            .opt_f64("attention.layer_norm_rms_epsilon")
            .unwrap_or(1e-6),
        activation: Activation::Silu,
        gated_mlp: true,
        rope: Some(Rope {
            theta: m.opt_f64("rope.freq_base").unwrap_or(10000.0),
            rotary_dim: d_head,
            scaling,
        }),
        rope_local: None,
        parallel_residual: false,
        tied_embeddings: !m.has_tensor("output.weight"),
        embed_scale: false,
        post_norms: false,
        norm_weight_offset: 0.0,
        qk_norm: false,
        attn_scale: 1.0 / (d_head as f64).sqrt(),
        sliding_window: vec![None; n_layers],
        bos_token_id: m.global_token_id("tokenizer.ggml.bos_token_id"),
        eos_token_id: m.global_token_id("tokenizer.ggml.eos_token_id"),
    })
}

fn tensor_names(cfg: &ModelConfig) -> Vec<TensorName> {
    // llama.cpp permutes q/k rows of `llama` GGUFs for its interleaved rotary; `qwen2` GGUFs keep
    // the Hugging Face order (llama.cpp runs them with NeoX-style rotary).
    let permuted = cfg.architecture == Architecture::Llama;
    let mut names = embed_names();
    for i in 0..cfg.n_layers {
        names.push(norm_name(i, "input_layernorm", "attn_norm"));
        names.extend(attention_names(cfg, i, permuted));
        names.push(norm_name(i, "post_attention_layernorm", "ffn_norm"));
        names.extend(gated_mlp_names(i));
    }
    names.extend(final_names(cfg));
    names
}

fn load(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    let root_prefix = enter_body(l)?;
    let prefix = l.prefix.clone();
    l.expect(&tensor_names(cfg), &prefix, &root_prefix);
    let d = cfg.d_model;
    let qkv_bias = if cfg.architecture == Architecture::Qwen2 {
        Bias::Required
    } else {
        Bias::Optional
    };
    let embed = load_embed(cfg, l)?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        blocks.push(BlockWeights {
            ln1: l.norm(&format!("layers.{i}.input_layernorm"), cfg, d)?,
            attn: load_attention(cfg, l, i, qkv_bias)?,
            post_attn_norm: None,
            ln2: l.norm(&format!("layers.{i}.post_attention_layernorm"), cfg, d)?,
            mlp: load_gated_mlp(cfg, l, i)?,
            post_mlp_norm: None,
        });
    }
    finish(cfg, l, embed, blocks, root_prefix)
}

// ---- Shared with the other Llama-like families ----------------------------------------------

/// Finds the body prefix (`model.`, multimodal wrappers, or none), sets it on the loader and
/// returns the root prefix (where `lm_head` lives).
pub(super) fn enter_body(l: &mut Loader) -> Result<String> {
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
    Ok(l.prefix.trim_end_matches("model.").to_string())
}

pub(super) fn embed_names() -> Vec<TensorName> {
    vec![TensorName::body("embed_tokens.weight").gguf("token_embd.weight")]
}

/// `layers.{i}.{hf}.weight`, GGUF `blk.{i}.{gguf}.weight`.
pub(super) fn norm_name(i: usize, hf: &str, gguf: &str) -> TensorName {
    TensorName::body(format!("layers.{i}.{hf}.weight")).gguf(format!("blk.{i}.{gguf}.weight"))
}

/// q, k, v, o projections (weights and optional biases) and, with `cfg.qk_norm`, the q/k norms.
pub(super) fn attention_names(cfg: &ModelConfig, i: usize, permuted: bool) -> Vec<TensorName> {
    let mut names = Vec::new();
    for (hf, gguf, heads) in [
        ("q_proj", "attn_q", Some(cfg.n_heads)),
        ("k_proj", "attn_k", Some(cfg.n_kv_heads)),
        ("v_proj", "attn_v", None),
        ("o_proj", "attn_output", None),
    ] {
        let [w, b] = weight_and_bias(
            &format!("layers.{i}.self_attn.{hf}"),
            &format!("blk.{i}.{gguf}"),
        );
        let w = match heads {
            Some(heads) if permuted => w.converted(FromGguf::UnpermuteRows { heads }),
            _ => w,
        };
        names.extend([w, b]);
    }
    if cfg.qk_norm {
        names.push(norm_name(i, "self_attn.q_norm", "attn_q_norm"));
        names.push(norm_name(i, "self_attn.k_norm", "attn_k_norm"));
    }
    names
}

pub(super) fn gated_mlp_names(i: usize) -> Vec<TensorName> {
    [
        ("gate_proj", "ffn_gate"),
        ("up_proj", "ffn_up"),
        ("down_proj", "ffn_down"),
    ]
    .into_iter()
    .flat_map(|(hf, gguf)| {
        weight_and_bias(&format!("layers.{i}.mlp.{hf}"), &format!("blk.{i}.{gguf}"))
    })
    .collect()
}

/// The final norm and, when untied, the unembedding.
pub(super) fn final_names(cfg: &ModelConfig) -> Vec<TensorName> {
    let mut names = vec![TensorName::body("norm.weight").gguf("output_norm.weight")];
    if !cfg.tied_embeddings {
        names.push(TensorName::root("lm_head.weight").gguf("output.weight"));
    }
    names
}

pub(super) fn load_embed(cfg: &ModelConfig, l: &mut Loader) -> Result<candle_core::Tensor> {
    l.get("embed_tokens.weight", &[cfg.vocab_size, cfg.d_model])
}

pub(super) fn load_attention(
    cfg: &ModelConfig,
    l: &mut Loader,
    i: usize,
    qkv_bias: Bias,
) -> Result<AttentionWeights> {
    let (d, dh) = (cfg.d_model, cfg.d_head);
    let (dq, dkv) = (cfg.n_heads * dh, cfg.n_kv_heads * dh);
    let p = format!("layers.{i}.self_attn");
    Ok(AttentionWeights {
        q: l.linear(&format!("{p}.q_proj"), dq, d, qkv_bias)?,
        k: l.linear(&format!("{p}.k_proj"), dkv, d, qkv_bias)?,
        v: l.linear(&format!("{p}.v_proj"), dkv, d, qkv_bias)?,
        o: l.linear(&format!("{p}.o_proj"), d, dq, Bias::Optional)?,
        q_norm: if cfg.qk_norm {
            Some(l.norm(&format!("{p}.q_norm"), cfg, dh)?)
        } else {
            None
        },
        k_norm: if cfg.qk_norm {
            Some(l.norm(&format!("{p}.k_norm"), cfg, dh)?)
        } else {
            None
        },
    })
}

pub(super) fn load_gated_mlp(cfg: &ModelConfig, l: &mut Loader, i: usize) -> Result<MlpWeights> {
    let (d, f) = (cfg.d_model, cfg.d_mlp);
    let p = format!("layers.{i}.mlp");
    Ok(MlpWeights {
        gate: Some(l.linear(&format!("{p}.gate_proj"), f, d, Bias::Optional)?),
        up: l.linear(&format!("{p}.up_proj"), f, d, Bias::Optional)?,
        down: l.linear(&format!("{p}.down_proj"), d, f, Bias::Optional)?,
    })
}

/// Reads the final norm and the unembedding (tied: the transposed embedding).
pub(super) fn finish(
    cfg: &ModelConfig,
    l: &mut Loader,
    embed: candle_core::Tensor,
    blocks: Vec<BlockWeights>,
    root_prefix: String,
) -> Result<Weights> {
    let ln_final = l.norm("norm", cfg, cfg.d_model)?;
    l.prefix = root_prefix;
    let unembed = if cfg.tied_embeddings || !l.has("lm_head.weight") {
        if !cfg.tied_embeddings {
            return Err(Error::MissingTensor(format!(
                "{}lm_head.weight (the config says the embeddings are untied)",
                l.prefix
            )));
        }
        Linear::new(embed.t()?.contiguous()?, None)
    } else {
        l.linear("lm_head", cfg.vocab_size, cfg.d_model, Bias::None)?
    };
    Ok(Weights {
        embed,
        pos_embed: None,
        blocks,
        ln_final,
        unembed,
    })
}
