//! Dead letters: every rejected input record, with why and where it came from.

use crate::event::RejectReason;
use crate::table::table;

table! {
    /// A record the pipeline refused. Nothing is dropped silently: it lands here.
    pub struct DeadLetter in "events" {
        /// Where it came from (file path, `stdin`, topic/partition).
        pub source: String,
        /// Position in the source: 1-based line number for files and stdin.
        pub offset: i64,
        /// Reason class.
        pub reason: RejectReason,
        /// Field at fault, when one is.
        pub field: Option<String>,
        /// Human-readable detail.
        pub message: String,
        /// The record as received (lossy UTF-8).
        pub raw: String,
    }
}
