//! A lantern-engine model as a [`LanguageModelScorer`] for Shapley prompt games.
//!
//! - The prompt and the continuation are tokenised separately and concatenated, so the
//!   continuation's tokens are the same for every coalition (e.g. `" A"` is one token).
//! - Requests become distinct contexts (options of one token share their prompt), sorted so that
//!   neighbouring contexts share long token prefixes; each batch of contexts runs once from the
//!   KV cache of its longest common prefix, rows right-padded (causal attention makes padding after
//!   a row's last token harmless), with logits only where a continuation token is predicted.
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
    /// The previous chunk's common prefix: sorted neighbours share most of it (a walk down the
    /// prefix tree of the contexts).
    last: Option<(Vec<u32>, KvCache)>,
    /// Forward passes run, and tokens computed in them (for reporting).
    pub forwards: usize,
    pub tokens: usize,
}

fn err(e: impl std::fmt::Display) -> ShapleyError {
    ShapleyError::Scorer(e.to_string())
}

impl<'a> EngineScorer<'a> {
    pub fn new(lm: &'a LoadedModel) -> Self {
        EngineScorer {
            lm,
            batch_size: 16,
            prefix: None,
            last: None,
            forwards: 0,
            tokens: 0,
        }
    }

    fn start_token(&self) -> Option<u32> {
        let cfg = self.lm.model.config();
        cfg.bos_token_id.or(cfg.eos_token_id)
    }

