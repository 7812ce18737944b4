use std::path::PathBuf;

/// Everything that can go wrong when producing a figure.
///
/// Input is validated before anything is rendered or written, so an `Err`
/// never leaves a (partial) output file behind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// A required input collection is empty.
    #[error("empty data: {0}")]
    Empty(String),
    /// Two inputs that must have the same length do not.
    #[error("length mismatch: {what} has {actual} entries but {expected} were expected")]
    LengthMismatch {
        what: String,
        expected: usize,
        actual: usize,
    },
    /// A NaN or infinite value was found.
    #[error("{value} found in {location}: NaN and infinite values cannot be plotted")]
    NonFinite { location: String, value: f64 },
    /// Input is structurally valid but cannot be plotted (e.g. a
    /// non-positive value on a log axis, an edge to a missing node).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The options are inconsistent (e.g. zero size, empty format set).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The directory the figure should be written into does not exist.
    #[error("output directory does not exist: {}", .0.display())]
    MissingDirectory(PathBuf),
    /// An I/O error while writing `path` (e.g. unwritable directory).
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The drawing backend or font system failed (e.g. no usable font).
    #[error("rendering failed: {0}")]
    Render(String),
}

pub type Result<T> = std::result::Result<T, PlotError>;
