//! The OpenAI-compatible backend against a mock server on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use lantern_shapley::{
    exact, Absent, Boundary, ExactOptions, LanguageModelScorer, OpenAiScorer, PromptGame,
    ScoreRequest, ShapleyError, Template, ValueKind,
};
use serde_json::{json, Value};

/// A recorded request: headers (lower-cased names) and JSON body.
#[derive(Clone, Debug)]
struct Seen {
    headers: Vec<(String, String)>,
    body: Value,
}

type Handler = dyn Fn(&Value) -> (u16, String) + Send + Sync;

/// Starts a mock HTTP server on 127.0.0.1; returns its base URL and the log.
fn mock(handler: Box<Handler>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            serve(stream, &*handler, &log2);
        }
    });
    (url, log)
}

/// Answers one request; logs it before replying so that tests see it.
fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap(); // request line
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, text) = handler(&body);
    log.lock().unwrap().push(Seen { headers, body });
    let mut stream = stream;
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}

/// Mock tokenizer: a token starts at 0 and at every space following a
/// non-space ("The answer is Paris" → "The", " answer", " is", " Paris").
fn tokenize(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if i == 0 || (c == ' ' && chars[i - 1] != ' ') {
            out.push((i, String::new()));
        }
        out.last_mut().unwrap().1.push(c);
    }
    out
}

/// Log-probability of a mock token: −0.1 per non-space character.
fn token_lp(t: &str) -> f64 {
    -0.1 * t.trim().chars().count() as f64
}

/// Completion choices in the OpenAI format; choices are listed in reverse
/// order (with their `index`) to check that the client re-orders them.
fn completions(body: &Value, generated: bool) -> String {
    let prompts: Vec<String> = body["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let mut choices: Vec<Value> = prompts
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let mut toks = tokenize(p);
            if generated {
                toks.push((p.chars().count(), " X".into()));
            }
            let lps: Vec<Value> = toks
                .iter()
                .enumerate()
                .map(|(i, (_, t))| {
                    if i == 0 {
                        Value::Null
                    } else {
                        json!(token_lp(t))
                    }
                })
                .collect();
            json!({
                "index": k,
                "text": p,
                "logprobs": {
                    "tokens": toks.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
                    "token_logprobs": lps,
                    "text_offset": toks.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
                }
            })
        })
        .collect();
    choices.reverse();
    json!({ "object": "text_completion", "choices": choices }).to_string()
}

fn good_server() -> (String, Arc<Mutex<Vec<Seen>>>) {
    mock(Box::new(|b: &Value| (200, completions(b, false))))
}

#[test]
fn scores_multi_token_continuations_in_one_request() {
    let (url, log) = good_server();
    let mut s = OpenAiScorer::new(format!("{url}/"))
        .with_model("toy")
        .with_api_key("sk-test")
        .with_timeout(Duration::from_secs(5));
    assert_eq!(s.endpoint(), format!("{url}/v1/completions"));
    let reqs = [
        ScoreRequest::new("The answer is", " Paris"),
        ScoreRequest::new("The answer is", " New York City"),
        ScoreRequest::new("Q", " a bb"),
    ];
    let lps = s.continuation_logprobs(&reqs).unwrap();
    let expect = [-0.5, -(0.3 + 0.4 + 0.4), -(0.1 + 0.2)];
    for (a, b) in lps.iter().zip(expect) {
        assert!((a - b).abs() < 1e-12, "{lps:?}");
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1, "one HTTP request per batch");
    let body = &log[0].body;
    assert_eq!(body["echo"], json!(true));
    assert_eq!(body["logprobs"], json!(1));
    assert_eq!(body["max_tokens"], json!(0));
    assert_eq!(body["model"], json!("toy"));
    assert_eq!(body["prompt"][1], json!("The answer is New York City"));
    assert!(log[0]
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == "Bearer sk-test"));
    assert!(!format!("{s:?}").contains("sk-test"));
}

