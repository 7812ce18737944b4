//! GPT-2 (transformers `GPT2LMHeadModel`, `modeling_gpt2.py`): learned positions, LayerNorm,
//! gelu_new MLP, fused `c_attn`, Conv1D weights stored `[in, out]`, tied unembedding.
//! Lantern reads no GPT-2 GGUF files.

use candle_core::Tensor;

use super::{Family, Json, TensorName, Variant};
use crate::config::{Activation, Architecture, ModelConfig, NormKind};
use crate::error::{Error, Result};
use crate::weights::{
    find_prefix, AttentionWeights, BlockWeights, Linear, Loader, MlpWeights, Weights,
};

pub(super) static FAMILY: Family = Family {
    variants: &[Variant {
        architecture: Architecture::Gpt2,
        model_types: &["gpt2"],
        gguf: None,
    }],
    config_from_hf,
    config_from_gguf: None,
    tensor_names,
    load,
};

fn config_from_hf(j: &Json, _: Architecture) -> Result<ModelConfig> {
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
        norm_weight_offset: 0.0,
        qk_norm: false,
        attn_scale: 1.0 / ((d_model / n_heads) as f64).sqrt(),
        sliding_window: vec![None; n_layers],
        bos_token_id: j.token_id("bos_token_id"),
        eos_token_id: j.token_id("eos_token_id"),
    })
}

/// Modules of block `i` (each with `.weight` and `.bias`).
fn block_modules(i: usize) -> [String; 6] {
    [
        "ln_1",
        "attn.c_attn",
        "attn.c_proj",
        "ln_2",
        "mlp.c_fc",
        "mlp.c_proj",
    ]
    .map(|m| format!("h.{i}.{m}"))
}

fn tensor_names(cfg: &ModelConfig) -> Vec<TensorName> {
    let mut names = vec![
        TensorName::body("wte.weight"),
        TensorName::body("wpe.weight"),
    ];
    for i in 0..cfg.n_layers {
        for m in block_modules(i) {
            names.extend(["weight", "bias"].map(|k| TensorName::body(format!("{m}.{k}"))));
        }
    }
    names.extend(["ln_f.weight", "ln_f.bias"].map(TensorName::body));
    names
}

fn load(cfg: &ModelConfig, l: &mut Loader) -> Result<Weights> {
    l.prefix = find_prefix(l.source, "wte.weight", &["transformer.", ""])?;
    let prefix = l.prefix.clone();
    l.expect(&tensor_names(cfg), &prefix, "");
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
        let [ln_1, c_attn, attn_proj, ln_2, c_fc, mlp_proj] = block_modules(i);
        let ln1 = l.norm(&ln_1, cfg, d)?;
        let (w_qkv, b_qkv) = conv(l, &c_attn, d, 3 * d)?;
        let split = |j: usize| -> Result<Linear> {
            Ok(Linear::new(
                w_qkv.narrow(1, j * d, d)?.contiguous()?,
                Some(b_qkv.narrow(0, j * d, d)?.contiguous()?),
            ))
        };
        let (w_o, b_o) = conv(l, &attn_proj, d, d)?;
        let ln2 = l.norm(&ln_2, cfg, d)?;
        let (w_in, b_in) = conv(l, &c_fc, d, cfg.d_mlp)?;
        let (w_out, b_out) = conv(l, &mlp_proj, cfg.d_mlp, d)?;
        blocks.push(BlockWeights {
            ln1,
            attn: AttentionWeights {
                q: split(0)?,
                k: split(1)?,
                v: split(2)?,
                o: Linear::new(w_o, Some(b_o)),
                q_norm: None,
                k_norm: None,
            },
            post_attn_norm: None,
            ln2,
            mlp: MlpWeights {
                gate: None,
                up: Linear::new(w_in, Some(b_in)),
                down: Linear::new(w_out, Some(b_out)),
            },
            post_mlp_norm: None,
        });
    }
    let ln_final = l.norm("ln_f", cfg, d)?;
    let unembed = Linear::new(embed.t()?.contiguous()?, None);
    Ok(Weights {
        embed,
        pos_embed,
        blocks,
        ln_final,
        unembed,
    })
}
