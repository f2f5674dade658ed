//! Webhooks in the store: each organization's endpoints, and the delivery of every
//! alert event to each endpoint that wants it, with its attempts.
//!
//! Deliveries are made from the event log by one consumer with a cursor
//! (`event_cursors`): taking a batch moves the cursor and writes the batch's deliveries
//! in one transaction, so no event is queued twice or skipped, whichever replica takes
//! it. Sending takes a lease on each due delivery first, so two replicas never send the
//! same attempt.

use sqlx::any::AnyRow;

use super::events::{self, AlertEvent};
use super::{Result, Store, StoreError, Tenant, failed, get};

/// An endpoint that receives an organization's alert events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Server-made id (`whk_…`).
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The HMAC-SHA256 key of the signatures.
    pub secret: String,
    /// The event names it receives.
    pub events: Vec<String>,
    /// It receives events after this id of the log.
    pub after_event: i64,
    /// Whether it receives events.
    pub active: bool,
    /// Who made it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; kept for inspection and replay.
    Dead,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "dead" => Ok(DeliveryStatus::Dead),
            other => Err(format!("delivery status {other:?}")),
        }
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Server-made id (`dlv_…`, sortable by creation).
    pub id: String,
    /// The endpoint.
    pub webhook_id: String,
    /// The event (its id in the log).
    pub event_id: i64,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (Unix milliseconds; pending only).
    pub next_attempt_ms: i64,
    /// The endpoint's last HTTP status, if it answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A due delivery with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: Delivery,
    /// Its endpoint.
    pub url: String,
    /// Its endpoint's secret.
    pub secret: String,
    /// The event.
    pub event: AlertEvent,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The endpoint answered 2xx with this status.
    Delivered(i64),
    /// It failed (with the endpoint's status, if it answered); try again at
    /// `retry_at_ms`, or never (dead) when none.
    Failed {
        /// The endpoint's status, if it answered.
        status: Option<i64>,
        /// What went wrong.
        error: String,
        /// When to try again (Unix milliseconds).
        retry_at_ms: Option<i64>,
    },
}

const WEBHOOK_COLUMNS: &str =
    "id, org_id, url, secret, events, after_event, active, created_by, created_at";
const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, status, attempts, next_attempt_ms, \
     last_status, last_error, created_at, updated_at";

fn webhook_from(r: &AnyRow) -> Result<Webhook> {
    let events: String = get(r, "events")?;
    Ok(Webhook {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        url: get(r, "url")?,
        secret: get(r, "secret")?,
        events: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?,
        after_event: get(r, "after_event")?,
        active: get::<i64>(r, "active")? != 0,
        created_by: get(r, "created_by")?,
        created_at: get(r, "created_at")?,
    })
}

fn delivery_from(r: &AnyRow) -> Result<Delivery> {
    let status: String = get(r, "status")?;
    Ok(Delivery {
        id: get(r, "id")?,
        webhook_id: get(r, "webhook_id")?,
        event_id: get(r, "event_id")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        attempts: get(r, "attempts")?,
        next_attempt_ms: get(r, "next_attempt_ms")?,
        last_status: get(r, "last_status")?,
        last_error: get(r, "last_error")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

impl Tenant<'_> {
    /// Adds an endpoint; it receives the events written from now on.
    pub async fn create_webhook(
        &self,
        url: &str,
        secret: &str,
        events: &[String],
        created_by: &str,
        now: i64,
    ) -> Result<Webhook> {
        let after_event = self.store.latest_event_id().await?;
        let hook = Webhook {
            id: crate::auth::secret::new_id("whk"),
            org_id: self.org.clone(),
            url: url.to_owned(),
            secret: secret.to_owned(),
            events: events.to_vec(),
            after_event,
            active: true,
            created_by: created_by.to_owned(),
            created_at: now,
        };
        let names = serde_json::to_string(&hook.events)
            .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
        sqlx::query(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)"
        ))
        .bind(&hook.id)
        .bind(&self.org)
        .bind(&hook.url)
        .bind(&hook.secret)
        .bind(names)
        .bind(after_event)
        .bind(created_by)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(failed("storing a webhook"))?;
        Ok(hook)
    }

    /// The organization's endpoints, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 ORDER BY created_at, id"
        ))
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing webhooks"))?;
        rows.iter().map(webhook_from).collect()
    }

    /// One endpoint.
    pub async fn webhook(&self, id: &str) -> Result<Option<Webhook>> {
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 AND id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a webhook"))?;
        row.map(|r| webhook_from(&r)).transpose()
    }

    /// Removes an endpoint and its deliveries. False when there is no such endpoint.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE org_id = $1 AND webhook_id = $2")
            .bind(&self.org)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(failed("deleting a webhook's deliveries"))?;
        let done = sqlx::query("DELETE FROM webhooks WHERE org_id = $1 AND id = $2")
            .bind(&self.org)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(failed("deleting a webhook"))?;
        tx.commit()
            .await
            .map_err(failed("committing a deleted webhook"))?;
        Ok(done.rows_affected() == 1)
    }

    /// An endpoint's deliveries, newest first, optionally in one state, at most `limit`.
    pub async fn deliveries(
        &self,
        webhook_id: &str,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let filter = if status.is_some() {
            "AND status = $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE org_id = $1 AND webhook_id = $2 {filter} ORDER BY id DESC LIMIT $3"
        );
        let mut query = sqlx::query(&sql)
            .bind(&self.org)
            .bind(webhook_id)
            .bind(limit);
        if let Some(s) = status {
            query = query.bind(s.as_str());
        }
        let rows = query
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("listing webhook deliveries"))?;
        rows.iter().map(delivery_from).collect()
    }

    /// Sends a delivery again from its first attempt, now. None when there is no such
    /// delivery of this endpoint.
    pub async fn replay_delivery(
        &self,
        webhook_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<Delivery>> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_ms = $1,
             updated_at = $2 WHERE org_id = $3 AND webhook_id = $4 AND id = $5",
        )
        .bind(now_ms)
        .bind(now_ms / 1000)
        .bind(&self.org)
        .bind(webhook_id)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(failed("replaying a webhook delivery"))?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE org_id = $1 AND id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("reading a replayed delivery"))?;
        delivery_from(&row).map(Some)
    }
}