#[test]
fn max_batch_splits_requests_and_v1_suffix_is_accepted() {
    let (url, log) = good_server();
    let mut s = OpenAiScorer::new(format!("{url}/v1")).with_max_batch(2);
    let reqs: Vec<ScoreRequest> = (0..5)
        .map(|i| ScoreRequest::new("Hello there", format!(" w{i}")))
        .collect();
    let lps = s.continuation_logprobs(&reqs).unwrap();
    assert!(lps.iter().all(|lp| (lp + 0.2).abs() < 1e-12), "{lps:?}");
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[test]
fn straddling_tokens_follow_the_boundary_policy() {
    let (url, _log) = good_server();
    // Prompt ends with a space: the token " Paris" starts inside the prompt.
    let req = [ScoreRequest::new("The answer is ", "Paris")];
    let mut s = OpenAiScorer::new(&url);
    let lp = s.continuation_logprobs(&req).unwrap();
    assert!((lp[0] + 0.5).abs() < 1e-12);
    assert_eq!(
        s.n_continuation_tokens("The answer is ", "Paris").unwrap(),
        1
    );
    let mut s = OpenAiScorer::new(&url).with_boundary(Boundary::Error);
    let e = s.continuation_logprobs(&req).unwrap_err();
    assert!(
        matches!(
            e,
            ShapleyError::TokenBoundary {
                boundary: 14,
                token_start: 13
            }
        ),
        "{e}"
    );
}

#[test]
fn empty_continuations_are_errors() {
    let (url, _log) = good_server();
    let mut s = OpenAiScorer::new(&url);
    assert_eq!(s.n_continuation_tokens("The answer is", "").unwrap(), 0);
    let e = s
        .continuation_logprobs(&[ScoreRequest::new("The answer is", "")])
        .unwrap_err();
    assert!(matches!(e, ShapleyError::EmptyContinuation { .. }), "{e}");
    // The prompt alone is a single token without a log-probability.
    let e = s
        .continuation_logprobs(&[ScoreRequest::new("Th", "e end")])
        .unwrap_err();
    assert!(e.to_string().contains("at least one whole token"), "{e}");
}

#[test]
fn refused_max_tokens_zero_falls_back_to_one() {
    let (url, log) = mock(Box::new(|b: &Value| {
        if b["max_tokens"] == json!(0) {
            (
                400,
                r#"{"error":{"message":"max_tokens must be at least 1"}}"#.to_string(),
            )
        } else {
            (200, completions(b, true))
        }
    }));
    let mut s = OpenAiScorer::new(&url);
    let lp = s
        .continuation_logprobs(&[ScoreRequest::new("The answer is", " Paris")])
        .unwrap();
    assert!(
        (lp[0] + 0.5).abs() < 1e-12,
        "generated token must be ignored: {lp:?}"
    );
    assert_eq!(s.max_tokens(), 1);
    s.continuation_logprobs(&[ScoreRequest::new("A b", " c")])
        .unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3, "no retry once switched");
    assert_eq!(log[2].body["max_tokens"], json!(1));
}

#[test]
fn missing_logprobs_is_a_clear_error() {
    let (url, _log) = mock(Box::new(|_: &Value| {
        (
            200,
            r#"{"choices":[{"index":0,"text":"x","logprobs":null}]}"#.to_string(),
        )
    }));
    let e = OpenAiScorer::new(&url)
        .continuation_logprobs(&[ScoreRequest::new("a", " b")])
        .unwrap_err();
    assert!(matches!(e, ShapleyError::MissingLogprobs { .. }), "{e}");
    assert!(e.to_string().contains("echo"), "{e}");

    // A server that ignores `echo` returns only generated tokens.
    let (url, _log) = mock(Box::new(|_: &Value| {
        let c =
            json!({"choices":[{"index":0,"logprobs":{"token_logprobs":[-1.0],"text_offset":[4]}}]});
        (200, c.to_string())
    }));
    let e = OpenAiScorer::new(&url)
        .continuation_logprobs(&[ScoreRequest::new("a", " b")])
        .unwrap_err();
    assert!(e.to_string().contains("not echoed"), "{e}");
}

