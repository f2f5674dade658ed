//! Alerts in the store: ingested from the streaming job idempotently by alert id, read
//! and moved through their life cycle by one organization at a time.
//!
//! The pipeline names tenants by its own numeric ids (the lake's `org_id`); an
//! organization of the store is linked to one of them ([`Store::link_lake_org`]) before
//! its alerts are ingested. Ingest is a system operation: each alert's organization comes
//! from that link, never from a client.

use std::collections::{BTreeMap, HashMap};

use sqlx::any::AnyRow;

use super::events::{self, EventKind, NewEvent};
use super::{Backend, Result, Store, StoreError, Tenant, failed, get, unique};
use crate::alerts::{AlertKind, AlertStatus};

/// An alert from the streaming job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// The pipeline's deterministic id.
    pub id: String,
    /// The pipeline's id of the organization.
    pub lake_org_id: i64,
    /// The homeowner (pipeline id).
    pub contact_id: i64,
    /// Their home (pipeline id).
    pub property_id: Option<i64>,
    /// What they are likely to do.
    pub kind: AlertKind,
    /// Calibrated probability.
    pub score: f64,
    /// Confidence in the score.
    pub confidence: f64,
    /// Reasons, most important first.
    pub reasons: Vec<String>,
    /// The model version that scored it.
    pub model_version: String,
    /// Event time it was raised, Unix seconds.
    pub raised_at: i64,
    /// The home's zip code, when known (territory routing uses it).
    pub zip: Option<String>,
    /// The homeowner's agent of record (the pipeline's agent id), when known.
    pub agent_of_record: Option<i64>,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    /// The pipeline's id.
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// The homeowner (pipeline id).
    pub contact_id: i64,
    /// Their home (pipeline id).
    pub property_id: Option<i64>,
    /// What they are likely to do.
    pub kind: AlertKind,
    /// Calibrated probability.
    pub score: f64,
    /// Confidence.
    pub confidence: f64,
    /// Reasons, most important first.
    pub reasons: Vec<String>,
    /// Model version.
    pub model_version: String,
    /// Event time raised, Unix seconds.
    pub raised_at: i64,
    /// When it reached the store.
    pub ingested_at: i64,
    /// Life-cycle state.
    pub status: AlertStatus,
    /// The agent (user id) who owns it.
    pub assignee_id: Option<String>,
    /// Last change, Unix seconds.
    pub updated_at: i64,
    /// The deal's value, when converted and recorded.
    pub outcome_value: Option<f64>,
    /// The home's zip code, when known.
    pub zip: Option<String>,
    /// The homeowner's agent of record (the pipeline's agent id), when known.
    pub agent_of_record: Option<i64>,
    /// When the assigned agent accepted it (none: not accepted yet).
    pub accepted_at: Option<i64>,
}

/// One change in an alert's history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    /// Unix seconds.
    pub at: i64,
    /// Who changed it (none for the system).
    pub actor_id: Option<String>,
    /// State before.
    pub from_status: AlertStatus,
    /// State after.
    pub to_status: AlertStatus,
    /// Owner after.
    pub assignee_id: Option<String>,
    /// Why, in words.
    pub detail: String,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// New alerts stored.
    pub inserted: u64,
    /// Alerts already stored (a replay): left as they are.
    pub duplicates: u64,
    /// Alerts skipped because their pipeline organization is linked to no organization
    /// of the store, by pipeline organization id.
    pub unlinked: BTreeMap<i64, u64>,
}

/// How to order a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlertSort {
    /// Most recently raised first.
    #[default]
    Newest,
    /// Highest score first.
    Score,
    /// Earliest raised first (no cursor: for routing runs).
    Oldest,
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    /// After this (raised_at, id) in newest-first order.
    Newest(i64, String),
    /// After this (score, id) in highest-first order.
    Score(f64, String),
}

