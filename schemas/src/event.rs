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
        /// An event with the same organization and event id was already accepted.
        DuplicateEvent = "duplicate_event",
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

/// The typed shape of a line, borrowed from the input: the fast path of
/// [`parse_event_line`]. Any type mismatch falls back to the diagnostic path.
#[derive(serde::Deserialize)]
struct RawEvent<'a> {
    event_id: Option<i64>,
    org_id: Option<i64>,
    contact_id: Option<i64>,
    #[serde(borrow)]
    event_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    ts: Option<std::borrow::Cow<'a, str>>,
    session_id: Option<i64>,
    property_id: Option<i64>,
    document_id: Option<i64>,
    listing_id: Option<i64>,
    #[serde(borrow)]
    search_zip: Option<std::borrow::Cow<'a, str>>,
    campaign_id: Option<i64>,
    amount: Option<f64>,
}

fn missing(field: &'static str) -> Rejection {
    Rejection::new(
        RejectReason::MissingField,
        Some(field),
        format!("required field {field:?} is missing"),
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` quickly; anything else goes through chrono.
fn parse_ts(text: &str) -> Result<DateTime<Utc>, Rejection> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let fast = (b.len() == 20 || b.len() == 24)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[b.len() - 1] == b'Z';
    if fast {
        let milli = if b.len() == 24 {
            if b[19] == b'.' { digits(20..23) } else { None }
        } else {
            Some(0)
        };
        if let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s), Some(ms)) = (
            digits(0..4),
            digits(5..7),
            digits(8..10),
            digits(11..13),
            digits(14..16),
            digits(17..19),
            milli,
        ) && let Some(date) = chrono::NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32)
            && let Some(t) = date.and_hms_milli_opt(h as u32, mi as u32, s as u32, ms as u32)
        {
            return Ok(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Rejection::new(
                RejectReason::InvalidTimestamp,
                Some("ts"),
                format!("field \"ts\" = {text:?} is not an RFC 3339 timestamp: {e}"),
            )
        })
}

/// Checks the event time against the reference time and the Unix epoch.
fn check_ts(ts: DateTime<Utc>, text: &str, now: Option<DateTime<Utc>>) -> Result<(), Rejection> {
    if ts.timestamp_millis() < 0 {
        return Err(Rejection::new(
            RejectReason::InvalidTimestamp,
            Some("ts"),
            format!("field \"ts\" = {text:?} is before 1970-01-01"),
        ));
    }
    let now = now.unwrap_or_else(Utc::now);
    if ts > now + MAX_FUTURE_SKEW {
        return Err(Rejection::new(
            RejectReason::FutureTimestamp,
            Some("ts"),
            format!("field \"ts\" = {text:?} is in the future (reference time {now})"),
        ));
    }
    Ok(())
}

/// Parses and validates one NDJSON line.
///
/// `now` is the reference time for the future-timestamp check (`None` uses the wall clock).
/// Unknown extra fields are ignored, so producers can add fields without breaking readers.
/// Well-formed lines take a fast, borrowing path; only bad lines pay for the diagnosis
/// that names the offending field and value.
pub fn parse_event_line(line: &str, now: Option<DateTime<Utc>>) -> Result<Event, Rejection> {
    let Ok(raw) = serde_json::from_str::<RawEvent<'_>>(line) else {
        return Err(diagnose(line));
    };
    let event_type_text = raw.event_type.ok_or_else(|| missing("event_type"))?;
    let event_id = raw.event_id.ok_or_else(|| missing("event_id"))?;
    let org_id = raw.org_id.ok_or_else(|| missing("org_id"))?;
    let contact_id = raw.contact_id.ok_or_else(|| missing("contact_id"))?;
    let event_type = EventType::parse(&event_type_text).ok_or_else(|| {
        Rejection::new(
            RejectReason::UnknownEventType,
            Some("event_type"),
            format!("unknown event_type {event_type_text:?}"),
        )
    })?;
    let ts_text = raw.ts.ok_or_else(|| missing("ts"))?;
    let ts = parse_ts(&ts_text)?;
    check_ts(ts, &ts_text, now)?;
    if let Some(a) = raw.amount
        && !a.is_finite()
    {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            Some("amount"),
            format!("field \"amount\" must be finite, got {a}"),
        ));
    }
    Ok(Event {
        event_id: EventId(event_id),
        org_id: OrgId(org_id),
        contact_id: ContactId(contact_id),
        event_type,
        ts,
        session_id: raw.session_id.map(SessionId),
        property_id: raw.property_id.map(PropertyId),
        document_id: raw.document_id.map(DocumentId),
        listing_id: raw.listing_id.map(ListingId),
        search_zip: raw.search_zip.map(|z| z.into_owned()),
        campaign_id: raw.campaign_id.map(CampaignId),
        amount: raw.amount,
    })
}

/// The slow path for lines the typed parse refused: find what is wrong and say so.
fn diagnose(line: &str) -> Rejection {
    let invalid = |field: &'static str, message: String| {
        Rejection::new(RejectReason::InvalidField, Some(field), message)
    };
    let check = || -> Result<(), Rejection> {
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
        for field in ["event_id", "org_id", "contact_id", "event_type", "ts"] {
            get(field).ok_or_else(|| missing(field))?;
        }
        for field in [
            "event_id",
            "org_id",
            "contact_id",
            "session_id",
            "property_id",
            "document_id",
            "listing_id",
            "campaign_id",
        ] {
            if let Some(v) = get(field)
                && !v.is_i64()
            {
                return Err(invalid(
                    field,
                    format!("field {field:?} must be an integer, got {v}"),
                ));
            }
        }
        for field in ["event_type", "search_zip"] {
            if let Some(v) = get(field)
                && !v.is_string()
            {
                return Err(invalid(
                    field,
                    format!("field {field:?} must be a string, got {v}"),
                ));
            }
        }
        if let Some(v) = get("amount")
            && !v.as_f64().is_some_and(f64::is_finite)
        {
            return Err(invalid(
                "amount",
                format!("field \"amount\" must be a number, got {v}"),
            ));
        }
        match get("ts") {
            Some(v) if !v.is_string() => Err(Rejection::new(
                RejectReason::InvalidTimestamp,
                Some("ts"),
                format!("field \"ts\" = {v} is not an RFC 3339 timestamp string"),
            )),
            _ => Ok(()),
        }
    };
    if let Err(r) = check() {
        return r;
    }
    // Every field checks out one by one, yet the typed parse refused the line: the JSON
    // itself is ambiguous (for example a key given twice).
    let detail = serde_json::from_str::<RawEvent<'_>>(line)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    Rejection::new(
        RejectReason::MalformedJson,
        None,
        format!("ambiguous JSON object: {detail}"),
    )
}