#[test]
fn http_errors_and_bad_json() {
    let (url, _log) = mock(Box::new(|_: &Value| (500, "internal failure".to_string())));
    let e = OpenAiScorer::new(&url)
        .continuation_logprobs(&[ScoreRequest::new("a", " b")])
        .unwrap_err();
    assert!(
        matches!(&e, ShapleyError::Http { status: 500, body, .. } if body == "internal failure"),
        "{e}"
    );
    let (url, _log) = mock(Box::new(|_: &Value| (200, "not json".to_string())));
    let e = OpenAiScorer::new(&url)
        .continuation_logprobs(&[ScoreRequest::new("a", " b")])
        .unwrap_err();
    assert!(matches!(e, ShapleyError::BadResponse { .. }), "{e}");
    let (url, _log) = mock(Box::new(|_: &Value| (200, r#"{"choices":[]}"#.to_string())));
    let e = OpenAiScorer::new(&url)
        .continuation_logprobs(&[ScoreRequest::new("a", " b")])
        .unwrap_err();
    assert!(e.to_string().contains("0 choices for 1 prompts"), "{e}");
}

#[test]
fn unreachable_server_names_the_url() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let e = OpenAiScorer::new(&url)
        .with_timeout(Duration::from_secs(2))
        .continuation_logprobs(&[ScoreRequest::new("a", " b")])
        .unwrap_err();
    assert!(matches!(e, ShapleyError::ServerUnreachable { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("{url}/v1/completions")),
        "{e}"
    );
}

#[test]
fn slow_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        let _held: Vec<TcpStream> = listener.incoming().take(1).filter_map(|s| s.ok()).collect();
        thread::sleep(Duration::from_secs(3));
    });
    let e = OpenAiScorer::new(&url)
        .with_timeout(Duration::from_millis(300))
        .continuation_logprobs(&[ScoreRequest::new("a", " b")])
        .unwrap_err();
    assert!(matches!(e, ShapleyError::ServerUnreachable { .. }), "{e}");
}

#[test]
fn prompt_game_over_http() {
    let (url, log) = good_server();
    let t = Template::parse("Facts: {{a: It is sunny. }}{{b: It is warm. }}Go outside? Answer:")
        .unwrap();
    let value = ValueKind::OptionProb {
        options: vec![" yes".into(), " no thanks".into()],
        chosen: 0,
    };
    let mut g = PromptGame::new(t, Absent::Remove, value, OpenAiScorer::new(&url)).unwrap();
    let r = exact(&mut g, &ExactOptions::default(), None).unwrap();
    assert_eq!(r.evaluations, 4);
    assert!(r.efficiency_gap().abs() < 1e-9);
    // The mock model ignores the prompt: every coalition has the same worth.
    assert!(r.values.iter().all(|v| v.abs() < 1e-12));
    let p_yes = 1.0 / (1.0 + (-0.5f64).exp()); // lp(" yes") = -0.3, lp(" no thanks") = -0.8
    assert!((r.v_full - p_yes).abs() < 1e-12);
    // One token-count check per option, then one request for the 4 coalitions.
    assert_eq!(log.lock().unwrap().len(), 3);
}

// ---- hardening against real servers (issue #15) -------------------------------------------

/// The mock answer for a body whose `prompt` may be a single string.
fn completions_any(body: &Value, generated: bool) -> String {
    let mut b = body.clone();
    if let Some(p) = body["prompt"].as_str() {
        b["prompt"] = json!([p]);
    }
    completions(&b, generated)
}

