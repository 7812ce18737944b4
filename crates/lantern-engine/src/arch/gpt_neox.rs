//! GPT-NeoX / Pythia (transformers `GPTNeoXForCausalLM`, `modeling_gpt_neox.py`): parallel
//! attention and MLP, partial rotary, fused per-head `query_key_value`, untied unembedding.
//! Lantern reads no GPT-NeoX GGUF files.

use super::parse::{partial_rotary_factor, rope_scaling, rope_theta};
use super::{Family, Json, TensorName, Variant};
use crate::config::{Activation, Architecture, ModelConfig, NormKind, Rope};
use crate::error::Result;
use crate::weights::{
    find_prefix, AttentionWeights, Bias, BlockWeights, Linear, Loader, MlpWeights, Weights,
};

pub(super) static FAMILY: Family = Family {
    variants: &[Variant {
        architecture: Architecture::GptNeoX,
        model_types: &["gpt_neox"],
        gguf: None,
    }],
    config_from_hf,
    config_from_gguf: None,
    tensor_names,
    load,
};

fn config_from_hf(j: &Json, _: Architecture) -> Result<ModelConfig> {
    let d_model = j.count("hidden_size")?;
    let n_heads = j.count("num_attention_heads")?;
    let d_head = d_model / n_heads;
    let rotary_pct = partial_rotary_factor(j)?;
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
        norm_weight_offset: 0.0,
        qk_norm: false,
        attn_scale: 1.0 / (d_head as f64).sqrt(),
        sliding_window: vec![None; n_layers],
        bos_token_id: j.token_id("bos_token_id"),
        eos_token_id: j.token_id("eos_token_id"),
    })
}

/// Modules of block `i` (each with `.weight` and `.bias`).
fn block_modules(i: usize) -> [String; 6] {
    [
        "input_layernorm",
        "post_attention_layernorm",
        "attention.query_key_value",
        "attention.dense",
        "mlp.dense_h_to_4h",
        "mlp.dense_4h_to_h",
    ]
    .map(|m| format!("layers.{i}.{m}"))
}

fn tensor_names(cfg: &ModelConfig) -> Vec<TensorName> {
    let mut names = vec![TensorName::body("embed_in.weight")];
    for i in 0..cfg.n_layers {
        for m in block_modules(i) {
            names.extend(["weight", "bias"].map(|k| TensorName::body(format!("{m}.{k}"))));
        }
    }
    names.extend(["final_layer_norm.weight", "final_layer_norm.bias"].map(TensorName::body));
    if !cfg.tied_embeddings {
        names.push(TensorName::root("embed_out.weight"));
    }
    names
}

fn load(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    l.prefix = find_prefix(l.source, "embed_in.weight", &["gpt_neox.", ""])?;
    let prefix = l.prefix.clone();
    l.expect(&tensor_names(cfg), &prefix, "");
    let (d, v, h, dh) = (cfg.d_model, cfg.vocab_size, cfg.n_heads, cfg.d_head);
    let embed = l.get("embed_in.weight", &[v, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let [ln_1, ln_2, qkv, dense, h_to_4h, h4_to_h] = block_modules(i);
        let ln1 = l.norm(&ln_1, cfg, d)?;
        let ln2 = l.norm(&ln_2, cfg, d)?;
        // Fused QKV rows are ordered [head, (q|k|v), d_head].
        let w = l
            .get(&format!("{qkv}.weight"), &[3 * h * dh, d])?
            .reshape((h, 3, dh, d))?;
        let b = l
            .get(&format!("{qkv}.bias"), &[3 * h * dh])?
            .reshape((h, 3, dh))?;
        let split = |j: usize| -> Result<Linear> {
            let wj = w.narrow(1, j, 1)?.reshape((h * dh, d))?;
            let bj = b.narrow(1, j, 1)?.reshape(h * dh)?;
            Linear::from_out_in(wj, Some(bj))
        };
        let o = l.linear(&dense, d, h * dh, Bias::Required)?;
        let up = l.linear(&h_to_4h, cfg.d_mlp, d, Bias::Required)?;
        let down = l.linear(&h4_to_h, d, cfg.d_mlp, Bias::Required)?;
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
        Linear::new(embed.t()?.contiguous()?, None)
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
