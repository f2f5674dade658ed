//! Queries scoped to one organization. Every statement here has `org_id = $…` in its
//! `WHERE` clause (or writes the scope's own id), so a `Tenant` cannot read or change
//! another organization's rows whatever ids a client sends.

use sqlx::any::Any;

use super::{
    INVITATION_COLUMNS, Invitation, NewUser, Result, Store, StoreError, USER_COLUMNS, User, failed,
    invitation_from, unique, user_from,
};
use crate::audit::{AuditEvent, NewAuditEvent};
use crate::role::Role;

/// The store seen from inside one organization.
#[derive(Debug, Clone)]
pub struct Tenant<'s> {
    pub(super) store: &'s Store,
    pub(super) org: String,
}

impl<'s> Tenant<'s> {
    pub(crate) fn new(store: &'s Store, org: String) -> Self {
        Tenant { store, org }
    }

    /// The organization's id.
    pub fn org_id(&self) -> &str {
        &self.org
    }

    /// The user with this id, if they belong to this organization.
    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a user"))?;
        row.map(|r| user_from(&r)).transpose()
    }

    /// The user with this (lower-cased) e-mail.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND email = $2"
        ))
        .bind(&self.org)
        .bind(email)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a user by e-mail"))?;
        row.map(|r| user_from(&r)).transpose()
    }

    /// Every user, oldest first.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 ORDER BY created_at, id"
        ))
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing users"))?;
        rows.iter().map(user_from).collect()
    }

    /// How many users hold exactly `role`.
    pub async fn count_role(&self, role: Role) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE org_id = $1 AND role = $2")
            .bind(&self.org)
            .bind(role.as_str())
            .fetch_one(self.store.pool())
            .await
            .map_err(failed("counting users by role"))?;
        super::get(&row, "n")
    }

    /// Changes a user's role; false when no such user is in this organization.
    pub async fn set_role(&self, user_id: &str, role: Role) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET role = $1 WHERE org_id = $2 AND id = $3")
            .bind(role.as_str())
            .bind(&self.org)
            .bind(user_id)
            .execute(self.store.pool())
            .await
            .map_err(failed("changing a role"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records an invitation (only the token's hash is kept).
    pub async fn create_invitation(
        &self,
        email: &str,
        role: Role,
        invited_by: &str,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Invitation> {
        let inv = Invitation {
            id: crate::auth::secret::new_id("inv"),
            org_id: self.org.clone(),
            email: email.to_owned(),
            role,
            invited_by: invited_by.to_owned(),
            created_at: now,
            expires_at,
            accepted_at: None,
        };
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&inv.id)
        .bind(&self.org)
        .bind(&inv.email)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(invited_by)
        .bind(now)
        .bind(expires_at)
        .execute(self.store.pool())
        .await
        .map_err(failed("creating an invitation"))?;
        Ok(inv)
    }

    /// Every invitation, newest first.
    pub async fn invitations(&self) -> Result<Vec<Invitation>> {
        let rows = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE org_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing invitations"))?;
        rows.iter().map(invitation_from).collect()
    }

    /// Creates a user directly, for operators seeding an organization (people join
    /// through invitations).
    pub async fn add_user(&self, user: NewUser, now: i64) -> Result<User> {
        let mut tx = self.store.begin().await?;
        let user = insert_user(&mut tx, &self.org, user, now).await?;
        tx.commit().await.map_err(failed("committing a new user"))?;
        Ok(user)
    }

    /// Marks an invitation accepted and creates its user, atomically: an invitation makes
    /// at most one user even when accepted twice at once.
    pub async fn accept_invitation(
        &self,
        invitation_id: &str,
        user: NewUser,
        now: i64,
    ) -> Result<User> {
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(
            "UPDATE invitations SET accepted_at = $1 WHERE org_id = $2 AND id = $3 AND accepted_at IS NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(invitation_id)
        .execute(&mut *tx)
        .await
        .map_err(failed("accepting an invitation"))?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict {
                what: "an acceptance of this invitation".to_owned(),
            });
        }
        let user = insert_user(&mut tx, &self.org, user, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing an accepted invitation"))?;
        Ok(user)
    }

    /// Records a security event.
    pub async fn record(&self, event: NewAuditEvent<'_>, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, org_id, at, action, actor_id, subject, client, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(crate::auth::secret::new_sortable_id("evt"))
        .bind(&self.org)
        .bind(now)
        .bind(event.action.as_str())
        .bind(event.actor_id)
        .bind(event.subject)
        .bind(event.client)
        .bind(&event.detail)
        .execute(self.store.pool())
        .await
        .map_err(failed("recording an audit event"))?;
        Ok(())
    }

    /// Up to `limit` events recorded before the event `before` (ids sort by time), newest
    /// first.
    pub async fn audit_events(&self, limit: i64, before: Option<&str>) -> Result<Vec<AuditEvent>> {
        const COLUMNS: &str = "id, at, action, actor_id, subject, client, detail";
        let query = match before {
            Some(_) => format!(
                "SELECT {COLUMNS} FROM audit_events WHERE org_id = $1 AND id < $3
                 ORDER BY id DESC LIMIT $2"
            ),
            None => format!(
                "SELECT {COLUMNS} FROM audit_events WHERE org_id = $1 ORDER BY id DESC LIMIT $2"
            ),
        };
        let mut query = sqlx::query(&query).bind(&self.org).bind(limit);
        if let Some(before) = before {
            query = query.bind(before);
        }
        let rows = query
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("reading the audit log"))?;
        rows.iter()
            .map(|r| {
                let action: String = super::get(r, "action")?;
                Ok(AuditEvent {
                    id: super::get(r, "id")?,
                    at: super::get(r, "at")?,
                    action: action.parse().map_err(StoreError::Corrupt)?,
                    actor_id: super::get(r, "actor_id")?,
                    subject: super::get(r, "subject")?,
                    client: super::get(r, "client")?,
                    detail: super::get(r, "detail")?,
                })
            })
            .collect()
    }

    /// Stores a refresh token's hash as a member of `family_id`; returns its id.
    pub async fn insert_refresh(
        &self,
        user_id: &str,
        family_id: &str,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<String> {
        let id = crate::auth::secret::new_id("rt");
        self.refresh_row(&id, user_id, family_id, token_hash, now, expires_at)
            .execute(self.store.pool())
            .await
            .map_err(failed("storing a refresh token"))?;
        Ok(id)
    }

    /// Marks a refresh token used, and stores its successor, atomically. Returns false
    /// (and stores nothing) when the token was already used or revoked: whoever presents
    /// it second has lost the race and is treated as a reuse.
    pub async fn rotate_refresh(
        &self,
        old_id: &str,
        user_id: &str,
        family_id: &str,
        new_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1
             WHERE org_id = $2 AND id = $3 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(old_id)
        .execute(&mut *tx)
        .await
        .map_err(failed("using a refresh token"))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let id = crate::auth::secret::new_id("rt");
        self.refresh_row(&id, user_id, family_id, new_hash, now, expires_at)
            .execute(&mut *tx)
            .await
            .map_err(failed("storing a rotated refresh token"))?;
        tx.commit()
            .await
            .map_err(failed("committing a refresh rotation"))?;
        Ok(true)
    }

    /// The statement that stores one refresh token of this organization.
    fn refresh_row<'q>(
        &'q self,
        id: &'q str,
        user_id: &'q str,
        family_id: &'q str,
        token_hash: &'q str,
        now: i64,
        expires_at: i64,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, org_id, user_id, family_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(&self.org)
        .bind(user_id)
        .bind(family_id)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
    }

    /// Revokes every token of a family; returns how many were live (unused) sessions.
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64> {
        self.revoke("family_id", family_id, now).await
    }

    /// Revokes every refresh token of a user (logout everywhere); returns how many were
    /// live (unused) sessions.
    pub async fn revoke_user(&self, user_id: &str, now: i64) -> Result<u64> {
        self.revoke("user_id", user_id, now).await
    }

    /// Used tokens are revoked too, so that presenting one later reads as "revoked".
    async fn revoke(&self, column: &'static str, value: &str, now: i64) -> Result<u64> {
        let rows = sqlx::query(&format!(
            "UPDATE refresh_tokens SET revoked_at = $1
             WHERE org_id = $2 AND {column} = $3 AND revoked_at IS NULL
             RETURNING used_at"
        ))
        .bind(now)
        .bind(&self.org)
        .bind(value)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("revoking refresh tokens"))?;
        live_sessions(&rows)
    }
}

/// How many of the revoked refresh tokens (rows `RETURNING used_at`) were live sessions:
/// a used token was already replaced by its successor.
pub(super) fn live_sessions(rows: &[sqlx::any::AnyRow]) -> Result<u64> {
    let mut live = 0;
    for row in rows {
        if super::get::<Option<i64>>(row, "used_at")?.is_none() {
            live += 1;
        }
    }
    Ok(live)
}

/// Inserts a user into `org` inside a transaction.
pub(crate) async fn insert_user(
    tx: &mut sqlx::Transaction<'_, Any>,
    org: &str,
    user: NewUser,
    now: i64,
) -> Result<User> {
    let id = crate::auth::secret::new_id("usr");
    sqlx::query(
        "INSERT INTO users (id, org_id, email, name, role, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(org)
    .bind(&user.email)
    .bind(&user.name)
    .bind(user.role.as_str())
    .bind(&user.password_hash)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(unique(
        format!("a user with e-mail {:?}", user.email),
        "creating a user",
    ))?;
    Ok(User {
        id,
        org_id: org.to_owned(),
        email: user.email,
        name: user.name,
        role: user.role,
        password_hash: user.password_hash,
        created_at: now,
    })
}
