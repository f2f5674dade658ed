//! Authentication and authorisation: who is calling, and may they?
//!
//! - [`password`]: argon2id hashing.
//! - [`token`]: EdDSA access tokens with rotating keys and a JWKS document.
//! - [`refresh`]: opaque refresh tokens, rotated on every use; a reused one revokes its
//!   whole family.
//! - [`Principal`]: the extractor every protected handler takes. It verifies the bearer
//!   token and is the only way for a handler to get a [`Tenant`] scope.

pub mod cookie;
pub mod password;
pub mod refresh;
pub mod scope;
pub mod secret;
pub mod token;
pub mod totp;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::problem::Problem;
use crate::role::Role;
use crate::store::{Store, Tenant};

/// The prefix of every API key (`roik_…`), so that a leaked one is recognisable.
pub const API_KEY_PREFIX: &str = "roik";

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer access token.
    Bearer,
    /// The browser session cookie (state-changing requests carried the CSRF token).
    Cookie,
    /// An API key, by id.
    ApiKey(String),
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id (for an API key: the user it acts for).
    pub user_id: String,
    /// The organization id.
    pub org_id: String,
    /// The role the caller acts with.
    pub role: Role,
    /// How the caller authenticated.
    pub credential: Credential,
    /// The organization requires a second factor this user has not enrolled yet.
    pub mfa_pending: bool,
}

impl Principal {
    /// Refuses with 403 unless the caller's role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), Problem> {
        if self.role.includes(needed) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this needs the {needed} role or higher; you are {}",
                self.role
            )))
        }
    }

    /// The caller's organization, as a store scope.
    pub fn tenant<'s>(&self, store: &'s Store) -> Tenant<'s> {
        Tenant::new(store, self.org_id.clone())
    }

    /// Refuses callers that are not a person signed in (API keys manage no sessions,
    /// factors or keys).
    pub fn require_person(&self) -> Result<(), Problem> {
        match self.credential {
            Credential::ApiKey(_) => Err(Problem::forbidden(
                "API keys cannot do this; sign in as a user",
            )),
            _ => Ok(()),
        }
    }
}

/// A caller who may still be enrolling the second factor their organization requires.
/// Only the MFA enrolment endpoints take this; every other handler takes [`Principal`],
/// which refuses such callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolling(pub Principal);

impl FromRequestParts<AppState> for Enrolling {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        authenticate(parts, state).await.map(Enrolling)
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let principal = authenticate(parts, state).await?;
        if principal.mfa_pending {
            return Err(Problem::forbidden(
                "your organization requires two-factor authentication: enrol with \
                 POST /auth/mfa/totp and POST /auth/mfa/totp/confirm, then refresh your session",
            ));
        }
        Ok(principal)
    }
}

/// Finds and verifies the caller's credential: `Authorization: Bearer` with an access
/// token or an API key, else the session cookie (with the CSRF check on state-changing
/// methods).
pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, Problem> {
    if let Some(header) = parts.headers.get(AUTHORIZATION) {
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be `Bearer <access token>`")
            })?;
        if token.starts_with(API_KEY_PREFIX) && token[API_KEY_PREFIX.len()..].starts_with('_') {
            return api_key(parts, state, token).await;
        }
        return access_token(state, token, Credential::Bearer);
    }
    if let Some(token) = cookie::get(&parts.headers, cookie::ACCESS) {
        cookie::check_csrf(&parts.method, &parts.headers)?;
        return access_token(state, token, Credential::Cookie);
    }
    Err(Problem::unauthorized(
        "no Authorization header; send `Bearer <access token>` (or sign in with a session cookie)",
    ))
}

fn access_token(
    state: &AppState,
    token: &str,
    credential: Credential,
) -> Result<Principal, Problem> {
    let claims = state
        .keys
        .verify(token)
        .map_err(|e| Problem::unauthorized(e.to_string()))?;
    Ok(Principal {
        user_id: claims.sub,
        org_id: claims.org,
        role: claims.role,
        credential,
        mfa_pending: claims.mfa_pending,
    })
}

async fn api_key(parts: &Parts, state: &AppState, key: &str) -> Result<Principal, Problem> {
    let now = crate::unix_now();
    let Some(record) = state
        .store
        .api_key_by_hash(&secret::hash_secret(key))
        .await?
    else {
        return Err(Problem::unauthorized("unknown API key"));
    };
    if record.revoked_at.is_some() {
        return Err(Problem::unauthorized("this API key was revoked"));
    }
    if record.expires_at.is_some_and(|at| at <= now) {
        return Err(Problem::unauthorized("this API key has expired"));
    }
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or_else(|| parts.uri.path());
    let needed = scope::needed(&parts.method, route).ok_or_else(|| {
        Problem::forbidden(format!("API keys cannot call {} {route}", parts.method))
    })?;
    if !record.scopes.contains(&needed) {
        return Err(Problem::forbidden(format!(
            "this API key lacks the scope {needed:?} (it has: {})",
            record.scopes.join(", ")
        )));
    }
    if record.last_used_at.is_none_or(|at| now - at >= 60) {
        Tenant::new(&state.store, record.org_id.clone())
            .touch_api_key(&record.id, now)
            .await?;
    }
    Ok(Principal {
        user_id: record.created_by,
        org_id: record.org_id,
        role: record.role.min(record.creator_role),
        credential: Credential::ApiKey(record.id),
        mfa_pending: false,
    })
}
