//! # lantern-serve
//!
//! `lantern serve`: a model, steered or not, behind an OpenAI-compatible HTTP API (axum on
//! tokio): `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions` (the model's
//! chat template; `stream: true` as server-sent events) and `GET /health`.
//!
//! - Steering: the server's `--intervene` specs, presets by name (`--presets FILE`) and each
//!   request's own (`"lantern": {"interventions": [...], "preset": "name"}`); every response
//!   lists the interventions it ran with (`"lantern": {"interventions": [...]}`).
//! - One model thread decodes every running request together (continuous batching, see
//!   [`worker`]); the queue is bounded and a request that cannot be queued gets 503 with
//!   `Retry-After`. A client that disconnects stops its rows.
//! - Bad requests get a 4xx with an OpenAI-style error body ([`error`]).
//! - SIGTERM or Ctrl-C stops accepting connections, lets the requests in flight finish, then
//!   exits.

pub mod error;
pub mod request;
pub mod response;
pub mod steer;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lantern_engine::{LoadedModel, RowSpec};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::request::{ChatRequest, CompletionRequest, Settings};
use crate::steer::{Steering, SteeringConfig};
use crate::worker::{SubmitError, WorkerHandle};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// Interventions active for every request (CLI spec syntax).
    pub intervene: Vec<String>,
    /// A JSON file of named intervention lists.
    pub presets: Option<PathBuf>,
    /// Rows decoded together at most (1: one request at a time).
    pub max_batch: usize,
    /// Requests waiting beyond the running ones before 503.
    pub queue: usize,
    /// The model id of `/v1/models` (default: the model file's name without extension).
    pub model_name: Option<String>,
    /// `max_tokens` when a request gives none.
    pub default_max_tokens: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 8080,
            intervene: Vec::new(),
            presets: None,
            max_batch: 32,
            queue: 64,
            model_name: None,
            default_max_tokens: 16,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub lm: Arc<LoadedModel>,
    pub model_id: String,
    pub steering: SteeringConfig,
    pub worker: WorkerHandle,
    pub default_max_tokens: usize,
    pub created: u64,
}

type Shared = Arc<AppState>;

/// The model id a source path is served as (`models/SmolLM2.gguf` -> `SmolLM2`).
pub fn model_id_of(source: &str) -> String {
    let p = std::path::Path::new(source);
    match (p.extension(), p.file_stem()) {
        (Some(_), Some(stem)) => stem.to_string_lossy().into_owned(),
        _ => p
            .file_name()
            .map_or_else(|| source.to_string(), |n| n.to_string_lossy().into_owned()),
    }
}

/// A bound, not yet running server.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Router,
    worker: std::thread::JoinHandle<()>,
}

impl Server {
    /// Parses the steering, starts the model thread and binds the address (port 0: any free
    /// port). Must be called inside a tokio runtime.
    pub async fn bind(lm: LoadedModel, opts: &ServeOptions) -> anyhow::Result<Self> {
        let steering = SteeringConfig::load(&lm.model, &opts.intervene, opts.presets.as_deref())?;
        let model_id = opts
            .model_name
            .clone()
            .unwrap_or_else(|| model_id_of(&lm.source));
        let lm = Arc::new(lm);
        let (worker, thread) = worker::start(Arc::clone(&lm), opts.max_batch, opts.queue);
        let state = Arc::new(AppState {
            lm,
            model_id,
            steering,
            worker,
            default_max_tokens: opts.default_max_tokens,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
            .await
            .map_err(|e| anyhow::anyhow!("binding {}:{}: {e}", opts.host, opts.port))?;
        Ok(Server {
            listener,
            app: router(state),
            worker: thread,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains the requests in flight and stops the
    /// model thread.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            listener,
            app,
            worker,
        } = self;
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        // The router (and with it the last queue sender) is gone: the model thread finishes
        // what it holds and ends.
        tokio::task::spawn_blocking(move || worker.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the model thread panicked"))?;
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `lantern serve`: binds, prints the address, serves until SIGTERM/Ctrl-C.
pub fn serve_blocking(lm: LoadedModel, opts: &ServeOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let server = Server::bind(lm, opts).await?;
        eprintln!(
            "lantern serve: listening on http://{}",
            server.local_addr()?
        );
        server.run(shutdown_signal()).await?;
        eprintln!("lantern serve: drained, exiting");
        Ok(())
    })
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::NOT_FOUND,
                message: "no such endpoint (see /v1/models, /v1/completions, /v1/chat/completions, /health)".into(),
                kind: "invalid_request_error",
                param: None,
                code: None,
            }
        })
        .with_state(state)
}

async fn health(State(s): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "running_rows": s.worker.running_rows()}))
}

