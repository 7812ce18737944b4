//! A lantern-engine model as a [`LanguageModelScorer`] for Shapley prompt games.
//!
//! - The prompt and the continuation are tokenised separately and concatenated, so the
//!   continuation's tokens are the same for every coalition (e.g. `" A"` is one token).
//! - Requests become distinct contexts (options of one token share their prompt). The contexts
//!   form a radix tree of token runs (coalitions that agree on their first players share the
//!   tokens of those players), and every node of the tree is computed once: a node's tokens run
//!   from its parent's KV cache, nodes of different depths batched together (each row left-padded
//!   to the longest cache, right-padded to the longest run). For 10 players this computes about
//!   a fifth of the tokens that one forward per coalition would.
//! - Logits are computed only where a continuation token is predicted.
//! - The prompt prefix shared by every coalition (the text before the first player) is run once
//!   per scorer; its keys and values are reused by every call.

use candle_core::{DType, Tensor, D};
use lantern_engine::{Hooks, Input, KvCache, LoadedModel, Logits, RunOptions};
use lantern_shapley::{LanguageModelScorer, ScoreRequest, ShapleyError};

/// Scores continuations with a local model.
pub struct EngineScorer<'a> {
    lm: &'a LoadedModel,
    /// Rows (tree nodes) per forward pass (default 16).
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
        EngineScorer {
            lm,
            batch_size: 16,
            prefix: None,
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
        let tree = Node::build(&contexts, &wanted, 0, contexts.len(), 0);
        let mut logps: Vec<Vec<f64>> = wanted.iter().map(|w| vec![0.0; w.len()]).collect();
        self.run_tree(&tree, &mut logps)?;
        Ok(slots
            .iter()
            .map(|mine| mine.iter().map(|&(row, k)| logps[row][k]).sum())
            .collect())
    }

    /// Computes every node of the tree once, depth first, `batch_size` nodes per forward pass,
    /// and writes the wanted log-probabilities into `logps[context][k]`.
    fn run_tree(&mut self, root: &Node, logps: &mut [Vec<f64>]) -> Result<(), ShapleyError> {
        // The root starts from the shared prefix's cache where it covers the root's tokens (but
        // not past a position whose prediction is wanted).
        let first_pick = root.picks.iter().map(|p| p.0).min().unwrap_or(usize::MAX);
        let (root_cache, skip) = match &self.prefix {
            Some((ids, cache)) => {
                let n = common_len(ids, &root.tokens).min(first_pick);
                if n > 0 {
                    (Some(cache.truncated(n).map_err(err)?), n)
                } else {
                    (None, 0)
                }
            }
            None => (None, 0),
        };
        let mut stack: Vec<Work> = vec![(root, root_cache, skip)];
        while !stack.is_empty() {
            // Rows of one pass: the most recently pushed nodes (siblings, similar lengths), all
            // with or all without a parent cache.
            let with_cache = stack.last().is_some_and(|w| w.1.is_some());
            let mut work = Vec::new();
            while work.len() < self.batch_size.max(1)
                && stack.last().is_some_and(|w| w.1.is_some() == with_cache)
            {
                work.push(stack.pop().expect("checked non-empty"));
            }
            let children = self.run_nodes(&work, logps)?;
            stack.extend(children);
        }
        Ok(())
    }

    /// One forward pass over `work` (nodes with their parent caches); returns the children to
    /// run next, each with its parent's cache.
    fn run_nodes<'t>(
        &mut self,
        work: &[Work<'t>],
        logps: &mut [Vec<f64>],
    ) -> Result<Vec<Work<'t>>, ShapleyError> {
        let device = self.lm.model.device().clone();
        let b = work.len();
        let width = work
            .iter()
            .map(|(n, _, skip)| n.tokens.len() - skip)
            .max()
            .unwrap_or(0);
        if width == 0 {
            // A root that is empty or wholly in the shared prefix's cache: its children start
            // from that cache (or from nothing).
            return Ok(work
                .iter()
                .flat_map(|(n, cache, _)| n.children.iter().map(move |c| (c, cache.clone(), 0)))
                .collect());
        }
        let parents: Vec<KvCache> = work.iter().filter_map(|w| w.1.clone()).collect();
        let parent_len: Vec<usize> = work
            .iter()
            .map(|w| w.1.as_ref().map_or(0, KvCache::len))
            .collect();
        let mut cache = if parents.is_empty() {
            self.lm.model.new_kv_cache(&vec![0; b])
        } else {
            KvCache::stack(&parents).map_err(err)?
        };
        let mut ids = vec![0u32; b * width];
        for (i, (n, _, skip)) in work.iter().enumerate() {
            let run = &n.tokens[*skip..];
            ids[i * width..i * width + run.len()].copy_from_slice(run);
        }
        let ids = Tensor::from_vec(ids, (b, width), &device).map_err(err)?;
        // Right padding is harmless: attention is causal, and padded positions are never read.
        let out = self
            .lm
            .model
            .run(
                Input::Tokens(&ids),
                &mut Hooks::new(),
                RunOptions::default().cache(&mut cache).logits(Logits::None),
            )
            .map_err(err)?;
        self.forwards += 1;
        self.tokens += b * width;

        let mut rows = Vec::new();
        let mut targets = Vec::new();
        let mut dest = Vec::new();
        for (i, (n, _, skip)) in work.iter().enumerate() {
            for &(offset, tok, ctx, k) in &n.picks {
                rows.push((i * width + offset - skip) as u32);
                targets.push(tok);
                dest.push((ctx, k));
            }
        }
        if !rows.is_empty() {
            let m = self.lm.model.config().d_model;
            let chosen = self.pick_logprobs(
                &out.resid_final.reshape((b * width, m)).map_err(err)?,
                &rows,
                &targets,
            )?;
            for ((ctx, k), v) in dest.into_iter().zip(chosen) {
                logps[ctx][k] = v;
            }
        }

        let mut next = Vec::new();
        for (i, (n, _, skip)) in work.iter().enumerate() {
            if n.children.is_empty() {
                continue;
            }
            let held = parent_len[i] + n.tokens.len() - skip;
            let row = cache.row(i, held).map_err(err)?;
            next.extend(n.children.iter().map(|c| (c, Some(row.clone()), 0)));
        }
        Ok(next)
    }

    /// `log p(target | position)` for the residual rows `rows` of `resid: [N, M]`.
    fn pick_logprobs(
        &self,
        resid: &Tensor,
        rows: &[u32],
        targets: &[u32],
    ) -> Result<Vec<f64>, ShapleyError> {
        let device = self.lm.model.device();
        let picked = resid
            .index_select(&Tensor::new(rows, device).map_err(err)?, 0)
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
                &Tensor::new(targets, device)
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
        Ok(chosen.into_iter().map(f64::from).collect())
    }
}