#[test]
fn busy_answers_are_retried_with_backoff() {
    let calls = Arc::new(Mutex::new(0));
    let c2 = Arc::clone(&calls);
    let (url, log) = mock(Box::new(move |b: &Value| {
        let mut n = c2.lock().unwrap();
        *n += 1;
        match *n {
            1 => (429, "slow down".into()),
            2 => (503, "busy".into()),
            _ => (200, completions(b, false)),
        }
    }));
    let mut s = OpenAiScorer::new(&url).with_retries(3, Duration::from_millis(10));
    let lp = s
        .continuation_logprobs(&[ScoreRequest::new("The answer is", " Paris")])
        .unwrap();
    assert!((lp[0] + 0.5).abs() < 1e-12);
    assert_eq!(log.lock().unwrap().len(), 3);
    // Out of retries: the last error is returned.
    let (url, log) = mock(Box::new(|_: &Value| (500, "down".to_string())));
    let e = OpenAiScorer::new(&url)
        .with_retries(2, Duration::from_millis(10))
        .continuation_logprobs(&[ScoreRequest::new("a", " b")])
        .unwrap_err();
    assert!(matches!(e, ShapleyError::Http { status: 500, .. }), "{e}");
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[test]
fn scored_texts_are_cached() {
    let (url, log) = good_server();
    let mut s = OpenAiScorer::new(&url);
    let reqs = [
        ScoreRequest::new("The answer is", " Paris"),
        ScoreRequest::new("The answer is", " Paris"),
        ScoreRequest::new("Q", " a bb"),
    ];
    let first = s.continuation_logprobs(&reqs).unwrap();
    assert_eq!(
        log.lock().unwrap()[0].body["prompt"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let again = s.continuation_logprobs(&reqs[1..]).unwrap();
    assert_eq!(first[1..], again[..]);
    assert_eq!(log.lock().unwrap().len(), 1, "no request for cached texts");
    assert_eq!(s.cached(), 2);
}

#[test]
fn a_server_without_list_prompts_gets_one_prompt_per_request() {
    // llama-cpp-python's server answers a list prompt with HTTP 500.
    let (url, log) = mock(Box::new(|b: &Value| {
        if b["prompt"].is_array() {
            (500, "assert isinstance(prompt, str)".into())
        } else {
            (200, completions_any(b, false))
        }
    }));
    let mut s = OpenAiScorer::new(&url)
        .with_retries(0, Duration::ZERO)
        .with_concurrency(2);
    let reqs: Vec<ScoreRequest> = (0..5)
        .map(|i| ScoreRequest::new("Hello there", format!(" w{i}")))
        .collect();
    let lps = s.continuation_logprobs(&reqs).unwrap();
    assert!(lps.iter().all(|lp| (lp + 0.2).abs() < 1e-12), "{lps:?}");
    assert_eq!(s.list_prompts(), Some(false));
    let log = log.lock().unwrap();
    assert!(log[1..].iter().all(|r| r.body["prompt"].is_string()));
    assert_eq!(
        log.len(),
        1 + 1 + 5,
        "one refused list, one probe, five prompts"
    );
}

#[test]
fn max_tokens_zero_read_as_no_limit_switches_to_one() {
    // llama.cpp generates with `max_tokens: 0` (it means "no limit" there).
    let (url, log) = mock(Box::new(|b: &Value| (200, completions(b, true))));
    let mut s = OpenAiScorer::new(&url);
    let lp = s
        .continuation_logprobs(&[ScoreRequest::new("The answer is", " Paris")])
        .unwrap();
    assert!((lp[0] + 0.5).abs() < 1e-12, "{lp:?}");
    assert_eq!(s.max_tokens(), 1);
    s.continuation_logprobs(&[ScoreRequest::new("A b", " c")])
        .unwrap();
    assert_eq!(log.lock().unwrap()[1].body["max_tokens"], json!(1));
}

#[test]
fn the_echo_check_refuses_a_server_whose_echoed_logprobs_are_not_the_models() {
    // Generation says " X" has log-probability -0.01; the echo says -0.1 (the mock's rule).
    let (url, _log) = mock(Box::new(|b: &Value| {
        if b["echo"] == json!(true) {
            (200, completions_any(b, false))
        } else {
            let body = json!({"choices": [{"index": 0, "text": " X",
                "logprobs": {"tokens": [" X"], "token_logprobs": [-0.01], "text_offset": [0]}}]});
            (200, body.to_string())
        }
    }));
    let mut s = OpenAiScorer::new(&url).with_echo_check(true);
    let e = s
        .continuation_logprobs(&[ScoreRequest::new("The answer is", " Paris")])
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("echoes") && m.contains("-0.0100") && m.contains("-0.1000"),
        "{m}"
    );
    // A consistent server passes the check.
    let (url, _log) = mock(Box::new(|b: &Value| {
        if b["echo"] == json!(true) {
            (200, completions_any(b, false))
        } else {
            let body = json!({"choices": [{"index": 0, "text": " X",
                "logprobs": {"tokens": [" X"], "token_logprobs": [-0.1], "text_offset": [0]}}]});
            (200, body.to_string())
        }
    }));
    let mut s = OpenAiScorer::new(&url).with_echo_check(true);
    assert!(s
        .continuation_logprobs(&[ScoreRequest::new("The answer is", " Paris")])
        .is_ok());
}

#[test]
fn one_prompt_per_request_and_no_limit_max_tokens_together() {
    // llama-cpp-python: a list prompt is a 500, and `max_tokens: 0` generates.
    let (url, log) = mock(Box::new(|b: &Value| {
        if b["prompt"].is_array() {
            (500, String::new())
        } else {
            (200, completions_any(b, true))
        }
    }));
    let mut s = OpenAiScorer::new(&url).with_retries(0, Duration::ZERO);
    let reqs: Vec<ScoreRequest> = (0..3)
        .map(|i| ScoreRequest::new("Hello there", format!(" w{i}")))
        .collect();
    let lps = s.continuation_logprobs(&reqs).unwrap();
    assert!(lps.iter().all(|lp| (lp + 0.2).abs() < 1e-12), "{lps:?}");
    assert_eq!((s.list_prompts(), s.max_tokens()), (Some(false), 1));
    assert!(log.lock().unwrap()[2..]
        .iter()
        .all(|r| r.body["max_tokens"] == json!(1)));
}
