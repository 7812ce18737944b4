//! A [`LanguageModelScorer`] for OpenAI-compatible completions servers
//! (llama.cpp server, vLLM, …).
//!
//! # Protocol
//!
//! Each batch of requests becomes one `POST {base_url}/v1/completions` whose
//! `prompt` is the **array** of texts `prompt + continuation`, with
//! `echo: true`, `logprobs: 1`, `max_tokens: 0`, `temperature: 0` (and
//! `model` when set). The answer's `choices[k].logprobs.token_logprobs` and
//! `text_offset` give each echoed token's log-probability and its start
//! (in characters, as in the OpenAI API and vLLM). The scorer sums the
//! log-probabilities of the tokens starting at or after the end of the prompt
//! and before the end of the echoed text.
//!
//! * `max_tokens: 0` is tried first. If the server refuses it (an HTTP 4xx
//!   whose body mentions `max_tokens`), the scorer switches to `max_tokens: 1`
//!   for the rest of its life; the one generated token starts at or after the
//!   end of the echoed text and is ignored.
//! * A token that **straddles** the prompt/continuation boundary (starts
//!   inside the prompt, ends inside the continuation, e.g. `" Paris"` when the
//!   prompt ends with a space) is handled by [`Boundary`]: by default it is
//!   included (attributed to the continuation); [`Boundary::Error`] refuses it.
//! * A continuation with no token of its own gives
//!   [`ShapleyError::EmptyContinuation`].
//! * The prompt must contain at least one whole token, since the first echoed
//!   token has no log-probability.
//!
//! # Hardening for real servers
//!
//! * Chunks of `max_batch` texts are sent [`with_concurrency`](OpenAiScorer::with_concurrency)
//!   at a time (default 4) once the first chunk has settled how the server behaves.
//! * HTTP 429 and 5xx answers and dropped connections are retried
//!   [`with_retries`](OpenAiScorer::with_retries) times (default 3) with exponential backoff
//!   (a `Retry-After` header, when sent, is honoured up to 30 s).
//! * Scored `(prompt, continuation)` pairs are cached for the scorer's life.
//! * A server that refuses a **list** `prompt` (an error, or the wrong number of choices, as
//!   llama-cpp-python's server answers) is then sent one prompt per request; if it refuses a
//!   single prompt too, its error is returned.
//! * A server that treats `max_tokens: 0` as "no limit" (it generates tokens past the echoed
//!   text, as llama.cpp does) is sent `max_tokens: 1` from then on.
//! * [`with_echo_check`](OpenAiScorer::with_echo_check) (off by default; one probe per scorer):
//!   the log-probability the server *echoes* for a token must equal the one it reports when it
//!   *generates* that token greedily after the same text; a server whose prompt log-probabilities
//!   disagree (llama-cpp-python 0.3.36's do) is refused with
//!   [`ShapleyError::Scorer`] naming both numbers.
//!
//! `base_url` is the server root (`http://127.0.0.1:8080`); a trailing `/v1`
//! is accepted too. An API key, if set, is sent as `Authorization: Bearer`.
//!
//! ```no_run
//! use std::time::Duration;
//! use lantern_shapley::{LanguageModelScorer, OpenAiScorer, ScoreRequest};
//! let mut s = OpenAiScorer::new("http://127.0.0.1:8080")
//!     .with_model("qwen2.5-0.5b")
//!     .with_timeout(Duration::from_secs(30));
//! let lp = s.continuation_logprobs(&[ScoreRequest::new("The capital of France is", " Paris")])?;
//! # Ok::<(), lantern_shapley::ShapleyError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Result, ShapleyError};
use crate::scorer::{LanguageModelScorer, ScoreRequest};

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Default number of prompts per HTTP request.
pub const DEFAULT_MAX_BATCH: usize = 32;

/// Default number of HTTP requests in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Default number of retries of a request answered 429/5xx (or dropped).
pub const DEFAULT_RETRIES: u32 = 3;

/// Largest tolerated gap between a token's echoed and generated log-probabilities.
pub const ECHO_CHECK_TOLERANCE: f64 = 1e-3;

/// What to do with a token straddling the prompt/continuation boundary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Boundary {
    /// Count it as a continuation token (its log-probability is included).
    #[default]
    Include,
    /// Fail with [`ShapleyError::TokenBoundary`].
    Error,
}

