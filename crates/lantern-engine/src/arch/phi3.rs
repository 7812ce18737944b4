//! Phi-3 / Phi-3.5-mini / Phi-4-mini (transformers `Phi3ForCausalLM`, `modeling_phi3.py`;
//! llama.cpp's `phi3` GGUF architecture): a Llama with the q, k and v projections fused into
//! `qkv_proj` (rows `[q | k | v]`) and the gate and up projections fused into `gate_up_proj`
//! (rows `[gate | up]`, llama.cpp's `ffn_up`), optional partial rotary and sliding window.
//! LongRoPE (the 128k-context checkpoints) is not supported.

use serde_json::Value;

use super::llama;
use super::parse::partial_rotary_factor;
use super::{Family, Json, TensorName, Variant};
use crate::config::{Architecture, ModelConfig, Rope};
use crate::error::{Error, Result};
use crate::gguf::GgufMeta;
use crate::weights::{AttentionWeights, Bias, BlockWeights, Linear, Loader, MlpWeights, Weights};

pub(super) static FAMILY: Family = Family {
    variants: &[Variant {
        architecture: Architecture::Phi3,
        model_types: &["phi3"],
        gguf: Some("phi3"),
    }],
    config_from_hf,
    config_from_gguf: Some(config_from_gguf),
    tensor_names,
    load,
};

fn config_from_hf(j: &Json, arch: Architecture) -> Result<ModelConfig> {
    let mut cfg = llama::hf_base(j, arch)?;
    if let Some(rope) = &mut cfg.rope {
        rope.rotary_dim = (cfg.d_head as f64 * partial_rotary_factor(j)?) as usize;
    }
    // transformers masks with a sliding window whenever the config has one.
    let window = j
        .get("sliding_window")
        .and_then(Value::as_u64)
        .map(|w| w as usize);
    cfg.sliding_window = vec![window; cfg.n_layers];
    Ok(cfg)
}

fn config_from_gguf(m: &GgufMeta, arch: Architecture) -> Result<ModelConfig> {
    if m.has_tensor("rope_factors_long.weight") {
        return Err(Error::invalid(
            "Phi-3 with LongRoPE (rope_factors_long) is not supported",
        ));
    }
    let base = llama::gguf_base(m, arch)?;
    let rotary_dim = m.opt_usize("rope.dimension_count").unwrap_or(base.d_head);
    let window = m.opt_usize("attention.sliding_window");
    Ok(ModelConfig {
        rope: base.rope.clone().map(|r| Rope { rotary_dim, ..r }),
        sliding_window: vec![window; base.n_layers],
        ..base
    })
}

fn tensor_names(cfg: &ModelConfig) -> Vec<TensorName> {
    let mut names = llama::embed_names();
    for i in 0..cfg.n_layers {
        let p = format!("layers.{i}");
        names.push(llama::norm_name(i, "input_layernorm", "attn_norm"));
        names.push(
            TensorName::body(format!("{p}.self_attn.qkv_proj.weight"))
                .gguf(format!("blk.{i}.attn_qkv.weight")),
        );
        names.push(
            TensorName::body(format!("{p}.self_attn.o_proj.weight"))
                .gguf(format!("blk.{i}.attn_output.weight")),
        );
        names.push(llama::norm_name(i, "post_attention_layernorm", "ffn_norm"));
        // llama.cpp keeps the fused gate/up matrix under the name `ffn_up`.
        names.push(
            TensorName::body(format!("{p}.mlp.gate_up_proj.weight"))
                .gguf(format!("blk.{i}.ffn_up.weight")),
        );
        names.push(
            TensorName::body(format!("{p}.mlp.down_proj.weight"))
                .gguf(format!("blk.{i}.ffn_down.weight")),
        );
    }
    names.extend(llama::final_names(cfg));
    names
}

/// Rows `[from, from + len)` of a PyTorch-layout `[out, in]` weight, as a bias-free linear.
fn rows(w: &candle_core::Tensor, from: usize, len: usize) -> Result<Linear> {
    Linear::from_out_in(w.narrow(0, from, len)?, None)
}

fn load(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    let root_prefix = llama::enter_body(l)?;
    let prefix = l.prefix.clone();
    l.expect(&tensor_names(cfg), &prefix, &root_prefix);
    let (d, f) = (cfg.d_model, cfg.d_mlp);
    let (dq, dkv) = (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head);
    let embed = llama::load_embed(cfg, l)?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let p = format!("layers.{i}");
        let ln1 = l.norm(&format!("{p}.input_layernorm"), cfg, d)?;
        // [dq + 2 dkv, d]: query rows, then key rows, then value rows.
        let qkv = l.get(
            &format!("{p}.self_attn.qkv_proj.weight"),
            &[dq + 2 * dkv, d],
        )?;
        let attn = AttentionWeights {
            q: rows(&qkv, 0, dq)?,
            k: rows(&qkv, dq, dkv)?,
            v: rows(&qkv, dq + dkv, dkv)?,
            o: l.linear(&format!("{p}.self_attn.o_proj"), d, dq, Bias::None)?,
            q_norm: None,
            k_norm: None,
        };
        let ln2 = l.norm(&format!("{p}.post_attention_layernorm"), cfg, d)?;
        // [2 f, d]: gate rows, then up rows (`gate, up = gate_up_proj(x).chunk(2, dim=-1)`).
        let gate_up = l.get(&format!("{p}.mlp.gate_up_proj.weight"), &[2 * f, d])?;
        let mlp = MlpWeights {
            gate: Some(rows(&gate_up, 0, f)?),
            up: rows(&gate_up, f, f)?,
            down: l.linear(&format!("{p}.mlp.down_proj"), d, f, Bias::None)?,
        };
        blocks.push(BlockWeights {
            ln1,
            attn,
            post_attn_norm: None,
            ln2,
            mlp,
            post_mlp_norm: None,
        });
    }
    llama::finish(cfg, l, embed, blocks, root_prefix)
}