async fn models(State(s): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": s.model_id, "object": "model", "created": s.created, "owned_by": "lantern",
            "lantern": {
                "source": s.lm.source,
                "context_window": s.lm.model.config().max_positions,
                "interventions": s.steering.server.specs,
                "presets": s.steering.presets.keys().collect::<Vec<_>>(),
            },
        }],
    }))
}

impl AppState {
    /// An absent model name is this model; any other name is a 404.
    fn check_model(&self, model: Option<&str>) -> ApiResult<()> {
        match model {
            None => Ok(()),
            Some(m) if m == self.model_id || m == self.lm.source => Ok(()),
            Some(m) => Err(ApiError::not_found(format!(
                "the model `{m}` does not exist; this server serves `{}`",
                self.model_id
            ))),
        }
    }

    /// Rows for each prompt × `n`, checked against the context window and the engine's rules.
    fn rows(
        &self,
        prompts: Vec<Vec<u32>>,
        settings: &Settings,
        steering: &Steering,
        top_logprobs: usize,
        prompt_logprobs: bool,
    ) -> ApiResult<Vec<RowSpec>> {
        let max = self.lm.model.config().max_positions;
        let check = lantern_engine::ManyGenerator::new(&self.lm.model, &self.lm.tokenizer);
        let mut rows = Vec::new();
        for ids in prompts {
            let len = ids.len() + settings.max_tokens;
            if len > max {
                return Err(ApiError::invalid(
                    Some("prompt"),
                    format!(
                        "this model's context window is {max} tokens; the prompt ({} tokens) and \
                         max_tokens ({}) need {len}",
                        ids.len(),
                        settings.max_tokens
                    ),
                )
                .with_code("context_length_exceeded"));
            }
            for k in 0..settings.n {
                let spec = RowSpec {
                    id: 0,
                    prompt_ids: ids.clone(),
                    interventions: steering.parsed.clone(),
                    sampling: settings.sampling_for(k),
                    max_new_tokens: settings.max_tokens,
                    stop_strings: settings.stop.clone(),
                    stop_at_eos: true,
                    top_logprobs,
                    prompt_logprobs,
                };
                check
                    .validate(&spec)
                    .map_err(|e| ApiError::invalid(None, e.to_string()))?;
                rows.push(spec);
            }
        }
        Ok(rows)
    }

    fn submit(
        &self,
        rows: Vec<RowSpec>,
    ) -> ApiResult<tokio::sync::mpsc::UnboundedReceiver<worker::Event>> {
        self.worker.submit(rows).map_err(|e| match e {
            SubmitError::Full => ApiError::overloaded("the server's queue is full; retry later"),
            SubmitError::Closed => ApiError::overloaded("the server is shutting down"),
        })
    }
}

