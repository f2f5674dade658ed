//! Ground truth written by the synthetic world beside its data.
//!
//! Real sources never carry these tables. They exist so that every model and job can be
//! scored against what was actually true: the latent intent probabilities (the oracle),
//! the true value of every property, and which source record describes which property.

use chrono::{DateTime, NaiveDate, Utc};

use crate::alert::IntentKind;
use crate::ids::{ContactId, LoanId, PropertyId, RecordId, SaleId};
use crate::table::table;

table! {
    /// A homeowner's latent probability of each outcome within the next 90 days, as of
    /// the start of `snapshot_on`.
    pub struct IntentSnapshot in "intent" {
        /// Homeowner.
        pub contact_id: ContactId,
        /// Snapshot date (first of a month).
        pub snapshot_on: NaiveDate,
        /// P(sells within 90 days).
        pub p_sell: f64,
        /// P(buys a home within 90 days).
        pub p_buy: f64,
        /// P(refinances within 90 days).
        pub p_refinance: f64,
        /// P(buys an investment property within 90 days).
        pub p_investment: f64,
    }
}

table! {
    /// An outcome that happened: the label the alert models learn.
    pub struct Outcome in "outcomes" {
        /// Homeowner.
        pub contact_id: ContactId,
        /// What they did.
        pub kind: IntentKind,
        /// When it closed.
        pub occurred_at: DateTime<Utc>,
        /// Property concerned (sold, bought or refinanced).
        pub property_id: PropertyId,
        /// The sale that realised it (sell, buy, investment).
        pub sale_id: Option<SaleId>,
        /// The loan that realised it (refinance).
        pub loan_id: Option<LoanId>,
    }
}

table! {
    /// A property's true market value (without sale noise) at a date.
    pub struct PropertyValue in "property_values" {
        /// Property.
        pub property_id: PropertyId,
        /// Valuation date.
        pub as_of: NaiveDate,
        /// True value, dollars.
        pub value: f64,
    }
}

table! {
    /// Which property a source record really describes.
    pub struct RecordLink in "record_links" {
        /// Source record.
        pub record_id: RecordId,
        /// Property it describes.
        pub property_id: PropertyId,
    }
}
