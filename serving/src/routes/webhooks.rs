//! Webhook endpoints of an organization (admins and above): add, list, remove; each
//! one's deliveries, and replaying a failed one. Delivery itself is
//! [`crate::webhooks`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::record;
use crate::app::AppState;
use crate::audit::AuditAction;
use crate::auth::Principal;
use crate::auth::secret::new_secret;
use crate::problem::{Json, Problem, ProblemBody, Query};
use crate::ratelimit::ClientAddr;
use crate::role::Role;
use crate::store::{Delivery, DeliveryStatus, Webhook};
use crate::unix_now;

/// The events an endpoint can receive.
pub const EVENTS: [&str; 4] = [
    "alert.new",
    "alert.assigned",
    "alert.updated",
    "alert.converted",
];
/// Most endpoints per organization.
pub const MAX_WEBHOOKS: usize = 20;

/// An endpoint to add.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookRequest {
    /// Where to POST events: an `http` or `https` URL (up to 2,000 characters).
    #[schema(max_length = 2000)]
    url: String,
    /// Which events: `alert.new`, `alert.assigned`, `alert.updated`, `alert.converted`
    /// (default: all).
    #[serde(default)]
    events: Option<Vec<String>>,
}

/// An endpoint as listed (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct WebhookView {
    /// Id.
    id: String,
    /// Where events go.
    url: String,
    /// Which events.
    events: Vec<String>,
    /// Who added it.
    created_by: String,
    /// Unix seconds.
    created_at: i64,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        WebhookView {
            id: w.id,
            url: w.url,
            events: w.events,
            created_by: w.created_by,
            created_at: w.created_at,
        }
    }
}

/// A new endpoint and its signing secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CreatedWebhook {
    /// The endpoint.
    webhook: WebhookView,
    /// The HMAC-SHA256 key of the `x-roi-signature` header: keep it; it is not shown
    /// again.
    secret: String,
}

/// One event's delivery to an endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// Delivery id (the `x-roi-delivery` header).
    id: String,
    /// The event's id in the log.
    event_id: i64,
    /// `pending`, `delivered` or `dead`.
    status: String,
    /// Attempts made.
    attempts: i64,
    /// When the next attempt is due (Unix milliseconds), while pending.
    next_attempt_ms: Option<i64>,
    /// The endpoint's last HTTP status, if it answered.
    last_status: Option<i64>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    updated_at: i64,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            next_attempt_ms: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_ms),
            id: d.id,
            event_id: d.event_id,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// Which deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryQuery {
    /// Only `pending`, `delivered` or `dead` ones.
    status: Option<String>,
    /// How many, newest first (1–500, default 50).
    limit: Option<i64>,
}

fn check_url(url: &str) -> Result<(), Problem> {
    if url.len() > 2000 {
        return Err(Problem::invalid("url: at most 2,000 characters"));
    }
    let parsed =
        url::Url::parse(url).map_err(|e| Problem::invalid(format!("url: not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Problem::invalid(
            "url: must be an http or https URL with a host",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Problem::invalid(
            "url: no credentials in the URL; verify our signature instead",
        ));
    }
    Ok(())
}

fn admin(principal: &Principal) -> Result<(), Problem> {
    principal.require_person()?;
    principal.require(Role::Admin)
}

/// Add an endpoint that receives the organization's alert events (admins and above).
///
/// Each event is POSTed as JSON with `x-roi-event`, `x-roi-delivery` and
/// `x-roi-signature: t=UNIX,v1=HEX` (HMAC-SHA256 of `UNIX.BODY` with the secret returned
/// here), and retried with exponential back-off until a 2xx; after the last attempt it
/// is listed as dead and can be replayed.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", security(("bearer" = [])),
    request_body = WebhookRequest,
    responses(
        (status = 201, description = "The endpoint and its secret", body = CreatedWebhook),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The organization has the most endpoints allowed", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Json(req): Json<WebhookRequest>,
) -> Result<(StatusCode, Json<CreatedWebhook>), Problem> {
    admin(&principal)?;
    check_url(&req.url)?;
    let mut events = req
        .events
        .unwrap_or_else(|| EVENTS.iter().map(|e| (*e).to_owned()).collect());
    if events.is_empty() {
        return Err(Problem::invalid("events: give at least one"));
    }
    if let Some(bad) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(Problem::invalid(format!(
            "events: {bad:?} is not an event; choose from {}",
            EVENTS.join(", ")
        )));
    }
    events.sort();
    events.dedup();
    let tenant = principal.tenant(&state.store);
    if tenant.webhooks().await?.len() >= MAX_WEBHOOKS {
        return Err(Problem::conflict(format!(
            "an organization has at most {MAX_WEBHOOKS} webhooks; remove one first"
        )));
    }
    let secret = new_secret("whsec");
    let now = unix_now();
    let hook = tenant
        .create_webhook(&req.url, &secret, &events, &principal.user_id, now)
        .await?;
    record(
        &tenant,
        AuditAction::WebhookCreated,
        Some(&principal.user_id),
        Some(&hook.id),
        &client,
        format!("webhook to {} for {}", hook.url, hook.events.join(", ")),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: hook.into(),
            secret,
        }),
    ))
}

/// The organization's endpoints (admins and above).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "Endpoints, oldest first", body = [WebhookView]),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<WebhookView>>, Problem> {
    admin(&principal)?;
    let hooks = principal.tenant(&state.store).webhooks().await?;
    Ok(Json(hooks.into_iter().map(WebhookView::from).collect()))
}

/// Remove an endpoint and its deliveries (admins and above).
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    admin(&principal)?;
    let tenant = principal.tenant(&state.store);
    if !tenant.delete_webhook(&id).await? {
        return Err(Problem::not_found("webhook"));
    }
    record(
        &tenant,
        AuditAction::WebhookDeleted,
        Some(&principal.user_id),
        Some(&id),
        &client,
        "webhook removed".to_owned(),
        unix_now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's deliveries, newest first (admins and above): what was sent, what
/// failed and why, what is dead.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id"), DeliveryQuery),
    responses(
        (status = 200, description = "Deliveries, newest first", body = [DeliveryView]),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<Vec<DeliveryView>>, Problem> {
    admin(&principal)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<DeliveryStatus>().map_err(|_| {
                Problem::invalid(format!("status: {s:?} is not pending, delivered or dead"))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit: must be 1 to 500"));
    }
    let tenant = principal.tenant(&state.store);
    tenant
        .webhook(&id)
        .await?
        .ok_or_else(|| Problem::not_found("webhook"))?;
    let list = tenant.deliveries(&id, status, limit).await?;
    Ok(Json(list.into_iter().map(DeliveryView::from).collect()))
}

/// Send a delivery again, from its first attempt, now (admins and above): for dead
/// ones after the endpoint is fixed, or to resend a delivered one.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery_id}/replay", tag = "webhooks", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Webhook id"),
        ("delivery_id" = String, Path, description = "Delivery id"),
    ),
    responses(
        (status = 200, description = "The delivery, pending again", body = DeliveryView),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery of this webhook", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Json<DeliveryView>, Problem> {
    admin(&principal)?;
    let delivery = principal
        .tenant(&state.store)
        .replay_delivery(&id, &delivery_id, crate::unix_now_ms())
        .await?
        .ok_or_else(|| Problem::not_found("delivery"))?;
    state.hub.wake_webhooks();
    Ok(Json(delivery.into()))
}
