//! The alert event log: every change of an alert, appended in the transaction that makes
//! it, read back in id order by the live push ([`crate::push`]) and by clients resuming
//! after a reconnect.
//!
//! Ids come from the one row of `event_counter`, incremented inside the writing
//! transaction. The row lock it takes makes event-writing transactions commit in id
//! order, so a reader that has seen id N has seen every event below N.

use super::{Result, Store, StoreError, Tenant, failed, get};
use crate::alerts::AlertStatus;
use sqlx::any::AnyRow;

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// It reached the store.
    New,
    /// It was given to an agent (routed, by hand, or re-routed).
    Assigned,
    /// It was converted.
    Converted,
    /// Any other change (accepted, contacted, dismissed, expired).
    Updated,
}

impl EventKind {
    /// The event's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::New => "alert.new",
            EventKind::Assigned => "alert.assigned",
            EventKind::Converted => "alert.converted",
            EventKind::Updated => "alert.updated",
        }
    }

    /// The event a move into `to` makes.
    pub fn of_move(to: AlertStatus) -> EventKind {
        match to {
            AlertStatus::Assigned => EventKind::Assigned,
            AlertStatus::Converted => EventKind::Converted,
            _ => EventKind::Updated,
        }
    }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEvent {
    /// Position in the log, increasing.
    pub id: i64,
    /// The organization.
    pub org_id: String,
    /// `alert.new`, `alert.assigned`, `alert.updated` or `alert.converted`.
    pub event: String,
    /// The alert.
    pub alert_id: String,
    /// The owner after the change.
    pub assignee_id: Option<String>,
    /// The owner before it.
    pub previous_assignee_id: Option<String>,
    /// Unix seconds.
    pub at: i64,
    /// JSON object: the alert after the change, and the change.
    pub data: String,
}

/// What an appended event says.
pub(crate) struct NewEvent<'a> {
    pub org_id: &'a str,
    pub kind: EventKind,
    pub alert_id: &'a str,
    pub assignee_id: Option<&'a str>,
    pub previous_assignee_id: Option<&'a str>,
    pub data: serde_json::Value,
}

const EVENT_COLUMNS: &str =
    "id, org_id, event, alert_id, assignee_id, previous_assignee_id, at, data";

/// Takes the event lock for the caller's transaction (a write to the counter row),
/// before any read, so that SQLite need not upgrade a read transaction to a write one.
pub(crate) async fn lock(tx: &mut sqlx::AnyConnection) -> Result<()> {
    sqlx::query("UPDATE event_counter SET value = value WHERE id = 1")
        .execute(&mut *tx)
        .await
        .map_err(failed("taking the event lock"))?;
    Ok(())
}

/// Takes the next event id inside the caller's transaction. This writes (and so locks)
/// the counter row: call it before the transaction's reads, so that SQLite does not have
/// to upgrade a read transaction to a write one.
pub(crate) async fn next_id(tx: &mut sqlx::AnyConnection) -> Result<i64> {
    let row =
        sqlx::query("UPDATE event_counter SET value = value + 1 WHERE id = 1 RETURNING value")
            .fetch_one(&mut *tx)
            .await
            .map_err(failed("numbering an alert event"))?;
    get(&row, "value")
}

/// Appends the event numbered `id` (from [`next_id`]) inside the caller's transaction.
pub(crate) async fn insert(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    e: NewEvent<'_>,
    now: i64,
) -> Result<()> {
    let data = serde_json::to_string(&e.data)
        .map_err(|err| StoreError::Corrupt(format!("alert event data: {err}")))?;
    sqlx::query(&format!(
        "INSERT INTO alert_events ({EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(id)
    .bind(e.org_id)
    .bind(e.kind.as_str())
    .bind(e.alert_id)
    .bind(e.assignee_id)
    .bind(e.previous_assignee_id)
    .bind(now)
    .bind(data)
    .execute(&mut *tx)
    .await
    .map_err(failed("recording an alert event"))?;
    Ok(())
}

/// Locks the background consumer cursor `name` (a row of `event_cursors`) for the
/// caller's transaction and reads the next events after it, at most `limit`, in id
/// order. Writing the row first locks it, so one replica takes a batch at a time; the
/// caller moves the cursor with [`advance`] in the same transaction.
pub(crate) async fn take_next(
    tx: &mut sqlx::AnyConnection,
    name: &str,
    limit: i64,
) -> Result<Vec<AlertEvent>> {
    let row = sqlx::query("UPDATE event_cursors SET value = value WHERE name = $1 RETURNING value")
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed("reading a consumer cursor"))?;
    let cursor: i64 = get(&row, "value")?;
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM alert_events WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(cursor)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(failed("reading events after a cursor"))?;
    rows.iter().map(event_from).collect()
}

/// Moves the consumer cursor `name` past event `last`, in the caller's transaction.
pub(crate) async fn advance(tx: &mut sqlx::AnyConnection, name: &str, last: i64) -> Result<()> {
    sqlx::query("UPDATE event_cursors SET value = $1 WHERE name = $2")
        .bind(last)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(failed("moving a consumer cursor"))?;
    Ok(())
}

fn event_from(r: &AnyRow) -> Result<AlertEvent> {
    Ok(AlertEvent {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        event: get(r, "event")?,
        alert_id: get(r, "alert_id")?,
        assignee_id: get(r, "assignee_id")?,
        previous_assignee_id: get(r, "previous_assignee_id")?,
        at: get(r, "at")?,
        data: get(r, "data")?,
    })
}

impl Store {
    /// The id of the latest event (0 with none).
    pub async fn latest_event_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT value FROM event_counter WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(failed("reading the event counter"))?;
        get(&row, "value")
    }

    /// Events of every organization after `after`, oldest first, at most `limit`.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<AlertEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM alert_events WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(failed("reading alert events"))?;
        rows.iter().map(event_from).collect()
    }
}

impl Tenant<'_> {
    /// The organization's events after `after`, oldest first, at most `limit`.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<AlertEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM alert_events WHERE org_id = $1 AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(&self.org)
        .bind(after)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("reading the organization's alert events"))?;
        rows.iter().map(event_from).collect()
    }
}
