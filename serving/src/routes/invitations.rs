//! Inviting people into an organization. The invitation token is returned once, to the
//! inviter, to pass on; only its hash is stored.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Session, start_bearer_session};
use super::{blocking, display_name, normalise_email};
use crate::app::AppState;
use crate::audit::{AuditAction, NewAuditEvent};
use crate::auth::Principal;
use crate::auth::secret::{hash_secret, new_secret};
use crate::problem::{Json, Problem, ProblemBody};
use crate::ratelimit::ClientAddr;
use crate::role::Role;
use crate::store::{Invitation, NewUser, StoreError, Tenant};
use crate::unix_now;

/// Who to invite, with which role.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteRequest {
    /// Their e-mail; it becomes their login.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// The role they get (at most the inviter's own).
    role: Role,
}

/// An invitation as shown to the organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct InvitationView {
    /// Invitation id.
    id: String,
    /// Invited e-mail.
    email: String,
    /// Role on acceptance.
    role: Role,
    /// Inviting user id.
    invited_by: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    expires_at: i64,
    /// Unix seconds, when accepted.
    accepted_at: Option<i64>,
}

impl From<Invitation> for InvitationView {
    fn from(i: Invitation) -> Self {
        InvitationView {
            id: i.id,
            email: i.email,
            role: i.role,
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
            accepted_at: i.accepted_at,
        }
    }
}

/// A new invitation and its secret token (shown only now).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CreatedInvitation {
    /// The invitation.
    invitation: InvitationView,
    /// Give this to the invitee; they accept at `/invitations/accept`.
    token: String,
}

/// Accept an invitation by choosing a name and password.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptRequest {
    /// The invitation token.
    token: String,
    /// Display name.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    /// Password (10–256 characters).
    #[schema(min_length = 10, max_length = 256)]
    password: String,
}

/// Invite someone (managers and above, up to their own role).
#[utoipa::path(post, path = "/invitations", tag = "invitations", security(("bearer" = [])),
    request_body = InviteRequest,
    responses(
        (status = 201, description = "Invitation created", body = CreatedInvitation),
        (status = 403, description = "Not allowed to invite with that role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "That e-mail is already a user here", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<InviteRequest>,
) -> Result<(StatusCode, Json<CreatedInvitation>), Problem> {
    principal.require(Role::Manager)?;
    if !principal.role.may_grant(req.role) {
        return Err(Problem::forbidden(format!(
            "a {} cannot invite with the {} role",
            principal.role, req.role
        )));
    }
    let email = normalise_email(&req.email)?;
    let tenant = principal.tenant(&state.store);
    if tenant.user_by_email(&email).await?.is_some() {
        return Err(Problem::conflict(format!(
            "{email} is already a user of this organization"
        )));
    }
    let token = new_secret("inv");
    let now = unix_now();
    let invitation = tenant
        .create_invitation(
            &email,
            req.role,
            &principal.user_id,
            &hash_secret(&token),
            now,
            now + state.config.invitation_ttl_hours as i64 * 3600,
        )
        .await?;
    tenant
        .record(
            NewAuditEvent {
                action: AuditAction::InvitationCreated,
                actor_id: Some(&principal.user_id),
                subject: Some(&invitation.id),
                client: None,
                detail: format!("{email} invited as {}", req.role),
            },
            now,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvitation {
            invitation: invitation.into(),
            token,
        }),
    ))
}

/// The organization's invitations, newest first (managers and above).
#[utoipa::path(get, path = "/invitations", tag = "invitations", security(("bearer" = [])),
    responses(
        (status = 200, description = "Invitations", body = [InvitationView]),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<InvitationView>>, Problem> {
    principal.require(Role::Manager)?;
    let all = principal.tenant(&state.store).invitations().await?;
    Ok(Json(all.into_iter().map(InvitationView::from).collect()))
}

/// Accept an invitation: creates the user and signs them in.
#[utoipa::path(post, path = "/invitations/accept", tag = "invitations", request_body = AcceptRequest,
    responses(
        (status = 201, description = "User created and signed in", body = Session),
        (status = 401, description = "Unknown or expired invitation", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many acceptances from this address", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn accept(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(req): Json<AcceptRequest>,
) -> Result<(StatusCode, Json<Session>), Problem> {
    state
        .limiter
        .check(
            &format!("accept-ip:{client}"),
            state.config.limits.accept_per_ip,
            unix_now(),
            "invitation acceptances from your address",
        )
        .await?;
    let name = display_name("name", &req.name)?;
    let Some(invitation) = state
        .store
        .invitation_by_hash(&hash_secret(&req.token))
        .await?
    else {
        return Err(Problem::unauthorized("unknown invitation token"));
    };
    let now = unix_now();
    if invitation.accepted_at.is_some() {
        return Err(Problem::conflict(
            "this invitation has already been accepted",
        ));
    }
    if now >= invitation.expires_at {
        return Err(Problem::unauthorized(
            "this invitation has expired; ask for a new one",
        ));
    }
    let hasher = state.clone();
    let password = req.password;
    let password_hash = blocking(move || hasher.passwords.hash(&password)).await??;
    let tenant = Tenant::new(&state.store, invitation.org_id.clone());
    let user = tenant
        .accept_invitation(
            &invitation.id,
            NewUser {
                email: invitation.email.clone(),
                name,
                role: invitation.role,
                password_hash,
            },
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict { what } if what.contains("acceptance") => {
                Problem::conflict("this invitation has already been accepted")
            }
            other => other.into(),
        })?;
    tenant
        .record(
            NewAuditEvent {
                action: AuditAction::InvitationAccepted,
                actor_id: Some(&user.id),
                subject: Some(&invitation.id),
                client: Some(&client),
                detail: format!("{} joined as {}", user.email, user.role),
            },
            now,
        )
        .await?;
    let session = start_bearer_session(&state, &tenant, user).await?;
    Ok((StatusCode::CREATED, Json(session)))
}
