//! A lantern-engine model as a [`LanguageModelScorer`] for Shapley prompt games.
//!
//! - The prompt and the continuation are tokenised separately and concatenated, so the
//!   continuation's tokens are the same for every coalition (e.g. `" A"` is one token).
//! - Requests are scored in batches: rows are right-padded (causal attention makes padding after a
//!   row's last token harmless), and logits are computed only at the positions that predict
//!   continuation tokens.
//! - The prompt prefix shared by every coalition (the text before the first player) is run once;
//!   its keys and values are reused for every batch.

use candle_core::{DType, Tensor, D};
use lantern_engine::{Hooks, KvCache, LoadedModel, Logits};
use lantern_shapley::{LanguageModelScorer, ScoreRequest, ShapleyError};

/// Scores continuations with a local model.
pub struct EngineScorer<'a> {
    lm: &'a LoadedModel,
    /// Requests per forward pass (default 16).
    pub batch_size: usize,
    prefix: Option<(Vec<u32>, KvCache)>,
    /// Forward passes run, and tokens computed in them (for reporting).
    pub forwards: usize,
    pub tokens: usize,
}

fn err(e: impl std::fmt::Display) -> ShapleyError {
    ShapleyError::Scorer(e.to_string())
}

impl<'a> EngineScorer<'a> {
    pub fn new(lm: &'a LoadedModel) -> Self {
        EngineScorer { lm, batch_size: 16, prefix: None, forwards: 0, tokens: 0 }
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ShapleyError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        self.lm.tokenizer.encode(text).map_err(err)
    }

    fn score_chunk(&mut self, requests: &[ScoreRequest]) -> Result<Vec<f64>, ShapleyError> {
        let mut rows = Vec::with_capacity(requests.len());
        for r in requests {
            let prompt = self.encode(&r.prompt)?;
            let cont = self.encode(&r.continuation)?;
            if cont.is_empty() {
                return Err(ShapleyError::EmptyContinuation { continuation: r.continuation.clone() });
            }
            if prompt.is_empty() {
                return Err(err("a coalition's prompt is empty: the model needs at least one token to predict from"));
            }
            rows.push((prompt, cont));
        }
        // Reuse the cached prefix for the tokens every row shares with it, keeping at least the
        // last prompt token of each row to compute.
        let reuse = match &self.prefix {
            Some((ids, _)) => rows.iter().map(|(p, _)| common_len(ids, p).min(p.len() - 1)).min().unwrap_or(0),
            None => 0,
        };
        let full: Vec<Vec<u32>> = rows.iter().map(|(p, c)| p.iter().chain(c).copied().collect()).collect();
        let width = full.iter().map(Vec::len).max().unwrap_or(0) - reuse;
        let b = rows.len();
        let mut ids = vec![0u32; b * width];
        for (i, f) in full.iter().enumerate() {
            ids[i * width..i * width + f.len() - reuse].copy_from_slice(&f[reuse..]);
        }
        let device = self.lm.model.device();
        let ids = Tensor::from_vec(ids, (b, width), device).map_err(err)?;
        let mut cache = match &self.prefix {
            Some((_, cache)) if reuse > 0 => truncate(cache, reuse)?.expand(b).map_err(err)?,
            _ => self.lm.model.new_kv_cache(&vec![0; b]),
        };
        let out = self.lm.model.run_cached(&ids, &mut cache, &mut Hooks::new(), Logits::None).map_err(err)?;
        self.forwards += 1;
        self.tokens += b * width;
        // Gather the residual vectors that predict each continuation token.
        let mut picks = Vec::new();
        let mut targets = Vec::new();
        for (i, (p, c)) in rows.iter().enumerate() {
            for (j, &tok) in c.iter().enumerate() {
                picks.push((i * width + p.len() + j - 1 - reuse) as u32);
                targets.push(tok);
            }
        }
        let m = self.lm.model.config().d_model;
        let resid = out.resid_final.reshape((b * width, m)).map_err(err)?;
        let picked = resid.index_select(&Tensor::new(picks.as_slice(), device).map_err(err)?, 0).map_err(err)?;
        let logits = self.lm.model.unembed(&picked).map_err(err)?.to_dtype(DType::F32).map_err(err)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1).map_err(err)?;
        let chosen = logp
            .gather(&Tensor::new(targets.as_slice(), device).map_err(err)?.unsqueeze(1).map_err(err)?, 1)
            .map_err(err)?
            .squeeze(1)
            .map_err(err)?
            .to_vec1::<f32>()
            .map_err(err)?;
        let mut out = Vec::with_capacity(b);
        let mut k = 0;
        for (_, c) in &rows {
            out.push(chosen[k..k + c.len()].iter().map(|&v| f64::from(v)).sum());
            k += c.len();
        }
        Ok(out)
    }
}

fn common_len(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The first `len` positions of a one-row cache.
fn truncate(cache: &KvCache, len: usize) -> Result<KvCache, ShapleyError> {
    cache.truncated(len).map_err(err)
}

impl LanguageModelScorer for EngineScorer<'_> {
    fn continuation_logprobs(&mut self, requests: &[ScoreRequest]) -> Result<Vec<f64>, ShapleyError> {
        let mut out = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(self.batch_size.max(1)) {
            out.extend(self.score_chunk(chunk)?);
        }
        Ok(out)
    }

    fn n_continuation_tokens(&mut self, _prompt: &str, continuation: &str) -> Result<usize, ShapleyError> {
        Ok(self.encode(continuation)?.len())
    }

    fn prepare_shared_prefix(&mut self, prefix: &str) -> Result<(), ShapleyError> {
        let ids = self.encode(prefix)?;
        if ids.len() < 2 {
            return Ok(());
        }
        let mut cache = self.lm.model.new_kv_cache(&[0]);
        let t = Tensor::new(ids.as_slice(), self.lm.model.device()).map_err(err)?.unsqueeze(0).map_err(err)?;
        self.lm.model.run_cached(&t, &mut cache, &mut Hooks::new(), Logits::None).map_err(err)?;
        self.forwards += 1;
        self.tokens += ids.len();
        self.prefix = Some((ids, cache));
        Ok(())
    }
}
