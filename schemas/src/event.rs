//! Behaviour events: the catalog, the record, and parsing at the edge.
//!
//! Events arrive as NDJSON, one JSON object per line:
//!
//! ```json
//! {"event_id":7,"org_id":1,"contact_id":42,"event_type":"listing_viewed",
//!  "ts":"2024-03-05T14:03:22.120Z","session_id":9,"listing_id":1234}
//! ```
//!
//! `ts` is the event time (when it happened on the client), RFC 3339 in UTC. The order of
//! lines is arrival order, which may differ from event-time order.

use chrono::{DateTime, Utc};

use crate::ids::{
    CampaignId, ContactId, DocumentId, EventId, ListingId, OrgId, PropertyId, SessionId,
};
use crate::table::{StrEnum, str_enum, table};

str_enum! {
    /// The event-type catalog. The string forms are a contract with producers.
    pub enum EventType ("event type") {
        /// Opened a stored document (closing disclosure, deed, …).
        DocumentViewed = "document_viewed",
        /// Downloaded a stored document.
        DocumentDownloaded = "document_downloaded",
        /// Shared a stored document with someone.
        DocumentShared = "document_shared",
        /// Looked at the home's estimated value.
        ValuationViewed = "valuation_viewed",
        /// Opened the equity report.
        EquityReportOpened = "equity_report_opened",
        /// Opened a campaign e-mail.
        EmailOpened = "email_opened",
        /// Clicked a link in a campaign e-mail.
        EmailClicked = "email_clicked",
        /// Viewed a for-sale listing.
        ListingViewed = "listing_viewed",
        /// Saved a for-sale listing.
        ListingSaved = "listing_saved",
        /// Searched for homes outside the home's area.
        OutOfAreaSearch = "out_of_area_search",
        /// Used the mortgage (purchase) calculator.
        MortgageCalcUsed = "mortgage_calc_used",
        /// Used the refinance calculator.
        RefinanceCalcUsed = "refinance_calc_used",
        /// Viewed a rental (investment) analysis.
        RentalAnalysisViewed = "rental_analysis_viewed",
        /// Logged in.
        Login = "login",
        /// Any other page view.
        PageView = "page_view",
    }
}

impl EventType {
    /// Dense index of the variant (0..`ALL.len()`), for per-type counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

table! {
    /// One behaviour event of one contact.
    pub struct Event in "events" {
        /// Producer-assigned id, unique per organization.
        pub event_id: EventId,
        /// Tenant.
        pub org_id: OrgId,
        /// The homeowner who acted.
        pub contact_id: ContactId,
        /// What happened.
        pub event_type: EventType,
        /// Event time (UTC, millisecond precision; always written with three decimals).
        #[serde(with = "rfc3339_millis")]
        pub ts: DateTime<Utc>,
        /// Browsing session, when the event happened in the app.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub session_id: Option<SessionId>,
        /// Property concerned (valuation, equity report).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub property_id: Option<PropertyId>,
        /// Document concerned (`document_*`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub document_id: Option<DocumentId>,
        /// Listing concerned (`listing_*`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub listing_id: Option<ListingId>,
        /// Zip code searched (`out_of_area_search`, `listing_*`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub search_zip: Option<String>,
        /// Campaign concerned (`email_*`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub campaign_id: Option<CampaignId>,
        /// Amount entered in a calculator, in dollars.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub amount: Option<f64>,
    }
}

/// Serde form of event times: RFC 3339, UTC, always with milliseconds
/// (`2024-03-05T14:03:22.000Z`), so every producer writes the same bytes.
mod rfc3339_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("ts {text:?}: {e}")))
    }
}

str_enum! {
    /// Why an input record was rejected; the string form is the dead-letter `reason`.
    pub enum RejectReason ("reject reason") {
        /// Not valid JSON, or not a JSON object.
        MalformedJson = "malformed_json",
        /// A required field is absent or null.
        MissingField = "missing_field",
        /// `event_type` is not in the catalog.
        UnknownEventType = "unknown_event_type",
        /// A field holds a value of the wrong type or out of range.
        InvalidField = "invalid_field",
        /// `ts` is not an RFC 3339 timestamp.
        InvalidTimestamp = "invalid_timestamp",
        /// `ts` lies further in the future than the allowed clock skew.
        FutureTimestamp = "future_timestamp",
        /// Event time is behind the watermark by more than the allowed lateness.
        Late = "late",
    }
}