    /// Tokens of a prompt (with the model's BOS where it wants one).
    fn encode(&self, text: &str) -> Result<Vec<u32>, ShapleyError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        self.lm.tokenizer.encode(text).map_err(err)
    }

    /// Tokens of a continuation (never a BOS).
    fn encode_continuation(&self, text: &str) -> Result<Vec<u32>, ShapleyError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        self.lm.tokenizer.encode_raw(text).map_err(err)
    }

    /// Scores every request: requests are reduced to distinct *contexts* (prompt plus all but
    /// the last continuation token; options of one token share their prompt's context), the
    /// contexts are sorted so that neighbours share long token prefixes, and each chunk of
    /// `batch_size` contexts runs once from the KV cache of its longest common prefix.
    fn score_all(&mut self, requests: &[ScoreRequest]) -> Result<Vec<f64>, ShapleyError> {
        let mut encoded = Vec::with_capacity(requests.len());
        for r in requests {
            let prompt = self.encode(&r.prompt)?;
            let cont = self.encode_continuation(&r.continuation)?;
            if cont.is_empty() {
                return Err(ShapleyError::EmptyContinuation {
                    continuation: r.continuation.clone(),
                });
            }
            // An empty coalition's prompt (every player absent, no fixed text) is read as the
            // model's beginning-of-text token, as Hugging Face references do.
            let prompt = match (prompt.is_empty(), self.start_token()) {
                (false, _) => prompt,
                (true, Some(t)) => vec![t],
                (true, None) => return Err(err("a coalition's prompt is empty and the model has no BOS/EOS token to stand in for it")),
            };
            encoded.push((prompt, cont));
        }
        let mut contexts: Vec<Vec<u32>> = encoded
            .iter()
            .map(|(p, c)| p.iter().chain(&c[..c.len() - 1]).copied().collect())
            .collect();
        contexts.sort();
        contexts.dedup();
        // Log-probabilities over the vocabulary at every position of every context are not
        // kept; only the (context, position, token) triples the requests need.
        let mut wanted: Vec<Vec<(usize, u32)>> = vec![Vec::new(); contexts.len()];
        let mut slots = Vec::with_capacity(encoded.len());
        for (p, c) in &encoded {
            let ctx: Vec<u32> = p.iter().chain(&c[..c.len() - 1]).copied().collect();
            let row = contexts
                .binary_search(&ctx)
                .expect("every context was collected");
            let mut mine = Vec::with_capacity(c.len());
            for (j, &tok) in c.iter().enumerate() {
                mine.push((row, wanted[row].len()));
                wanted[row].push((p.len() + j - 1, tok));
            }
            slots.push(mine);
        }
        let mut logps: Vec<Vec<f64>> = Vec::with_capacity(contexts.len());
        let chunk = self.batch_size.max(1);
        for (ci, rows) in contexts.chunks(chunk).enumerate() {
            logps.extend(self.score_contexts(rows, &wanted[ci * chunk..ci * chunk + rows.len()])?);
        }
        Ok(slots
            .iter()
            .map(|mine| mine.iter().map(|&(row, k)| logps[row][k]).sum())
            .collect())
    }

    /// Runs one chunk of contexts and returns, per context, the log-probabilities of the wanted
    /// `(position, token)` pairs.
    fn score_contexts(
        &mut self,
        rows: &[Vec<u32>],
        wanted: &[Vec<(usize, u32)>],
    ) -> Result<Vec<Vec<f64>>, ShapleyError> {
        let device = self.lm.model.device().clone();
        // Every position whose prediction is wanted must be computed in this pass.
        let shortest = wanted
            .iter()
            .flat_map(|w| w.iter().map(|&(pos, _)| pos))
            .min()
            .unwrap_or(0);
        let lcp = rows
            .iter()
            .skip(1)
            .fold(shortest, |n, r| n.min(common_len(&rows[0], r)));
        let lcp_ids = &rows[0][..lcp];
        // Start from whichever cached prefix covers more of this chunk's common prefix.
        let covered = |c: &Option<(Vec<u32>, KvCache)>| {
            c.as_ref().map_or(0, |(ids, _)| common_len(ids, lcp_ids))
        };
        let from = if covered(&self.last) >= covered(&self.prefix) {
            &self.last
        } else {
            &self.prefix
        };
        let base_len = covered(from);
        let mut cache = match from {
            Some((_, c)) if base_len > 0 => c.truncated(base_len).map_err(err)?,
            _ => self.lm.model.new_kv_cache(&[0]),
        };
        if lcp > base_len {
            let ext = Tensor::new(&lcp_ids[base_len..], &device)
                .map_err(err)?
                .unsqueeze(0)
                .map_err(err)?;
            self.lm
                .model
                .run_cached(&ext, &mut cache, &mut Hooks::new(), Logits::None)
                .map_err(err)?;
            self.forwards += 1;
            self.tokens += lcp - base_len;
        }
        self.last = Some((lcp_ids.to_vec(), cache.clone()));
        let b = rows.len();
        let mut cache = cache.expand(b).map_err(err)?;
        let width = rows.iter().map(Vec::len).max().unwrap_or(0) - lcp;
        let mut ids = vec![0u32; b * width];
        for (i, r) in rows.iter().enumerate() {
            ids[i * width..i * width + r.len() - lcp].copy_from_slice(&r[lcp..]);
        }
        let ids = Tensor::from_vec(ids, (b, width), &device).map_err(err)?;
        // Right padding is harmless: attention is causal, and padded positions are never read.
        let out = self
            .lm
            .model
            .run_cached(&ids, &mut cache, &mut Hooks::new(), Logits::None)
            .map_err(err)?;
        self.forwards += 1;
        self.tokens += b * width;
        let mut picks = Vec::new();
        let mut targets = Vec::new();
        for (i, w) in wanted.iter().enumerate() {
            for &(pos, tok) in w {
                picks.push((i * width + pos - lcp) as u32);
                targets.push(tok);
            }
        }
        let m = self.lm.model.config().d_model;
        let resid = out.resid_final.reshape((b * width, m)).map_err(err)?;
        let picked = resid
            .index_select(&Tensor::new(picks.as_slice(), &device).map_err(err)?, 0)
            .map_err(err)?;
        let logits = self
            .lm
            .model
            .unembed(&picked)
            .map_err(err)?
            .to_dtype(DType::F32)
            .map_err(err)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1).map_err(err)?;
        let chosen = logp
            .gather(
                &Tensor::new(targets.as_slice(), &device)
                    .map_err(err)?
                    .unsqueeze(1)
                    .map_err(err)?,
                1,
            )
            .map_err(err)?
            .squeeze(1)
            .map_err(err)?
            .to_vec1::<f32>()
            .map_err(err)?;
        let mut out = Vec::with_capacity(b);
        let mut k = 0;
        for w in wanted {
            out.push(
                chosen[k..k + w.len()]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
            );
            k += w.len();
        }
        Ok(out)
    }
}

fn common_len(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl LanguageModelScorer for EngineScorer<'_> {
    fn continuation_logprobs(
        &mut self,
        requests: &[ScoreRequest],
    ) -> Result<Vec<f64>, ShapleyError> {
        self.score_all(requests)
    }

    fn n_continuation_tokens(
        &mut self,
        _prompt: &str,
        continuation: &str,
    ) -> Result<usize, ShapleyError> {
        Ok(self.encode_continuation(continuation)?.len())
    }

    fn prepare_shared_prefix(&mut self, prefix: &str) -> Result<(), ShapleyError> {
        let ids = self.encode(prefix)?;
        if ids.len() < 2 {
            return Ok(());
        }
        let mut cache = self.lm.model.new_kv_cache(&[0]);
        let t = Tensor::new(ids.as_slice(), self.lm.model.device())
            .map_err(err)?
            .unsqueeze(0)
            .map_err(err)?;
        self.lm
            .model
            .run_cached(&t, &mut cache, &mut Hooks::new(), Logits::None)
            .map_err(err)?;
        self.forwards += 1;
        self.tokens += ids.len();
        self.prefix = Some((ids, cache));
        Ok(())
    }
}
