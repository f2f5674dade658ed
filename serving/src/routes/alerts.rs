//! The alert API: list with filters, sorting and cursor pages; detail with history;
//! status changes along the life cycle; bulk assignment; statistics.
//!
//! Who sees what: agents see the alerts assigned to them; managers and above see all of
//! their organization's; homeowners none.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::alerts::{AlertKind, AlertStatus, check_transition};
use crate::app::AppState;
use crate::auth::Principal;
use crate::problem::{Json, Problem, ProblemBody, Query};
use crate::role::Role;
use crate::store::{AlertChange, AlertFilter, AlertMove, AlertSort, Cursor, StoredAlert, Tenant};
use crate::unix_now;

/// Largest page.
pub const MAX_PAGE: i64 = 500;
/// Most alerts in one bulk assignment.
pub const MAX_BULK: usize = 500;

/// Order of a list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SortParam {
    /// Most recently raised first (default).
    #[default]
    Newest,
    /// Highest score first.
    Score,
}

/// Filters, order and page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only this kind.
    #[param(inline)]
    kind: Option<AlertKind>,
    /// Only this state.
    #[param(inline)]
    status: Option<AlertStatus>,
    /// Score at least this (0–1).
    min_score: Option<f64>,
    /// Score at most this (0–1).
    max_score: Option<f64>,
    /// Only alerts assigned to this user (managers and above).
    assignee: Option<String>,
    /// Raised at or after this time (Unix seconds).
    from: Option<i64>,
    /// Raised before this time (Unix seconds).
    to: Option<i64>,
    /// `newest` (default) or `score`.
    #[param(inline)]
    sort: Option<SortParam>,
    /// Page size, 1–500 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page (with the same filters and order).
    cursor: Option<String>,
}

/// An alert about one homeowner.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AlertView {
    /// Alert id (the pipeline's, stable).
    id: String,
    /// The homeowner (pipeline id).
    contact_id: i64,
    /// Their home (pipeline id).
    property_id: Option<i64>,
    /// What they are likely to do.
    kind: AlertKind,
    /// Calibrated probability of it within 90 days.
    score: f64,
    /// Confidence in the score, 0–1.
    confidence: f64,
    /// Why, most important first.
    reasons: Vec<String>,
    /// The model version that scored it.
    model_version: String,
    /// When it was raised (event time, Unix seconds).
    raised_at: i64,
    /// Life-cycle state.
    status: AlertStatus,
    /// The agent who owns it.
    assignee_id: Option<String>,
    /// Last change, Unix seconds.
    updated_at: i64,
    /// The deal's value, when converted and recorded.
    outcome_value: Option<f64>,
    /// When the assigned agent accepted it (Unix seconds); absent until then.
    accepted_at: Option<i64>,
}

impl From<StoredAlert> for AlertView {
    fn from(a: StoredAlert) -> Self {
        AlertView {
            id: a.id,
            contact_id: a.contact_id,
            property_id: a.property_id,
            kind: a.kind,
            score: a.score,
            confidence: a.confidence,
            reasons: a.reasons,
            model_version: a.model_version,
            raised_at: a.raised_at,
            status: a.status,
            assignee_id: a.assignee_id,
            updated_at: a.updated_at,
            outcome_value: a.outcome_value,
            accepted_at: a.accepted_at,
        }
    }
}

/// One page.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AlertPage {
    /// The alerts.
    alerts: Vec<AlertView>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// One change of an alert.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AlertChangeView {
    /// Unix seconds.
    at: i64,
    /// Who (absent for the system).
    actor_id: Option<String>,
    /// Before.
    from_status: AlertStatus,
    /// After.
    to_status: AlertStatus,
    /// Owner after.
    assignee_id: Option<String>,
    /// Why.
    detail: String,
}

impl From<AlertChange> for AlertChangeView {
    fn from(c: AlertChange) -> Self {
        AlertChangeView {
            at: c.at,
            actor_id: c.actor_id,
            from_status: c.from_status,
            to_status: c.to_status,
            assignee_id: c.assignee_id,
            detail: c.detail,
        }
    }
}

/// An alert with its history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AlertDetail {
    /// The alert.
    alert: AlertView,
    /// Its changes, oldest first.
    history: Vec<AlertChangeView>,
}

/// A new state.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusChange {
    /// `contacted`, `converted`, `dismissed` or `expired` (assign with `/alerts/assign`).
    status: AlertStatus,
    /// Why, for the history (up to 1,000 characters).
    #[serde(default)]
    #[schema(max_length = 1000)]
    note: Option<String>,
    /// With `converted`: the deal's value (0 or more).
    #[serde(default)]
    #[schema(minimum = 0)]
    value: Option<f64>,
}

