//! Sign-up, login, refresh, logout and the public keys.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{UserView, blocking, display_name, normalise_email};
use crate::app::AppState;
use crate::audit::{AuditAction, NewAuditEvent};
use crate::auth::Principal;
use crate::auth::refresh::{Verdict, judge};
use crate::auth::secret::{hash_secret, new_id, new_secret};
use crate::auth::token::Jwks;
use crate::problem::{Json, Problem, ProblemBody};
use crate::ratelimit::{ClientAddr, Decision};
use crate::role::Role;
use crate::store::{NewUser, Organization, RefreshRecord, Tenant, User};
use crate::unix_now;

/// Create an organization and its owner.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignupRequest {
    /// Display name of the organization.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    organization_name: String,
    /// Short unique name used at login: 3–40 of `a-z`, `0-9`, `-`.
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")]
    organization_slug: String,
    /// The owner's e-mail.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// The owner's name.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    /// The owner's password (10–256 characters).
    #[schema(min_length = 10, max_length = 256)]
    password: String,
}

/// Credentials.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    /// The organization's slug.
    organization: String,
    /// E-mail.
    email: String,
    /// Password.
    password: String,
}

/// A refresh token.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    refresh_token: String,
}

/// A session: a short-lived access token and the refresh token that renews it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Session {
    /// Send as `Authorization: Bearer <access_token>`.
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// Single use: exchange at `/auth/refresh` for a new session.
    refresh_token: String,
    /// The signed-in user.
    user: UserView,
}

/// How many refresh tokens were revoked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Revoked {
    /// Live refresh tokens revoked.
    revoked: u64,
}

/// Starts a session for `user` in a new token family, or continues `family`.
pub(crate) async fn start_session(
    state: &AppState,
    tenant: &Tenant<'_>,
    user: User,
) -> Result<Session, Problem> {
    let now = unix_now();
    let refresh_token = new_secret("rt");
    tenant
        .insert_refresh(
            &user.id,
            &new_id("fam"),
            &hash_secret(&refresh_token),
            now,
            now + refresh_ttl(state),
        )
        .await?;
    session(state, user, refresh_token, now)
}

fn refresh_ttl(state: &AppState) -> i64 {
    state.config.refresh_token_ttl_days as i64 * 86_400
}

fn session(
    state: &AppState,
    user: User,
    refresh_token: String,
    now: i64,
) -> Result<Session, Problem> {
    let access_token = state
        .keys
        .issue(&user.id, &user.org_id, user.role, now)
        .map_err(|e| Problem::internal(&e))?;
    Ok(Session {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.keys.token_ttl(),
        refresh_token,
        user: user.into(),
    })
}

fn check_slug(slug: &str) -> Result<(), Problem> {
    let ok = (3..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(format!(
            "organization_slug: {slug:?} must be 3 to 40 of a-z, 0-9 and inner hyphens"
        )))
    }
}

