//! The crate's error type.
//!
//! Every fallible operation returns [`ShapleyError`]; nothing in this crate
//! panics on bad input (templates, options, scorer answers, server replies).

use std::path::PathBuf;

/// Convenience alias used throughout the crate.
pub type Result<T, E = ShapleyError> = std::result::Result<T, E>;

/// Everything that can go wrong while parsing templates, evaluating games or
/// estimating Shapley values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShapleyError {
    /// The prompt template is malformed. `line` and `column` are 1-based and
    /// count Unicode scalar values; `offset` is the byte offset in the source.
    #[error("template parse error at line {line}, column {column} (byte {offset}): {message}")]
    TemplateParse {
        /// 1-based line of the offending position.
        line: usize,
        /// 1-based column (in characters) of the offending position.
        column: usize,
        /// Byte offset of the offending position.
        offset: usize,
        /// What is wrong.
        message: String,
    },

    /// A template (or a game) has no players at all.
    #[error("no players: mark at least one prompt component as `{{{{name: text}}}}`")]
    NoPlayers,

    /// More players than a [`Coalition`](crate::Coalition) bitset can hold.
    #[error("too many players: {n} (at most {max} are supported)")]
    TooManyPlayers {
        /// Number of players requested.
        n: usize,
        /// Maximum supported.
        max: usize,
    },

    /// Exact enumeration of all `2^n` coalitions was requested above the limit.
    #[error(
        "exact enumeration needs 2^{n} coalitions, above the limit of {limit} players; \
         use the `permutation` or `kernel` method instead (or raise the exact limit)"
    )]
    ExactTooLarge {
        /// Number of players of the game.
        n: usize,
        /// Configured limit.
        limit: usize,
    },

    /// [`Absent::Filler`](crate::Absent::Filler) was requested but a component has no filler.
    #[error(
        "component `{player}` has no filler text; write `{{{{{player}: text | filler: replacement}}}}` \
         or use absent mode `remove`"
    )]
    MissingFiller {
        /// Name of the component without a filler.
        player: String,
    },

    /// A player name that the template does not define.
    #[error("unknown player `{0}`")]
    UnknownPlayer(String),

    /// An option or argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The evaluation budget cannot support even a minimal estimate.
    #[error("budget of {budget} evaluations is too small for `{method}` with {n} players (need at least {min})")]
    BudgetTooSmall {
        /// Method name.
        method: &'static str,
        /// Budget given.
        budget: usize,
        /// Minimum budget for this method and game.
        min: usize,
        /// Number of players.
        n: usize,
    },

    /// A continuation tokenises to nothing, so its log-probability would be
    /// a meaningless `0`.
    #[error("continuation {continuation:?} tokenises to no tokens after the prompt")]
    EmptyContinuation {
        /// The offending continuation.
        continuation: String,
    },

    /// A token straddles the prompt/continuation boundary and the scorer was
    /// configured to refuse that.
    #[error(
        "a token straddles the prompt/continuation boundary at character {boundary} \
         (token starts at character {token_start}); end the prompt or start the continuation \
         at a token boundary, e.g. move the separating space into the continuation"
    )]
    TokenBoundary {
        /// Character position of the boundary.
        boundary: usize,
        /// Character position where the straddling token starts.
        token_start: usize,
    },

    /// A generic error reported by a language-model scorer.
    #[error("scorer error: {0}")]
    Scorer(String),

    /// The completions server could not be reached.
    #[error("cannot reach completions server at {url}: {message}")]
    ServerUnreachable {
        /// URL that was requested.
        url: String,
        /// Transport error message.
        message: String,
    },

    /// The completions server answered with a non-success status.
    #[error("completions server at {url} answered HTTP {status}: {body}")]
    Http {
        /// URL that was requested.
        url: String,
        /// HTTP status code.
        status: u16,
        /// (Truncated) response body.
        body: String,
    },

    /// The server's answer has no usable `logprobs`.
    #[error(
        "completions server at {url} returned no usable logprobs ({detail}); the server must \
         support `echo: true` with `logprobs` on /v1/completions"
    )]
    MissingLogprobs {
        /// URL that was requested.
        url: String,
        /// What was missing.
        detail: String,
    },

    /// The server's answer could not be understood.
    #[error("malformed response from {url}: {detail}")]
    BadResponse {
        /// URL that was requested.
        url: String,
        /// What was wrong.
        detail: String,
    },

    /// A game or scorer returned a different number of values than requested.
    #[error("{what} returned {got} values for {expected} requests")]
    LengthMismatch {
        /// Who misbehaved (e.g. "game", "scorer").
        what: &'static str,
        /// Number requested.
        expected: usize,
        /// Number returned.
        got: usize,
    },

    /// A game returned NaN or an infinity for a coalition.
    #[error("non-finite value {value} for coalition {coalition:#b}")]
    NonFiniteValue {
        /// Coalition bits.
        coalition: u64,
        /// The value returned.
        value: f64,
    },

    /// The least-squares system of KernelSHAP is singular even after ridge
    /// regularisation.
    #[error("singular linear system: {0}")]
    SingularSystem(String),

    /// An estimation method name could not be parsed.
    #[error("unknown method `{0}`; expected one of: exact, permutation, kernel")]
    UnknownMethod(String),

    /// An absent-mode name could not be parsed.
    #[error("unknown absent mode `{0}`; expected one of: remove, filler")]
    UnknownAbsentMode(String),

    /// Reading a template file failed.
    #[error("cannot read template file {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}
