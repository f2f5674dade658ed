//! Signal firings: what the streaming job noticed about a homeowner on a day.

use chrono::NaiveDate;

use crate::ids::{ContactId, OrgId};
use crate::table::table;

table! {
    /// One signal that fired for one homeowner as of the end of a day.
    pub struct SignalFiring in "signal_firings" {
        /// Homeowner.
        pub contact_id: ContactId,
        /// Tenant.
        pub org_id: OrgId,
        /// Day the reading is as of (end of day, UTC).
        pub as_of_date: NaiveDate,
        /// Signal name from the catalog.
        pub signal: String,
        /// `engagement`, `financial` or `life_event_market`.
        pub category: String,
        /// `spike`, `trend` or `threshold`.
        pub pattern: String,
        /// Strength in [0, 1].
        pub strength: f64,
        /// Confidence in [0, 1].
        pub confidence: f64,
        /// One-line human reason.
        pub reason: String,
    }
}
