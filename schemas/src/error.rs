//! Errors of the schema layer.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong converting or validating data.
///
/// `Invalid*` and `Missing*` variants are the caller's input; `Arrow` comes from the Arrow
/// library (usually also bad input: a batch with the wrong shape).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value failed validation; names the table, field and value.
    #[error("invalid {table}.{field} = {value:?}: {reason}")]
    InvalidValue {
        /// Table (or record type) being validated.
        table: &'static str,
        /// Field that failed.
        field: &'static str,
        /// The offending value, rendered as text.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A required column is absent from a record batch.
    #[error("table {table}: column {field:?} is missing from the record batch")]
    MissingColumn {
        /// Table being read.
        table: &'static str,
        /// Column that was expected.
        field: &'static str,
    },
    /// A column has a different Arrow type than the schema says.
    #[error("table {table}: column {field:?} has type {found}, expected {expected}")]
    ColumnType {
        /// Table being read.
        table: &'static str,
        /// Column name.
        field: &'static str,
        /// Type found in the batch.
        found: String,
        /// Type the schema requires.
        expected: String,
    },
    /// A non-nullable column holds a null.
    #[error("table {table}: column {field:?} is null at row {row} but is required")]
    NullValue {
        /// Table being read.
        table: &'static str,
        /// Column name.
        field: &'static str,
        /// Row index within the batch.
        row: usize,
    },
    /// Error raised by arrow-rs.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}
