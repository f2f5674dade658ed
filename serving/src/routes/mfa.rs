//! Two-factor authentication: TOTP enrolment and confirmation, the login challenge,
//! recovery codes, removal, and an admin's reset of a user's factor.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{SessionKind, SignedIn, start_session};
use crate::app::AppState;
use crate::audit::AuditAction;
use crate::auth::secret::hash_secret;
use crate::auth::totp;
use crate::auth::{Enrolling, Principal};
use crate::problem::{Json, Problem, ProblemBody};
use crate::ratelimit::ClientAddr;
use crate::role::Role;
use crate::store::{MfaChallenge, Tenant, TotpFactor, User};
use crate::unix_now;

/// A login challenge dies after this many wrong codes.
pub(crate) const CHALLENGE_FAILURES: i64 = 5;

/// The second step of a login.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    /// The `mfa_token` from `/auth/login`.
    mfa_token: String,
    /// The 6-digit code from the authenticator app, or an unused recovery code.
    code: String,
    /// Bearer tokens (default) or session cookies.
    #[serde(default)]
    session: SessionKind,
}

/// A code from the authenticator app (or, where stated, a recovery code).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeRequest {
    /// The 6-digit code.
    code: String,
}

/// What to enrol in the authenticator app.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TotpEnrolment {
    /// The shared secret, base32 (for typing in by hand).
    secret: String,
    /// The `otpauth://` URI (what the QR code holds).
    otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    qr_svg: String,
    /// Digits per code.
    digits: u32,
    /// Seconds per code.
    period: i64,
}

/// One-time recovery codes: shown once, stored hashed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct RecoveryCodes {
    /// Each signs in once in place of an authenticator code.
    recovery_codes: Vec<String>,
}

/// The caller's second-factor state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MfaStatus {
    /// A confirmed TOTP factor is in use.
    enabled: bool,
    /// An enrolment was started and awaits confirmation.
    pending_enrolment: bool,
    /// The organization requires a second factor.
    required_by_organization: bool,
    /// Unused recovery codes.
    recovery_codes_left: i64,
}

/// Whether a factor was removed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Removed {
    /// True when there was a factor.
    removed: bool,
}

/// Answer a login challenge with an authenticator code or a recovery code.
#[utoipa::path(post, path = "/auth/mfa/verify", tag = "mfa", request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in", body = SignedIn),
        (status = 401, description = "Unknown, expired or used challenge; wrong or replayed code", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address or for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<VerifyRequest>,
) -> Result<(HeaderMap, Json<SignedIn>), Problem> {
    let now = unix_now();
    let limits = &state.config.limits;
    state
        .limiter
        .check(
            &format!("mfa-ip:{client}"),
            limits.mfa_per_ip,
            now,
            "second-factor attempts from your address",
        )
        .await?;
    let Some(challenge) = state
        .store
        .challenge_by_hash(&hash_secret(&req.mfa_token))
        .await?
    else {
        return Err(Problem::unauthorized("unknown mfa_token; sign in again"));
    };
    if challenge.used_at.is_some() {
        return Err(Problem::unauthorized(
            "this mfa_token was already used; sign in again",
        ));
    }
    if challenge.expires_at <= now {
        return Err(Problem::unauthorized(
            "this mfa_token has expired; sign in again",
        ));
    }
    let tenant = Tenant::new(&state.store, challenge.org_id.clone());
    let account = guard_account(&state, &challenge.user_id, now).await?;
    let (Some(user), Some(factor)) = (
        tenant.user(&challenge.user_id).await?,
        tenant.totp_factor(&challenge.user_id).await?,
    ) else {
        return Err(Problem::unauthorized(
            "this account no longer has a second factor; sign in again",
        ));
    };
    let check = Check {
        tenant: &tenant,
        user: &user,
        client: &client,
        now,
    };
    let method = match check.code(&factor, &req.code, true).await? {
        Ok(method) => method,
        Err(why) => {
            state
                .limiter
                .hit(&account, limits.mfa_failures_per_account, now)
                .await;
            return Err(check.failed(&challenge, why).await?);
        }
    };
    if !tenant.finish_challenge(&challenge.id, now).await? {
        return Err(Problem::unauthorized(
            "this mfa_token was already used; sign in again",
        ));
    }
    state.limiter.clear(&account).await;
    check
        .record(
            AuditAction::LoginSucceeded,
            format!("signed in with a password and {method}"),
        )
        .await?;
    let (headers, body) = start_session(&state, &tenant, user, req.session).await?;
    Ok((headers, Json(body.into())))
}

