//! Generation for many independent requests that share forward passes (a server's continuous
//! batch), built only on the public [`Model::run`] / [`KvCache`] API.
//!
//! Each row has its own prompt, interventions, sampling (its own seeded generator, so a row's
//! tokens do not depend on which rows it was batched with), stop strings, token limit and
//! log-probability requests. A [`ManyGenerator`] holds the rows being decoded and one KV cache
//! for all of them: [`ManyGenerator::admit`] prefills new rows (one padded forward pass) and
//! joins them to the running ones, [`ManyGenerator::step`] decodes one token for every running
//! row (one forward pass), and finished or cancelled rows leave the cache at once. A per-token
//! callback streams each row's text and can stop a row (a client that went away).
//!
//! Per-row interventions: every intervention of a row is restricted to that row's batch index
//! ([`Selection::batch`](crate::Selection)), and its positions are shifted by the row's left
//! padding, so a row computes what it computes alone (up to float rounding of a padded batch).
//! A row's own interventions therefore must not select rows themselves.
//!
//! Log-probabilities are those of the model's distribution (temperature 1, no top-k/top-p), as
//! OpenAI-compatible servers report them.
//!
//! Shapes: B rows, T positions, V vocabulary.

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::generate::{argmax, sample, Sampling};
use crate::hooks::HookPoint;
use crate::intervention::{Hooks, Intervention};
use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::run::{Input, Logits, RunOptions};
use crate::tokenizer::Tokenizer;

/// The caller's name for a row (returned with its events and output).
pub type RowId = u64;

/// One request row.
#[derive(Debug, Clone)]
pub struct RowSpec {
    pub id: RowId,
    /// The prompt's token ids (BOS included where the model wants one).
    pub prompt_ids: Vec<u32>,
    /// Active at every position of this row only (see the module docs).
    pub interventions: Vec<(HookPoint, Intervention)>,
    pub sampling: Sampling,
    /// 0: only the prompt is run (its log-probabilities, if asked for).
    pub max_new_tokens: usize,
    /// The row stops when its new text contains one of these; the text is cut before it.
    pub stop_strings: Vec<String>,
    pub stop_at_eos: bool,
    /// How many most likely alternatives to report with each token (0: none).
    pub top_logprobs: usize,
    /// Report the log-probability of every prompt token after the first.
    pub prompt_logprobs: bool,
}

impl RowSpec {
    /// Greedy, 16 new tokens, stop at EOS, no interventions, no alternatives.
    pub fn new(id: RowId, prompt_ids: Vec<u32>) -> Self {
        RowSpec {
            id,
            prompt_ids,
            interventions: Vec::new(),
            sampling: Sampling::Greedy,
            max_new_tokens: 16,
            stop_strings: Vec::new(),
            stop_at_eos: true,
            top_logprobs: 0,
            prompt_logprobs: false,
        }
    }
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStop {
    MaxTokens,
    StopString,
    Eos,
    /// The callback asked to stop (e.g. the client disconnected).
    Cancelled,
}

/// A token and its log-probability, with the most likely alternatives when asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub id: u32,
    pub logprob: f32,
    /// `(id, logprob)`, most likely first.
    pub top: Vec<(u32, f32)>,
}

/// What the callback is told about each new token of a row.
#[derive(Debug)]
pub struct TokenEvent<'a> {
    pub row: RowId,
    pub token: &'a TokenLogprob,
    /// New text that can be shown now. Text that may still turn out to begin a stop string, or
    /// an incomplete UTF-8 character, is held back until it is settled; the deltas of a row
    /// concatenate to its final text.
    pub text_delta: &'a str,
    /// Whether this is the row's last event (its stop reason is then known).
    pub last: bool,
}

