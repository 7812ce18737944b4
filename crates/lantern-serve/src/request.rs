//! The request bodies of `/v1/completions` and `/v1/chat/completions`, checked field by field
//! (a bad field gets a 400 naming it) and turned into engine rows.

use lantern_engine::{Sampling, Tokenizer};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::steer::LanternExt;

/// Most alternatives per token (OpenAI allows 5 for completions, 20 for chat).
pub const MAX_TOP_LOGPROBS: usize = 20;
/// Most choices per prompt.
pub const MAX_N: usize = 16;

/// `POST /v1/completions`.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Value,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Not in OpenAI's API; vLLM and llama.cpp accept it.
    pub top_k: Option<i64>,
    pub seed: Option<i64>,
    pub stop: Option<Value>,
    pub n: Option<i64>,
    pub logprobs: Option<i64>,
    #[serde(default)]
    pub echo: bool,
    #[serde(default)]
    pub stream: bool,
    pub lantern: Option<LanternExt>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub seed: Option<i64>,
    pub stop: Option<Value>,
    pub n: Option<i64>,
    #[serde(default)]
    pub logprobs: bool,
    pub top_logprobs: Option<i64>,
    #[serde(default)]
    pub stream: bool,
    pub lantern: Option<LanternExt>,
}

#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    /// A string, or a list of `{"type": "text", "text": ...}` parts.
    pub content: Value,
}

impl ChatMessage {
    pub fn text(&self) -> ApiResult<String> {
        match &self.content {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Ok(String::new()),
            Value::Array(parts) => parts
                .iter()
                .map(|p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => Ok(t.as_str()),
                    _ => Err(ApiError::invalid(
                        Some("messages"),
                        "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported",
                    )),
                })
                .collect::<ApiResult<Vec<_>>>()
                .map(|v| v.concat()),
            _ => Err(ApiError::invalid(
                Some("messages"),
                "a message's content is a string or a list of text parts",
            )),
        }
    }
}

/// Parses a JSON body, naming what is wrong.
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid(None, format!("the request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            None,
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid(None, format!("bad request: {e}")))
}

/// The settings shared by both endpoints, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_tokens: usize,
    pub sampling: Sampling,
    pub stop: Vec<String>,
    pub n: usize,
}

impl Settings {
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        max_tokens: Option<i64>,
        default_max_tokens: usize,
        temperature: Option<f64>,
        top_p: Option<f64>,
        top_k: Option<i64>,
        seed: Option<i64>,
        stop: Option<&Value>,
        n: Option<i64>,
    ) -> ApiResult<Self> {
        let max_tokens = match max_tokens {
            None => default_max_tokens,
            Some(m) if m < 0 => {
                return Err(ApiError::invalid(
                    Some("max_tokens"),
                    format!("max_tokens must be 0 or more, got {m}"),
                ))
            }
            Some(m) => m as usize,
        };
        let temperature = temperature.unwrap_or(1.0);
        if !(temperature >= 0.0 && temperature.is_finite()) {
            return Err(ApiError::invalid(
                Some("temperature"),
                format!("temperature must be 0 or more, got {temperature}"),
            ));
        }
        if let Some(p) = top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(ApiError::invalid(
                    Some("top_p"),
                    format!("top_p must be in (0, 1], got {p}"),
                ));
            }
        }
        let top_k = match top_k {
            None | Some(0) | Some(-1) => None,
            Some(k) if k > 0 => Some(k as usize),
            Some(k) => {
                return Err(ApiError::invalid(
                    Some("top_k"),
                    format!("top_k must be positive (or 0/-1 for none), got {k}"),
                ))
            }
        };
        let seed = match seed {
            None => 0,
            Some(s) if s >= 0 => s as u64,
            Some(s) => {
                return Err(ApiError::invalid(
                    Some("seed"),
                    format!("seed must be 0 or more, got {s}"),
                ))
            }
        };
        // Temperature 0 is greedy decoding (top_p/top_k then change nothing).
        let sampling = if temperature == 0.0 {
            Sampling::Greedy
        } else {
            Sampling::Sample {
                temperature,
                top_k,
                top_p,
                seed,
            }
        };
        let stop = match stop {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ApiError::invalid(Some("stop"), "stop is a string or a list of strings")
                })?,
            Some(_) => {
                return Err(ApiError::invalid(
                    Some("stop"),
                    "stop is a string or a list of strings",
                ))
            }
        };
        if stop.len() > 4 || stop.iter().any(String::is_empty) {
            return Err(ApiError::invalid(
                Some("stop"),
                "at most 4 stop sequences, none empty",
            ));
        }
        let n = match n {
            None => 1,
            Some(n) if (1..=MAX_N as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(ApiError::invalid(
                    Some("n"),
                    format!("n must be between 1 and {MAX_N}, got {n}"),
                ))
            }
        };
        Ok(Settings {
            max_tokens,
            sampling,
            stop,
            n,
        })
    }

    /// The sampling of choice `k`: its own seed (`seed + k`), so `n` sampled choices differ.
    pub fn sampling_for(&self, k: usize) -> Sampling {
        match &self.sampling {
            Sampling::Sample {
                temperature,
                top_k,
                top_p,
                seed,
            } => Sampling::Sample {
                temperature: *temperature,
                top_k: *top_k,
                top_p: *top_p,
                seed: seed.wrapping_add(k as u64),
            },
            Sampling::Greedy => Sampling::Greedy,
        }
    }
}