async fn completions(State(s): State<Shared>, body: Bytes) -> Response {
    match completions_inner(s, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn completions_inner(s: Shared, body: &[u8]) -> ApiResult<Response> {
    let req: CompletionRequest = request::parse_body(body)?;
    s.check_model(req.model.as_deref())?;
    let settings = Settings::check(
        req.max_tokens,
        s.default_max_tokens,
        req.temperature,
        req.top_p,
        req.top_k,
        req.seed,
        req.stop.as_ref(),
        req.n,
    )?;
    let logprobs = request::completion_logprobs(req.logprobs)?;
    if req.stream && (req.echo || logprobs.is_some()) {
        return Err(ApiError::invalid(
            Some("stream"),
            "stream is not available with echo or logprobs; ask without stream",
        ));
    }
    let prompts = request::prompts(&req.prompt, &s.lm.tokenizer)?;
    let steering = s.steering.for_request(&s.lm.model, req.lantern)?;
    let want_prompt_lp = req.echo && logprobs.is_some();
    let rows = s.rows(
        prompts,
        &settings,
        &steering,
        logprobs.unwrap_or(0),
        want_prompt_lp,
    )?;
    let n_rows = rows.len();
    let rx = s.submit(rows)?;
    let meta = response::Meta::new("cmpl", &s.model_id, steering.specs);
    if req.stream {
        return Ok(response::stream_completion(meta, rx, n_rows, false));
    }
    let outputs = response::collect(rx).await?;
    Ok(Json(response::completion(
        &meta,
        &s.lm.tokenizer,
        &outputs,
        settings.n,
        req.echo,
        logprobs,
    ))
    .into_response())
}

async fn chat_completions(State(s): State<Shared>, body: Bytes) -> Response {
    match chat_inner(s, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn chat_inner(s: Shared, body: &[u8]) -> ApiResult<Response> {
    let req: ChatRequest = request::parse_body(body)?;
    s.check_model(req.model.as_deref())?;
    let settings = Settings::check(
        req.max_completion_tokens.or(req.max_tokens),
        s.default_max_tokens,
        req.temperature,
        req.top_p,
        req.top_k,
        req.seed,
        req.stop.as_ref(),
        req.n,
    )?;
    let top = match (req.logprobs, req.top_logprobs) {
        (_, Some(k)) if !(0..=request::MAX_TOP_LOGPROBS as i64).contains(&k) => {
            return Err(ApiError::invalid(
                Some("top_logprobs"),
                format!(
                    "top_logprobs must be between 0 and {}, got {k}",
                    request::MAX_TOP_LOGPROBS
                ),
            ))
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                Some("top_logprobs"),
                "top_logprobs needs logprobs: true",
            ))
        }
        (true, k) => Some(k.unwrap_or(0) as usize),
        (false, None) => None,
    };
    if req.messages.is_empty() {
        return Err(ApiError::invalid(Some("messages"), "messages is empty"));
    }
    let template = s.lm.chat_template.as_deref().ok_or_else(|| {
        ApiError::invalid(
            None,
            format!(
                "the model `{}` has no chat template; use /v1/completions",
                s.model_id
            ),
        )
    })?;
    let texts = req
        .messages
        .iter()
        .map(|m| m.text().map(|t| (m.role.clone(), t)))
        .collect::<ApiResult<Vec<_>>>()?;
    let pairs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(r, t)| (r.as_str(), t.as_str()))
        .collect();
    let prompt = lantern_experiments::chat::render_chat(template, &pairs, true)
        .map_err(|e| ApiError::invalid(Some("messages"), format!("{e:#}")))?;
    let ids =
        s.lm.tokenizer
            .encode(&prompt)
            .map_err(|e| ApiError::invalid(Some("messages"), e.to_string()))?;
    let steering = s.steering.for_request(&s.lm.model, req.lantern)?;
    let rows = s.rows(vec![ids], &settings, &steering, top.unwrap_or(0), false)?;
    let n_rows = rows.len();
    let rx = s.submit(rows)?;
    let meta = response::Meta::new("chatcmpl", &s.model_id, steering.specs);
    if req.stream {
        return Ok(response::stream_completion(meta, rx, n_rows, true));
    }
    let outputs = response::collect(rx).await?;
    Ok(Json(response::chat(&meta, &s.lm.tokenizer, &outputs, top)).into_response())
}
