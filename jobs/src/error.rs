//! Errors of the batch layer, grouped by who must act.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query is wrong: bad SQL, unknown table or column. `hint` helps fix it.
    #[error("{message}{hint}")]
    Query {
        /// DataFusion's explanation.
        message: String,
        /// Extra help (available tables), starting with a newline, or empty.
        hint: String,
    },
    /// The user asked for something that does not exist or cannot be done.
    #[error("{0}")]
    Usage(String),
    /// The lake is missing or unreadable.
    #[error("lake {path}: {message}")]
    Lake {
        /// Lake root or table directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file operation failed; local and object-store I/O can fail transiently, so the
    /// job runner retries these.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// File or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An input table holds data a job cannot use.
    #[error("{table}: {message}")]
    Data {
        /// `zone.table`.
        table: String,
        /// What is wrong, naming the value.
        message: String,
    },
    /// Writing the output failed.
    #[error("writing {what}: {message}")]
    Output {
        /// Destination.
        what: String,
        /// Why.
        message: String,
    },
    /// A job of the DAG failed; `source` says why.
    #[error("job {job} failed: {source}")]
    JobFailed {
        /// Job name.
        job: String,
        /// Why.
        source: Box<Error>,
    },
    /// A bug in ROI, not in the input.
    #[error("bug: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::Io`] builder for `map_err`.
    pub fn io(
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

    /// Whether retrying the same work may succeed (interrupted or timed-out I/O).
    pub fn is_transient(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Error::Io { source, .. } => matches!(
                source.kind(),
                K::Interrupted
                    | K::TimedOut
                    | K::WouldBlock
                    | K::ResourceBusy
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
            ),
            Error::JobFailed { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}