/// The callback's answer: keep the row going or stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// A finished row.
#[derive(Debug, Clone)]
pub struct RowOutput {
    pub id: RowId,
    pub prompt_ids: Vec<u32>,
    /// Generated tokens (an EOS that stopped the row is not included).
    pub new_ids: Vec<u32>,
    /// Decoded new tokens, cut before a stop string.
    pub text: String,
    pub stop: RowStop,
    /// One per new token.
    pub logprobs: Vec<TokenLogprob>,
    /// One per prompt token when asked for; the first is `None` (nothing predicts it).
    pub prompt_logprobs: Vec<Option<TokenLogprob>>,
}

/// A row being decoded.
struct Active {
    spec: RowSpec,
    new_ids: Vec<u32>,
    logprobs: Vec<TokenLogprob>,
    prompt_logprobs: Vec<Option<TokenLogprob>>,
    /// Bytes of the decoded new text already passed to the callback.
    emitted: usize,
    /// The token sampled last, the next step's input.
    next: u32,
    rng: Option<ChaCha8Rng>,
}

impl Active {
    fn finish(self, text: String, stop: RowStop) -> RowOutput {
        RowOutput {
            id: self.spec.id,
            prompt_ids: self.spec.prompt_ids,
            new_ids: self.new_ids,
            text,
            stop,
            logprobs: self.logprobs,
            prompt_logprobs: self.prompt_logprobs,
        }
    }
}

/// Rows decoded together with one KV cache (see the module docs).
pub struct ManyGenerator<'m> {
    model: &'m Model,
    tokenizer: &'m Tokenizer,
    rows: Vec<Active>,
    /// Row `i` of the cache is `rows[i]`.
    cache: Option<KvCache>,
}

impl<'m> ManyGenerator<'m> {
    pub fn new(model: &'m Model, tokenizer: &'m Tokenizer) -> Self {
        ManyGenerator {
            model,
            tokenizer,
            rows: Vec::new(),
            cache: None,
        }
    }

