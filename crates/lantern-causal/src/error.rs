//! Error type shared by every module of the crate.

use thiserror::Error;

/// Everything that can go wrong while loading data, discovering a graph or analysing it.
///
/// No function of this crate panics on bad input or returns `NaN`; problems surface as one
/// of these variants instead.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CausalError {
    /// Reading a file failed.
    #[error("I/O error: {0}")]
    Io(String),
    /// The CSV input has no header or no data rows.
    #[error("empty CSV input: {0}")]
    EmptyCsv(String),
    /// The CSV header names no state column (only the session column or ignored columns).
    #[error("CSV has no state columns (header: {header:?})")]
    NoStateColumns {
        /// The header as read.
        header: Vec<String>,
    },
    /// A CSV row has a different number of cells than the header.
    #[error("ragged CSV: line {line} has {found} cells, header has {expected}")]
    RaggedRow {
        /// 1-based line number in the file (the header is line 1).
        line: usize,
        /// Cells on that line.
        found: usize,
        /// Cells in the header.
        expected: usize,
    },
    /// A CSV cell could not be parsed as a number.
    #[error("non-numeric value {value:?} at line {line}, column {column:?}")]
    NonNumeric {
        /// 1-based line number in the file.
        line: usize,
        /// Header name of the column.
        column: String,
        /// The offending cell text.
        value: String,
    },
    /// Malformed CSV quoting.
    #[error("malformed CSV at line {line}: {message}")]
    MalformedCsv {
        /// 1-based line number in the file.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// Two states share a name, or a name is empty.
    #[error("invalid state names: {0}")]
    InvalidNames(String),
    /// A session row has the wrong number of values.
    #[error("session {session:?}, step {step}: expected {expected} values, found {found}")]
    RaggedSession {
        /// Session label.
        session: String,
        /// 0-based step in the session.
        step: usize,
        /// Number of states.
        expected: usize,
        /// Values found.
        found: usize,
    },
    /// A value is NaN or infinite.
    #[error("non-finite value in state {state:?} (session {session:?}, step {step})")]
    NonFinite {
        /// State name.
        state: String,
        /// Session label.
        session: String,
        /// 0-based step in the session.
        step: usize,
    },
    /// A state never changes, so no dependence on it can be tested.
    #[error(
        "state {state:?} is constant over all sessions (or within every session, which per-session \
         centring turns into a constant); drop it or set `drop_constant`"
    )]
    ConstantSeries {
        /// State name.
        state: String,
    },
    /// Too few usable samples for the conditional-independence tests that will be run.
    #[error(
        "too few samples: {available} usable samples (each session loses its first {lost_per_session} steps to lags), \
         but at least {needed} are needed for conditioning sets of size up to {cond_dim}"
    )]
    TooFewSamples {
        /// Samples available after removing lag warm-up steps.
        available: usize,
        /// Minimum needed (`cond_dim + 3`, i.e. at least one residual degree of freedom).
        needed: usize,
        /// Largest conditioning-set size the run may use.
        cond_dim: usize,
        /// Leading steps of every session that cannot serve as a target.
        lost_per_session: usize,
    },
    /// The session bootstrap was asked for with too few sessions to resample.
    #[error(
        "too few sessions for the session bootstrap: {available} given, at least {needed} needed \
         (record more sessions, use the block bootstrap, or set the bootstrap resamples to 0)"
    )]
    TooFewSessions {
        /// Sessions in the data.
        available: usize,
        /// Minimum for resampling sessions.
        needed: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Inputs of mismatched sizes were passed to a numeric routine.
    #[error("dimension mismatch: {0}")]
    Dimension(String),
    /// A node name was not found in the graph or model.
    #[error("unknown state {0:?}")]
    UnknownState(String),
    /// A numeric routine failed to converge or hit a degenerate case it cannot resolve.
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// JSON (de)serialisation failed.
    #[error("JSON error: {0}")]
    Json(String),
}

/// Crate-wide result alias.
pub type Result<T, E = CausalError> = std::result::Result<T, E>;

impl From<std::io::Error> for CausalError {
    fn from(e: std::io::Error) -> Self {
        CausalError::Io(e.to_string())
    }
}

impl From<serde_json::Error> for CausalError {
    fn from(e: serde_json::Error) -> Self {
        CausalError::Json(e.to_string())
    }
}