/// Scorer backed by an OpenAI-compatible `/v1/completions` endpoint.
#[derive(Clone)]
pub struct OpenAiScorer {
    base_url: String,
    model: Option<String>,
    api_key: Option<String>,
    timeout: Duration,
    max_batch: usize,
    boundary: Boundary,
    max_tokens: u32,
    agent: ureq::Agent,
    concurrency: usize,
    retries: u32,
    backoff: Duration,
    /// `None` until the server has answered a list prompt (or refused one).
    list_prompts: Option<bool>,
    echo_check: bool,
    echo_checked: bool,
    /// Whether a first chunk has settled `max_tokens`.
    settled: bool,
    cache: HashMap<(String, String), Scored>,
}

impl fmt::Debug for OpenAiScorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiScorer")
            .field("endpoint", &self.endpoint())
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_batch", &self.max_batch)
            .field("boundary", &self.boundary)
            .field("max_tokens", &self.max_tokens)
            .field("concurrency", &self.concurrency)
            .field("retries", &self.retries)
            .field("list_prompts", &self.list_prompts)
            .field("echo_check", &self.echo_check)
            .field("cached", &self.cache.len())
            .finish()
    }
}

/// One scored continuation: summed log-probability and token count.
#[derive(Clone, Copy, Debug)]
struct Scored {
    logprob: f64,
    tokens: usize,
}

impl OpenAiScorer {
    /// A scorer for the server at `base_url` with default settings.
    pub fn new(base_url: impl Into<String>) -> Self {
        OpenAiScorer {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            model: None,
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            max_batch: DEFAULT_MAX_BATCH,
            boundary: Boundary::default(),
            max_tokens: 0,
            agent: build_agent(DEFAULT_TIMEOUT),
            concurrency: DEFAULT_CONCURRENCY,
            retries: DEFAULT_RETRIES,
            backoff: Duration::from_millis(250),
            list_prompts: None,
            echo_check: false,
            echo_checked: false,
            settled: false,
            cache: HashMap::new(),
        }
    }

    /// Sets how many HTTP requests may be in flight at once (at least 1).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets how many times a 429/5xx answer or a dropped connection is retried, and the first
    /// backoff (doubled at each retry).
    pub fn with_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// Checks once, before the first scores, that the server's echoed prompt log-probabilities
    /// agree with its generation log-probabilities (see the module docs).
    pub fn with_echo_check(mut self, on: bool) -> Self {
        self.echo_check = on;
        self
    }

    /// Whether the server takes a list `prompt` (`None`: not known yet).
    pub fn list_prompts(&self) -> Option<bool> {
        self.list_prompts
    }

