//! Direct logit attribution: the final residual stream at a position is a sum of the embedding,
//! every head's output (`hook_result`), every attention output bias and every MLP output. Each
//! piece, centred (LayerNorm), divided by the final norm's scale *from the cached run* (frozen),
//! times the final norm weight, dotted with a logit direction `W_U[a] - W_U[b]`, is its direct
//! effect on the logit difference. The pieces sum to the total direct effect exactly (up to
//! float error); the final norm's bias and the unembedding bias are reported apart.

use candle_core::{DType, Tensor, D};
use lantern_engine::{
    config::NormKind, Batch, Error, HookKind, HookPoint, Hooks, Model, Result, RunOptions,
};
use serde::Serialize;

/// `logit(target) - logit(versus)` (or `logit(target)` alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogitDirection {
    pub target: u32,
    pub versus: Option<u32>,
}

/// The unembedding direction `W_U[:, target] - W_U[:, versus]`, `[d_model]` f32.
pub fn logit_direction(model: &Model, dir: LogitDirection) -> Result<Tensor> {
    let wt = &model.weights().unembed.wt; // [M, V]
    let vocab = model.config().vocab_size;
    let col = |id: u32| -> Result<Tensor> {
        lantern_engine::error::check_index("token id", id as usize, vocab)?;
        Ok(wt
            .narrow(1, id as usize, 1)?
            .squeeze(1)?
            .to_dtype(DType::F32)?)
    };
    let u = col(dir.target)?;
    Ok(match dir.versus {
        Some(b) => (u - col(b)?)?,
        None => u,
    })
}

/// Attribution of one prompt's logit difference at one position.
#[derive(Debug, Clone, Serialize)]
pub struct Dla {
    pub direction: LogitDirection,
    pub position: usize,
    /// `[layer][head]`.
    pub heads: Vec<Vec<f64>>,
    /// Per layer: the attention output bias `b_O`.
    pub attn_bias: Vec<f64>,
    /// Per layer: the MLP output.
    pub mlps: Vec<f64>,
    /// Token embedding (plus learned positions, where the model has them).
    pub embed: f64,
    pub pos_embed: f64,
    /// Sum of all the pieces above: the direct effect through the residual stream.
    pub total: f64,
    /// The final norm's bias and the unembedding bias along the direction (0 for RMSNorm models).
    pub bias_terms: f64,
    /// The model's actual logit difference: `total + bias_terms`.
    pub logit_diff: f64,
}

impl Dla {
    /// Heads sorted by attribution, largest first: `(layer, head, value)`.
    pub fn ranked_heads(&self) -> Vec<(usize, usize, f64)> {
        rank_heads(&self.heads, |v| v)
    }
}

/// The heads of a `[layer][head]` map as `(layer, head, value)`, sorted by `key(value)`, largest
/// first; ties keep layer-then-head order. `key` is the identity for "pushes the target most"
/// and `f64::abs` for "largest effect either way".
pub fn rank_heads(values: &[Vec<f64>], key: impl Fn(f64) -> f64) -> Vec<(usize, usize, f64)> {
    let mut all: Vec<(usize, usize, f64)> = values
        .iter()
        .enumerate()
        .flat_map(|(l, row)| row.iter().enumerate().map(move |(h, &v)| (l, h, v)))
        .collect();
    all.sort_by(|a, b| key(b.2).total_cmp(&key(a.2)));
    all
}

