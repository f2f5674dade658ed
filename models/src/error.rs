//! Errors of model training and scoring.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The training data cannot train a model (too few rows, mismatched lengths…).
    #[error("training data: {0}")]
    Data(String),
    /// The tree library failed.
    #[error("gradient boosting: {0}")]
    Engine(String),
    /// A saved model cannot be read.
    #[error("model file: {0}")]
    Model(String),
    /// The model registry cannot be read or written, or lacks what was asked for.
    #[error("model registry: {0}")]
    Registry(String),
}