    /// Rows being decoded.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Checks a row before it is admitted, so that one bad row cannot fail a shared pass.
    pub fn validate(&self, spec: &RowSpec) -> Result<()> {
        let cfg = self.model.config();
        if spec.prompt_ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let len = spec.prompt_ids.len().saturating_add(spec.max_new_tokens);
        if len > cfg.max_positions {
            return Err(Error::PromptTooLong {
                len,
                max: cfg.max_positions,
            });
        }
        if let Some(&bad) = spec
            .prompt_ids
            .iter()
            .find(|&&i| i as usize >= cfg.vocab_size)
        {
            return Err(Error::OutOfRange {
                what: "token id",
                index: bad as usize,
                count: cfg.vocab_size,
            });
        }
        if let Sampling::Sample {
            temperature, top_p, ..
        } = spec.sampling
        {
            if !(temperature > 0.0 && temperature.is_finite()) {
                return Err(Error::invalid(format!(
                    "temperature must be positive, got {temperature}"
                )));
            }
            if top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
                return Err(Error::invalid("top_p must be in (0, 1]"));
            }
        }
        for (point, iv) in &spec.interventions {
            point.check(cfg)?;
            if iv.selection.batch.is_some() {
                return Err(Error::invalid(format!(
                    "an intervention at {} selects batch rows; a row's interventions apply to \
                     that row only",
                    point.name()
                )));
            }
            // The prompt pass checks positions against the prompt (as a lone run would).
            if let Some(&p) = iv
                .selection
                .positions
                .iter()
                .flatten()
                .find(|&&p| p >= spec.prompt_ids.len())
            {
                return Err(Error::OutOfRange {
                    what: "position",
                    index: p,
                    count: spec.prompt_ids.len(),
                });
            }
        }
        Ok(())
    }

    /// Prefills `specs` in one forward pass and joins them to the running rows. Returns the rows
    /// that finished already (no new tokens asked for, a stop at the first token, or cancelled).
    pub fn admit(
        &mut self,
        specs: Vec<RowSpec>,
        on_token: &mut dyn FnMut(&TokenEvent) -> Control,
    ) -> Result<Vec<RowOutput>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        specs.iter().try_for_each(|s| self.validate(s))?;
        let batch = Batch::from_ids(specs.iter().map(|s| s.prompt_ids.clone()).collect())?;
        let mut cache = self.model.new_kv_cache(&batch.pad_left);
        let mut hooks = row_hooks(specs.iter(), &batch.pad_left);
        let want_all = specs.iter().any(|s| s.prompt_logprobs);
        let opts = RunOptions::default().cache(&mut cache).logits(if want_all {
            Logits::All
        } else {
            Logits::Last
        });
        let ids = batch.ids_tensor(self.model.device())?;
        let out = self.model.run(Input::Tokens(&ids), &mut hooks, opts)?;
        let last = out.last_logits()?.to_vec2::<f32>()?; // [B, V]
        let all = out.logits.as_ref();

        let mut finished = Vec::new();
        let mut joined = Vec::new(); // (index in the new cache, row)
        for (i, spec) in specs.into_iter().enumerate() {
            let prompt_logprobs = match (spec.prompt_logprobs, all) {
                (true, Some(all)) => prompt_logprobs(all, i, batch.pad_left[i], &spec)?,
                _ => Vec::new(),
            };
            let rng = match spec.sampling {
                Sampling::Sample { seed, .. } => Some(ChaCha8Rng::seed_from_u64(seed)),
                Sampling::Greedy => None,
            };
            let mut row = Active {
                spec,
                new_ids: Vec::new(),
                logprobs: Vec::new(),
                prompt_logprobs,
                emitted: 0,
                next: 0,
                rng,
            };
            if row.spec.max_new_tokens == 0 {
                finished.push(row.finish(String::new(), RowStop::MaxTokens));
                continue;
            }
            match take_token(self.model, self.tokenizer, &mut row, &last[i], on_token)? {
                Some((text, stop)) => finished.push(row.finish(text, stop)),
                None => joined.push((i, row)),
            }
        }
        if !joined.is_empty() {
            // The running rows' caches, then the new ones', as one left-padded batch.
            let mut parts = Vec::with_capacity(self.rows.len() + joined.len());
            if let Some(old) = &self.cache {
                for i in 0..self.rows.len() {
                    parts.push(old.row(i, old.len() - old.pad_left[i])?);
                }
            }
            for (i, _) in &joined {
                parts.push(cache.row(*i, cache.len() - batch.pad_left[*i])?);
            }
            self.cache = Some(KvCache::stack(&parts)?);
            self.rows.extend(joined.into_iter().map(|(_, r)| r));
        }
        Ok(finished)
    }

    /// Decodes one token of every running row (one forward pass). Returns the rows that
    /// finished.
    pub fn step(
        &mut self,
        on_token: &mut dyn FnMut(&TokenEvent) -> Control,
    ) -> Result<Vec<RowOutput>> {
        let Some(cache) = self.cache.as_mut() else {
            return Ok(Vec::new());
        };
        let b = self.rows.len();
        let next: Vec<u32> = self.rows.iter().map(|r| r.next).collect();
        let input = Tensor::from_vec(next, (b, 1), self.model.device())?;
        let mut hooks = row_hooks(self.rows.iter().map(|r| &r.spec), &cache.pad_left);
        let opts = RunOptions::default().cache(cache).logits(Logits::Last);
        let logits = self
            .model
            .run(Input::Tokens(&input), &mut hooks, opts)?
            .last_logits()?
            .to_vec2::<f32>()?; // [B, V]
        let (model, tokenizer) = (self.model, self.tokenizer);
        let mut stops = self
            .rows
            .iter_mut()
            .zip(&logits)
            .map(|(row, l)| take_token(model, tokenizer, row, l, on_token))
            .collect::<Result<Vec<_>>>()?;
        self.remove_where(|i| stops[i].take())
    }

    /// Stops every running row as cancelled (e.g. on shutdown) and returns them.
    pub fn cancel_all(&mut self) -> Vec<RowOutput> {
        self.cache = None;
        let tokenizer = self.tokenizer;
        std::mem::take(&mut self.rows)
            .into_iter()
            .map(|r| {
                let text = tokenizer.decode(&r.new_ids).unwrap_or_default();
                r.finish(text, RowStop::Cancelled)
            })
            .collect()
    }

    /// Removes the rows `stop_of` gives a stop for, compacting the cache.
    fn remove_where(
        &mut self,
        mut stop_of: impl FnMut(usize) -> Option<(String, RowStop)>,
    ) -> Result<Vec<RowOutput>> {
        let mut finished = Vec::new();
        let mut keep = Vec::new();
        let rows = std::mem::take(&mut self.rows);
        for (i, row) in rows.into_iter().enumerate() {
            match stop_of(i) {
                Some((text, stop)) => finished.push(row.finish(text, stop)),
                None => {
                    keep.push(i);
                    self.rows.push(row);
                }
            }
        }
        if finished.is_empty() {
            return Ok(finished);
        }
        self.cache = match (&self.cache, keep.is_empty()) {
            (Some(c), false) => {
                let parts = keep
                    .iter()
                    .map(|&i| c.row(i, c.len() - c.pad_left[i]))
                    .collect::<Result<Vec<_>>>()?;
                Some(KvCache::stack(&parts)?)
            }
            _ => None,
        };
        Ok(finished)
    }
}

