//! The caller and the users of their organization.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::UserView;
use crate::app::AppState;
use crate::audit::{AuditAction, NewAuditEvent};
use crate::auth::Principal;
use crate::problem::{Json, Problem, ProblemBody};
use crate::role::Role;

/// A new role for a user.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleChange {
    /// The role to give.
    role: Role,
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "No valid access token", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn me(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<UserView>, Problem> {
    let user = principal
        .tenant(&state.store)
        .user(&principal.user_id)
        .await?
        .ok_or_else(|| Problem::unauthorized("the user of this token no longer exists"))?;
    Ok(Json(user.into()))
}

/// Every user of the caller's organization (managers and above).
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "Users, oldest first", body = [UserView]),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<UserView>>, Problem> {
    principal.require(Role::Manager)?;
    let users = principal.tenant(&state.store).users().await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// One user of the caller's organization (managers and above, or the user themself).
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserView>, Problem> {
    if id != principal.user_id {
        principal.require(Role::Manager)?;
    }
    let user = principal
        .tenant(&state.store)
        .user(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no user {id} in your organization")))?;
    Ok(Json(user.into()))
}

/// Change a user's role (admins and above; nobody grants above their own role, only
/// owners touch owners, and an organization keeps at least one owner).
#[utoipa::path(put, path = "/users/{id}/role", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The user with the new role", body = UserView),
        (status = 403, description = "Not allowed to grant or remove that role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "It would leave the organization without an owner", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_role(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(change): Json<RoleChange>,
) -> Result<Json<UserView>, Problem> {
    principal.require(Role::Admin)?;
    let tenant = principal.tenant(&state.store);
    let mut user = tenant
        .user(&id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no user {id} in your organization")))?;
    for role in [user.role, change.role] {
        if !principal.role.may_grant(role) {
            return Err(Problem::forbidden(format!(
                "a {} cannot give or take away the {role} role",
                principal.role
            )));
        }
    }
    if user.role == Role::Owner
        && change.role != Role::Owner
        && tenant.count_role(Role::Owner).await? <= 1
    {
        return Err(Problem::conflict(
            "this is the organization's last owner; make someone else owner first",
        ));
    }
    tenant.set_role(&id, change.role).await?;
    tenant
        .record(
            NewAuditEvent {
                action: AuditAction::RoleChanged,
                actor_id: Some(&principal.user_id),
                subject: Some(&id),
                client: None,
                detail: format!("{}: {} -> {}", user.email, user.role, change.role),
            },
            crate::unix_now(),
        )
        .await?;
    user.role = change.role;
    Ok(Json(user.into()))
}
