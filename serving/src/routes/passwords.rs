//! Changing a password, and resetting a forgotten one with a one-time token an admin
//! issues (passed on like an invitation; self-service reset by e-mail needs the mail
//! delivery channel). Either way every session of the user ends.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Revoked;
use super::blocking;
use crate::app::AppState;
use crate::audit::AuditAction;
use crate::auth::Principal;
use crate::auth::password::check_policy;
use crate::auth::secret::{hash_secret, new_secret};
use crate::problem::{Json, Problem, ProblemBody};
use crate::ratelimit::ClientAddr;
use crate::role::Role;
use crate::store::Tenant;
use crate::unix_now;

/// How long a reset token works, seconds.
pub const RESET_SECS: i64 = 3600;

/// A new password for the caller.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    /// The password now.
    current_password: String,
    /// The new one (10–256 characters).
    #[schema(min_length = 10, max_length = 256)]
    new_password: String,
}

/// A reset token to pass on to the user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ResetIssued {
    /// Single use; give it to the user (it is not stored, only its hash).
    token: String,
    /// The user it resets.
    user_id: String,
    /// Unix seconds.
    expires_at: i64,
}

/// A reset token and the new password.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordResetRequest {
    /// The token from the admin.
    token: String,
    /// The new password (10–256 characters).
    #[schema(min_length = 10, max_length = 256)]
    password: String,
}

/// Change the caller's password; every session of theirs ends (sign in again).
#[utoipa::path(post, path = "/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; sessions ended", body = Revoked),
        (status = 401, description = "The current password is wrong", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn change(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Json(req): Json<PasswordChange>,
) -> Result<Json<Revoked>, Problem> {
    principal.require_person()?;
    let now = unix_now();
    let policy = state.config.limits.login_failures_per_account;
    let account = format!("password-account:{}", principal.user_id);
    state
        .limiter
        .refuse_if_locked(&account, policy, now, "wrong passwords")
        .await?;
    check_policy(&req.new_password)?;
    let tenant = principal.tenant(&state.store);
    let user = tenant
        .user(&principal.user_id)
        .await?
        .ok_or_else(|| Problem::unauthorized("the user of this token no longer exists"))?;
    let worker = state.clone();
    let phc = user.password_hash.clone();
    let (current, new) = (req.current_password, req.new_password);
    let new_hash = blocking(move || {
        if worker.passwords.verify(&current, Some(&phc)) {
            worker.passwords.hash(&new).map(Some)
        } else {
            Ok(None)
        }
    })
    .await??;
    let Some(new_hash) = new_hash else {
        state.limiter.hit(&account, policy, now).await;
        return Err(Problem::unauthorized("the current password is wrong"));
    };
    state.limiter.clear(&account).await;
    let revoked = tenant
        .replace_password(&user.id, &new_hash, None, now)
        .await?
        .unwrap_or(0);
    audit(
        &tenant,
        AuditAction::PasswordChanged,
        &user.id,
        &user.id,
        &client,
        format!("password changed; {revoked} sessions ended"),
        now,
    )
    .await?;
    Ok(Json(Revoked::new(revoked)))
}

/// Issue a one-time password-reset token for a user (admins and above, for users whose
/// role they could grant). It works for an hour; issuing another does not revoke it.
#[utoipa::path(post, path = "/users/{id}/password-reset", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 201, description = "The token, shown only now", body = ResetIssued),
        (status = 403, description = "Needs the admin role and a role at least the user's", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such user in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn issue(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ResetIssued>), Problem> {
    principal.require_person()?;
    principal.require(Role::Admin)?;
    let tenant = principal.tenant(&state.store);
    let user = tenant
        .user(&id)
        .await?
        .ok_or_else(|| Problem::not_found("user"))?;
    if !principal.role.may_grant(user.role) {
        return Err(Problem::forbidden(format!(
            "a {} cannot reset the password of a {}",
            principal.role, user.role
        )));
    }
    let now = unix_now();
    let token = new_secret("pwr");
    tenant
        .create_password_reset(
            &user.id,
            &hash_secret(&token),
            &principal.user_id,
            now,
            now + RESET_SECS,
        )
        .await?;
    audit(
        &tenant,
        AuditAction::PasswordResetIssued,
        &principal.user_id,
        &user.id,
        &client,
        format!("password reset issued for {}", user.email),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ResetIssued {
            token,
            user_id: user.id,
            expires_at: now + RESET_SECS,
        }),
    ))
}

/// Set a new password with a reset token; every session of the user ends.
#[utoipa::path(post, path = "/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses(
        (status = 200, description = "Password set; sign in with it", body = Revoked),
        (status = 401, description = "Unknown, used or expired token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many resets from this address", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn reset(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<PasswordResetRequest>,
) -> Result<Json<Revoked>, Problem> {
    let now = unix_now();
    state
        .limiter
        .check(
            &format!("reset-ip:{client}"),
            state.config.limits.reset_per_ip,
            now,
            "password resets from your address",
        )
        .await?;
    let Some(reset) = state
        .store
        .password_reset_by_hash(&hash_secret(&req.token))
        .await?
    else {
        return Err(Problem::unauthorized("unknown password-reset token"));
    };
    if reset.used_at.is_some() {
        return Err(Problem::unauthorized(
            "this password-reset token was already used",
        ));
    }
    if reset.expires_at <= now {
        return Err(Problem::unauthorized(
            "this password-reset token has expired; ask an admin for a new one",
        ));
    }
    let hasher = state.clone();
    let password = req.password;
    let hash = blocking(move || hasher.passwords.hash(&password)).await??;
    let tenant = Tenant::new(&state.store, reset.org_id.clone());
    let Some(revoked) = tenant
        .replace_password(&reset.user_id, &hash, Some(&reset.id), now)
        .await?
    else {
        return Err(Problem::unauthorized(
            "this password-reset token was already used",
        ));
    };
    audit(
        &tenant,
        AuditAction::PasswordReset,
        &reset.user_id,
        &reset.user_id,
        &client,
        format!("password reset with a token; {revoked} sessions ended"),
        now,
    )
    .await?;
    Ok(Json(Revoked::new(revoked)))
}

async fn audit(
    tenant: &Tenant<'_>,
    action: AuditAction,
    actor: &str,
    subject: &str,
    client: &str,
    detail: String,
    now: i64,
) -> Result<(), Problem> {
    super::record(
        tenant,
        action,
        Some(actor),
        Some(subject),
        client,
        detail,
        now,
    )
    .await
}
