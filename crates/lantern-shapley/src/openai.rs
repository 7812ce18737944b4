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

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Result, ShapleyError};
use crate::scorer::{LanguageModelScorer, ScoreRequest};

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Default number of prompts per HTTP request.
pub const DEFAULT_MAX_BATCH: usize = 32;

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
            .finish()
    }
}

/// One scored continuation: summed log-probability and token count.
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
        }
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

    /// Scores every request, one HTTP call per `max_batch` requests.
    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<Scored>> {
        let mut out = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(self.max_batch) {
            let texts: Vec<String> = chunk
                .iter()
                .map(|r| format!("{}{}", r.prompt, r.continuation))
                .collect();
            let response = self.post(&texts)?;
            let choices = self.choices(&response, chunk.len())?;
            for (req, choice) in chunk.iter().zip(choices) {
                out.push(self.score_choice(req, choice)?);
            }
        }
        Ok(out)
    }

    /// Sends one request, retrying once with `max_tokens: 1` if 0 is refused.
    fn post(&mut self, texts: &[String]) -> Result<Value> {
        match self.post_once(texts) {
            Err(ShapleyError::Http { status, body, .. })
                if self.max_tokens == 0
                    && (400..500).contains(&status)
                    && body.contains("max_tokens") =>
            {
                self.max_tokens = 1;
                self.post_once(texts)
            }
            other => other,
        }
    }

    fn post_once(&self, texts: &[String]) -> Result<Value> {
        let url = self.endpoint();
        let mut body = json!({
            "prompt": texts,
            "echo": true,
            "logprobs": 1,
            "max_tokens": self.max_tokens,
            "temperature": 0,
        });
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
