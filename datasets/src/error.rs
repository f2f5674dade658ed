//! Errors of the world generator.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while generating or writing a world.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller asked for something invalid (unknown scale, bad output path).
    #[error("{0}")]
    Usage(String),
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
    /// Writing Parquet failed.
    #[error("writing {path}: {source}")]
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// The Parquet error.
        source: parquet::errors::ParquetError,
    },
    /// Encoding rows failed; this is a bug in the generator (it produced an invalid row).
    #[error("bug: the generator produced rows that do not encode: {0}")]
    Schema(#[from] roi_schemas::Error),
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