/// What became of one alert, for the lake's training labels.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertOutcomeRow {
    /// The alert.
    pub alert_id: String,
    /// The pipeline organization its organization is linked to.
    pub lake_org_id: i64,
    /// The homeowner.
    pub contact_id: i64,
    /// Their home.
    pub property_id: Option<i64>,
    /// What it predicted.
    pub kind: AlertKind,
    /// Its score.
    pub score: f64,
    /// The model version.
    pub model_version: String,
    /// When it was raised (Unix seconds).
    pub raised_at: i64,
    /// Where it is now.
    pub status: AlertStatus,
    /// The deal's value, when converted.
    pub outcome_value: Option<f64>,
    /// First given to an agent (Unix seconds).
    pub assigned_at: Option<i64>,
    /// First contacted (Unix seconds).
    pub contacted_at: Option<i64>,
    /// Closed: converted, dismissed or expired (Unix seconds).
    pub closed_at: Option<i64>,
}

/// A page of alerts as JSON, and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPageJson {
    /// A JSON array of alert objects (the API's alert view), in the list's order.
    pub alerts: String,
    /// The last alert of the page, when another page follows.
    pub next: Option<Cursor>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only this kind.
    pub kind: Option<AlertKind>,
    /// Only this state.
    pub status: Option<AlertStatus>,
    /// Score at least this.
    pub min_score: Option<f64>,
    /// Score at most this.
    pub max_score: Option<f64>,
    /// Only alerts owned by this user.
    pub assignee_id: Option<String>,
    /// Raised at or after (Unix seconds).
    pub raised_from: Option<i64>,
    /// Raised before (Unix seconds).
    pub raised_to: Option<i64>,
    /// Order.
    pub sort: AlertSort,
    /// Page size.
    pub limit: i64,
    /// Continue after this.
    pub after: Option<Cursor>,
}

/// A change to make, if the alert is still in `from`.
#[derive(Debug, Clone)]
pub struct AlertMove<'a> {
    /// The state the caller saw; the change applies only if it still holds.
    pub from: AlertStatus,
    /// The new state.
    pub to: AlertStatus,
    /// The owner afterwards.
    pub assignee_id: Option<&'a str>,
    /// The deal's value (converted).
    pub outcome_value: Option<f64>,
    /// Who.
    pub actor_id: Option<&'a str>,
    /// Why.
    pub detail: String,
}

/// Counts for the statistics endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertCounts {
    /// (kind, status, assignee) → alerts.
    pub by_kind_status_assignee: Vec<(AlertKind, AlertStatus, Option<String>, i64)>,
    /// Sum of recorded outcome values.
    pub converted_value: f64,
}

pub(super) const ALERT_COLUMNS: &str = "id, org_id, contact_id, property_id, kind, score, confidence, reasons, \
     model_version, raised_at, ingested_at, status, assignee_id, updated_at, outcome_value, zip, \
     agent_of_record, accepted_at";

/// Rows per ingest transaction.
const INGEST_BATCH: usize = 500;

enum Bind {
    Text(String),
    Int(i64),
    Real(f64),
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        query = match b {
            Bind::Text(v) => query.bind(v),
            Bind::Int(v) => query.bind(v),
            Bind::Real(v) => query.bind(v),
        };
    }
    query
}

