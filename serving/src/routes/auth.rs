//! Sign-up, login, refresh, logout and the public keys.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{UserView, blocking, display_name, normalise_email};
use crate::app::AppState;
use crate::audit::{AuditAction, NewAuditEvent};
use crate::auth::refresh::{Verdict, judge};
use crate::auth::secret::{hash_secret, new_id, new_secret};
use crate::auth::token::Jwks;
use crate::auth::{Principal, cookie};
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

/// How a client wants its session: tokens in the JSON body (API clients, mobile apps)
/// or `HttpOnly` cookies with a CSRF token (the web dashboard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SessionKind {
    /// Access and refresh tokens in the response body.
    #[default]
    Bearer,
    /// Session cookies; the body carries the CSRF token to echo in `x-csrf-token`.
    Cookie,
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
    /// Bearer tokens (default) or session cookies.
    #[serde(default)]
    session: SessionKind,
}

/// A refresh token: in the body, or (when absent) the session cookie, in which case the
/// CSRF header is required and the new session comes back as cookies.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    #[serde(default)]
    refresh_token: Option<String>,
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
    /// True when the organization requires two-factor authentication and this user has
    /// not enrolled: the access token reaches only `/auth/mfa…` until they do.
    mfa_enrolment_required: bool,
    /// The signed-in user.
    user: UserView,
}

/// A browser session: the tokens are in `HttpOnly` cookies.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CookieSession {
    /// Echo in the `x-csrf-token` header on every request that changes state (it is
    /// also in the readable `__Host-roi_csrf` cookie).
    csrf_token: String,
    /// Seconds until the access cookie expires; refresh before then.
    expires_in: i64,
    /// As in a bearer session.
    mfa_enrolment_required: bool,
    /// The signed-in user.
    user: UserView,
}

/// The password was right; now the second factor.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MfaChallengeView {
    /// Send to `/auth/mfa/verify` with a code from the authenticator app or a recovery
    /// code.
    mfa_token: String,
    /// Seconds the challenge stays open.
    expires_in: i64,
}

/// The outcome of a successful login: a session, or a second-factor challenge.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum SignedIn {
    /// Bearer tokens.
    Bearer(Session),
    /// Session cookies were set.
    Cookie(CookieSession),
    /// A second factor is needed.
    Mfa(MfaChallengeView),
}

/// A renewed session (the same shape it was started in).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum Renewed {
    /// Bearer tokens.
    Bearer(Session),
    /// Session cookies were set.
    Cookie(CookieSession),
}

impl From<Renewed> for SignedIn {
    fn from(r: Renewed) -> Self {
        match r {
            Renewed::Bearer(s) => SignedIn::Bearer(s),
            Renewed::Cookie(c) => SignedIn::Cookie(c),
        }
    }
}

/// How many refresh tokens were revoked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Revoked {
    /// Live refresh tokens revoked.
    revoked: u64,
}

impl Revoked {
    pub(crate) fn new(revoked: u64) -> Self {
        Revoked { revoked }
    }
}

/// Starts a session for `user` in a new token family.
pub(crate) async fn start_session(
    state: &AppState,
    tenant: &Tenant<'_>,
    user: User,
    kind: SessionKind,
) -> Result<(HeaderMap, Renewed), Problem> {
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
    session(state, tenant, user, refresh_token, now, kind).await
}

/// A bearer session for `user` (sign-up and invitations answer with one).
pub(crate) async fn start_bearer_session(
    state: &AppState,
    tenant: &Tenant<'_>,
    user: User,
) -> Result<Session, Problem> {
    match start_session(state, tenant, user, SessionKind::Bearer).await? {
        (_, Renewed::Bearer(s)) => Ok(s),
        (_, Renewed::Cookie(_)) => Err(Problem::internal(&"bug: asked for a bearer session")),
    }
}

fn refresh_ttl(state: &AppState) -> i64 {
    state.config.refresh_token_ttl_days as i64 * 86_400
}

