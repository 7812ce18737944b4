//! Response bodies in the OpenAI formats: completions (with `logprobs`/`echo`), chat
//! completions, and both as server-sent event streams.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use lantern_engine::generate_many::TokenLogprob;
use lantern_engine::{RowOutput, RowStop, Tokenizer};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::{ApiError, ApiResult};
use crate::worker::Event;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// What every response of one request carries.
pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// The interventions the request ran with.
    pub interventions: Vec<String>,
}

impl Meta {
    pub fn new(prefix: &str, model: &str, interventions: Vec<String>) -> Self {
        Meta {
            id: format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model: model.to_string(),
            interventions,
        }
    }
    fn lantern(&self) -> Value {
        json!({"interventions": self.interventions})
    }
}

/// Waits for a job's outputs.
pub async fn collect(mut rx: UnboundedReceiver<Event>) -> ApiResult<Vec<RowOutput>> {
    while let Some(e) = rx.recv().await {
        match e {
            Event::Token { .. } => {}
            Event::Done(out) => return Ok(out),
            Event::Failed(m) => return Err(ApiError::server(m)),
        }
    }
    Err(ApiError::server("the model thread stopped"))
}

fn finish_reason(stop: RowStop) -> &'static str {
    match stop {
        RowStop::MaxTokens => "length",
        RowStop::StopString | RowStop::Eos | RowStop::Cancelled => "stop",
    }
}

fn usage(outputs: &[RowOutput], n: usize) -> Value {
    // Each prompt counts once however many choices it has.
    let prompt: usize = outputs
        .iter()
        .step_by(n.max(1))
        .map(|o| o.prompt_ids.len())
        .sum();
    let completion: usize = outputs.iter().map(|o| o.new_ids.len()).sum();
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// Token texts as prefix differences of the decoded sequence, so that they concatenate to the
/// decoded text (a token holding half a UTF-8 character shows as "" and the next one carries
/// the whole character); with their character offsets from `offset0`.
fn token_texts(tokenizer: &Tokenizer, ids: &[u32], offset0: usize) -> (Vec<String>, Vec<usize>) {
    let mut texts = Vec::with_capacity(ids.len());
    let mut offsets = Vec::with_capacity(ids.len());
    let mut prev = String::new();
    let mut at = offset0;
    for k in 0..ids.len() {
        let cur = tokenizer.decode(&ids[..=k]).unwrap_or_default();
        let piece = if cur.starts_with(&prev) && !cur.ends_with('\u{FFFD}') {
            cur[prev.len()..].to_string()
        } else if cur.ends_with('\u{FFFD}') {
            String::new()
        } else {
            cur.chars().skip(prev.chars().count()).collect()
        };
        offsets.push(at);
        at += piece.chars().count();
        if !cur.ends_with('\u{FFFD}') {
            prev = cur;
        }
        texts.push(piece);
    }
    (texts, offsets)
}

fn top_map(tokenizer: &Tokenizer, t: &TokenLogprob) -> Value {
    let mut m = Map::new();
    for &(id, lp) in &t.top {
        m.entry(tokenizer.token_text(id)).or_insert(json!(lp));
    }
    Value::Object(m)
}

/// The legacy completions `logprobs` object of one choice.
fn completion_logprobs(tokenizer: &Tokenizer, out: &RowOutput, echo: bool, top: usize) -> Value {
    let mut tokens = Vec::new();
    let mut lps: Vec<Value> = Vec::new();
    let mut tops: Vec<Value> = Vec::new();
    let mut offsets = Vec::new();
    let mut at = 0;
    if echo {
        // The BOS the tokenizer adds is not part of the prompt's text.
        let skip = usize::from(
            tokenizer.bos().is_some() && out.prompt_ids.first() == tokenizer.bos().as_ref(),
        );
        let ids = &out.prompt_ids[skip..];
        let (texts, offs) = token_texts(tokenizer, ids, 0);
        for (k, (text, off)) in texts.into_iter().zip(offs).enumerate() {
            let lp = out.prompt_logprobs.get(k + skip).cloned().flatten();
            tokens.push(text);
            offsets.push(off);
            lps.push(lp.as_ref().map_or(Value::Null, |t| json!(t.logprob)));
            tops.push(match (&lp, top) {
                (Some(t), 1..) => top_map(tokenizer, t),
                _ => Value::Null,
            });
        }
        at = offsets.last().map_or(0, |&o| {
            o + tokens.last().map_or(0, |t: &String| t.chars().count())
        });
    }
    let (texts, offs) = token_texts(tokenizer, &out.new_ids, at);
    let end = at + out.text.chars().count();
    for ((text, off), t) in texts.into_iter().zip(offs).zip(&out.logprobs) {
        if off >= end && out.stop == RowStop::StopString {
            break; // the stop string and after
        }
        tokens.push(text);
        offsets.push(off);
        lps.push(json!(t.logprob));
        tops.push(if top > 0 {
            top_map(tokenizer, t)
        } else {
            Value::Null
        });
    }
    json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
}

/// A `text_completion` body. `outputs` are prompt-major: prompt p's choice k is `p * n + k`.
pub fn completion(
    meta: &Meta,
    tokenizer: &Tokenizer,
    outputs: &[RowOutput],
    n: usize,
    echo: bool,
    logprobs: Option<usize>,
) -> Value {
    let choices: Vec<Value> = outputs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let prompt_text = if echo {
                let skip = usize::from(
                    tokenizer.bos().is_some() && out.prompt_ids.first() == tokenizer.bos().as_ref(),
                );
                tokenizer
                    .decode(&out.prompt_ids[skip..])
                    .unwrap_or_default()
            } else {
                String::new()
            };
            json!({
                "index": i,
                "text": format!("{prompt_text}{}", out.text),
                "logprobs": logprobs.map(|k| completion_logprobs(tokenizer, out, echo, k)),
                "finish_reason": finish_reason(out.stop),
            })
        })
        .collect();
    json!({
        "id": meta.id, "object": "text_completion", "created": meta.created, "model": meta.model,
        "choices": choices, "usage": usage(outputs, n), "lantern": meta.lantern(),
    })
}