/// A code checked for one user.
struct Check<'a> {
    tenant: &'a Tenant<'a>,
    user: &'a User,
    client: &'a str,
    now: i64,
}

impl Check<'_> {
    /// Accepts an authenticator code (once: its step is recorded atomically) or, when
    /// `recovery` allows it, an unused recovery code. The inner error says why not.
    async fn code(
        &self,
        factor: &TotpFactor,
        code: &str,
        recovery: bool,
    ) -> Result<Result<&'static str, String>, Problem> {
        if totp::looks_like_totp(code) {
            let secret = secret_of(factor)?;
            let Some(step) = totp::matching_step(&secret, code, self.now, factor.last_step) else {
                let replayed = totp::matching_step(&secret, code, self.now, i64::MIN).is_some();
                return Ok(Err(if replayed {
                    "this code was already used; wait for the next one".to_owned()
                } else {
                    "wrong code; check that the device's clock is right".to_owned()
                }));
            };
            if !self.tenant.accept_totp_step(&self.user.id, step).await? {
                return Ok(Err(
                    "this code was already used; wait for the next one".to_owned()
                ));
            }
            return Ok(Ok("an authenticator code"));
        }
        if !recovery {
            return Ok(Err(
                "give the 6-digit code from the authenticator app".to_owned()
            ));
        }
        let hash = hash_secret(&totp::normalise_recovery_code(code));
        if self
            .tenant
            .use_recovery_code(&self.user.id, &hash, self.now)
            .await?
        {
            let left = self.tenant.recovery_codes_left(&self.user.id).await?;
            self.record(
                AuditAction::MfaRecoveryUsed,
                format!("a recovery code was used; {left} left"),
            )
            .await?;
            Ok(Ok("a recovery code"))
        } else {
            Ok(Err("wrong code, or a recovery code already used".to_owned()))
        }
    }

    /// Records a wrong code against the challenge (closing it after
    /// [`CHALLENGE_FAILURES`]) and returns the problem to answer.
    async fn failed(&self, challenge: &MfaChallenge, why: String) -> Result<Problem, Problem> {
        let failures = self.tenant.challenge_failed(&challenge.id).await?;
        self.record(AuditAction::MfaFailed, why.clone()).await?;
        if failures >= CHALLENGE_FAILURES {
            self.tenant
                .finish_challenge(&challenge.id, self.now)
                .await?;
            return Ok(Problem::unauthorized(format!(
                "{why}; too many wrong codes for this sign-in, sign in again"
            )));
        }
        Ok(Problem::unauthorized(why))
    }

    async fn record(&self, action: AuditAction, detail: String) -> Result<(), Problem> {
        let user = Some(self.user.id.as_str());
        super::record(
            self.tenant,
            action,
            user,
            user,
            self.client,
            detail,
            self.now,
        )
        .await
    }
}

fn secret_of(factor: &TotpFactor) -> Result<Vec<u8>, Problem> {
    totp::base32_decode(&factor.secret)
        .ok_or_else(|| Problem::internal(&"a stored TOTP secret is not base32"))
}

/// The caller's second-factor state.
#[utoipa::path(get, path = "/auth/mfa", tag = "mfa", security(("bearer" = [])),
    responses((status = 200, description = "The caller's factor", body = MfaStatus)))]
pub(crate) async fn status(
    State(state): State<AppState>,
    Enrolling(principal): Enrolling,
) -> Result<Json<MfaStatus>, Problem> {
    principal.require_person()?;
    let tenant = principal.tenant(&state.store);
    let factor = tenant.totp_factor(&principal.user_id).await?;
    let mfa = tenant.mfa_state(&principal.user_id).await?;
    Ok(Json(MfaStatus {
        enabled: mfa.enrolled,
        pending_enrolment: factor.as_ref().is_some_and(|f| f.confirmed_at.is_none()),
        required_by_organization: mfa.required,
        recovery_codes_left: tenant.recovery_codes_left(&principal.user_id).await?,
    }))
}