/// Issues the access token (limited to enrolment when the organization requires a factor
/// the user lacks) and shapes the session as asked.
async fn session(
    state: &AppState,
    tenant: &Tenant<'_>,
    user: User,
    refresh_token: String,
    now: i64,
    kind: SessionKind,
) -> Result<(HeaderMap, Renewed), Problem> {
    let mfa = tenant.mfa_state(&user.id).await?;
    let pending = mfa.required && !mfa.enrolled;
    let access_token = state
        .keys
        .issue(&user.id, &user.org_id, user.role, pending, now)
        .map_err(|e| Problem::internal(&e))?;
    let expires_in = state.keys.token_ttl();
    let mut headers = HeaderMap::new();
    let body = match kind {
        SessionKind::Bearer => Renewed::Bearer(Session {
            access_token,
            token_type: "Bearer".into(),
            expires_in,
            refresh_token,
            mfa_enrolment_required: pending,
            user: user.into(),
        }),
        SessionKind::Cookie => {
            let csrf_token = new_secret("csrf");
            cookie::set_session(
                &mut headers,
                &access_token,
                expires_in,
                &refresh_token,
                refresh_ttl(state),
                &csrf_token,
            );
            Renewed::Cookie(CookieSession {
                csrf_token,
                expires_in,
                mfa_enrolment_required: pending,
                user: user.into(),
            })
        }
    };
    Ok((headers, body))
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
    let session = start_bearer_session(&state, &tenant, owner).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// Sign in with organization, e-mail and password. Users with a second factor get a
/// challenge to answer at `/auth/mfa/verify`; the others a session, as bearer tokens or
/// (with `"session": "cookie"`) as `HttpOnly` cookies.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in, or a second factor is needed", body = SignedIn),
        (status = 401, description = "Wrong organization, e-mail or password", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address, or too many failures for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<LoginRequest>,
) -> Result<(HeaderMap, Json<SignedIn>), Problem> {
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
    let tenant = state.store.tenant_of(org);
    if let Some(challenge) = mfa_challenge(&tenant, &user, now).await? {
        return Ok((HeaderMap::new(), Json(SignedIn::Mfa(challenge))));
    }
    attempt
        .record(
            AuditAction::LoginSucceeded,
            Some(&user.id),
            "signed in with a password".to_owned(),
        )
        .await?;
    let (headers, body) = start_session(&state, &tenant, user, req.session).await?;
    Ok((headers, Json(body.into())))
}

/// How long a login challenge waits for its second factor, seconds.
pub(crate) const MFA_CHALLENGE_SECS: i64 = 300;

/// Opens a second-factor challenge when `user` has a factor (their first factor, a
/// password or a sign-in provider, has just been checked); None when they have none.
pub(crate) async fn mfa_challenge(
    tenant: &Tenant<'_>,
    user: &User,
    now: i64,
) -> Result<Option<MfaChallengeView>, Problem> {
    if !tenant.mfa_state(&user.id).await?.enrolled {
        return Ok(None);
    }
    let mfa_token = new_secret("mfa");
    tenant
        .create_challenge(
            &user.id,
            &hash_secret(&mfa_token),
            now,
            now + MFA_CHALLENGE_SECS,
        )
        .await?;
    Ok(Some(MfaChallengeView {
        mfa_token,
        expires_in: MFA_CHALLENGE_SECS,
    }))
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
/// one again signs out every session descended from the same login. Without a token in
/// the body the session cookie is used (with the CSRF header), and the new session comes
/// back as cookies.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    params(("x-csrf-token" = Option<String>, Header, description = "The CSRF token, when the refresh token is the session cookie")),
    responses(
        (status = 200, description = "A new session; the presented token is now used", body = Renewed),
        (status = 403, description = "Cookie refresh without a matching CSRF header", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many refreshes from this address", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    method: Method,
    request_headers: HeaderMap,
    Json(req): Json<RefreshRequest>,
) -> Result<(HeaderMap, Json<Renewed>), Problem> {
    let now = unix_now();
    let (presented, kind) = presented_refresh(&method, &request_headers, req.refresh_token)?;
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
        .refresh_by_hash(&hash_secret(&presented))
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
    let (headers, body) = session(&state, &tenant, user, next, now, kind).await?;
    Ok((headers, Json(body)))
}

/// The refresh token a request presents: the body's, or else the session cookie's (which
/// must pass the CSRF check); and the kind of session to answer with.
fn presented_refresh(
    method: &Method,
    headers: &HeaderMap,
    in_body: Option<String>,
) -> Result<(String, SessionKind), Problem> {
    if let Some(token) = in_body {
        return Ok((token, SessionKind::Bearer));
    }
    let token = cookie::get(headers, cookie::REFRESH).ok_or_else(|| {
        Problem::unauthorized(
            "no refresh token: send refresh_token in the body, or the session cookie",
        )
    })?;
    cookie::check_csrf(method, headers)?;
    Ok((token.to_owned(), SessionKind::Cookie))
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

/// Sign out the session that holds this refresh token (its whole family). Without a
/// token in the body the session cookie is used (with the CSRF header), and the cookies
/// are deleted.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    params(("x-csrf-token" = Option<String>, Header, description = "The CSRF token, when the refresh token is the session cookie")),
    responses(
        (status = 200, description = "Signed out (also when the token was unknown)", body = Revoked),
        (status = 401, description = "Neither a refresh token nor a session cookie", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Cookie logout without a matching CSRF header", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    method: Method,
    request_headers: HeaderMap,
    Json(req): Json<RefreshRequest>,
) -> Result<(HeaderMap, Json<Revoked>), Problem> {
    let now = unix_now();
    let (presented, kind) = presented_refresh(&method, &request_headers, req.refresh_token)?;
    let mut headers = HeaderMap::new();
    if kind == SessionKind::Cookie {
        cookie::clear_session(&mut headers);
    }
    let hash = hash_secret(&presented);
    let Some(record) = state.store.refresh_by_hash(&hash).await? else {
        return Ok((headers, Json(Revoked { revoked: 0 })));
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
    Ok((headers, Json(Revoked { revoked })))
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
    principal.require_person()?;
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
