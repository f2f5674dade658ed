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

/// How the organization's campaign mail looks and who it is from. Unset fields fall back
/// to the server's sender and the merge tags' fallbacks.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BrandingBody {
    /// Sender display name, e.g. "Acme Title".
    from_name: Option<String>,
    /// Sender address (else the server's `email_from`).
    from_email: Option<String>,
    /// Where replies go.
    reply_to: Option<String>,
    /// Logo image, an `https://` URL.
    logo_url: Option<String>,
    /// Website, an `http(s)://` URL.
    website: Option<String>,
    /// Postal address for every message's footer (anti-spam laws require one).
    postal_address: Option<String>,
    /// Brand colour, `#rrggbb`.
    primary_color: Option<String>,
    /// Where homeowners write for help.
    support_email: Option<String>,
    /// When last saved (ignored on PUT); null: never.
    #[serde(default)]
    updated_at: Option<i64>,
}

fn check_branding(b: &BrandingBody) -> Result<crate::store::Branding, Problem> {
    fn text(field: &str, v: &Option<String>, max: usize) -> Result<Option<String>, Problem> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t)
                if t.chars().count() > max || t.chars().any(|c| c.is_control() && c != '\n') =>
            {
                Err(Problem::invalid(format!(
                    "{field}: at most {max} characters, no control characters"
                )))
            }
            Some(t) => Ok(Some(t.to_owned())),
        }
    }
    let email = |field: &str, v: &Option<String>| -> Result<Option<String>, Problem> {
        text(field, v, 254)?
            .map(|e| {
                crate::contacts::check_email(&e)
                    .map_err(|m| Problem::invalid(format!("{field}: {e:?} {m}")))
            })
            .transpose()
    };
    let link =
        |field: &str, v: &Option<String>, https_only: bool| -> Result<Option<String>, Problem> {
            text(field, v, 2000)?
                .map(|u| {
                    let ok = url::Url::parse(&u).is_ok_and(|p| {
                        p.scheme() == "https" || (!https_only && p.scheme() == "http")
                    });
                    if ok {
                        Ok(u)
                    } else if https_only {
                        Err(Problem::invalid(format!(
                            "{field}: must be an https:// URL"
                        )))
                    } else {
                        Err(Problem::invalid(format!(
                            "{field}: must be an http(s):// URL"
                        )))
                    }
                })
                .transpose()
        };
    let color = text("primary_color", &b.primary_color, 7)?;
    if let Some(c) = &color
        && !(c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|h| h.is_ascii_hexdigit()))
    {
        return Err(Problem::invalid("primary_color: must be #rrggbb"));
    }
    Ok(crate::store::Branding {
        from_name: text("from_name", &b.from_name, 100)?,
        from_email: email("from_email", &b.from_email)?,
        reply_to: email("reply_to", &b.reply_to)?,
        logo_url: link("logo_url", &b.logo_url, true)?,
        website: link("website", &b.website, false)?,
        postal_address: text("postal_address", &b.postal_address, 300)?,
        primary_color: color,
        support_email: email("support_email", &b.support_email)?,
        updated_at: None,
    })
}

impl From<crate::store::Branding> for BrandingBody {
    fn from(b: crate::store::Branding) -> Self {
        BrandingBody {
            from_name: b.from_name,
            from_email: b.from_email,
            reply_to: b.reply_to,
            logo_url: b.logo_url,
            website: b.website,
            postal_address: b.postal_address,
            primary_color: b.primary_color,
            support_email: b.support_email,
            updated_at: b.updated_at,
        }
    }
}

/// The organization's mail branding (agents and above).
#[utoipa::path(get, path = "/organization/branding", tag = "organization", security(("bearer" = [])),
    responses(
        (status = 200, description = "Branding", body = BrandingBody),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn branding(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<BrandingBody>, Problem> {
    principal.require(Role::Agent)?;
    Ok(Json(
        principal.tenant(&state.store).branding().await?.into(),
    ))
}

/// Replaces the organization's mail branding (admins and above).
#[utoipa::path(put, path = "/organization/branding", tag = "organization", security(("bearer" = [])),
    request_body = BrandingBody,
    responses(
        (status = 200, description = "Branding as saved", body = BrandingBody),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_branding(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<BrandingBody>,
) -> Result<Json<BrandingBody>, Problem> {
    principal.require(Role::Admin)?;
    let branding = check_branding(&body)?;
    let tenant = principal.tenant(&state.store);
    tenant.set_branding(&branding, unix_now()).await?;
    Ok(Json(tenant.branding().await?.into()))
}
