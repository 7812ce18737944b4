//! One error type for the engine. Every message names the thing that was wrong
//! (a file, a tensor and both shapes, a hook name, an index and its valid range).

use std::path::PathBuf;

/// Errors raised while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config: {0}")]
    Config(String),
    #[error(
        "unknown architecture `{0}` (supported: {supported})",
        supported = crate::arch::supported_model_types()
    )]
    UnknownArchitecture(String),
    #[error(
        "tensor `{name}`: the config implies shape {expected:?} but the weights hold {found:?}"
    )]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{0}` is missing from the weights")]
    MissingTensor(String),
    #[error("unknown hook point `{name}`{hint}")]
    UnknownHook { name: String, hint: String },
    #[error("{what} {index} is out of range: there are {count} {what}s (valid: 0..{count})")]
    OutOfRange {
        what: &'static str,
        index: usize,
        count: usize,
    },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt is {len} tokens long but the model's context window is {max} tokens")]
    PromptTooLong { len: usize, max: usize },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("hub: {0}")]
    Hub(String),
    /// Fetching a model by its short name (see [`crate::models`]).
    #[error("fetch: {0}")]
    Fetch(String),
    #[error("intervention at `{hook}`: {message}")]
    Intervention { hook: String, message: String },
    #[error("{0}")]
    Invalid(String),
    /// A NaN or Inf in the activations (see [`crate::finite`]); names the first hook point.
    #[error("non-finite activations (NaN or Inf): {0}")]
    NonFinite(String),
    #[error(transparent)]
    Candle(candle_core::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            message: message.to_string(),
        }
    }
    pub(crate) fn config(message: impl std::fmt::Display) -> Self {
        Error::Config(message.to_string())
    }
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Error::Invalid(message.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fails with [`Error::OutOfRange`] when `index >= count`.
pub fn check_index(what: &'static str, index: usize, count: usize) -> Result<()> {
    if index < count {
        Ok(())
    } else {
        Err(Error::OutOfRange { what, index, count })
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(without_backtrace(e))
    }
}

/// candle appends a captured backtrace to its errors' messages when `RUST_BACKTRACE` is set;
/// Lantern's messages name the problem, so the backtrace is dropped.
pub fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        other => other,
    }
}
