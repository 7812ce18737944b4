//! Logit lens (nostalgebraist 2020): read each layer's residual stream through the final norm and
//! the unembedding, as if the model stopped there. Also the accumulated residual stream's direct
//! effect on chosen tokens.

use candle_core::{DType, Tensor};
use lantern_engine::{Batch, HookPoint, Hooks, Logits, Model, Result, RunOptions, Tokenizer};
use serde::Serialize;

/// A token's standing in one layer's lens distribution.
#[derive(Debug, Clone, Serialize)]
pub struct TokenStat {
    pub id: u32,
    pub token: String,
    pub logit: f32,
    pub prob: f32,
    /// 0 = most likely.
    pub rank: usize,
}

/// One row of the lens: the residual stream before `layer` (`layer == n_layers` is the final
/// output).
#[derive(Debug, Clone, Serialize)]
pub struct LensLayer {
    pub layer: usize,
    /// Name of the residual point read.
    pub point: String,
    pub top: Vec<TokenStat>,
    pub tracked: Vec<TokenStat>,
}

/// Logit lens at `position` (default: last) of the first row of `batch`, reading
/// `blocks.L.hook_resid_pre` for every layer and the final residual; `top_k` tokens and the rank
/// and probability of each `tracked` token.
pub fn logit_lens(
    model: &Model,
    tokenizer: &Tokenizer,
    batch: &Batch,
    position: Option<usize>,
    top_k: usize,
    tracked: &[u32],
) -> Result<Vec<LensLayer>> {
    let cfg = model.config();
    let t = batch.seq_len();
    let pos = position.unwrap_or(t - 1);
    lantern_engine::error::check_index("position", pos, t)?;
    for &id in tracked {
        lantern_engine::error::check_index("token id", id as usize, cfg.vocab_size)?;
    }
    let hooks = &mut Hooks::new().capture_pattern(cfg, "blocks.*.hook_resid_pre")?;
    let out = model.run(batch, hooks, RunOptions::default().logits(Logits::None))?;
    let mut rows = Vec::with_capacity(cfg.n_layers + 1);
    for layer in 0..=cfg.n_layers {
        let (resid, name) = if layer < cfg.n_layers {
            let p = HookPoint::resid_pre(layer);
            (hooks.cache.require(p)?.clone(), p.name())
        } else {
            (out.resid_final.clone(), "final residual".to_string())
        };
        let x = resid.get(0)?.narrow(0, pos, 1)?; // [1, M]
        let (normed, _) = model.weights().ln_final.forward(&x)?;
        let logits = model
            .weights()
            .unembed
            .forward(&normed)?
            .squeeze(0)?
            .to_dtype(DType::F32)?;
        rows.push(LensLayer {
            layer,
            point: name,
            top: Vec::new(),
            tracked: Vec::new(),
        });
        let row = rows.last_mut().expect("pushed");
        let (top, stats) = token_stats(tokenizer, &logits, top_k, tracked)?;
        row.top = top;
        row.tracked = stats;
    }
    Ok(rows)
}

/// Top-k tokens and the stats of tracked tokens from logits `[V]`.
pub fn token_stats(
    tokenizer: &Tokenizer,
    logits: &Tensor,
    top_k: usize,
    tracked: &[u32],
) -> Result<(Vec<TokenStat>, Vec<TokenStat>)> {
    let probs = candle_nn::ops::softmax_last_dim(logits)?.to_vec1::<f32>()?;
    let values = logits.to_vec1::<f32>()?;
    let order = logits.arg_sort_last_dim(false)?.to_vec1::<u32>()?;
    let mut rank = vec![0usize; values.len()];
    for (r, &id) in order.iter().enumerate() {
        rank[id as usize] = r;
    }
    let stat = |id: u32| TokenStat {
        id,
        token: tokenizer.token_text(id),
        logit: values[id as usize],
        prob: probs[id as usize],
        rank: rank[id as usize],
    };
    Ok((
        order.iter().take(top_k).map(|&id| stat(id)).collect(),
        tracked.iter().map(|&id| stat(id)).collect(),
    ))
}