/// A rejected input record: the reason class, the field concerned and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Reason class (dead-letter `reason`).
    pub reason: RejectReason,
    /// The field at fault, when one is.
    pub field: Option<&'static str>,
    /// Human-readable detail naming the value.
    pub message: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    fn new(reason: RejectReason, field: Option<&'static str>, message: String) -> Self {
        Rejection {
            reason,
            field,
            message,
        }
    }
}

/// Maximum clock skew tolerated for event times ahead of the reference time.
pub const MAX_FUTURE_SKEW: chrono::Duration = chrono::Duration::hours(24);

/// Parses and validates one NDJSON line.
///
/// `now` is the reference time for the future-timestamp check (`None` uses the wall clock).
/// Unknown extra fields are ignored, so producers can add fields without breaking readers.
pub fn parse_event_line(line: &str, now: Option<DateTime<Utc>>) -> Result<Event, Rejection> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        Rejection::new(
            RejectReason::MalformedJson,
            None,
            format!("not valid JSON: {e}"),
        )
    })?;
    let obj = value.as_object().ok_or_else(|| {
        Rejection::new(
            RejectReason::MalformedJson,
            None,
            "line is not a JSON object".into(),
        )
    })?;

    let get = |field: &'static str| obj.get(field).filter(|v| !v.is_null());
    let required = |field: &'static str| {
        get(field).ok_or_else(|| {
            Rejection::new(
                RejectReason::MissingField,
                Some(field),
                format!("required field {field:?} is missing"),
            )
        })
    };
    let int = |field: &'static str, v: &serde_json::Value| {
        v.as_i64().ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidField,
                Some(field),
                format!("field {field:?} must be an integer, got {v}"),
            )
        })
    };
    let opt_int = |field: &'static str| get(field).map(|v| int(field, v)).transpose();

    let event_id = EventId(int("event_id", required("event_id")?)?);
    let org_id = OrgId(int("org_id", required("org_id")?)?);
    let contact_id = ContactId(int("contact_id", required("contact_id")?)?);
    let type_value = required("event_type")?;
    let type_text = type_value.as_str().ok_or_else(|| {
        Rejection::new(
            RejectReason::InvalidField,
            Some("event_type"),
            format!("field \"event_type\" must be a string, got {type_value}"),
        )
    })?;
    let event_type = EventType::parse(type_text).ok_or_else(|| {
        Rejection::new(
            RejectReason::UnknownEventType,
            Some("event_type"),
            format!("unknown event_type {type_text:?}"),
        )
    })?;
    let ts_value = required("ts")?;
    let ts_text = ts_value.as_str().unwrap_or_default();
    let ts = DateTime::parse_from_rfc3339(ts_text)
        .map_err(|e| {
            Rejection::new(
                RejectReason::InvalidTimestamp,
                Some("ts"),
                format!("field \"ts\" = {ts_value} is not an RFC 3339 timestamp: {e}"),
            )
        })?
        .with_timezone(&Utc);
    let now = now.unwrap_or_else(Utc::now);
    if ts > now + MAX_FUTURE_SKEW {
        return Err(Rejection::new(
            RejectReason::FutureTimestamp,
            Some("ts"),
            format!("field \"ts\" = {ts_text:?} is in the future (reference time {now})"),
        ));
    }
    let search_zip = match get("search_zip") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| {
                    Rejection::new(
                        RejectReason::InvalidField,
                        Some("search_zip"),
                        format!("field \"search_zip\" must be a string, got {v}"),
                    )
                })?
                .to_owned(),
        ),
    };
    let amount = match get("amount") {
        None => None,
        Some(v) => Some(v.as_f64().filter(|a| a.is_finite()).ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidField,
                Some("amount"),
                format!("field \"amount\" must be a number, got {v}"),
            )
        })?),
    };
    Ok(Event {
        event_id,
        org_id,
        contact_id,
        event_type,
        ts,
        session_id: opt_int("session_id")?.map(SessionId),
        property_id: opt_int("property_id")?.map(PropertyId),
        document_id: opt_int("document_id")?.map(DocumentId),
        listing_id: opt_int("listing_id")?.map(ListingId),
        search_zip,
        campaign_id: opt_int("campaign_id")?.map(CampaignId),
        amount,
    })
}