impl Store {
    /// Queues deliveries for the next events of the log (at most `limit`) to every
    /// active endpoint that wants them, and moves the webhook cursor past them; returns
    /// how many events were taken (0: the log is done) and how many deliveries queued.
    pub async fn queue_webhook_deliveries(&self, limit: i64, now_ms: i64) -> Result<(u64, u64)> {
        let mut tx = self.begin().await?;
        let events = events::take_next(&mut tx, "webhooks", limit).await?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok((0, 0));
        };
        let hooks = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE active = 1"
        ))
        .fetch_all(&mut *tx)
        .await
        .map_err(failed("reading webhooks"))?
        .iter()
        .map(webhook_from)
        .collect::<Result<Vec<_>>>()?;
        let mut queued = 0;
        for e in &events {
            let (id, org) = (e.id, &e.org_id);
            for hook in hooks
                .iter()
                .filter(|h| &h.org_id == org && h.after_event < id && h.events.contains(&e.event))
            {
                sqlx::query(&format!(
                    "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}, org_id)
                     VALUES ($1, $2, $3, 'pending', 0, $4, NULL, NULL, $5, $5, $6)
                     ON CONFLICT (webhook_id, event_id) DO NOTHING"
                ))
                .bind(crate::auth::secret::new_sortable_id("dlv"))
                .bind(&hook.id)
                .bind(id)
                .bind(now_ms)
                .bind(now_ms / 1000)
                .bind(org)
                .execute(&mut *tx)
                .await
                .map_err(failed("queueing a webhook delivery"))?;
                queued += 1;
            }
        }
        events::advance(&mut tx, "webhooks", last).await?;
        tx.commit()
            .await
            .map_err(failed("committing queued webhook deliveries"))?;
        Ok((events.len() as u64, queued))
    }

    /// Pending deliveries due by `now_ms`, earliest first, at most `limit`, each leased
    /// to the caller until `lease_until_ms` (another replica will not take them before).
    pub async fn take_due_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueDelivery>> {
        let rows = sqlx::query(
            "SELECT d.id, d.webhook_id, d.event_id, d.status, d.attempts, d.next_attempt_ms,
                    d.last_status, d.last_error, d.created_at, d.updated_at,
                    w.url, w.secret,
                    e.org_id, e.event, e.alert_id, e.assignee_id, e.previous_assignee_id, e.at,
                    e.data
             FROM webhook_deliveries d
             JOIN webhooks w ON w.id = d.webhook_id
             JOIN alert_events e ON e.id = d.event_id
             WHERE d.status = 'pending' AND d.next_attempt_ms <= $1
             ORDER BY d.next_attempt_ms, d.id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(failed("finding due webhook deliveries"))?;
        let mut taken = Vec::new();
        for r in &rows {
            let delivery = delivery_from(r)?;
            let leased = sqlx::query(
                "UPDATE webhook_deliveries SET next_attempt_ms = $1
                 WHERE id = $2 AND status = 'pending' AND next_attempt_ms = $3",
            )
            .bind(lease_until_ms)
            .bind(&delivery.id)
            .bind(delivery.next_attempt_ms)
            .execute(self.pool())
            .await
            .map_err(failed("leasing a webhook delivery"))?;
            if leased.rows_affected() != 1 {
                continue;
            }
            taken.push(DueDelivery {
                url: get(r, "url")?,
                secret: get(r, "secret")?,
                event: AlertEvent {
                    id: delivery.event_id,
                    org_id: get(r, "org_id")?,
                    event: get(r, "event")?,
                    alert_id: get(r, "alert_id")?,
                    assignee_id: get(r, "assignee_id")?,
                    previous_assignee_id: get(r, "previous_assignee_id")?,
                    at: get(r, "at")?,
                    data: get(r, "data")?,
                },
                delivery,
            });
        }
        Ok(taken)
    }

    /// Records how an attempt ended.
    pub async fn finish_attempt(&self, id: &str, outcome: &AttemptOutcome, now: i64) -> Result<()> {
        let (status, last_status, error, next) = match outcome {
            AttemptOutcome::Delivered(code) => (DeliveryStatus::Delivered, Some(*code), None, 0),
            AttemptOutcome::Failed {
                status,
                error,
                retry_at_ms,
            } => (
                if retry_at_ms.is_some() {
                    DeliveryStatus::Pending
                } else {
                    DeliveryStatus::Dead
                },
                *status,
                Some(error.as_str()),
                retry_at_ms.unwrap_or(0),
            ),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1,
             next_attempt_ms = $2, last_status = $3, last_error = $4, updated_at = $5
             WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(next)
        .bind(last_status)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(failed("recording a webhook attempt"))?;
        Ok(())
    }
}
