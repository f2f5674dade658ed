//! Sign-in with an OpenID Connect provider (see [`crate::oidc`]): start sends the browser
//! to the provider; the callback validates the answer, finds the user (by a linked
//! identity, or by the provider-verified e-mail, which links it) and starts a session.
//! Nobody joins an organization this way: the e-mail must already belong to a user, made
//! by sign-up or invitation.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{SessionKind, SignedIn, mfa_challenge, start_session};
use crate::app::AppState;
use crate::audit::AuditAction;
use crate::auth::secret::{hash_secret, new_secret};
use crate::oidc::{AuthRequest, OidcError, Provider};
use crate::problem::{Json, Problem, ProblemBody, Query};
use crate::ratelimit::ClientAddr;
use crate::store::{NewOidcState, Tenant};
use crate::unix_now;

/// The cookie that ties a provider's answer to the browser that asked.
pub const BINDING_COOKIE: &str = "__Host-roi_oidc";
/// How long a sign-in may stay at the provider, seconds.
pub const FLOW_SECS: i64 = 600;

/// A provider users can sign in with.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ProviderView {
    /// The name in URLs.
    name: String,
    /// What to show ("Sign in with Google").
    display_name: String,
    /// Where to send the browser, with `?organization=SLUG`.
    start_url: String,
}

/// Starting a sign-in.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartQuery {
    /// The organization's slug.
    organization: String,
    /// `bearer` (default: the callback answers with tokens) or `cookie`.
    #[serde(default)]
    #[param(inline)]
    session: SessionKind,
    /// The e-mail to sign in with, passed on to the provider.
    login_hint: Option<String>,
}

/// What the provider sends back (in the query, or as a form POST).
#[derive(Debug, Default, Deserialize, Serialize, IntoParams, ToSchema)]
pub(crate) struct CallbackParams {
    /// The authorization code.
    code: Option<String>,
    /// The state sent at the start.
    state: Option<String>,
    /// The issuer (RFC 9207), checked when present.
    iss: Option<String>,
    /// Set when the provider refused.
    error: Option<String>,
    /// Why it refused.
    error_description: Option<String>,
}

/// The providers configured on this server.
#[utoipa::path(get, path = "/auth/oidc/providers", tag = "auth",
    responses((status = 200, description = "Providers, by name", body = [ProviderView])))]
pub(crate) async fn providers(State(state): State<AppState>) -> Json<Vec<ProviderView>> {
    Json(
        state
            .oidc
            .providers()
            .map(|p| ProviderView {
                name: p.name().to_owned(),
                display_name: p.display_name().to_owned(),
                start_url: format!("/auth/oidc/{}/start", p.name()),
            })
            .collect(),
    )
}

