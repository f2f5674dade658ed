//! Authentication and authorisation: who is calling, and may they?
//!
//! - [`password`]: argon2id hashing.
//! - [`token`]: EdDSA access tokens with rotating keys and a JWKS document.
//! - [`refresh`]: opaque refresh tokens, rotated on every use; a reused one revokes its
//!   whole family.
//! - [`Principal`]: the extractor every protected handler takes. It verifies the bearer
//!   token and is the only way for a handler to get a [`Tenant`] scope.

pub mod password;
pub mod refresh;
pub mod secret;
pub mod token;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::problem::Problem;
use crate::role::Role;
use crate::store::{Store, Tenant};

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id.
    pub user_id: String,
    /// The organization id.
    pub org_id: String,
    /// The role the access token was issued with.
    pub role: Role,
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
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            Problem::unauthorized("no Authorization header; send `Bearer <access token>`")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be `Bearer <access token>`")
            })?;
        let claims = state
            .keys
            .verify(token)
            .map_err(|e| Problem::unauthorized(e.to_string()))?;
        Ok(Principal {
            user_id: claims.sub,
            org_id: claims.org,
            role: claims.role,
        })
    }
}