/// Chooses a row's next token from its logits and tells the callback; returns the final
/// text and stop reason when the row is done.
fn take_token(
    model: &Model,
    tokenizer: &Tokenizer,
    row: &mut Active,
    logits: &[f32],
    on_token: &mut dyn FnMut(&TokenEvent) -> Control,
) -> Result<Option<(String, RowStop)>> {
    let id = match (&row.spec.sampling, row.rng.as_mut()) {
        (
            Sampling::Sample {
                temperature,
                top_k,
                top_p,
                ..
            },
            Some(rng),
        ) => sample(logits, *temperature, *top_k, *top_p, rng),
        _ => argmax(logits),
    };
    let token = token_logprob(logits, id, row.spec.top_logprobs);
    let text = tokenizer.decode(&row.new_ids)?;
    if row.spec.stop_at_eos && model.config().eos_token_id == Some(id) {
        let delta = text.get(row.emitted..).unwrap_or("");
        on_token(&TokenEvent {
            row: row.spec.id,
            token: &token,
            text_delta: delta,
            last: true,
        });
        return Ok(Some((text, RowStop::Eos)));
    }
    row.new_ids.push(id);
    row.next = id;
    let text = tokenizer.decode(&row.new_ids)?;
    let stop_at = row
        .spec
        .stop_strings
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    let (end, stop) = match stop_at {
        Some(cut) => (cut, Some(RowStop::StopString)),
        None if row.new_ids.len() >= row.spec.max_new_tokens => {
            (text.len(), Some(RowStop::MaxTokens))
        }
        None => (settled_len(&text, &row.spec.stop_strings), None),
    };
    let delta = text.get(row.emitted..end.max(row.emitted)).unwrap_or("");
    let control = on_token(&TokenEvent {
        row: row.spec.id,
        token: &token,
        text_delta: delta,
        last: stop.is_some(),
    });
    row.emitted = row.emitted.max(end);
    row.logprobs.push(token);
    Ok(match (stop, control) {
        (Some(stop), _) => Some((text[..end].to_string(), stop)),
        (None, Control::Stop) => Some((text[..row.emitted].to_string(), RowStop::Cancelled)),
        (None, Control::Continue) => None,
    })
}

/// Generates for every row together, admitting all at once, and returns the outputs in the
/// order of `specs`.
pub fn generate_many(
    model: &Model,
    tokenizer: &Tokenizer,
    specs: Vec<RowSpec>,
    on_token: &mut dyn FnMut(&TokenEvent) -> Control,
) -> Result<Vec<RowOutput>> {
    let order: Vec<RowId> = specs.iter().map(|s| s.id).collect();
    let mut gen = ManyGenerator::new(model, tokenizer);
    let mut done = gen.admit(specs, on_token)?;
    while !gen.is_empty() {
        done.extend(gen.step(on_token)?);
    }
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let k = done
            .iter()
            .position(|r| r.id == id)
            .ok_or_else(|| Error::invalid(format!("row {id} was given twice")))?;
        out.push(done.swap_remove(k));
    }
    Ok(out)
}