/// Start TOTP enrolment: a new secret to add to an authenticator app (by QR code or by
/// hand). Starting again replaces an unconfirmed secret.
#[utoipa::path(post, path = "/auth/mfa/totp", tag = "mfa", security(("bearer" = [])),
    responses(
        (status = 201, description = "Scan the QR code, then confirm with a code", body = TotpEnrolment),
        (status = 409, description = "A confirmed factor exists; remove it first", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn enrol(
    State(state): State<AppState>,
    Enrolling(principal): Enrolling,
) -> Result<(StatusCode, Json<TotpEnrolment>), Problem> {
    principal.require_person()?;
    let tenant = principal.tenant(&state.store);
    let user = user_of(&tenant, &principal).await?;
    let org = tenant.organization().await?;
    let secret = crate::auth::secret::random_bytes::<{ totp::SECRET_BYTES }>();
    let encoded = totp::base32_encode(&secret);
    tenant
        .begin_totp(&user.id, &encoded, unix_now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict { .. } => Problem::conflict(
                "two-factor authentication is already on; remove it before enrolling again",
            ),
            other => other.into(),
        })?;
    let uri = totp::otpauth_uri(&format!("ROI {}", org.name), &user.email, &secret);
    let qr_svg = totp::qr_svg(&uri).map_err(|e| Problem::internal(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrolment {
            secret: encoded,
            otpauth_uri: uri,
            qr_svg,
            digits: totp::DIGITS,
            period: totp::PERIOD,
        }),
    ))
}

