//! API keys for machine clients (data pipelines, integrations): hashed, scoped,
//! revocable. A key acts for the admin who made it, with a role no higher than theirs,
//! and reaches only the resources its scopes name (see [`crate::auth::scope`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::display_name;
use crate::app::AppState;
use crate::audit::AuditAction;
use crate::auth::secret::{hash_secret, new_secret};
use crate::auth::{API_KEY_PREFIX, Principal, scope};
use crate::problem::{Json, Problem, ProblemBody};
use crate::ratelimit::ClientAddr;
use crate::role::Role;
use crate::store::{ApiKey, NewApiKey, Tenant};
use crate::unix_now;

/// A key to make.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyRequest {
    /// What it is for (1–200 characters), e.g. "nightly lake export".
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    /// The role it acts with: at most the maker's.
    role: Role,
    /// What it may reach: `RESOURCE:read` or `RESOURCE:write` for the resources
    /// `agents`, `alerts`, `audit`, `invitations`, `organization`, `routing`, `users`,
    /// `webhooks`.
    scopes: Vec<String>,
    /// Days until it stops working (1–3650); absent means it never expires.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<u32>,
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ApiKeyView {
    /// Key id.
    id: String,
    /// What it is for.
    name: String,
    /// The role it acts with.
    role: Role,
    /// What it may reach.
    scopes: Vec<String>,
    /// The user it acts for.
    created_by: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds, if it expires.
    expires_at: Option<i64>,
    /// Unix seconds (to the minute), if it was ever used.
    last_used_at: Option<i64>,
    /// Unix seconds, if it was revoked.
    revoked_at: Option<i64>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            role: k.role,
            scopes: k.scopes,
            created_by: k.created_by,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key: shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CreatedApiKey {
    /// Send as `Authorization: Bearer <key>`. Stored only as a hash: keep it now.
    key: String,
    /// The key's record.
    api_key: ApiKeyView,
}

/// Make an API key (admins and above).
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", security(("bearer" = [])),
    request_body = ApiKeyRequest,
    responses(
        (status = 201, description = "The key, shown only now", body = CreatedApiKey),
        (status = 403, description = "Needs the admin role, or a role above yours was asked for", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Json(req): Json<ApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKey>), Problem> {
    principal.require_person()?;
    principal.require(Role::Admin)?;
    let name = display_name("name", &req.name)?;
    scope::validate(&req.scopes).map_err(Problem::invalid)?;
    if !principal.role.includes(req.role) {
        return Err(Problem::forbidden(format!(
            "a key cannot act above its maker: you are {}, the key asks for {}",
            principal.role, req.role
        )));
    }
    if req
        .expires_in_days
        .is_some_and(|d| !(1..=3650).contains(&d))
    {
        return Err(Problem::invalid("expires_in_days: must be 1 to 3650"));
    }
    let now = unix_now();
    let mut scopes = req.scopes;
    scopes.sort();
    scopes.dedup();
    let key = new_secret(API_KEY_PREFIX);
    let tenant = principal.tenant(&state.store);
    let id = tenant
        .create_api_key(
            NewApiKey {
                name: &name,
                role: req.role,
                scopes: &scopes,
                created_by: &principal.user_id,
                key_hash: &hash_secret(&key),
                expires_at: req.expires_in_days.map(|d| now + i64::from(d) * 86_400),
            },
            now,
        )
        .await?;
    let record = stored(&tenant, &id).await?;
    audit(
        &tenant,
        &principal,
        &client,
        AuditAction::ApiKeyCreated,
        &record,
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key,
            api_key: record.into(),
        }),
    ))
}

/// Every API key of the organization, newest first (admins and above).
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses(
        (status = 200, description = "Keys, newest first", body = [ApiKeyView]),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<ApiKeyView>>, Problem> {
    principal.require_person()?;
    principal.require(Role::Admin)?;
    let keys = principal.tenant(&state.store).api_keys().await?;
    Ok(Json(keys.into_iter().map(ApiKeyView::from).collect()))
}

/// Revoke an API key: it stops working at once (admins and above).
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key, revoked", body = ApiKeyView),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such key in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, Problem> {
    principal.require_person()?;
    principal.require(Role::Admin)?;
    let now = unix_now();
    let tenant = principal.tenant(&state.store);
    if tenant.revoke_api_key(&id, now).await? {
        let record = stored(&tenant, &id).await?;
        audit(
            &tenant,
            &principal,
            &client,
            AuditAction::ApiKeyRevoked,
            &record,
            now,
        )
        .await?;
        return Ok(Json(record.into()));
    }
    match tenant.api_key(&id).await? {
        Some(already) => Ok(Json(already.into())),
        None => Err(Problem::not_found("API key")),
    }
}

async fn stored(tenant: &Tenant<'_>, id: &str) -> Result<ApiKey, Problem> {
    tenant
        .api_key(id)
        .await?
        .ok_or_else(|| Problem::internal(&"an API key just written cannot be read"))
}

async fn audit(
    tenant: &Tenant<'_>,
    principal: &Principal,
    client: &str,
    action: AuditAction,
    key: &ApiKey,
    now: i64,
) -> Result<(), Problem> {
    let detail = format!(
        "key {:?} ({} role; {})",
        key.name,
        key.role,
        key.scopes.join(" ")
    );
    super::record(
        tenant,
        action,
        Some(&principal.user_id),
        Some(&key.id),
        client,
        detail,
        now,
    )
    .await
}