/// A completions `prompt` (string, list of strings, token ids, or lists of token ids) as token
/// ids per prompt.
pub fn prompts(prompt: &Value, tokenizer: &Tokenizer) -> ApiResult<Vec<Vec<u32>>> {
    let bad = |m: &str| ApiError::invalid(Some("prompt"), m.to_string());
    let encode = |s: &str| -> ApiResult<Vec<u32>> {
        if s.is_empty() {
            return Err(bad("a prompt is empty"));
        }
        tokenizer
            .encode(s)
            .map_err(|e| ApiError::invalid(Some("prompt"), e.to_string()))
    };
    let ids = |a: &[Value]| -> ApiResult<Vec<u32>> {
        a.iter()
            .map(|v| v.as_u64().and_then(|i| u32::try_from(i).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("a token-id prompt holds something other than token ids"))
    };
    let out =
        match prompt {
            Value::String(s) => vec![encode(s)?],
            Value::Array(items) if items.is_empty() => return Err(bad("the prompt list is empty")),
            Value::Array(items) if items.iter().all(Value::is_string) => items
                .iter()
                .map(|v| encode(v.as_str().unwrap_or_default()))
                .collect::<ApiResult<_>>()?,
            Value::Array(items) if items.iter().all(Value::is_number) => vec![ids(items)?],
            Value::Array(items) if items.iter().all(Value::is_array) => items
                .iter()
                .map(|v| ids(v.as_array().map(Vec::as_slice).unwrap_or_default()))
                .collect::<ApiResult<_>>()?,
            _ => return Err(bad(
                "prompt is a string, a list of strings, a list of token ids or a list of lists \
                 of token ids",
            )),
        };
    if out.iter().any(Vec::is_empty) {
        return Err(bad("a prompt is empty"));
    }
    Ok(out)
}

/// `logprobs` of a completions request: how many alternatives (None: no logprobs).
pub fn completion_logprobs(logprobs: Option<i64>) -> ApiResult<Option<usize>> {
    match logprobs {
        None => Ok(None),
        Some(k) if (0..=MAX_TOP_LOGPROBS as i64).contains(&k) => Ok(Some(k as usize)),
        Some(k) => Err(ApiError::invalid(
            Some("logprobs"),
            format!("logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {k}"),
        )),
    }
}