/// A `chat.completion` body.
pub fn chat(
    meta: &Meta,
    tokenizer: &Tokenizer,
    outputs: &[RowOutput],
    top: Option<usize>,
) -> Value {
    let choices: Vec<Value> = outputs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let logprobs = top.map(|k| {
                let (texts, _) = token_texts(tokenizer, &out.new_ids, 0);
                let content: Vec<Value> = texts
                    .iter()
                    .zip(&out.logprobs)
                    .map(|(text, t)| {
                        let alts: Vec<Value> = t
                            .top
                            .iter()
                            .take(k)
                            .map(|&(id, lp)| {
                                let s = tokenizer.token_text(id);
                                json!({"token": s, "logprob": lp, "bytes": s.as_bytes()})
                            })
                            .collect();
                        json!({"token": text, "logprob": t.logprob, "bytes": text.as_bytes(), "top_logprobs": alts})
                    })
                    .collect();
                json!({"content": content})
            });
            json!({
                "index": i,
                "message": {"role": "assistant", "content": out.text},
                "logprobs": logprobs,
                "finish_reason": finish_reason(out.stop),
            })
        })
        .collect();
    json!({
        "id": meta.id, "object": "chat.completion", "created": meta.created, "model": meta.model,
        "choices": choices, "usage": usage(outputs, outputs.len()), "lantern": meta.lantern(),
    })
}

/// Streams a job as server-sent events: one chunk per token with text, a last chunk per choice
/// with its `finish_reason`, then `[DONE]`. Dropping the stream (the client left) closes the
/// job's channel, which stops its rows.
pub fn stream_completion(
    meta: Meta,
    rx: UnboundedReceiver<Event>,
    n_rows: usize,
    chat: bool,
) -> Response {
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = move |meta: &Meta, choice: Value| -> SseEvent {
        let body = json!({
            "id": meta.id, "object": object, "created": meta.created, "model": meta.model,
            "choices": [choice], "lantern": meta.lantern(),
        });
        SseEvent::default().data(body.to_string())
    };
    let choice = move |i: usize, text: &str, finish: Option<&str>, first: bool| -> Value {
        if chat {
            let delta = match (first, finish) {
                (true, _) => json!({"role": "assistant", "content": text}),
                (false, Some(_)) if text.is_empty() => json!({}),
                _ => json!({"content": text}),
            };
            json!({"index": i, "delta": delta, "logprobs": null, "finish_reason": finish})
        } else {
            json!({"index": i, "text": text, "logprobs": null, "finish_reason": finish})
        }
    };
    struct St {
        rx: UnboundedReceiver<Event>,
        meta: Meta,
        started: Vec<bool>,
        pending: std::collections::VecDeque<SseEvent>,
        finished: bool,
    }
    let st = St {
        rx,
        meta,
        started: vec![false; n_rows],
        pending: Default::default(),
        finished: false,
    };
    let stream = futures_util::stream::unfold(st, move |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok::<_, Infallible>(e), st));
            }
            if st.finished {
                return None;
            }
            match st.rx.recv().await {
                Some(Event::Token { row, delta, .. }) => {
                    let first = chat && !st.started[row];
                    if delta.is_empty() && !first {
                        continue;
                    }
                    st.started[row] = true;
                    let c = choice(row, &delta, None, first);
                    st.pending.push_back(chunk(&st.meta, c));
                }
                Some(Event::Done(outputs)) => {
                    for (i, out) in outputs.iter().enumerate() {
                        let first = chat && !st.started[i];
                        let c = choice(i, "", Some(finish_reason(out.stop)), first);
                        st.pending.push_back(chunk(&st.meta, c));
                    }
                    st.pending.push_back(SseEvent::default().data("[DONE]"));
                    st.finished = true;
                }
                Some(Event::Failed(m)) => {
                    let e = ApiError::server(m);
                    st.pending
                        .push_back(SseEvent::default().data(e.body().to_string()));
                    st.pending.push_back(SseEvent::default().data("[DONE]"));
                    st.finished = true;
                }
                None => {
                    let e = ApiError::server("the model thread stopped");
                    st.pending
                        .push_back(SseEvent::default().data(e.body().to_string()));
                    st.finished = true;
                }
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