    /// How many scored continuations are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Sets the `model` field of requests.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets a bearer API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the per-request timeout (connect, read and write).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.agent = build_agent(timeout);
        self
    }

    /// Sets the maximum number of prompts per HTTP request (at least 1).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets the policy for tokens straddling the prompt/continuation boundary.
    pub fn with_boundary(mut self, boundary: Boundary) -> Self {
        self.boundary = boundary;
        self.cache.clear();
        self
    }

    /// The full completions URL.
    pub fn endpoint(&self) -> String {
        if self.base_url.ends_with("/v1") {
            format!("{}/completions", self.base_url)
        } else {
            format!("{}/v1/completions", self.base_url)
        }
    }

    /// The `max_tokens` currently sent (0, or 1 after a refusal of 0).
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens
    }

    /// Scores every request: cached ones from the cache, the rest in chunks of `max_batch`
    /// texts, the first chunk alone (it settles `max_tokens` and list-prompt support), the
    /// others `concurrency` at a time.
    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<Scored>> {
        let key = |r: &ScoreRequest| (r.prompt.clone(), r.continuation.clone());
        let mut todo: Vec<&ScoreRequest> = Vec::new();
        let mut queued = std::collections::HashSet::new();
        for r in requests {
            if !self.cache.contains_key(&key(r)) && queued.insert(key(r)) {
                todo.push(r);
            }
        }
        if self.echo_check && !self.echo_checked && !todo.is_empty() {
            self.check_echo(todo[0])?;
            self.echo_checked = true;
        }
        let mut rest: &[&ScoreRequest] = &todo;
        // Settle the server's behaviour (max_tokens, list prompts) on one chunk at a time before
        // sending many at once.
        while !rest.is_empty() && (!self.settled || (self.list_prompts.is_none() && rest.len() > 1))
        {
            let n = rest.len().min(self.max_batch);
            let scored = self.score_first_chunk(&rest[..n])?;
            self.remember(&rest[..n], scored);
            rest = &rest[n..];
            self.settled = true;
            if n == 1 && self.max_batch == 1 {
                break;
            }
        }
        let per_request = if self.list_prompts == Some(false) {
            1
        } else {
            self.max_batch
        };
        let chunks: Vec<&[&ScoreRequest]> = rest.chunks(per_request).collect();
        for wave in chunks.chunks(self.concurrency) {
            let this = &*self;
            let results: Vec<Result<Vec<Scored>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = wave
                    .iter()
                    .map(|chunk| scope.spawn(move || this.score_chunk(chunk)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(ShapleyError::Scorer("a scoring thread panicked".into()))
                        })
                    })
                    .collect()
            });
            for (chunk, scored) in wave.iter().zip(results) {
                self.remember(chunk, scored?);
            }
        }
        Ok(requests.iter().map(|r| self.cache[&key(r)]).collect())
    }

    fn remember(&mut self, chunk: &[&ScoreRequest], scored: Vec<Scored>) {
        for (r, s) in chunk.iter().zip(scored) {
            self.cache
                .insert((r.prompt.clone(), r.continuation.clone()), s);
        }
    }

    /// The first chunk: falls back to `max_tokens: 1` if 0 is refused or means "no limit", and
    /// to one prompt per request if a list prompt is refused.
    fn score_first_chunk(&mut self, chunk: &[&ScoreRequest]) -> Result<Vec<Scored>> {
        let as_list = self.list_prompts != Some(false);
        let answer = match self.send(chunk, as_list) {
            Err(ShapleyError::Http { status, body, .. })
                if self.max_tokens == 0
                    && (400..500).contains(&status)
                    && body.contains("max_tokens") =>
            {
                self.max_tokens = 1;
                self.send(chunk, as_list)
            }
            other => other,
        };
        let answer = match answer {
            Ok(v) => Ok(v),
            Err(e) if as_list && chunk.len() > 1 && list_refusal(&e) => {
                // Does the server take one prompt at a time?
                match self.send(&chunk[..1], false) {
                    Ok(one) => {
                        self.list_prompts = Some(false);
                        let first = self.choices(&one, 1)?;
                        if self.max_tokens == 0 && generated_past(chunk[0], first[0]) {
                            self.max_tokens = 1; // 0 meant "no limit" (see below)
                        }
                        return chunk
                            .iter()
                            .map(|r| self.score_chunk(&[*r]).map(|mut v| v.remove(0)))
                            .collect();
                    }
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }?;
        let choices = self.choices(&answer, chunk.len())?;
        if self.max_tokens == 0
            && chunk
                .iter()
                .zip(&choices)
                .any(|(r, c)| generated_past(r, c))
        {
            // The server read `max_tokens: 0` as "no limit": ask for one token from now on.
            self.max_tokens = 1;
        }
        if as_list && chunk.len() > 1 {
            self.list_prompts = Some(true);
        }
        chunk
            .iter()
            .zip(choices)
            .map(|(r, c)| self.score_choice(r, c))
            .collect()
    }

    /// Scores one chunk (no change to the scorer's settings).
    fn score_chunk(&self, chunk: &[&ScoreRequest]) -> Result<Vec<Scored>> {
        let as_list = self.list_prompts != Some(false);
        let answer = self.send(chunk, as_list)?;
        let choices = self.choices(&answer, chunk.len())?;
        chunk
            .iter()
            .zip(choices)
            .map(|(r, c)| self.score_choice(r, c))
            .collect()
    }

    /// Posts one chunk's texts (as a list, or as one string).
    fn send(&self, chunk: &[&ScoreRequest], as_list: bool) -> Result<Value> {
        let texts: Vec<String> = chunk
            .iter()
            .map(|r| format!("{}{}", r.prompt, r.continuation))
            .collect();
        let prompt = if as_list || texts.len() != 1 {
            json!(texts)
        } else {
            json!(texts[0])
        };
        self.post_retrying(json!({
            "prompt": prompt,
            "echo": true,
            "logprobs": 1,
            "max_tokens": self.max_tokens,
            "temperature": 0,
        }))
    }

    /// Posts a body, retrying 429/5xx answers and dropped connections with backoff.
    fn post_retrying(&self, body: Value) -> Result<Value> {
        let mut delay = self.backoff;
        let mut attempt = 0;
        loop {
            let (result, retry_after) = self.post_once(&body);
            match result {
                Err(ShapleyError::Http { status, .. })
                    if attempt < self.retries && (status == 429 || status >= 500) => {}
                Err(ShapleyError::ServerUnreachable { .. }) if attempt < self.retries => {}
                other => return other,
            }
            attempt += 1;
            // The server's `Retry-After` (bounded) wins over our own backoff.
            std::thread::sleep(retry_after.unwrap_or(delay));
            delay = delay.saturating_mul(2);
        }
    }

    /// One POST; on an error status, also the server's `Retry-After` (at most 30 s).
    fn post_once(&self, body: &Value) -> (Result<Value>, Option<Duration>) {
        let mut retry_after = None;
        let result = self.post_once_inner(body, &mut retry_after);
        (result, retry_after)
    }

    fn post_once_inner(&self, body: &Value, retry_after: &mut Option<Duration>) -> Result<Value> {
        let url = self.endpoint();
        let mut body = body.clone();
        if let Some(model) = &self.model {
            body["model"] = json!(model);
        }
        let mut req = self
            .agent
            .post(&url)
            .set("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            req = req.set("Authorization", &format!("Bearer {key}"));
        }
        let text = match req.send_string(&body.to_string()) {
            Ok(resp) => resp.into_string().map_err(|e| ShapleyError::BadResponse {
                url: url.clone(),
                detail: format!("cannot read body: {e}"),
            })?,
            Err(ureq::Error::Status(status, resp)) => {
                *retry_after = resp
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(30)));
                let mut body = resp.into_string().unwrap_or_default();
                if body.len() > 500 {
                    let cut = (0..=500)
                        .rev()
                        .find(|&i| body.is_char_boundary(i))
                        .unwrap_or(0);
                    body.truncate(cut);
                    body.push('…');
                }
                return Err(ShapleyError::Http { url, status, body });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(ShapleyError::ServerUnreachable {
                    url,
                    message: t.to_string(),
                })
            }
        };
        serde_json::from_str(&text).map_err(|e| ShapleyError::BadResponse {
            url,
            detail: format!("invalid JSON: {e}"),
        })
    }

    /// The echo check (see the module docs) on the text of `r`.
    fn check_echo(&mut self, r: &ScoreRequest) -> Result<()> {
        let text = format!("{}{}", r.prompt, r.continuation);
        let bad = |detail: String| ShapleyError::BadResponse {
            url: self.endpoint(),
            detail,
        };
        let generated = self.post_retrying(json!({
            "prompt": text, "max_tokens": 1, "temperature": 0, "logprobs": 1,
        }))?;
        let choice = generated
            .pointer("/choices/0")
            .ok_or_else(|| bad("no `choices` in the answer to a one-token generation".into()))?;
        let token = choice["text"].as_str().unwrap_or_default().to_string();
        let lp_gen = choice
            .pointer("/logprobs/token_logprobs/0")
            .and_then(Value::as_f64)
            .ok_or_else(|| {
                ShapleyError::MissingLogprobs {
                    url: self.endpoint(),
                    detail: "the server gives no log-probability for a generated token                              (`logprobs: 1`, `echo: false`)"
                        .into(),
                }
            })?;
        if token.is_empty() {
            return Ok(()); // nothing to compare (e.g. an end-of-text token)
        }
        let probe = ScoreRequest::new(text.clone(), token.clone());
        let scored = self.score_first_chunk(&[&probe])?;
        let lp_echo = scored[0].logprob;
        if scored[0].tokens == 1 && (lp_echo - lp_gen).abs() > ECHO_CHECK_TOLERANCE {
            return Err(ShapleyError::Scorer(format!(
                "{}: the server's echoed prompt log-probabilities are not the model's: after \
                 {:?} it generates {token:?} with log-probability {lp_gen:.4} but echoes that \
                 token with {lp_echo:.4}; Shapley values from this server would be wrong \
                 (llama-cpp-python's server is known to do this; use a server whose `echo` \
                 log-probabilities are right, e.g. `lantern serve`)",
                self.endpoint(),
                text
            )));
        }
        Ok(())
    }

    /// The `choices`, ordered by their `index` field (or position).
    fn choices<'v>(&self, response: &'v Value, expected: usize) -> Result<Vec<&'v Value>> {
        let bad = |detail: String| ShapleyError::BadResponse {
            url: self.endpoint(),
            detail,
        };
        let choices = response
            .get("choices")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `choices` array".into()))?;
        if choices.len() != expected {
            return Err(bad(format!(
                "{} choices for {expected} prompts",
                choices.len()
            )));
        }
        let mut ordered: Vec<Option<&Value>> = vec![None; expected];
        for (pos, c) in choices.iter().enumerate() {
            let idx = match c.get("index") {
                Some(i) => i
                    .as_u64()
                    .map(|i| i as usize)
                    .ok_or_else(|| bad(format!("choice {pos} has a non-integer `index`")))?,
                None => pos,
            };
            match ordered.get_mut(idx) {
                Some(slot @ None) => *slot = Some(c),
                _ => return Err(bad(format!("duplicate or out-of-range choice index {idx}"))),
            }
        }
        Ok(ordered.into_iter().flatten().collect())
    }

    fn score_choice(&self, req: &ScoreRequest, choice: &Value) -> Result<Scored> {
        let missing = |detail: String| ShapleyError::MissingLogprobs {
            url: self.endpoint(),
            detail,
        };
        let logprobs = choice
            .get("logprobs")
            .filter(|v| !v.is_null())
            .ok_or_else(|| missing("a choice has no `logprobs`".into()))?;
        let lps = logprobs
            .get("token_logprobs")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("no `logprobs.token_logprobs`".into()))?;
        let offsets = logprobs
            .get("text_offset")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("no `logprobs.text_offset`".into()))?;
        if lps.len() != offsets.len() {
            return Err(ShapleyError::BadResponse {
                url: self.endpoint(),
                detail: format!(
                    "{} token_logprobs but {} text_offset entries",
                    lps.len(),
                    offsets.len()
                ),
            });
        }
        let offsets: Vec<usize> = offsets
            .iter()
            .map(|o| o.as_u64().map(|o| o as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| ShapleyError::BadResponse {
                url: self.endpoint(),
                detail: "non-integer `text_offset`".into(),
            })?;
        let p_len = req.prompt.chars().count();
        let f_len = p_len + req.continuation.chars().count();
        if f_len > 0 && offsets.first() != Some(&0) {
            return Err(missing(format!(
                "the prompt was not echoed (first text_offset is {:?}, expected 0)",
                offsets.first()
            )));
        }
        let mut scored = Scored {
            logprob: 0.0,
            tokens: 0,
        };
        for (k, (&start, lp)) in offsets.iter().zip(lps).enumerate() {
            if start >= f_len {
                break; // generated token (max_tokens: 1)
            }
            let end = offsets.get(k + 1).copied().unwrap_or(f_len).min(f_len);
            let in_continuation = start >= p_len;
            if !in_continuation && end <= p_len {
                continue; // prompt token
            }
            if !in_continuation && self.boundary == Boundary::Error {
                return Err(ShapleyError::TokenBoundary {
                    boundary: p_len,
                    token_start: start,
                });
            }
            let lp = lp.as_f64().ok_or_else(|| {
                if k == 0 {
                    ShapleyError::Scorer(format!(
                        "the first token of {:?} covers the whole prompt and has no \
                         log-probability; the prompt must contain at least one whole token",
                        req.prompt
                    ))
                } else {
                    missing(format!("token {k} has a null log-probability"))
                }
            })?;
            scored.logprob += lp;
            scored.tokens += 1;
        }
        Ok(scored)
    }
}