/// Alerts to give to one agent.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkAssign {
    /// 1–500 alert ids.
    alert_ids: Vec<String>,
    /// The user (agent or above) who gets them.
    assignee_id: String,
}

/// An alert left as it was, and why.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Skipped {
    /// Alert id.
    id: String,
    /// Why.
    reason: String,
}

/// What a bulk assignment did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct BulkResult {
    /// Alerts now assigned.
    assigned: Vec<String>,
    /// Alerts left as they were.
    skipped: Vec<Skipped>,
}

/// Outcomes of one group of alerts.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub(crate) struct Outcomes {
    /// Alerts.
    total: i64,
    /// Still open (new, assigned, contacted).
    open: i64,
    /// Converted.
    converted: i64,
    /// Dismissed or expired.
    lost: i64,
    /// Converted / (converted + lost); absent until one is closed.
    conversion_rate: Option<f64>,
}

impl Outcomes {
    fn add(&mut self, status: AlertStatus, n: i64) {
        self.total += n;
        match status {
            AlertStatus::Converted => self.converted += n,
            AlertStatus::Dismissed | AlertStatus::Expired => self.lost += n,
            _ => self.open += n,
        }
        let closed = self.converted + self.lost;
        self.conversion_rate = (closed > 0).then(|| self.converted as f64 / closed as f64);
    }
}

/// One agent's outcomes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AgentOutcomes {
    /// The user.
    assignee_id: String,
    /// Their alerts' outcomes.
    outcomes: Outcomes,
}

/// The organization's alert statistics.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AlertStats {
    /// Every alert.
    all: Outcomes,
    /// By kind.
    by_kind: BTreeMap<String, Outcomes>,
    /// By agent, best conversion rate first (a leaderboard).
    by_agent: Vec<AgentOutcomes>,
    /// Sum of recorded deal values.
    converted_value: f64,
}

/// Whose alerts the caller may see: None for all, or one user's.
fn visible_to(principal: &Principal) -> Result<Option<String>, Problem> {
    if principal.role.includes(Role::Manager) {
        Ok(None)
    } else if principal.role.includes(Role::Agent) {
        Ok(Some(principal.user_id.clone()))
    } else {
        Err(Problem::forbidden("alerts are for agents and above"))
    }
}

fn encode_cursor(last: &Cursor) -> String {
    let raw = match last {
        Cursor::Newest(at, id) => format!("n:{at}:{id}"),
        Cursor::Score(score, id) => format!("s:{score}:{id}"),
    };
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(sort: AlertSort, text: &str) -> Result<Cursor, Problem> {
    let bad = || Problem::invalid("cursor: not a next_cursor of this list (same filters and sort)");
    let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, ':');
    let (tag, key, id) = (parts.next(), parts.next(), parts.next());
    match (sort, tag, key, id) {
        (AlertSort::Newest, Some("n"), Some(k), Some(id)) => {
            Ok(Cursor::Newest(k.parse().map_err(|_| bad())?, id.to_owned()))
        }
        (AlertSort::Score, Some("s"), Some(k), Some(id)) => {
            let score: f64 = k.parse().map_err(|_| bad())?;
            if !score.is_finite() {
                return Err(bad());
            }
            Ok(Cursor::Score(score, id.to_owned()))
        }
        _ => Err(bad()),
    }
}