/// Start signing in with a provider: redirects the browser to it, with PKCE, state and
/// nonce, and sets a short-lived cookie that ties the answer to this browser.
#[utoipa::path(get, path = "/auth/oidc/{provider}/start", tag = "auth",
    params(("provider" = String, Path, description = "The provider's name"), StartQuery),
    responses(
        (status = 303, description = "Go to the provider",
            headers(("location" = String, description = "The provider's authorization URL"))),
        (status = 404, description = "No such provider or organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ins from this address", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "The provider could not be reached", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn start(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(provider): Path<String>,
    Query(query): Query<StartQuery>,
) -> Result<(StatusCode, HeaderMap), Problem> {
    let now = unix_now();
    let p = provider_named(&state, &provider)?;
    state
        .limiter
        .check(
            &format!("login-ip:{client}"),
            state.config.limits.login_per_ip,
            now,
            "sign-ins from your address",
        )
        .await?;
    let org = state
        .store
        .organization_by_slug(&query.organization)
        .await?
        .ok_or_else(|| Problem::not_found(format!("organization {:?}", query.organization)))?;
    let flow_state = new_secret("st");
    let nonce = new_secret("nc");
    let verifier = new_secret("pk");
    let redirect_uri = redirect_uri(&state, p.name());
    let url = state
        .oidc
        .authorization_url(
            p,
            &AuthRequest {
                state: &flow_state,
                nonce: &nonce,
                verifier: &verifier,
                redirect_uri: &redirect_uri,
                login_hint: query.login_hint.as_deref(),
            },
            now,
        )
        .await
        .map_err(oidc_problem)?;
    state
        .store
        .tenant_of(&org)
        .create_oidc_state(
            NewOidcState {
                state_hash: &hash_secret(&flow_state),
                provider: p.name(),
                nonce: &nonce,
                pkce_verifier: &verifier,
                session_kind: match query.session {
                    SessionKind::Bearer => "bearer",
                    SessionKind::Cookie => "cookie",
                },
                expires_at: now + FLOW_SECS,
            },
            now,
        )
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        LOCATION,
        HeaderValue::from_str(&url).map_err(|e| Problem::internal(&e))?,
    );
    headers.insert(SET_COOKIE, binding_cookie(p, &flow_state, FLOW_SECS));
    Ok((StatusCode::SEE_OTHER, headers))
}

/// The provider's answer (query parameters): signs the user in.
#[utoipa::path(get, path = "/auth/oidc/{provider}/callback", tag = "auth",
    params(("provider" = String, Path, description = "The provider's name"), CallbackParams),
    responses(
        (status = 200, description = "Signed in, or a second factor is needed", body = SignedIn),
        (status = 401, description = "Refused by the provider; unknown, used or expired state; another browser; invalid ID token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "No user of the organization has this identity or verified e-mail", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such provider", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "The provider could not be reached", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn callback(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(provider): Path<String>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Result<(HeaderMap, Json<SignedIn>), Problem> {
    finish(&state, &client, &provider, &headers, params).await
}

/// The provider's answer as a form POST (`response_mode=form_post`, as Apple sends it).
#[utoipa::path(post, path = "/auth/oidc/{provider}/callback", tag = "auth",
    params(("provider" = String, Path, description = "The provider's name")),
    request_body(content = CallbackParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Signed in, or a second factor is needed", body = SignedIn),
        (status = 401, description = "Refused by the provider; unknown, used or expired state; another browser; invalid ID token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "No user of the organization has this identity or verified e-mail", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such provider", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "The provider could not be reached", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn callback_form(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(HeaderMap, Json<SignedIn>), Problem> {
    let mut params = CallbackParams::default();
    for (key, value) in url::form_urlencoded::parse(&body) {
        let slot = match key.as_ref() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "iss" => &mut params.iss,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    finish(&state, &client, &provider, &headers, params).await
}

async fn finish(
    state: &AppState,
    client: &str,
    provider: &str,
    request_headers: &HeaderMap,
    params: CallbackParams,
) -> Result<(HeaderMap, Json<SignedIn>), Problem> {
    let now = unix_now();
    let p = provider_named(state, provider)?;
    let raw_state = params
        .state
        .as_deref()
        .ok_or_else(|| Problem::bad_request("state: missing from the provider's answer"))?;
    let Some(flow) = state
        .store
        .take_oidc_state(&hash_secret(raw_state), now)
        .await?
    else {
        return Err(Problem::unauthorized(
            "unknown or already used state; start the sign-in again",
        ));
    };
    let tenant = Tenant::new(&state.store, flow.org_id.clone());
    let fail = |why: String| async {
        audit(
            &tenant,
            AuditAction::LoginFailed,
            None,
            client,
            format!("{} sign-in refused: {why}", p.display_name()),
            now,
        )
        .await?;
        Ok::<Problem, Problem>(Problem::unauthorized(why))
    };
    if let Some(error) = &params.error {
        let description = params.error_description.as_deref().unwrap_or("");
        return Err(fail(format!(
            "{} refused the sign-in ({error}: {description})",
            p.display_name()
        ))
        .await?);
    }
    if flow.provider != p.name() {
        return Err(fail("this state belongs to another provider".to_owned()).await?);
    }
    if flow.expires_at <= now {
        return Err(fail("this sign-in took too long; start again".to_owned()).await?);
    }
    let bound = crate::auth::cookie::get(request_headers, BINDING_COOKIE)
        .is_some_and(|c| crate::auth::secret::same(c.as_bytes(), raw_state.as_bytes()));
    if !bound {
        return Err(fail(
            "this sign-in was not started in this browser (its cookie is missing); start again"
                .to_owned(),
        )
        .await?);
    }
    if let Some(iss) = &params.iss
        && !p.accepts_issuer(iss)
    {
        return Err(fail(format!(
            "the answer came from the issuer {iss:?}, not {}",
            p.issuer()
        ))
        .await?);
    }
    let code = params
        .code
        .as_deref()
        .ok_or_else(|| Problem::bad_request("code: missing from the provider's answer"))?;
    let identity = match state
        .oidc
        .exchange(
            p,
            code,
            &flow.pkce_verifier,
            &redirect_uri(state, p.name()),
            &flow.nonce,
            now,
        )
        .await
    {
        Ok(identity) => identity,
        Err(e @ OidcError::Rejected { .. }) => return Err(fail(e.to_string()).await?),
        Err(e) => return Err(oidc_problem(e)),
    };
    let user = match tenant.user_by_identity(p.name(), &identity.subject).await? {
        Some(user) => user,
        None => {
            let Some(email) = identity.email.as_deref() else {
                return Err(forbidden(
                    &tenant,
                    client,
                    now,
                    format!(
                        "{} gave no e-mail address, so this identity cannot be matched to a user",
                        p.display_name()
                    ),
                )
                .await?);
            };
            if !identity.email_verified {
                return Err(forbidden(
                    &tenant,
                    client,
                    now,
                    format!(
                        "{} has not verified {email}, so it cannot be linked to an account",
                        p.display_name()
                    ),
                )
                .await?);
            }
            let Some(user) = tenant.user_by_email(email).await? else {
                return Err(forbidden(&tenant, client, now, format!(
                    "no user of this organization has the e-mail {email}; ask an admin for an invitation"
                ))
                .await?);
            };
            tenant
                .link_identity(p.name(), &identity.subject, &user.id, email, now)
                .await?;
            audit(
                &tenant,
                AuditAction::OidcLinked,
                Some(&user.id),
                client,
                format!(
                    "{} identity linked by its verified e-mail {email}",
                    p.display_name()
                ),
                now,
            )
            .await?;
            user
        }
    };
    let mut headers = HeaderMap::new();
    headers.append(SET_COOKIE, binding_cookie(p, "", 0));
    if let Some(challenge) = mfa_challenge(&tenant, &user, now).await? {
        return Ok((headers, Json(SignedIn::Mfa(challenge))));
    }
    audit(
        &tenant,
        AuditAction::LoginSucceeded,
        Some(&user.id),
        client,
        format!("signed in with {}", p.display_name()),
        now,
    )
    .await?;
    let kind = if flow.session_kind == "cookie" {
        SessionKind::Cookie
    } else {
        SessionKind::Bearer
    };
    let (session_headers, body) = start_session(state, &tenant, user, kind).await?;
    headers.extend(session_headers);
    Ok((headers, Json(body.into())))
}

fn provider_named<'s>(state: &'s AppState, name: &str) -> Result<&'s Provider, Problem> {
    state
        .oidc
        .provider(name)
        .ok_or_else(|| Problem::not_found(format!("sign-in provider {name:?}")))
}

/// Where the provider sends the browser back: `serve.public_url` (default
/// `http://BIND`) and the callback path.
fn redirect_uri(state: &AppState, provider: &str) -> String {
    format!("{}/auth/oidc/{provider}/callback", state.config.base_url())
}

/// The binding cookie (`max_age` 0 deletes it). A provider that answers with a
/// cross-site form POST gets `SameSite=None`, or the browser would not send it.
fn binding_cookie(p: &Provider, value: &str, max_age: i64) -> HeaderValue {
    let same_site = if p.form_post() { "None" } else { "Lax" };
    HeaderValue::from_str(&format!(
        "{BINDING_COOKIE}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite={same_site}"
    ))
    .expect("a base64url state is a valid header value")
}

fn oidc_problem(e: OidcError) -> Problem {
    match e {
        OidcError::Provider { .. } => Problem::bad_gateway(e.to_string()),
        OidcError::Rejected { .. } => Problem::unauthorized(e.to_string()),
        OidcError::Config(_) => Problem::internal(&e),
    }
}

async fn forbidden(
    tenant: &Tenant<'_>,
    client: &str,
    now: i64,
    why: String,
) -> Result<Problem, Problem> {
    audit(
        tenant,
        AuditAction::LoginFailed,
        None,
        client,
        why.clone(),
        now,
    )
    .await?;
    Ok(Problem::forbidden(why))
}

async fn audit(
    tenant: &Tenant<'_>,
    action: AuditAction,
    actor: Option<&str>,
    client: &str,
    detail: String,
    now: i64,
) -> Result<(), Problem> {
    super::record(tenant, action, actor, actor, client, detail, now).await
}
