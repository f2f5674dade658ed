//! Errors of the streaming runtime.
//!
//! Bad *records* are never errors: they become dead letters. These are failures of the
//! job itself: a source or the lake cannot be read or written.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure that stops the job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's configuration is wrong (bad source spec, missing path).
    #[error("{0}")]
    Config(String),
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("parquet {path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The Parquet error.
        source: parquet::errors::ParquetError,
    },
    /// A lake table does not match its schema.
    #[error("lake table {path}: {source}")]
    Table {
        /// The table directory.
        path: PathBuf,
        /// What did not match.
        source: roi_schemas::Error,
    },
    /// Arrow rejected a batch: a bug in the runtime, which builds its batches itself.
    #[error("bug: arrow rejected a batch built by the runtime: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
