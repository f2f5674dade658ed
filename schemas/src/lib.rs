//! # roi-schemas: the shared vocabulary of ROI
//!
//! Every other crate speaks in these types. This crate defines:
//!
//! - **ids** ([`ids`]): typed identifiers (`ContactId`, `PropertyId`, …) so a contact id can
//!   never be passed where a property id is expected;
//! - **events** ([`event`]): the behaviour-event catalog ([`EventType`], stable string names),
//!   the [`Event`] record and the edge parser [`parse_event_line`] that turns one NDJSON
//!   line into a validated event or a [`Rejection`] naming the field and the value;
//! - **entities** ([`entity`]): organizations, agents, territories, contacts, properties,
//!   sales, loans and property records from a named [`RecordSource`];
//! - **market** ([`market`]) and **truth** ([`truth`]) tables written by the synthetic world;
//! - **alerts** ([`alert`]): the [`Alert`] the streaming job emits and the API serves;
//! - **stream outputs**: [`SignalFiring`] rows and [`DeadLetter`] records;
//! - **Arrow tables** ([`table`]): one Arrow schema per table, with lossless conversion
//!   between rows and `RecordBatch`es through the [`Table`] trait.
//!
//! ```
//! use roi_schemas::{parse_event_line, EventType, Table, Event};
//! let line = r#"{"event_id":1,"org_id":1,"contact_id":42,"event_type":"valuation_viewed","ts":"2024-03-05T14:03:22.120Z"}"#;
//! let event = parse_event_line(line, None).unwrap();
//! assert_eq!(event.event_type, EventType::ValuationViewed);
//! let batch = Event::to_batch(&[event.clone()]).unwrap();
//! assert_eq!(Event::from_batch(&batch).unwrap(), vec![event]);
//! ```

pub mod alert;
pub mod curated;
pub mod dead_letter;
pub mod entity;
pub mod error;
pub mod event;
pub mod ids;
pub mod market;
pub mod signal;
pub mod table;
pub mod truth;

pub use alert::{Alert, AlertOutcome, AlertStatus, IntentKind};
pub use curated::{
    AreaKind, CityMonth, Comparables, FieldProvenance, MaintenanceItem, MarketStat, MatchRule,
    PropertyFinancials, PropertyMaster, PropertyValuation, QualityIssue, QualityKind, RecordMatch,
};
pub use dead_letter::DeadLetter;
pub use entity::{
    Agent, Contact, Loan, LoanPurpose, OrgKind, Organization, Parcel, Property, PropertyRecord,
    PropertyType, RecordSource, Sale, Territory,
};
pub use error::{Error, Result};
pub use event::{Event, EventType, RejectReason, Rejection, parse_event_line};
pub use ids::*;
pub use market::{Metro, MortgageRate, Neighbourhood, PriceIndex};
pub use signal::SignalFiring;
pub use table::{Column, StrEnum, Table};
pub use truth::{IntentSnapshot, Outcome, PropertyValue, RecordLink};

/// Version of the table schemas in this crate; written into every manifest so readers can
/// refuse data written by an incompatible version.
pub const SCHEMA_VERSION: u32 = 1;