/// The caller's alerts: filtered, sorted, one page at a time.
#[utoipa::path(get, path = "/alerts", tag = "alerts", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of alerts", body = AlertPage),
        (status = 403, description = "Homeowners see no alerts; agents only their own", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let own = visible_to(&principal)?;
    let assignee_id = match (own, q.assignee) {
        (Some(me), Some(asked)) if asked != me => {
            return Err(Problem::forbidden(
                "agents see only the alerts assigned to them",
            ));
        }
        (Some(me), _) => Some(me),
        (None, asked) => asked,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::invalid(format!(
            "limit: {limit} is not between 1 and {MAX_PAGE}"
        )));
    }
    for (name, v) in [("min_score", q.min_score), ("max_score", q.max_score)] {
        if v.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
            return Err(Problem::invalid(format!("{name}: must be between 0 and 1")));
        }
    }
    let sort = match q.sort.unwrap_or_default() {
        SortParam::Newest => AlertSort::Newest,
        SortParam::Score => AlertSort::Score,
    };
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor(sort, c))
        .transpose()?;
    let filter = AlertFilter {
        kind: q.kind,
        status: q.status,
        min_score: q.min_score,
        max_score: q.max_score,
        assignee_id,
        raised_from: q.from,
        raised_to: q.to,
        sort,
        limit,
        after,
    };
    // The store builds the page's JSON (the AlertView of each alert) in one row; the
    // body is assembled around it without decoding it.
    let page = principal.tenant(&state.store).alerts_json(&filter).await?;
    let next_cursor = match &page.next {
        Some(last) => format!("\"{}\"", encode_cursor(last)),
        None => "null".to_owned(),
    };
    let body = format!(
        r#"{{"alerts":{},"next_cursor":{next_cursor}}}"#,
        page.alerts
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn visible_alert(
    tenant: &Tenant<'_>,
    principal: &Principal,
    id: &str,
) -> Result<StoredAlert, Problem> {
    let own = visible_to(principal)?;
    match tenant.alert(id).await? {
        Some(a) if own.is_none() || a.assignee_id == own => Ok(a),
        _ => Err(Problem::not_found("alert")),
    }
}

/// One alert with its history.
#[utoipa::path(get, path = "/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert", body = AlertDetail),
        (status = 404, description = "No such alert among those you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, Problem> {
    let tenant = principal.tenant(&state.store);
    let alert = visible_alert(&tenant, &principal, &id).await?;
    let history = tenant.alert_history(&id).await?;
    Ok(Json(AlertDetail {
        alert: alert.into(),
        history: history.into_iter().map(AlertChangeView::from).collect(),
    }))
}

/// Move an alert along its life cycle (agents: their own alerts; expiring one needs a
/// manager). `converted` may carry the deal's value.
#[utoipa::path(post, path = "/alerts/{id}/status", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Alert id")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The alert as it is now", body = AlertView),
        (status = 404, description = "No such alert among those you may see", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed from the alert's state, or it changed meanwhile", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn change_status(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<StatusChange>,
) -> Result<Json<AlertView>, Problem> {
    let tenant = principal.tenant(&state.store);
    let alert = visible_alert(&tenant, &principal, &id).await?;
    match req.status {
        AlertStatus::Assigned => {
            return Err(Problem::invalid("status: assign with POST /alerts/assign"));
        }
        AlertStatus::New => return Err(Problem::invalid("status: an alert cannot go back to new")),
        AlertStatus::Expired => principal.require(Role::Manager)?,
        _ => {}
    }
    if let Some(v) = req.value {
        if req.status != AlertStatus::Converted {
            return Err(Problem::invalid(
                "value: only a converted alert has a value",
            ));
        }
        if !v.is_finite() || v < 0.0 {
            return Err(Problem::invalid("value: must be 0 or more"));
        }
    }
    let note = req.note.unwrap_or_default();
    if note.chars().count() > 1000 {
        return Err(Problem::invalid("note: at most 1,000 characters"));
    }
    check_transition(alert.status, req.status).map_err(Problem::conflict)?;
    let detail = if note.trim().is_empty() {
        format!("{} → {}", alert.status, req.status)
    } else {
        note.trim().to_owned()
    };
    let moved = tenant
        .move_alert(
            &id,
            &AlertMove {
                from: alert.status,
                to: req.status,
                assignee_id: alert.assignee_id.as_deref(),
                outcome_value: req.value,
                actor_id: Some(&principal.user_id),
                detail,
            },
            unix_now(),
        )
        .await?;
    if !moved {
        return Err(Problem::conflict(
            "the alert changed meanwhile; reload it and try again",
        ));
    }
    let now = tenant
        .alert(&id)
        .await?
        .ok_or_else(|| Problem::not_found("alert"))?;
    Ok(Json(now.into()))
}

/// Accept an alert assigned to you: routing will not move it to another agent.
///
/// Organizations that set `accept_within_secs` in their routing rules re-route alerts
/// their agent has not accepted in that time.
#[utoipa::path(post, path = "/alerts/{id}/accept", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert as it is now", body = AlertView),
        (status = 404, description = "No such alert among those you may see", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Not assigned to you, or accepted already", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn accept(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, Problem> {
    let tenant = principal.tenant(&state.store);
    let alert = visible_alert(&tenant, &principal, &id).await?;
    if alert.status != AlertStatus::Assigned
        || alert.assignee_id.as_deref() != Some(&principal.user_id)
    {
        return Err(Problem::conflict(
            "only the agent an alert is assigned to can accept it, while it is assigned",
        ));
    }
    if alert.accepted_at.is_some() {
        return Err(Problem::conflict("you accepted this alert already"));
    }
    if !tenant
        .accept_alert(&id, &principal.user_id, unix_now())
        .await?
    {
        return Err(Problem::conflict(
            "the alert changed meanwhile; reload it and try again",
        ));
    }
    let now = tenant
        .alert(&id)
        .await?
        .ok_or_else(|| Problem::not_found("alert"))?;
    Ok(Json(now.into()))
}

/// Assign (or reassign) alerts to one agent (managers and above).
#[utoipa::path(post, path = "/alerts/assign", tag = "alerts", security(("bearer" = [])),
    request_body = BulkAssign,
    responses(
        (status = 200, description = "What was assigned and what was not", body = BulkResult),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn assign(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<BulkAssign>,
) -> Result<Json<BulkResult>, Problem> {
    principal.require(Role::Manager)?;
    if req.alert_ids.is_empty() || req.alert_ids.len() > MAX_BULK {
        return Err(Problem::invalid(format!("alert_ids: give 1 to {MAX_BULK}")));
    }
    let tenant = principal.tenant(&state.store);
    let agent = tenant
        .user(&req.assignee_id)
        .await?
        .filter(|u| u.role.includes(Role::Agent))
        .ok_or_else(|| {
            Problem::invalid("assignee_id: not an agent (or above) of your organization")
        })?;
    let now = unix_now();
    let mut result = BulkResult {
        assigned: Vec::new(),
        skipped: Vec::new(),
    };
    for id in req.alert_ids {
        let Some(alert) = tenant.alert(&id).await? else {
            result.skipped.push(Skipped {
                id,
                reason: "no such alert".into(),
            });
            continue;
        };
        if let Err(why) = check_transition(alert.status, AlertStatus::Assigned) {
            result.skipped.push(Skipped { id, reason: why });
            continue;
        }
        let moved = tenant
            .move_alert(
                &id,
                &AlertMove {
                    from: alert.status,
                    to: AlertStatus::Assigned,
                    assignee_id: Some(&agent.id),
                    outcome_value: None,
                    actor_id: Some(&principal.user_id),
                    detail: format!("assigned to {} by hand", agent.email),
                },
                now,
            )
            .await?;
        if moved {
            result.assigned.push(id);
        } else {
            result.skipped.push(Skipped {
                id,
                reason: "it changed meanwhile".into(),
            });
        }
    }
    Ok(Json(result))
}

/// Conversion by kind and by agent, and the value converted (managers and above).
#[utoipa::path(get, path = "/alerts/stats", tag = "alerts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The organization's alert statistics", body = AlertStats),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<AlertStats>, Problem> {
    principal.require(Role::Manager)?;
    let counts = principal.tenant(&state.store).alert_counts().await?;
    let mut all = Outcomes::default();
    let mut by_kind: BTreeMap<String, Outcomes> = BTreeMap::new();
    let mut by_agent: BTreeMap<String, Outcomes> = BTreeMap::new();
    for (kind, status, assignee, n) in counts.by_kind_status_assignee {
        all.add(status, n);
        by_kind
            .entry(kind.as_str().to_owned())
            .or_default()
            .add(status, n);
        if let Some(agent) = assignee {
            by_agent.entry(agent).or_default().add(status, n);
        }
    }
    let mut by_agent: Vec<AgentOutcomes> = by_agent
        .into_iter()
        .map(|(assignee_id, outcomes)| AgentOutcomes {
            assignee_id,
            outcomes,
        })
        .collect();
    by_agent.sort_by(|a, b| {
        let rate = |o: &Outcomes| o.conversion_rate.unwrap_or(-1.0);
        rate(&b.outcomes)
            .total_cmp(&rate(&a.outcomes))
            .then(b.outcomes.converted.cmp(&a.outcomes.converted))
            .then(a.assignee_id.cmp(&b.assignee_id))
    });
    Ok(Json(AlertStats {
        all,
        by_kind,
        by_agent,
        converted_value: counts.converted_value,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_the_other_order() {
        let c = encode_cursor(&Cursor::Newest(1_700_000_000, "al:7:sell".into()));
        assert_eq!(
            decode_cursor(AlertSort::Newest, &c).expect("newest"),
            Cursor::Newest(1_700_000_000, "al:7:sell".into())
        );
        assert!(decode_cursor(AlertSort::Score, &c).is_err());
        let c = encode_cursor(&Cursor::Score(0.731, "al:7:sell".into()));
        assert_eq!(
            decode_cursor(AlertSort::Score, &c).expect("score"),
            Cursor::Score(0.731, "al:7:sell".into())
        );
        assert!(decode_cursor(AlertSort::Newest, "not base64!").is_err());
    }

    #[test]
    fn outcomes_count_conversion_over_closed_alerts() {
        let mut o = Outcomes::default();
        o.add(AlertStatus::Assigned, 3);
        assert_eq!(o.conversion_rate, None);
        o.add(AlertStatus::Converted, 1);
        o.add(AlertStatus::Dismissed, 2);
        o.add(AlertStatus::Expired, 1);
        assert_eq!((o.total, o.open, o.converted, o.lost), (7, 3, 1, 3));
        assert_eq!(o.conversion_rate, Some(0.25));
    }
}
