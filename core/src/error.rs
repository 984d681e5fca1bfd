//! The one error type of `mnnn-core`.

use std::path::PathBuf;

/// Everything that can go wrong in `mnnn-core`, each variant naming the problem.
///
/// Library code never panics on user input: widths, values, configs and files that are not
/// what a model needs come back as one of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config's text could not be read as the expected RON.
    #[error("{location}: {message}")]
    Config {
        /// `file:line:column` (or `line:column` for text without a file).
        location: String,
        /// What is wrong, with the expected fields or values where known.
        message: String,
    },
    /// A model name that no registry entry has.
    #[error("unknown model '{name}'{}", suggest(.suggestions, .known))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Known names close to it, nearest first.
        suggestions: Vec<String>,
        /// Every known name.
        known: Vec<String>,
    },
    /// A hyper-parameter outside its allowed range.
    #[error("invalid parameter '{name}' = {value}: {expected}")]
    InvalidParam {
        /// The parameter's name.
        name: String,
        /// The value given.
        value: String,
        /// The allowed range or values.
        expected: String,
    },
    /// Input or target data of the wrong shape.
    #[error("shape mismatch for {what}: expected {expected}, got {actual}")]
    Shape {
        /// What has the wrong shape.
        what: String,
        /// The shape the model needs.
        expected: String,
        /// The shape it was given.
        actual: String,
    },
    /// Data that the model cannot take (empty, non-finite, out of vocabulary, ...).
    #[error("invalid data: {0}")]
    Data(String),
    /// A CSV file that could not be read as a table of numbers.
    #[error("{path}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line where known.
        message: String,
    },
    /// A model file that is missing, truncated, corrupted or of another model.
    #[error("model file {path}: {message}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A state or parameter set that does not fit the model.
    #[error("tensor set mismatch: {0}")]
    Tensors(String),
    /// A freeze request that names nothing or is out of range.
    #[error("freeze: {0}")]
    Freeze(String),
    /// Training stopped because the loss became non-finite.
    #[error(
        "training diverged at epoch {epoch}: loss is {loss}; lower the learning rate or clip harder"
    )]
    Diverged {
        /// The epoch (1-based) in which it happened.
        epoch: usize,
        /// The loss value seen.
        loss: f64,
    },
    /// A size whose memory would exceed the budget ([`crate::budget`]), refused before
    /// allocating.
    #[error(
        "{what} need {}, more than the memory budget of {} (set {} to change it); lower the sizes",
        crate::budget::human(*.bytes),
        crate::budget::human(*.limit as u128),
        crate::budget::LIMIT_VAR
    )]
    TooLarge {
        /// What would be allocated.
        what: String,
        /// The bytes it needs (`u128::MAX` when the size overflows).
        bytes: u128,
        /// The budget in bytes.
        limit: u64,
    },
    /// An operating-system error while reading or writing `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn suggest(suggestions: &[String], known: &[String]) -> String {
    let mut s = String::new();
    if let Some(best) = suggestions.first() {
        s.push_str(&format!("; did you mean '{best}'?"));
    }
    if !known.is_empty() {
        s.push_str(&format!(" Known models: {}", known.join(", ")));
    }
    s
}

impl Error {
    /// An [`Error::InvalidParam`] from its three parts.
    pub fn invalid_param(
        name: impl Into<String>,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidParam {
            name: name.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// An [`Error::Shape`] from its three parts.
    pub fn shape(what: impl Into<String>, expected: impl ToString, actual: impl ToString) -> Self {
        Error::Shape {
            what: what.into(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
