//! The crate's error type: the server maps every variant but `Internal` to 400.

/// What went wrong while loading a model or answering a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    /// Architecture, task or weights format not supported; the message names what is.
    #[error("{0}")]
    Unsupported(String),
    /// Malformed inputs or parameters.
    #[error("{0}")]
    BadInput(String),
    /// The model needs more memory than the server's inference budget.
    #[error("{0}")]
    TooLarge(String),
    /// Model files broken or missing (config.json unreadable, tensor missing...).
    #[error("cannot load the model: {0}")]
    Load(String),
    /// candle or tokenizer failure at run time.
    #[error("inference failed: {0}")]
    Internal(String),
}

impl From<candle_core::Error> for InferenceError {
    fn from(err: candle_core::Error) -> Self {
        InferenceError::Internal(err.to_string())
    }
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, InferenceError>;

/// Maps a candle error raised while building a model to a load error.
pub(crate) fn load_err(err: candle_core::Error) -> InferenceError {
    InferenceError::Load(err.to_string())
}

pub(crate) fn bad(msg: impl Into<String>) -> InferenceError {
    InferenceError::BadInput(msg.into())
}
