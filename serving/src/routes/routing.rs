//! Routing configuration and runs: agents' profiles (territory, skills, capacity), the
//! organization's ordered rules, and routing the new alerts with them.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::alerts::AlertKind;
use crate::app::AppState;
use crate::auth::Principal;
use crate::problem::{Json, Problem, ProblemBody};
use crate::role::Role;
use crate::routing::{Rule, validate};
use crate::store::{AgentProfile, AgentStanding};
use crate::unix_now;

/// Longest time an organization may give agents to accept an alert: a week.
pub const MAX_ACCEPT_WITHIN_SECS: i64 = 7 * 24 * 3600;

/// An agent's routing profile.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileRequest {
    /// Five-digit zip codes of their territory.
    zips: Vec<String>,
    /// Alert kinds they handle.
    skills: Vec<AlertKind>,
    /// Most open alerts at a time (1–10,000).
    #[schema(minimum = 1, maximum = 10000)]
    capacity: u32,
    /// Whether routing may choose them (default true).
    #[serde(default = "yes")]
    active: bool,
    /// The pipeline's id for this agent (`agent_id` in the lake), so that homeowners whose
    /// agent of record they are reach them by the relationship strategy.
    #[serde(default)]
    lake_agent_id: Option<i64>,
}

fn yes() -> bool {
    true
}

/// An agent as routing sees them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AgentView {
    /// The user.
    user_id: String,
    /// Territory.
    zips: Vec<String>,
    /// Alert kinds handled.
    skills: Vec<AlertKind>,
    /// Most open alerts at a time.
    capacity: u32,
    /// Whether routing may choose them.
    active: bool,
    /// Alerts assigned or contacted now.
    open: u32,
    /// Converted over closed alerts (0 with none closed).
    conversion_rate: f64,
}

impl From<AgentStanding> for AgentView {
    fn from(s: AgentStanding) -> Self {
        let conversion_rate = s.conversion_rate();
        AgentView {
            user_id: s.profile.user_id,
            zips: s.profile.zips.into_iter().collect(),
            skills: s.profile.skills.into_iter().collect(),
            capacity: s.profile.capacity,
            active: s.profile.active,
            open: s.open,
            conversion_rate,
        }
    }
}

/// The organization's routing rules, tried in order.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesDocument {
    /// Each rule: a name and a chain of strategies, e.g. `{"name": "local", "strategies":
    /// [{"strategy": "territory"}, {"strategy": "skill"}, {"strategy": "workload"}]}`.
    /// Strategies: `territory`, `skill`, `relationship`, `workload`, `round_robin`,
    /// `performance` (with an optional `floor`).
    #[schema(value_type = Vec<Object>)]
    rules: Vec<Rule>,
    /// Seconds an assigned agent has to accept an alert (`POST /alerts/{id}/accept`)
    /// before the server routes it to someone else, 60 to 604,800; absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60, maximum = 604800)]
    accept_within_secs: Option<i64>,
}

/// One routing decision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Routed {
    /// The alert.
    alert_id: String,
    /// Who got it.
    agent_id: String,
    /// The rule that decided.
    rule: String,
    /// The strategy that chose.
    strategy: String,
    /// Why, step by step.
    reason: String,
}

/// What a routing run did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct RouteRun {
    /// Alerts assigned, oldest first.
    routed: Vec<Routed>,
    /// New alerts no rule could place (no agent matched, or all were full).
    unrouted: Vec<String>,
}

