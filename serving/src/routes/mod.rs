//! HTTP handlers, one module per resource. Handlers parse and check the request, call
//! the store through a tenant scope, and shape the response; rules live in `auth`,
//! `role` and `store`.

pub(crate) mod alerts;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod campaigns;
pub(crate) mod contacts;
pub(crate) mod documents;
pub(crate) mod health;
pub(crate) mod invitations;
pub(crate) mod mfa;
pub(crate) mod notifications;
pub(crate) mod oidc;
pub(crate) mod organization;
pub(crate) mod passwords;
pub(crate) mod routing;
pub(crate) mod users;
pub(crate) mod webhooks;
pub(crate) mod ws;

use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::role::Role;
use crate::store::User;

/// A user as shown to clients (never the password hash).
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub(crate) struct UserView {
    /// User id.
    id: String,
    /// Organization id.
    organization_id: String,
    /// Login e-mail.
    email: String,
    /// Display name.
    name: String,
    /// Role.
    role: Role,
    /// Unix seconds.
    created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            organization_id: u.org_id,
            email: u.email,
            name: u.name,
            role: u.role,
            created_at: u.created_at,
        }
    }
}

/// Lower-cases and checks an e-mail address (shape only; ownership is proven by the
/// invitation or, later, a confirmation mail).
pub(crate) fn normalise_email(raw: &str) -> Result<String, Problem> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.contains(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(Problem::invalid(format!(
            "email: {raw:?} is not an e-mail address"
        )))
    }
}

/// Trims a display name and checks its length.
pub(crate) fn display_name(field: &str, raw: &str) -> Result<String, Problem> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Problem::invalid(format!(
            "{field}: must be 1 to 200 characters"
        )));
    }
    Ok(name.to_owned())
}

/// Records a security event in the organization's audit log.
pub(crate) async fn record(
    tenant: &crate::store::Tenant<'_>,
    action: crate::audit::AuditAction,
    actor: Option<&str>,
    subject: Option<&str>,
    client: &str,
    detail: String,
    now: i64,
) -> Result<(), Problem> {
    let event = crate::audit::NewAuditEvent {
        action,
        actor_id: actor,
        subject,
        client: Some(client),
        detail,
    };
    tenant.record(event, now).await?;
    Ok(())
}

/// Runs CPU-heavy work (password hashing) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Problem::internal(&format!("a blocking task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_named() {
        assert_eq!(
            normalise_email(" Ann@Example.COM ").expect("ok"),
            "ann@example.com"
        );
        for bad in [
            "ann",
            "@example.com",
            "ann@example",
            "a nn@example.com",
            "ann@.com",
        ] {
            let e = normalise_email(bad).expect_err(bad).to_string();
            assert!(e.contains("email"), "{e}");
        }
    }
}