impl Store {
    /// Links a store organization to the pipeline's id for it (one each way).
    pub async fn link_lake_org(&self, lake_org_id: i64, org_id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO lake_organizations (lake_org_id, org_id, linked_at) VALUES ($1, $2, $3)",
        )
        .bind(lake_org_id)
        .bind(org_id)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(unique(
            format!("a link of pipeline organization {lake_org_id} or of this organization"),
            "linking an organization to the pipeline",
        ))?;
        Ok(())
    }

    /// Every link: pipeline organization id → store organization id.
    pub async fn lake_links(&self) -> Result<BTreeMap<i64, String>> {
        let rows = sqlx::query("SELECT lake_org_id, org_id FROM lake_organizations")
            .fetch_all(self.pool())
            .await
            .map_err(failed("reading organization links"))?;
        rows.iter()
            .map(|r| Ok((get(r, "lake_org_id")?, get(r, "org_id")?)))
            .collect()
    }

    /// Stores alerts that are not stored yet (by id), in their linked organizations.
    /// Replaying the same alerts stores nothing twice and changes nothing.
    pub async fn ingest_alerts(&self, alerts: &[NewAlert], now: i64) -> Result<IngestReport> {
        let links: HashMap<i64, String> = self.lake_links().await?.into_iter().collect();
        let mut report = IngestReport::default();
        let mut wrote = false;
        for chunk in alerts.chunks(INGEST_BATCH) {
            let mut tx = self.begin().await?;
            for a in chunk {
                let Some(org_id) = links.get(&a.lake_org_id) else {
                    *report.unlinked.entry(a.lake_org_id).or_default() += 1;
                    continue;
                };
                let reasons = serde_json::to_string(&a.reasons)
                    .map_err(|e| StoreError::Corrupt(format!("alert reasons: {e}")))?;
                let done = sqlx::query(&format!(
                    "INSERT INTO alerts ({ALERT_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'new', NULL, $11, NULL, $12, $13, NULL)
                     ON CONFLICT (id) DO NOTHING"
                ))
                .bind(&a.id)
                .bind(org_id)
                .bind(a.contact_id)
                .bind(a.property_id)
                .bind(a.kind.as_str())
                .bind(a.score)
                .bind(a.confidence)
                .bind(reasons)
                .bind(&a.model_version)
                .bind(a.raised_at)
                .bind(now)
                .bind(a.zip.as_deref())
                .bind(a.agent_of_record)
                .execute(&mut *tx)
                .await
                .map_err(failed("storing an alert"))?;
                if done.rows_affected() != 1 {
                    report.duplicates += 1;
                    continue;
                }
                report.inserted += 1;
                let stored = StoredAlert {
                    id: a.id.clone(),
                    org_id: org_id.clone(),
                    contact_id: a.contact_id,
                    property_id: a.property_id,
                    kind: a.kind,
                    score: a.score,
                    confidence: a.confidence,
                    reasons: a.reasons.clone(),
                    model_version: a.model_version.clone(),
                    raised_at: a.raised_at,
                    ingested_at: now,
                    status: AlertStatus::New,
                    assignee_id: None,
                    updated_at: now,
                    outcome_value: None,
                    zip: a.zip.clone(),
                    agent_of_record: a.agent_of_record,
                    accepted_at: None,
                };
                let event_id = events::next_id(&mut tx).await?;
                let event = NewEvent {
                    org_id,
                    kind: EventKind::New,
                    alert_id: &a.id,
                    assignee_id: None,
                    previous_assignee_id: None,
                    data: serde_json::json!({ "alert": snapshot(&stored) }),
                };
                events::insert(&mut tx, event_id, event, now).await?;
            }
            tx.commit()
                .await
                .map_err(failed("committing ingested alerts"))?;
            wrote |= report.inserted > 0;
        }
        if wrote {
            self.ring();
        }
        Ok(report)
    }
}

impl Store {
    /// What became of every alert of the organizations linked to the pipeline, oldest
    /// first, with when it was first assigned, contacted and closed (from its history).
    pub async fn alert_outcomes(&self) -> Result<Vec<AlertOutcomeRow>> {
        let first = |statuses: &str| {
            format!(
                "(SELECT MIN(h.at) FROM alert_history h WHERE h.org_id = a.org_id
                  AND h.alert_id = a.id AND h.to_status IN ({statuses}))"
            )
        };
        let rows = sqlx::query(&format!(
            "SELECT a.id, l.lake_org_id, a.contact_id, a.property_id, a.kind, a.score,
                    a.model_version, a.raised_at, a.status, a.outcome_value,
                    {} AS assigned_at, {} AS contacted_at, {} AS closed_at
             FROM alerts a JOIN lake_organizations l ON l.org_id = a.org_id
             ORDER BY a.raised_at, a.id",
            first("'assigned'"),
            first("'contacted'"),
            first("'converted', 'dismissed', 'expired'"),
        ))
        .fetch_all(self.pool())
        .await
        .map_err(failed("reading alert outcomes"))?;
        rows.iter()
            .map(|r| {
                Ok(AlertOutcomeRow {
                    alert_id: get(r, "id")?,
                    lake_org_id: get(r, "lake_org_id")?,
                    contact_id: get(r, "contact_id")?,
                    property_id: get(r, "property_id")?,
                    kind: kind_of(r)?,
                    score: get(r, "score")?,
                    model_version: get(r, "model_version")?,
                    raised_at: get(r, "raised_at")?,
                    status: status_of(r, "status")?,
                    outcome_value: get(r, "outcome_value")?,
                    assigned_at: get(r, "assigned_at")?,
                    contacted_at: get(r, "contacted_at")?,
                    closed_at: get(r, "closed_at")?,
                })
            })
            .collect()
    }
}