/// A node to run, the one-row cache of everything before its tokens (None: nothing), and how
/// many of its tokens that cache already holds.
type Work<'t> = (&'t Node, Option<KvCache>, usize);

/// A node of the contexts' radix tree: the token run every context below it shares after its
/// parent's, its children (which differ in their first token), and the predictions wanted
/// inside the run as `(offset in the run, target token, context, index in its wanted list)`.
struct Node {
    tokens: Vec<u32>,
    children: Vec<Node>,
    picks: Vec<(usize, u32, usize, usize)>,
}

impl Node {
    /// The node for the sorted `contexts[lo..hi]`, which share their first `depth` tokens.
    fn build(
        contexts: &[Vec<u32>],
        wanted: &[Vec<(usize, u32)>],
        lo: usize,
        hi: usize,
        depth: usize,
    ) -> Node {
        // Sorted, so the range's common prefix is that of its first and last context.
        let end = common_len(&contexts[lo], &contexts[hi - 1]);
        let mut picks = Vec::new();
        for (c, w) in wanted.iter().enumerate().take(hi).skip(lo) {
            for (k, &(pos, tok)) in w.iter().enumerate() {
                if (depth..end).contains(&pos) {
                    picks.push((pos - depth, tok, c, k));
                }
            }
        }
        // Contexts that end here sort first; the rest group by their next token.
        let mut children = Vec::new();
        let mut i = (lo..hi).find(|&c| contexts[c].len() > end).unwrap_or(hi);
        while i < hi {
            let tok = contexts[i][end];
            let j = (i..hi).find(|&c| contexts[c][end] != tok).unwrap_or(hi);
            children.push(Node::build(contexts, wanted, i, j, end));
            i = j;
        }
        Node {
            tokens: contexts[lo][depth..end].to_vec(),
            children,
            picks,
        }
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
            .run(
                Input::Tokens(&t),
                &mut Hooks::new(),
                RunOptions::default().cache(&mut cache).logits(Logits::None),
            )
            .map_err(err)?;
        self.forwards += 1;
        self.tokens += ids.len();
        self.prefix = Some((ids, cache));
        Ok(())
    }
}