/// Direct logit attribution for every row of `batch` at `position` (default: the last), each row
/// with its own direction.
pub fn direct_logit_attribution(
    model: &Model,
    batch: &Batch,
    directions: &[LogitDirection],
    position: Option<usize>,
) -> Result<Vec<Dla>> {
    let cfg = model.config();
    if cfg.post_norms {
        return Err(Error::invalid(format!("direct logit attribution needs a residual stream that is a sum of head outputs; the post-attention and post-MLP norms of this model ({:?}) break that", cfg.architecture)));
    }
    if directions.len() != batch.len() {
        return Err(Error::invalid(format!(
            "{} directions for {} prompts",
            directions.len(),
            batch.len()
        )));
    }
    let t = batch.seq_len();
    let pos = position.unwrap_or(t - 1);
    lantern_engine::error::check_index("position", pos, t)?;
    let mut hooks = Hooks::new()
        .capture(HookPoint::global(HookKind::Embed))
        .capture(HookPoint::global(HookKind::LnFinalScale))
        .capture(HookPoint::logits());
    if cfg.rope.is_none() {
        hooks = hooks.capture(HookPoint::global(HookKind::PosEmbed));
    }
    for l in 0..cfg.n_layers {
        hooks = hooks
            .capture(HookPoint::attn(l, HookKind::AttnResult))
            .capture(HookPoint::block(l, HookKind::MlpOut));
    }
    let out = model.run(batch, &mut hooks, RunOptions::default())?;
    let logits = out.logits.expect("logits requested").to_dtype(DType::F32)?;
    // Attributions of a NaN are NaN: stop at the hook point where it first appears instead.
    lantern_engine::finite::ensure_finite(model, batch, &Hooks::new(), &logits)?;
    let at = |t: &Tensor| -> Result<Tensor> {
        Ok(t.narrow(1, pos, 1)?.squeeze(1)?.to_dtype(DType::F32)?)
    };
    let scale = at(hooks
        .cache
        .require(HookPoint::global(HookKind::LnFinalScale))?)?; // [B, 1]
    let ln = &model.weights().ln_final;
    let layer_norm = ln.kind == NormKind::LayerNorm;
    let w_ln = ln.w.as_ref().map(|w| w.to_dtype(DType::F32)).transpose()?;

    let mut results = Vec::with_capacity(batch.len());
    for (row, dir) in directions.iter().enumerate() {
        let u = logit_direction(model, *dir)?;
        // Fold the norm weight into the direction: (x / s * w) · u = (x / s) · (w ⊙ u).
        let u_eff = match &w_ln {
            Some(w) => (&u * w)?,
            None => u.clone(),
        };
        let s = f64::from(scale.get(row)?.squeeze(0)?.to_scalar::<f32>()?);
        // Projects vectors [..., M] of this row onto the direction.
        let project = |x: &Tensor| -> Result<Tensor> {
            let x = if layer_norm {
                x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?
            } else {
                x.clone()
            };
            Ok((x.broadcast_mul(&u_eff)?.sum(D::Minus1)? / s)?)
        };
        let vec_at =
            |p: HookPoint| -> Result<Tensor> { Ok(at(hooks.cache.require(p)?)?.get(row)?) };
        let scalar = |t: Tensor| -> Result<f64> { Ok(f64::from(t.to_scalar::<f32>()?)) };
        let embed = scalar(project(&vec_at(HookPoint::global(HookKind::Embed))?)?)?;
        let pos_embed = if cfg.rope.is_none() {
            scalar(project(&vec_at(HookPoint::global(HookKind::PosEmbed))?)?)?
        } else {
            0.0
        };
        let mut heads = Vec::with_capacity(cfg.n_layers);
        let mut attn_bias = Vec::with_capacity(cfg.n_layers);
        let mut mlps = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let r = vec_at(HookPoint::attn(l, HookKind::AttnResult))?; // [H, M]
            heads.push(
                project(&r)?
                    .to_vec1::<f32>()?
                    .into_iter()
                    .map(f64::from)
                    .collect(),
            );
            attn_bias.push(match &model.weights().blocks[l].attn.o.b {
                Some(b) => scalar(project(&b.to_dtype(DType::F32)?)?)?,
                None => 0.0,
            });
            mlps.push(scalar(project(&vec_at(HookPoint::block(
                l,
                HookKind::MlpOut,
            ))?)?)?);
        }
        let total = embed
            + pos_embed
            + attn_bias.iter().sum::<f64>()
            + mlps.iter().sum::<f64>()
            + heads.iter().flatten().sum::<f64>();
        let row_logits = logits.get(row)?.get(pos)?;
        let logit = |id: u32| -> Result<f64> {
            Ok(f64::from(row_logits.get(id as usize)?.to_scalar::<f32>()?))
        };
        let logit_diff = logit(dir.target)? - dir.versus.map(logit).transpose()?.unwrap_or(0.0);
        // Computed apart from the pieces, so `total + bias_terms == logit_diff` is a real check.
        let mut bias_terms = match &ln.b {
            Some(b) => scalar((b.to_dtype(DType::F32)? * &u)?.sum_all()?)?,
            None => 0.0,
        };
        if let Some(b_u) = &model.weights().unembed.b {
            let b_u = b_u.to_dtype(DType::F32)?;
            let at_id = |id: u32| -> Result<f64> { scalar(b_u.get(id as usize)?) };
            bias_terms += at_id(dir.target)? - dir.versus.map(at_id).transpose()?.unwrap_or(0.0);
        }
        results.push(Dla {
            direction: *dir,
            position: pos,
            heads,
            attn_bias,
            mlps,
            embed,
            pos_embed,
            total,
            bias_terms,
            logit_diff,
        });
    }
    Ok(results)
}

/// Element-wise mean of per-prompt head attributions, `[layer][head]`.
pub fn mean_heads(dlas: &[Dla]) -> Vec<Vec<f64>> {
    let Some(first) = dlas.first() else {
        return Vec::new();
    };
    let mut mean = vec![vec![0.0; first.heads[0].len()]; first.heads.len()];
    for d in dlas {
        for (m, h) in mean.iter_mut().zip(&d.heads) {
            for (a, b) in m.iter_mut().zip(h) {
                *a += b / dlas.len() as f64;
            }
        }
    }
    mean
}