impl Tenant<'_> {
    /// The WHERE clause (and its bindings) and the ORDER BY of `filter`.
    fn filter_sql(&self, filter: &AlertFilter) -> (Vec<Bind>, String, &'static str) {
        let mut binds = vec![Bind::Text(self.org.clone())];
        let mut clauses = vec!["org_id = $1".to_owned()];
        let mut add = |clause: &str, value: Bind, binds: &mut Vec<Bind>| {
            binds.push(value);
            clauses.push(clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(kind) = filter.kind {
            add("kind = ?", Bind::Text(kind.as_str().to_owned()), &mut binds);
        }
        if let Some(status) = filter.status {
            add(
                "status = ?",
                Bind::Text(status.as_str().to_owned()),
                &mut binds,
            );
        }
        if let Some(min) = filter.min_score {
            add("score >= ?", Bind::Real(min), &mut binds);
        }
        if let Some(max) = filter.max_score {
            add("score <= ?", Bind::Real(max), &mut binds);
        }
        if let Some(assignee) = &filter.assignee_id {
            add("assignee_id = ?", Bind::Text(assignee.clone()), &mut binds);
        }
        if let Some(from) = filter.raised_from {
            add("raised_at >= ?", Bind::Int(from), &mut binds);
        }
        if let Some(to) = filter.raised_to {
            add("raised_at < ?", Bind::Int(to), &mut binds);
        }
        match &filter.after {
            Some(Cursor::Newest(at, id)) => {
                binds.push(Bind::Int(*at));
                binds.push(Bind::Text(id.clone()));
                let (a, b) = (binds.len() - 1, binds.len());
                clauses.push(format!(
                    "(raised_at < ${a} OR (raised_at = ${a} AND id < ${b}))"
                ));
            }
            Some(Cursor::Score(score, id)) => {
                binds.push(Bind::Real(*score));
                binds.push(Bind::Text(id.clone()));
                let (a, b) = (binds.len() - 1, binds.len());
                clauses.push(format!("(score < ${a} OR (score = ${a} AND id < ${b}))"));
            }
            None => {}
        }
        let order = match filter.sort {
            AlertSort::Newest => "raised_at DESC, id DESC",
            AlertSort::Score => "score DESC, id DESC",
            AlertSort::Oldest => "raised_at, id",
        };
        (binds, clauses.join(" AND "), order)
    }

    /// One page of alerts matching `filter`.
    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>> {
        let (mut binds, clauses, order) = self.filter_sql(filter);
        binds.push(Bind::Int(filter.limit));
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE {clauses} ORDER BY {order} LIMIT ${}",
            binds.len()
        );
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("listing alerts"))?;
        rows.iter().map(alert_from).collect()
    }

    /// One page of alerts matching `filter` (at most `filter.limit`) as the API's JSON
    /// array, built by the database in a single row: the list endpoint's read path,
    /// which skips decoding each row and encoding it again.
    pub async fn alerts_json(&self, filter: &AlertFilter) -> Result<AlertPageJson> {
        let (mut binds, clauses, order) = self.filter_sql(filter);
        binds.push(Bind::Int(filter.limit));
        let limit = binds.len();
        // The fields of the API's alert view, in its order.
        let fields = |reasons: &str| {
            format!(
                "'id', id, 'contact_id', contact_id, 'property_id', property_id, 'kind', kind, \
                 'score', score, 'confidence', confidence, 'reasons', {reasons}, \
                 'model_version', model_version, 'raised_at', raised_at, 'status', status, \
                 'assignee_id', assignee_id, 'updated_at', updated_at, \
                 'outcome_value', outcome_value, 'accepted_at', accepted_at"
            )
        };
        let page = match self.store.backend() {
            Backend::Sqlite => format!(
                "json_group_array(json_object({}) ORDER BY rn) FILTER (WHERE rn <= ${limit})",
                fields("json(reasons)")
            ),
            Backend::Postgres => format!(
                "COALESCE(json_agg(json_build_object({}) ORDER BY rn) \
                 FILTER (WHERE rn <= ${limit}), '[]'::json)::text",
                fields("reasons::json")
            ),
        };
        // One row more than the page tells whether another page follows; the page's
        // last row gives the cursor.
        let sql = format!(
            "SELECT {page} AS page, COUNT(*) AS n,
                    MAX(CASE WHEN rn = ${limit} THEN raised_at END) AS last_at,
                    MAX(CASE WHEN rn = ${limit} THEN score END) AS last_score,
                    MAX(CASE WHEN rn = ${limit} THEN id END) AS last_id
             FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY {order}) AS rn FROM alerts
                   WHERE {clauses} ORDER BY {order} LIMIT ${limit} + 1) AS page"
        );
        let row = bind_all(sqlx::query(&sql), binds)
            .fetch_one(self.store.pool())
            .await
            .map_err(failed("listing alerts"))?;
        let n: i64 = get(&row, "n")?;
        let last_id: Option<String> = get(&row, "last_id")?;
        let more = match last_id {
            Some(id) if n > filter.limit => Some(match filter.sort {
                AlertSort::Score => Cursor::Score(get(&row, "last_score")?, id),
                AlertSort::Newest | AlertSort::Oldest => Cursor::Newest(get(&row, "last_at")?, id),
            }),
            _ => None,
        };
        Ok(AlertPageJson {
            alerts: get::<Option<String>>(&row, "page")?.unwrap_or_else(|| "[]".to_owned()),
            next: more,
        })
    }

    /// One alert.
    pub async fn alert(&self, id: &str) -> Result<Option<StoredAlert>> {
        let row = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE org_id = $1 AND id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading an alert"))?;
        row.map(|r| alert_from(&r)).transpose()
    }

    /// An alert's changes, oldest first.
    pub async fn alert_history(&self, id: &str) -> Result<Vec<AlertChange>> {
        let rows = sqlx::query(
            "SELECT at, actor_id, from_status, to_status, assignee_id, detail FROM alert_history
             WHERE org_id = $1 AND alert_id = $2 ORDER BY at, id",
        )
        .bind(&self.org)
        .bind(id)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("reading an alert's history"))?;
        rows.iter()
            .map(|r| {
                Ok(AlertChange {
                    at: get(r, "at")?,
                    actor_id: get(r, "actor_id")?,
                    from_status: status_of(r, "from_status")?,
                    to_status: status_of(r, "to_status")?,
                    assignee_id: get(r, "assignee_id")?,
                    detail: get(r, "detail")?,
                })
            })
            .collect()
    }

    /// Moves an alert, and records the change and its event, if it is still in
    /// `change.from` (optimistic: two people acting at once cannot both move it). False
    /// when it was not (it moved meanwhile, or there is no such alert).
    pub async fn move_alert(&self, id: &str, change: &AlertMove<'_>, now: i64) -> Result<bool> {
        let done = self.move_alerts(&[(id, change.clone())], now).await?;
        Ok(done.first().copied().unwrap_or(false))
    }

    /// [`Tenant::move_alert`] for many alerts in one transaction (one commit, so one disk
    /// sync on SQLite, for a whole routing run); says which moved.
    pub async fn move_alerts(
        &self,
        moves: &[(&str, AlertMove<'_>)],
        now: i64,
    ) -> Result<Vec<bool>> {
        let mut tx = self.store.begin().await?;
        events::lock(&mut tx).await?;
        let mut done = Vec::with_capacity(moves.len());
        for (id, change) in moves {
            done.push(self.move_in(&mut tx, id, change, now).await?);
        }
        tx.commit()
            .await
            .map_err(failed("committing alert changes"))?;
        if done.contains(&true) {
            self.store.ring();
        }
        Ok(done)
    }

    /// One move inside the caller's transaction (which holds the event lock).
    async fn move_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        id: &str,
        change: &AlertMove<'_>,
        now: i64,
    ) -> Result<bool> {
        let row = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE org_id = $1 AND id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("reading an alert to change"))?;
        let Some(mut alert) = row.map(|r| alert_from(&r)).transpose()? else {
            return Ok(false);
        };
        if alert.status != change.from {
            return Ok(false);
        }
        // NULLs are written as SQL literals, not bound: through sqlx's `Any` driver a bound
        // NULL is typed differently from a bound value, and PostgreSQL then refuses the
        // value when the cached statement is reused.
        let mut sets = String::from("status = $1, updated_at = $2");
        let mut next = 6;
        match change.assignee_id {
            Some(_) => {
                sets.push_str(&format!(", assignee_id = ${next}"));
                next += 1;
            }
            None => sets.push_str(", assignee_id = NULL"),
        }
        if change.outcome_value.is_some() {
            sets.push_str(&format!(", outcome_value = ${next}"));
        }
        // A new assignment waits for its new owner to accept it.
        if change.to == AlertStatus::Assigned {
            sets.push_str(", accepted_at = NULL");
        }
        let sql = format!("UPDATE alerts SET {sets} WHERE org_id = $3 AND id = $4 AND status = $5");
        let mut update = sqlx::query(&sql)
            .bind(change.to.as_str())
            .bind(now)
            .bind(&self.org)
            .bind(id)
            .bind(change.from.as_str());
        if let Some(assignee) = change.assignee_id {
            update = update.bind(assignee);
        }
        if let Some(v) = change.outcome_value {
            update = update.bind(v);
        }
        let done = update
            .execute(&mut *tx)
            .await
            .map_err(failed("changing an alert"))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let event_id = events::next_id(&mut *tx).await?;
        let previous = alert.assignee_id.take();
        alert.status = change.to;
        alert.assignee_id = change.assignee_id.map(str::to_owned);
        alert.updated_at = now;
        if change.outcome_value.is_some() {
            alert.outcome_value = change.outcome_value;
        }
        if change.to == AlertStatus::Assigned {
            alert.accepted_at = None;
        }
        self.record_change(
            tx,
            &alert,
            Change {
                event_id,
                kind: EventKind::of_move(change.to),
                from: change.from,
                previous_assignee_id: previous.as_deref(),
                actor_id: change.actor_id,
                detail: &change.detail,
            },
            now,
        )
        .await?;
        Ok(true)
    }

    /// The assigned agent accepts their alert: routing no longer moves it on. False when
    /// the alert is not assigned to `user_id` or was accepted already.
    pub async fn accept_alert(&self, id: &str, user_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let event_id = events::next_id(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE alerts SET accepted_at = $1, updated_at = $1 WHERE org_id = $2 AND id = $3
             AND status = 'assigned' AND assignee_id = $4 AND accepted_at IS NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(failed("accepting an alert"))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let row = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE org_id = $1 AND id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(failed("reading an accepted alert"))?;
        let alert = alert_from(&row)?;
        self.record_change(
            &mut tx,
            &alert,
            Change {
                event_id,
                kind: EventKind::Updated,
                from: AlertStatus::Assigned,
                previous_assignee_id: Some(user_id),
                actor_id: Some(user_id),
                detail: "accepted",
            },
            now,
        )
        .await?;
        tx.commit()
            .await
            .map_err(failed("committing an accepted alert"))?;
        self.store.ring();
        Ok(true)
    }

    /// Writes a change's history row and event inside the caller's transaction.
    async fn record_change(
        &self,
        tx: &mut sqlx::AnyConnection,
        alert: &StoredAlert,
        change: Change<'_>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO alert_history (id, org_id, alert_id, at, actor_id, from_status, to_status, assignee_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(crate::auth::secret::new_sortable_id("ach"))
        .bind(&self.org)
        .bind(&alert.id)
        .bind(now)
        .bind(change.actor_id)
        .bind(change.from.as_str())
        .bind(alert.status.as_str())
        .bind(alert.assignee_id.as_deref())
        .bind(change.detail)
        .execute(&mut *tx)
        .await
        .map_err(failed("recording an alert change"))?;
        let event = NewEvent {
            org_id: &self.org,
            kind: change.kind,
            alert_id: &alert.id,
            assignee_id: alert.assignee_id.as_deref(),
            previous_assignee_id: change.previous_assignee_id,
            data: serde_json::json!({
                "alert": snapshot(alert),
                "change": {
                    "from_status": change.from.as_str(),
                    "to_status": alert.status.as_str(),
                    "previous_assignee_id": change.previous_assignee_id,
                    "actor_id": change.actor_id,
                    "detail": change.detail,
                },
            }),
        };
        events::insert(tx, change.event_id, event, now).await
    }

    /// Alert counts by kind, state and owner, and the value converted.
    pub async fn alert_counts(&self) -> Result<AlertCounts> {
        let rows = sqlx::query(
            "SELECT kind, status, assignee_id, COUNT(*) AS n FROM alerts WHERE org_id = $1
             GROUP BY kind, status, assignee_id",
        )
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("counting alerts"))?;
        let mut counts = AlertCounts::default();
        for r in &rows {
            counts.by_kind_status_assignee.push((
                kind_of(r)?,
                status_of(r, "status")?,
                get(r, "assignee_id")?,
                get(r, "n")?,
            ));
        }
        let row = sqlx::query(
            "SELECT SUM(outcome_value) AS v FROM alerts WHERE org_id = $1 AND status = 'converted'",
        )
        .bind(&self.org)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("summing converted value"))?;
        counts.converted_value = get::<Option<f64>>(&row, "v")?.unwrap_or(0.0);
        Ok(counts)
    }
}