/// Create an organization with its first user, the owner, and sign them in.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Organization created; the owner is signed in", body = Session),
        (status = 403, description = "Sign-up is closed on this server", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn signup(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<SignupRequest>,
) -> Result<(StatusCode, Json<Session>), Problem> {
    if !state.config.open_signup {
        return Err(Problem::forbidden(
            "sign-up is closed on this server (serve.open_signup = false)",
        ));
    }
    check_slug(&req.organization_slug)?;
    let org_name = display_name("organization_name", &req.organization_name)?;
    let name = display_name("name", &req.name)?;
    let email = normalise_email(&req.email)?;
    let hasher = state.clone();
    let password_hash = blocking(move || hasher.passwords.hash(&req.password)).await??;
    let (org, owner) = state
        .store
        .create_organization(
            &req.organization_slug,
            &org_name,
            NewUser {
                email,
                name,
                role: Role::Owner,
                password_hash,
            },
            unix_now(),
        )
        .await?;
    let tenant = state.store.tenant_of(&org);
    tenant
        .record(
            NewAuditEvent {
                action: AuditAction::OrganizationCreated,
                actor_id: Some(&owner.id),
                subject: Some(&org.id),
                client: Some(&client),
                detail: format!("organization {:?} created by {}", org.slug, owner.email),
            },
            unix_now(),
        )
        .await?;
    let session = start_session(&state, &tenant, owner).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// Sign in with organization, e-mail and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Wrong organization, e-mail or password", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address, or too many failures for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<LoginRequest>,
) -> Result<Json<Session>, Problem> {
    let now = unix_now();
    let limits = &state.config.limits;
    state
        .limiter
        .check(
            &format!("login-ip:{client}"),
            limits.login_per_ip,
            now,
            "login attempts from your address",
        )
        .await?;
    let email = normalise_email(&req.email).unwrap_or_else(|_| req.email.trim().to_lowercase());
    let account = format!("login-account:{}/{email}", req.organization);
    let org = state.store.organization_by_slug(&req.organization).await?;
    let attempt = LoginAttempt {
        state: &state,
        org: org.as_ref(),
        email: &email,
        client: &client,
        now,
    };
    if let Decision::Deny { retry_after } = state
        .limiter
        .peek(&account, limits.login_failures_per_account, now)
        .await
    {
        let detail = format!("refused: locked for {retry_after} s after repeated failures");
        attempt
            .record(AuditAction::LoginLocked, None, detail)
            .await?;
        return Err(Problem::too_many_requests(
            format!("too many failed logins for this account; try again in {retry_after} s"),
            retry_after,
        ));
    }
    let user = match &org {
        Some(org) => state.store.tenant_of(org).user_by_email(&email).await?,
        None => None,
    };
    let checker = state.clone();
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let password = req.password;
    let ok = blocking(move || checker.passwords.verify(&password, phc.as_deref())).await?;
    let (Some(org), Some(user), true) = (org.as_ref(), user, ok) else {
        state
            .limiter
            .hit(&account, limits.login_failures_per_account, now)
            .await;
        attempt
            .record(
                AuditAction::LoginFailed,
                None,
                "wrong e-mail or password".to_owned(),
            )
            .await?;
        return Err(Problem::unauthorized(
            "wrong organization, e-mail or password",
        ));
    };
    state.limiter.clear(&account).await;
    attempt
        .record(
            AuditAction::LoginSucceeded,
            Some(&user.id),
            "signed in".to_owned(),
        )
        .await?;
    let tenant = state.store.tenant_of(org);
    Ok(Json(start_session(&state, &tenant, user).await?))
}

/// A login attempt, for the audit log of the organization it names (when that exists).
struct LoginAttempt<'a> {
    state: &'a AppState,
    org: Option<&'a Organization>,
    email: &'a str,
    client: &'a str,
    now: i64,
}

impl LoginAttempt<'_> {
    async fn record(
        &self,
        action: AuditAction,
        actor: Option<&str>,
        detail: String,
    ) -> Result<(), Problem> {
        if let Some(org) = self.org {
            let event = NewAuditEvent {
                action,
                actor_id: actor,
                subject: Some(self.email),
                client: Some(self.client),
                detail,
            };
            self.state
                .store
                .tenant_of(org)
                .record(event, self.now)
                .await?;
        }
        Ok(())
    }
}

