//! Error type for the crate.

use std::path::PathBuf;

/// Everything that can go wrong when learning, evaluating, saving or loading states.
#[derive(Debug, thiserror::Error)]
pub enum StatesError {
    #[error("empty data: {0}")]
    EmptyData(String),
    #[error("{features} feature vectors but {labels} labels")]
    LengthMismatch { features: usize, labels: usize },
    #[error("ragged features: row {row} has {found} dimensions, expected {expected}")]
    Ragged {
        row: usize,
        expected: usize,
        found: usize,
    },
    #[error("non-finite feature value {value} at row {row}, dimension {col}")]
    NonFinite { row: usize, col: usize, value: f32 },
    #[error("label {label} at row {row} is out of range ({n_labels} label names)")]
    LabelOutOfRange {
        row: usize,
        label: usize,
        n_labels: usize,
    },
    #[error("duplicate label name '{0}'")]
    DuplicateLabel(String),
    #[error("unknown baseline label '{baseline}'; available labels: {available:?}")]
    UnknownBaseline {
        baseline: String,
        available: Vec<String>,
    },
    #[error("no states to learn: every label is the baseline")]
    NoStates,
    #[error("state '{state}' has only {n} examples{context}; need at least {need}")]
    TooFewExamples {
        state: String,
        n: usize,
        need: usize,
        /// "" (whole data set), " in the train split" or " in the test split".
        context: String,
    },
    #[error("state '{state}' has only {n} contrast examples ({contrast}){context}; need at least {need} (one class only?)")]
    TooFewContrast {
        state: String,
        contrast: String,
        n: usize,
        need: usize,
        context: String,
    },
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("feature vector has {found} dimensions, the state set expects {expected}")]
    DimensionMismatch { expected: usize, found: usize },
    #[error("training diverged ({0}); lower the learning rate")]
    Diverged(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Crate result alias.
pub type Result<T> = std::result::Result<T, StatesError>;