fn status_of(r: &AnyRow, column: &str) -> Result<AlertStatus> {
    let text: String = get(r, column)?;
    text.parse().map_err(StoreError::Corrupt)
}

fn kind_of(r: &AnyRow) -> Result<AlertKind> {
    let text: String = get(r, "kind")?;
    text.parse().map_err(StoreError::Corrupt)
}

/// A change as its history row and event record it.
struct Change<'a> {
    event_id: i64,
    kind: EventKind,
    from: AlertStatus,
    previous_assignee_id: Option<&'a str>,
    actor_id: Option<&'a str>,
    detail: &'a str,
}

/// The alert as events carry it (the API's alert object).
pub(crate) fn snapshot(a: &StoredAlert) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "contact_id": a.contact_id,
        "property_id": a.property_id,
        "kind": a.kind.as_str(),
        "score": a.score,
        "confidence": a.confidence,
        "reasons": a.reasons,
        "model_version": a.model_version,
        "raised_at": a.raised_at,
        "status": a.status.as_str(),
        "assignee_id": a.assignee_id,
        "accepted_at": a.accepted_at,
        "updated_at": a.updated_at,
        "outcome_value": a.outcome_value,
        "zip": a.zip,
    })
}

pub(super) fn alert_from(r: &AnyRow) -> Result<StoredAlert> {
    let reasons: String = get(r, "reasons")?;
    Ok(StoredAlert {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        contact_id: get(r, "contact_id")?,
        property_id: get(r, "property_id")?,
        kind: kind_of(r)?,
        score: get(r, "score")?,
        confidence: get(r, "confidence")?,
        reasons: serde_json::from_str(&reasons)
            .map_err(|e| StoreError::Corrupt(format!("alert reasons: {e}")))?,
        model_version: get(r, "model_version")?,
        raised_at: get(r, "raised_at")?,
        ingested_at: get(r, "ingested_at")?,
        status: status_of(r, "status")?,
        assignee_id: get(r, "assignee_id")?,
        updated_at: get(r, "updated_at")?,
        outcome_value: get(r, "outcome_value")?,
        zip: get(r, "zip")?,
        agent_of_record: get(r, "agent_of_record")?,
        accepted_at: get(r, "accepted_at")?,
    })
}