/// The rows' interventions, each restricted to its row and shifted by its padding.
fn row_hooks<'s>(specs: impl Iterator<Item = &'s RowSpec>, pad_left: &[usize]) -> Hooks {
    let mut hooks = Hooks::new();
    for (i, spec) in specs.enumerate() {
        for (point, iv) in &spec.interventions {
            let mut iv = iv.clone().rows([i]);
            if let Some(ps) = iv.selection.positions.as_mut() {
                ps.iter_mut().for_each(|p| *p += pad_left[i]);
            }
            hooks = hooks.intervene(*point, iv);
        }
    }
    hooks
}

/// Log-probabilities of row `i`'s prompt tokens from all-position logits `[B, T, V]`.
fn prompt_logprobs(
    all: &Tensor,
    i: usize,
    pad: usize,
    spec: &RowSpec,
) -> Result<Vec<Option<TokenLogprob>>> {
    let n = spec.prompt_ids.len();
    let mut out = vec![None];
    if n > 1 {
        // Position pad + k predicts token k + 1.
        let rows = all
            .narrow(0, i, 1)?
            .narrow(1, pad, n - 1)?
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec2::<f32>()?; // [n - 1, V]
        for (k, logits) in rows.iter().enumerate() {
            let id = spec.prompt_ids[k + 1];
            out.push(Some(token_logprob(logits, id, spec.top_logprobs)));
        }
    }
    Ok(out)
}

/// `log softmax(logits)[id]` and the `top` most likely tokens (ties to the lower id), in f64.
pub fn token_logprob(logits: &[f32], id: u32, top: usize) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_z = max
        + logits
            .iter()
            .map(|&l| (l as f64 - max).exp())
            .sum::<f64>()
            .ln();
    let lp = |i: usize| (logits[i] as f64 - log_z) as f32;
    let mut best = Vec::new();
    if top > 0 {
        let higher = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
        let mut order: Vec<usize> = (0..logits.len()).collect();
        let k = top.min(order.len());
        if k < order.len() {
            order.select_nth_unstable_by(k - 1, higher);
            order.truncate(k);
        }
        order.sort_by(higher);
        best = order.into_iter().map(|i| (i as u32, lp(i))).collect();
    }
    TokenLogprob {
        id,
        logprob: lp(id as usize),
        top: best,
    }
}

/// How much of `text` is settled: everything but a trailing incomplete character (decoded as
/// U+FFFD) or a tail that may still grow into a stop string.
fn settled_len(text: &str, stops: &[String]) -> usize {
    let trimmed = text.trim_end_matches('\u{FFFD}');
    let mut end = trimmed.len();
    for s in stops {
        for (k, _) in s.char_indices().skip(1) {
            if trimmed.ends_with(&s[..k]) {
                end = end.min(trimmed.len() - k);
            }
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_text_holds_back_a_possible_stop_string_and_broken_characters() {
        let stops = vec!["\n\nUser".to_string()];
        assert_eq!(settled_len("Paris is big\n", &stops), 12);
        assert_eq!(settled_len("Paris is big\n\nUs", &stops), 12);
        assert_eq!(settled_len("Paris is big.", &stops), 13);
        assert_eq!(settled_len("caf\u{FFFD}", &[]), 3);
    }

    #[test]
    fn token_logprobs_are_a_log_softmax_with_the_best_first() {
        let logits = [1.0f32, 3.0, 2.0, 3.0];
        let t = token_logprob(&logits, 2, 2);
        let z: f64 = logits.iter().map(|&l| (l as f64).exp()).sum();
        assert!((t.logprob as f64 - (2.0 - z.ln())).abs() < 1e-6);
        assert_eq!(t.top.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 3]);
    }
}
