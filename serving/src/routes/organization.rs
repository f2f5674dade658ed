//! The caller's organization and its security settings.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::audit::{AuditAction, NewAuditEvent};
use crate::auth::Principal;
use crate::problem::{Json, Problem, ProblemBody};
use crate::ratelimit::ClientAddr;
use crate::role::Role;
use crate::store::Organization;
use crate::unix_now;

/// An organization as shown to its members.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct OrganizationView {
    /// Organization id.
    id: String,
    /// Short name used at login.
    slug: String,
    /// Display name.
    name: String,
    /// Every user must sign in with a second factor.
    mfa_required: bool,
    /// Unix seconds.
    created_at: i64,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        OrganizationView {
            id: o.id,
            slug: o.slug,
            name: o.name,
            mfa_required: o.mfa_required,
            created_at: o.created_at,
        }
    }
}

/// Settings to change; absent fields stay as they are.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrganizationChange {
    /// Require a second factor of every user. Users without one are limited to enrolling
    /// from their next sign-in or token refresh.
    #[serde(default)]
    mfa_required: Option<bool>,
}

/// The caller's organization.
#[utoipa::path(get, path = "/organization", tag = "organization", security(("bearer" = [])),
    responses((status = 200, description = "The organization", body = OrganizationView)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<OrganizationView>, Problem> {
    let org = principal.tenant(&state.store).organization().await?;
    Ok(Json(org.into()))
}

/// Change the organization's security settings (admins and above).
#[utoipa::path(patch, path = "/organization", tag = "organization", security(("bearer" = [])),
    request_body = OrganizationChange,
    responses(
        (status = 200, description = "The organization as it is now", body = OrganizationView),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn update(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    principal: Principal,
    Json(change): Json<OrganizationChange>,
) -> Result<Json<OrganizationView>, Problem> {
    principal.require(Role::Admin)?;
    let tenant = principal.tenant(&state.store);
    if let Some(required) = change.mfa_required {
        let before = tenant.organization().await?;
        if before.mfa_required != required {
            tenant.set_mfa_required(required).await?;
            tenant
                .record(
                    NewAuditEvent {
                        action: AuditAction::OrganizationUpdated,
                        actor_id: Some(&principal.user_id),
                        subject: Some(tenant.org_id()),
                        client: Some(&client),
                        detail: format!(
                            "two-factor authentication is now {}",
                            if required { "required" } else { "optional" }
                        ),
                    },
                    unix_now(),
                )
                .await?;
        }
    }
    Ok(Json(tenant.organization().await?.into()))
}
