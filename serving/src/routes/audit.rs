//! Reading the audit log.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::auth::Principal;
use crate::problem::{Json, Problem, ProblemBody, Query};
use crate::role::Role;

/// Paging through the log, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// At most this many events (1–500, default 100).
    limit: Option<i64>,
    /// Only events older than this event id: pass the last id of the previous page.
    before: Option<String>,
}

/// The organization's security events, newest first (admins and above).
#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Events, newest first", body = [AuditEvent]),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "limit out of range", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEvent>>, Problem> {
    principal.require(Role::Admin)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid(format!(
            "limit: {limit} is not between 1 and 500"
        )));
    }
    let events = principal
        .tenant(&state.store)
        .audit_events(limit, query.before.as_deref())
        .await?;
    Ok(Json(events))
}