/// Every agent profile with current load and conversion (managers and above).
#[utoipa::path(get, path = "/agents", tag = "routing", security(("bearer" = [])),
    responses(
        (status = 200, description = "Agents by user id", body = [AgentView]),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn agents(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<AgentView>>, Problem> {
    principal.require(Role::Manager)?;
    let all = principal.tenant(&state.store).agent_standings().await?;
    Ok(Json(all.into_iter().map(AgentView::from).collect()))
}

/// Set an agent's territory, skills and capacity (managers and above).
#[utoipa::path(put, path = "/agents/{id}", tag = "routing", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id of an agent (or above)")),
    request_body = ProfileRequest,
    responses(
        (status = 200, description = "The agent's profile and load", body = AgentView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such agent in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_profile(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<ProfileRequest>,
) -> Result<Json<AgentView>, Problem> {
    principal.require(Role::Manager)?;
    let tenant = principal.tenant(&state.store);
    tenant
        .user(&id)
        .await?
        .filter(|u| u.role.includes(Role::Agent))
        .ok_or_else(|| Problem::not_found("agent"))?;
    if !(1..=10_000).contains(&req.capacity) {
        return Err(Problem::invalid("capacity: must be 1 to 10000"));
    }
    if let Some(bad) = req
        .zips
        .iter()
        .find(|z| z.len() != 5 || !z.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Problem::invalid(format!(
            "zips: {bad:?} is not a five-digit zip code"
        )));
    }
    if req.zips.len() > 1000 {
        return Err(Problem::invalid("zips: at most 1000"));
    }
    let profile = AgentProfile {
        user_id: id.clone(),
        zips: req.zips.into_iter().collect(),
        skills: req.skills.into_iter().collect::<BTreeSet<_>>(),
        capacity: req.capacity,
        active: req.active,
    };
    tenant.set_agent_profile(&profile, unix_now()).await?;
    if let Some(lake_agent_id) = req.lake_agent_id {
        tenant
            .link_lake_agent(lake_agent_id, &id, unix_now())
            .await?;
    }
    let standing = tenant
        .agent_standings()
        .await?
        .into_iter()
        .find(|s| s.profile.user_id == id)
        .ok_or_else(|| Problem::internal(&"an agent profile just written cannot be read"))?;
    Ok(Json(standing.into()))
}

/// The organization's routing rules (managers and above).
#[utoipa::path(get, path = "/routing/rules", tag = "routing", security(("bearer" = [])),
    responses(
        (status = 200, description = "The rules, in order", body = RulesDocument),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn rules(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<RulesDocument>, Problem> {
    principal.require(Role::Manager)?;
    let config = principal.tenant(&state.store).routing().await?;
    Ok(Json(RulesDocument {
        rules: config.rules,
        accept_within_secs: config.accept_within_secs,
    }))
}

/// Replace the routing rules (admins and above); round-robin cursors and performance
/// weights start afresh.
#[utoipa::path(put, path = "/routing/rules", tag = "routing", security(("bearer" = [])),
    request_body = RulesDocument,
    responses(
        (status = 200, description = "The rules as stored", body = RulesDocument),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_rules(
    State(state): State<AppState>,
    principal: Principal,
    Json(doc): Json<RulesDocument>,
) -> Result<Json<RulesDocument>, Problem> {
    principal.require(Role::Admin)?;
    if doc.rules.len() > 100 {
        return Err(Problem::invalid("rules: at most 100"));
    }
    validate(&doc.rules).map_err(Problem::invalid)?;
    if let Some(secs) = doc.accept_within_secs
        && !(60..=MAX_ACCEPT_WITHIN_SECS).contains(&secs)
    {
        return Err(Problem::invalid(format!(
            "accept_within_secs: {secs} is not between 60 and {MAX_ACCEPT_WITHIN_SECS}"
        )));
    }
    principal
        .tenant(&state.store)
        .set_routing_rules(&doc.rules, doc.accept_within_secs, unix_now())
        .await?;
    Ok(Json(doc))
}

/// Route the organization's new alerts, oldest first (up to 500 a run), with its rules;
/// each assignment records which rule and strategy chose and why (managers and above).
#[utoipa::path(post, path = "/alerts/route", tag = "routing", security(("bearer" = [])),
    responses(
        (status = 200, description = "What was routed", body = RouteRun),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "No routing rules are configured", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn route_new(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<RouteRun>, Problem> {
    principal.require(Role::Manager)?;
    let tenant = principal.tenant(&state.store);
    let report = crate::autoroute::route_new(&tenant, Some(&principal.user_id), unix_now())
        .await?
        .ok_or_else(|| {
            Problem::conflict("no routing rules are configured: PUT /routing/rules first")
        })?;
    Ok(Json(RouteRun {
        routed: report
            .placed
            .into_iter()
            .map(|p| Routed {
                alert_id: p.alert_id,
                agent_id: p.decision.agent_id,
                rule: p.decision.rule,
                strategy: p.decision.strategy.to_owned(),
                reason: p.decision.reason,
            })
            .collect(),
        unrouted: report.unplaced,
    }))
}