/// Exchange a refresh token for a new session. Each refresh token works once; presenting
/// one again signs out every session descended from the same login.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new session; the presented token is now used", body = Session),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many refreshes from this address", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<RefreshRequest>,
) -> Result<Json<Session>, Problem> {
    let now = unix_now();
    state
        .limiter
        .check(
            &format!("refresh-ip:{client}"),
            state.config.limits.refresh_per_ip,
            now,
            "token refreshes from your address",
        )
        .await?;
    let Some(record) = state
        .store
        .refresh_by_hash(&hash_secret(&req.refresh_token))
        .await?
    else {
        return Err(Problem::unauthorized("unknown refresh token"));
    };
    let tenant = Tenant::new(&state.store, record.org_id.clone());
    match judge(&record, now) {
        Verdict::Revoked => return Err(Problem::unauthorized("this refresh token was revoked")),
        Verdict::Expired => {
            return Err(Problem::unauthorized(
                "this refresh token has expired; sign in again",
            ));
        }
        Verdict::Reused => return Err(reused(&tenant, &record, &client, now).await?),
        Verdict::Rotate => {}
    }
    let Some(user) = tenant.user(&record.user_id).await? else {
        return Err(Problem::unauthorized(
            "the user of this refresh token no longer exists",
        ));
    };
    let next = new_secret("rt");
    let rotated = tenant
        .rotate_refresh(
            &record.id,
            &user.id,
            &record.family_id,
            &hash_secret(&next),
            now,
            now + refresh_ttl(&state),
        )
        .await?;
    if !rotated {
        // Another request used it between our read and our write: that is a reuse too.
        return Err(reused(&tenant, &record, &client, now).await?);
    }
    Ok(Json(session(&state, user, next, now)?))
}

/// Revokes a family whose token was presented twice; returns the problem to answer.
async fn reused(
    tenant: &Tenant<'_>,
    record: &RefreshRecord,
    client: &str,
    now: i64,
) -> Result<Problem, Problem> {
    let family = record.family_id.as_str();
    let revoked = tenant.revoke_family(family, now).await?;
    tracing::warn!(org = %tenant.org_id(), family, revoked, "refresh token reuse: family revoked");
    tenant
        .record(
            NewAuditEvent {
                action: AuditAction::RefreshReused,
                actor_id: Some(&record.user_id),
                subject: Some(family),
                client: Some(client),
                detail: format!(
                    "a used refresh token was presented again; {revoked} live sessions revoked"
                ),
            },
            now,
        )
        .await?;
    Ok(Problem::unauthorized(
        "this refresh token was already used; every session from that login is now signed out",
    ))
}

/// Sign out the session that holds this refresh token (its whole family).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "Signed out (also when the token was unknown)", body = Revoked)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<RefreshRequest>,
) -> Result<Json<Revoked>, Problem> {
    let now = unix_now();
    let hash = hash_secret(&req.refresh_token);
    let Some(record) = state.store.refresh_by_hash(&hash).await? else {
        return Ok(Json(Revoked { revoked: 0 }));
    };
    let tenant = Tenant::new(&state.store, record.org_id.clone());
    let revoked = tenant.revoke_family(&record.family_id, now).await?;
    tenant
        .record(
            NewAuditEvent {
                action: AuditAction::Logout,
                actor_id: Some(&record.user_id),
                subject: Some(&record.family_id),
                client: Some(&client),
                detail: format!("{revoked} live sessions ended"),
            },
            now,
        )
        .await?;
    Ok(Json(Revoked { revoked }))
}

/// Sign out every session of the caller. Access tokens already issued stay valid until
/// they expire (`serve.access_token_ttl_secs`).
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every refresh token of the caller is revoked", body = Revoked),
        (status = 401, description = "No valid access token", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn logout_all(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
) -> Result<Json<Revoked>, Problem> {
    let now = unix_now();
    let tenant = principal.tenant(&state.store);
    let revoked = tenant.revoke_user(&principal.user_id, now).await?;
    tenant
        .record(
            NewAuditEvent {
                action: AuditAction::LogoutEverywhere,
                actor_id: Some(&principal.user_id),
                subject: Some(&principal.user_id),
                client: Some(&client),
                detail: format!("{revoked} live sessions ended"),
            },
            now,
        )
        .await?;
    Ok(Json(Revoked { revoked }))
}

/// The public keys that verify access tokens (JWKS, RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "Current verification keys", body = Jwks)))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Json<Jwks> {
    Json(state.keys.jwks())
}