/// Whether an error may mean "this server takes no list prompt" (llama-cpp-python answers 500;
/// others may answer 4xx or fewer choices than prompts).
fn list_refusal(e: &ShapleyError) -> bool {
    match e {
        ShapleyError::Http { status, .. } => (400..600).contains(status) && *status != 429,
        ShapleyError::BadResponse { detail, .. } => detail.contains("choices for"),
        _ => false,
    }
}

/// Whether a choice holds tokens generated past the echoed text of `r`.
fn generated_past(r: &ScoreRequest, choice: &Value) -> bool {
    let end = r.prompt.chars().count() + r.continuation.chars().count();
    choice
        .pointer("/logprobs/text_offset")
        .and_then(Value::as_array)
        .is_some_and(|offs| {
            offs.iter()
                .any(|o| o.as_u64().is_some_and(|o| o as usize >= end))
        })
}

fn build_agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(timeout).build()
}

impl LanguageModelScorer for OpenAiScorer {
    fn continuation_logprobs(&mut self, requests: &[ScoreRequest]) -> Result<Vec<f64>> {
        let scored = self.score(requests)?;
        requests
            .iter()
            .zip(scored)
            .map(|(r, s)| {
                if s.tokens == 0 {
                    Err(ShapleyError::EmptyContinuation {
                        continuation: r.continuation.clone(),
                    })
                } else {
                    Ok(s.logprob)
                }
            })
            .collect()
    }

    fn n_continuation_tokens(&mut self, prompt: &str, continuation: &str) -> Result<usize> {
        let s = self.score(&[ScoreRequest::new(prompt, continuation)])?;
        Ok(s.first().map_or(0, |s| s.tokens))
    }
}