/// Confirm TOTP enrolment with a current code; turns the factor on and returns the
/// recovery codes (shown only now). Refresh the session afterwards to leave the
/// enrolment-only state an MFA-requiring organization puts new users in.
#[utoipa::path(post, path = "/auth/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, description = "Two-factor authentication is on", body = RecoveryCodes),
        (status = 409, description = "No enrolment to confirm", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn confirm(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Enrolling(principal): Enrolling,
    Json(req): Json<CodeRequest>,
) -> Result<Json<RecoveryCodes>, Problem> {
    principal.require_person()?;
    let now = unix_now();
    let tenant = principal.tenant(&state.store);
    let user = user_of(&tenant, &principal).await?;
    let factor = match tenant.totp_factor(&user.id).await? {
        Some(f) if f.confirmed_at.is_none() => f,
        Some(_) => return Err(Problem::conflict("two-factor authentication is already on")),
        None => {
            return Err(Problem::conflict(
                "no enrolment to confirm; start one with POST /auth/mfa/totp",
            ));
        }
    };
    let account = guard_account(&state, &user.id, now).await?;
    let secret = secret_of(&factor)?;
    let Some(step) = totp::matching_step(&secret, &req.code, now, factor.last_step) else {
        state
            .limiter
            .hit(&account, state.config.limits.mfa_failures_per_account, now)
            .await;
        return Err(Problem::invalid(
            "code: wrong code; check that the device's clock is right and scan the QR code again",
        ));
    };
    let (codes, hashes) = new_recovery_codes();
    if !tenant.confirm_totp(&user.id, step, &hashes, now).await? {
        return Err(Problem::conflict(
            "this enrolment was confirmed or replaced meanwhile",
        ));
    }
    state.limiter.clear(&account).await;
    audit(
        &tenant,
        &principal,
        &client,
        AuditAction::MfaEnrolled,
        "TOTP factor confirmed".into(),
        now,
        None,
    )
    .await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Replace the recovery codes (the old ones stop working); needs a current code.
#[utoipa::path(post, path = "/auth/mfa/recovery-codes", tag = "mfa", security(("bearer" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, description = "New recovery codes", body = RecoveryCodes),
        (status = 409, description = "Two-factor authentication is off", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn regenerate(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Json(req): Json<CodeRequest>,
) -> Result<Json<RecoveryCodes>, Problem> {
    principal.require_person()?;
    let now = unix_now();
    let tenant = principal.tenant(&state.store);
    let user = user_of(&tenant, &principal).await?;
    let factor = confirmed_factor(&tenant, &user).await?;
    prove(
        &state, &tenant, &user, &client, &factor, &req.code, false, now,
    )
    .await?;
    let (codes, hashes) = new_recovery_codes();
    tenant
        .replace_recovery_codes(&user.id, &hashes, now)
        .await?;
    audit(
        &tenant,
        &principal,
        &client,
        AuditAction::MfaRecoveryRegenerated,
        format!("{} new recovery codes", codes.len()),
        now,
        None,
    )
    .await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turn two-factor authentication off; needs a current code or a recovery code. Refused
/// when the organization requires it.
#[utoipa::path(post, path = "/auth/mfa/totp/disable", tag = "mfa", security(("bearer" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, description = "The factor and its recovery codes are gone", body = Removed),
        (status = 409, description = "Two-factor authentication is off", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong codes for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn disable(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Json(req): Json<CodeRequest>,
) -> Result<Json<Removed>, Problem> {
    principal.require_person()?;
    let now = unix_now();
    let tenant = principal.tenant(&state.store);
    let user = user_of(&tenant, &principal).await?;
    let factor = confirmed_factor(&tenant, &user).await?;
    if tenant.mfa_state(&user.id).await?.required {
        return Err(Problem::forbidden(
            "your organization requires two-factor authentication; it cannot be turned off",
        ));
    }
    prove(
        &state, &tenant, &user, &client, &factor, &req.code, true, now,
    )
    .await?;
    let removed = tenant.remove_totp(&user.id).await?;
    audit(
        &tenant,
        &principal,
        &client,
        AuditAction::MfaDisabled,
        "TOTP factor removed by its user".into(),
        now,
        None,
    )
    .await?;
    Ok(Json(Removed { removed }))
}

/// Remove a user's factor (they lost their device and codes); admins and above, for
/// users whose role they could grant. The user signs in with their password alone, or
/// enrols again where the organization requires it.
#[utoipa::path(delete, path = "/users/{id}/mfa", tag = "mfa", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Whether a factor was removed", body = Removed),
        (status = 403, description = "Needs the admin role and a role at least the user's", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such user in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn reset(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Removed>, Problem> {
    principal.require(Role::Admin)?;
    let tenant = principal.tenant(&state.store);
    let user = tenant
        .user(&id)
        .await?
        .ok_or_else(|| Problem::not_found("user"))?;
    if !principal.role.may_grant(user.role) {
        return Err(Problem::forbidden(format!(
            "a {} cannot reset the factor of a {}",
            principal.role, user.role
        )));
    }
    let removed = tenant.remove_totp(&user.id).await?;
    audit(
        &tenant,
        &principal,
        &client,
        AuditAction::MfaReset,
        format!("factor of {} removed by an admin", user.email),
        unix_now(),
        Some(&user.id),
    )
    .await?;
    Ok(Json(Removed { removed }))
}

async fn user_of(tenant: &Tenant<'_>, principal: &Principal) -> Result<User, Problem> {
    tenant
        .user(&principal.user_id)
        .await?
        .ok_or_else(|| Problem::unauthorized("the user of this token no longer exists"))
}

async fn confirmed_factor(tenant: &Tenant<'_>, user: &User) -> Result<TotpFactor, Problem> {
    match tenant.totp_factor(&user.id).await? {
        Some(f) if f.confirmed_at.is_some() => Ok(f),
        _ => Err(Problem::conflict("two-factor authentication is off")),
    }
}

/// Refuses while the account is locked after wrong codes; returns the counter's key.
async fn guard_account(state: &AppState, user_id: &str, now: i64) -> Result<String, Problem> {
    let account = format!("mfa-account:{user_id}");
    state
        .limiter
        .refuse_if_locked(
            &account,
            state.config.limits.mfa_failures_per_account,
            now,
            "wrong codes for this account",
        )
        .await?;
    Ok(account)
}

/// Checks a signed-in user's code before a sensitive change (counted like a login's).
#[allow(clippy::too_many_arguments)]
async fn prove(
    state: &AppState,
    tenant: &Tenant<'_>,
    user: &User,
    client: &str,
    factor: &TotpFactor,
    code: &str,
    recovery: bool,
    now: i64,
) -> Result<(), Problem> {
    let account = guard_account(state, &user.id, now).await?;
    let check = Check {
        tenant,
        user,
        client,
        now,
    };
    match check.code(factor, code, recovery).await? {
        Ok(_) => {
            state.limiter.clear(&account).await;
            Ok(())
        }
        Err(why) => {
            state
                .limiter
                .hit(&account, state.config.limits.mfa_failures_per_account, now)
                .await;
            check.record(AuditAction::MfaFailed, why.clone()).await?;
            Err(Problem::invalid(format!("code: {why}")))
        }
    }
}

/// Fresh recovery codes and the hashes under which they are stored.
fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..totp::RECOVERY_CODES)
        .map(|_| totp::new_recovery_code())
        .collect();
    let hashes = codes
        .iter()
        .map(|c| hash_secret(&totp::normalise_recovery_code(c)))
        .collect();
    (codes, hashes)
}

/// Records an event done by `principal` to `subject` (themself unless given).
async fn audit(
    tenant: &Tenant<'_>,
    principal: &Principal,
    client: &str,
    action: AuditAction,
    detail: String,
    now: i64,
    subject: Option<&str>,
) -> Result<(), Problem> {
    let actor = principal.user_id.as_str();
    super::record(
        tenant,
        action,
        Some(actor),
        Some(subject.unwrap_or(actor)),
        client,
        detail,
        now,
    )
    .await
}
