//! Gemma 3, text part (transformers `Gemma3ForCausalLM`, `modeling_gemma3.py`; llama.cpp's
//! `gemma3` GGUF architecture): embeddings scaled by sqrt(d_model), RMSNorm scaling by `1 + w`,
//! sandwich norms around attention and MLP, QK-norm, five sliding-window layers per global one
//! with their own rotary base, GeGLU.

use serde_json::Value;

use super::llama;
use super::parse::rope_scaling;
use super::{Family, FromGguf, Json, TensorName, Variant};
use crate::config::{Activation, Architecture, ModelConfig, NormKind, Rope};
use crate::error::{Error, Result};
use crate::gguf::GgufMeta;
use crate::weights::{Bias, BlockWeights, Loader, Weights};

pub(super) static FAMILY: Family = Family {
    variants: &[Variant {
        architecture: Architecture::Gemma3,
        model_types: &["gemma3", "gemma3_text"],
        gguf: Some("gemma3"),
    }],
    config_from_hf,
    config_from_gguf: Some(config_from_gguf),
    tensor_names,
    load,
};

fn config_from_hf(j: &Json, _: Architecture) -> Result<ModelConfig> {
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
        norm_weight_offset: 1.0,
        qk_norm: true,
        attn_scale: 1.0 / j.f64_or("query_pre_attn_scalar", d_head as f64)?.sqrt(),
        sliding_window: sliding.into_iter().map(|s| s.then_some(window)).collect(),
        bos_token_id: j.token_id("bos_token_id"),
        eos_token_id: j.token_id("eos_token_id"),
    })
}

fn config_from_gguf(m: &GgufMeta, arch: Architecture) -> Result<ModelConfig> {
    let base = llama::gguf_base(m, arch)?;
    let (n_layers, d_head) = (base.n_layers, base.d_head);
    // Gemma 3 GGUFs carry neither the layer pattern nor the local rope base nor
    // query_pre_attn_scalar: llama.cpp hard-codes them, and so does this (checked against the
    // config transformers derives from the 270M GGUF: layer_types, rope_parameters, 256).
    let window = m.opt_usize("attention.sliding_window").unwrap_or(512);
    // Five local layers, then one global: layers 5, 11, 17, ... attend to everything.
    let sliding_window = (0..n_layers)
        .map(|i| ((i + 1) % 6 != 0).then_some(window))
        .collect();
    // Scores are scaled by 1/sqrt(query_pre_attn_scalar): head_dim, except for Gemma 3 27B
    // (62 layers), whose scalar is d_model / n_heads (llama.cpp's rule).
    let attn_scale = if n_layers == 62 {
        1.0 / ((base.d_model / base.n_heads) as f64).sqrt()
    } else {
        1.0 / (d_head as f64).sqrt()
    };
    Ok(ModelConfig {
        activation: Activation::GeluTanh,
        rope_local: Some(Rope {
            theta: 10000.0,
            rotary_dim: d_head,
            scaling: None,
        }),
        embed_scale: true,
        post_norms: true,
        norm_weight_offset: 1.0,
        qk_norm: true,
        attn_scale,
        sliding_window,
        ..base
    })
}

/// `layers.{i}.{hf}` and its GGUF name; llama.cpp stores every Gemma norm weight as `1 + w`
/// (checked on Gemma 3 270M against transformers, which subtracts the 1 again).
fn norm_name(i: usize, hf: &str, gguf: &str) -> TensorName {
    llama::norm_name(i, hf, gguf).converted(FromGguf::MinusOne)
}

fn tensor_names(cfg: &ModelConfig) -> Vec<TensorName> {
    let mut names = llama::embed_names();
    for i in 0..cfg.n_layers {
        names.push(norm_name(i, "input_layernorm", "attn_norm"));
        names.extend(llama::attention_names(cfg, i, false).into_iter().map(|t| {
            match t.hf.ends_with("norm.weight") {
                true => t.converted(FromGguf::MinusOne),
                false => t,
            }
        }));
        names.push(norm_name(
            i,
            "post_attention_layernorm",
            "post_attention_norm",
        ));
        names.push(norm_name(i, "pre_feedforward_layernorm", "ffn_norm"));
        names.push(norm_name(i, "post_feedforward_layernorm", "post_ffw_norm"));
        names.extend(llama::gated_mlp_names(i));
    }
    // The final norm too; not the unembedding.
    names.extend(llama::final_names(cfg).into_iter().map(|t| {
        if t.root {
            t
        } else {
            t.converted(FromGguf::MinusOne)
        }
    }));
    names
}

fn load(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    let root_prefix = llama::enter_body(l)?;
    let prefix = l.prefix.clone();
    l.expect(&tensor_names(cfg), &prefix, &root_prefix);
    let d = cfg.d_model;
    let embed = llama::load_embed(cfg, l)?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let p = format!("layers.{i}");
        let ln1 = l.norm(&format!("{p}.input_layernorm"), cfg, d)?;
        let attn = llama::load_attention(cfg, l, i, Bias::Optional)?;
        blocks.push(BlockWeights {
            ln1,
            attn,
            post_attn_norm: Some(l.norm(&format!("{p}.post_attention_layernorm"), cfg, d)?),
            ln2: l.norm(&format!("{p}.pre_feedforward_layernorm"), cfg, d)?,
            post_mlp_norm: Some(l.norm(&format!("{p}.post_feedforward_layernorm"), cfg, d)?),
            mlp: llama::load_gated_mlp(cfg, l, i)?,
        });
    }
    llama::finish(cfg, l, embed, blocks, root_prefix)
}
