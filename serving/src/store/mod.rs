//! The relational store: one data-access layer over SQLite (default) or PostgreSQL.
//!
//! Both backends run the same portable SQL through sqlx's `Any` driver: text ids made by
//! the server, times as Unix seconds, `$N` parameters (SQLite accepts them too).
//! Migrations in `serving/migrations/` are embedded in the binary and run on start.
//!
//! Tenant data is reached only through [`Tenant`], whose every query carries the
//! organization id. A `Tenant` is made from a verified access token
//! ([`crate::auth::Principal::tenant`]) or from a record that itself belongs to one
//! organization (a refresh token, an invitation, an organization named at login), never
//! from a client-supplied id.

mod alerts;
mod campaigns;
mod contacts;
mod documents;
mod events;
mod notifications;
mod routing;
mod search;
mod security;
mod tenant;
mod texts;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::role::Role;

use alerts::ALERT_COLUMNS;
pub use alerts::{
    AlertChange, AlertCounts, AlertFilter, AlertMove, AlertOutcomeRow, AlertPageJson, AlertSort,
    Cursor, IngestReport, NewAlert, StoredAlert,
};
pub use campaigns::{
    Campaign, CampaignStats, CampaignStatus, ClaimedMessage, ENGAGEMENT_KINDS, MessageOutcome,
    MessageRow, NewCampaign, QueuedMessage, StoredTemplate, TrackedMessage, lake_id_of,
};
pub use contacts::{
    Branding, ConsentChange, Contact, ContactAttributes, ImportReport, Segment, SegmentCount,
    SyncContact, SyncReport,
};
pub use documents::{
    AccessEntry, Document, DocumentChange, DocumentFilter, DocumentVersion, NewDocument,
    NewVersion, Share,
};
pub use events::{AlertEvent, EventKind};
pub use notifications::{
    Channel, DueDigest, EmailMode, NewMessage, Notification, OutboundMessage, Planned, Planner,
    Preferences, Recipient,
};
pub use routing::{AgentProfile, AgentStanding, RoutingConfig};
pub use search::{ChangeBounds, IndexableDocument};
pub use security::{
    ApiKey, MfaChallenge, MfaState, NewApiKey, NewOidcState, OidcState, PasswordReset, TotpFactor,
};
pub use tenant::Tenant;
pub use texts::{ExtractionJob, VersionText};
pub use webhooks::{AttemptOutcome, Delivery, DeliveryStatus, DueDelivery, Webhook};

/// Errors of the store, grouped by who must act.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The configured URL is not one this build speaks (the user's to fix).
    #[error("database.url {url:?}: unsupported; use sqlite://PATH or postgres://USER@HOST:PORT/DB")]
    Url {
        /// The URL with its password masked.
        url: String,
    },
    /// The database could not be reached or opened (an external system).
    #[error("cannot open the database {url}: {source}")]
    Connect {
        /// The URL with its password masked.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed (an external system, or a database changed by hand).
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row with the same unique key exists (the caller's input).
    #[error("{what} already exists")]
    Conflict {
        /// What exists, in words.
        what: String,
    },
    /// A query failed (an external system).
    #[error("database query failed while {context}: {source}")]
    Query {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored value cannot be read back: a bug or a hand-edited database.
    #[error("bug or hand-edited database: {0}")]
    Corrupt(String),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A connection pool to the store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Rung after every commit that appended alert events.
    events_written: Arc<tokio::sync::Notify>,
    /// Rung after every commit that changed what document search finds.
    documents_changed: Arc<tokio::sync::Notify>,
}

/// An organization (a tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Server-made id (`org_…`).
    pub id: String,
    /// Unique short name used at login.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Whether every user must sign in with a second factor.
    pub mfa_required: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A user of one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Server-made id (`usr_…`).
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// Login e-mail, lower-cased; unique within the organization.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role in the organization.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login e-mail, lower-cased.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// An invitation to join an organization with a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Server-made id (`inv_…`).
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// Who is invited.
    pub email: String,
    /// The role they get.
    pub role: Role,
    /// The inviting user.
    pub invited_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was accepted, if it was.
    pub accepted_at: Option<i64>,
}

/// One refresh token of a login's token family (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Server-made id.
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// The user.
    pub user_id: String,
    /// Every token descended from one login shares the family id.
    pub family_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was exchanged for a new one.
    pub used_at: Option<i64>,
    /// When it was revoked (logout, reuse detected).
    pub revoked_at: Option<i64>,
}

/// An access-token signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id (the JWT `kid`).
    pub kid: String,
    /// Ed25519 private key, PKCS#8 DER, base64.
    pub private_pkcs8: String,
    /// Ed25519 public key, base64url without padding (the JWK `x`).
    pub public_key: String,
    /// Unix seconds.
    pub created_at: i64,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens a pool to `url` (`sqlite://PATH`, created if missing, or `postgres://…`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let masked = mask_password(url);
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = rest.split('?').next().unwrap_or(rest);
            if let Some(parent) = std::path::Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                    url: masked.clone(),
                    source: sqlx::Error::Io(e),
                })?;
            }
            let url = if rest.contains('?') {
                url.to_owned()
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::Url { url: masked });
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect {
                url: masked.clone(),
                source,
            })?;
        if backend == Backend::Sqlite {
            // Readers do not block the writer; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(failed("enabling SQLite WAL mode"))?;
        }
        Ok(Store {
            pool,
            backend,
            events_written: Arc::new(tokio::sync::Notify::new()),
            documents_changed: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every migration not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        let before = self.applied_migrations().await.unwrap_or(0);
        MIGRATOR.run(&self.pool).await?;
        let after = self.applied_migrations().await?;
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> Result<usize> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&self.pool)
            .await
            .map_err(failed("counting applied migrations"))?;
        Ok(row.try_get::<i64, _>("n").unwrap_or(0) as usize)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(failed("checking the database answers"))?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates an organization and its first user, the owner, in one transaction.
    pub async fn create_organization(
        &self,
        slug: &str,
        name: &str,
        owner: NewUser,
        now: i64,
    ) -> Result<(Organization, User)> {
        let org = Organization {
            id: crate::auth::secret::new_id("org"),
            slug: slug.to_owned(),
            name: name.to_owned(),
            mfa_required: false,
            created_at: now,
        };
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO organizations (id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&org.id)
        .bind(&org.slug)
        .bind(&org.name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unique(
            format!("an organization with slug {slug:?}"),
            "creating an organization",
        ))?;
        let user = tenant::insert_user(&mut tx, &org.id, owner, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing a new organization"))?;
        Ok((org, user))
    }

    /// The organization with this slug.
    pub async fn organization_by_slug(&self, slug: &str) -> Result<Option<Organization>> {
        let row = sqlx::query(&format!(
            "SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await
        .map_err(failed("looking up an organization"))?;
        row.map(|r| organization_from(&r)).transpose()
    }

    /// Every organization, by slug (for operators: `roi orgs list`).
    pub async fn organizations(&self) -> Result<Vec<Organization>> {
        let rows = sqlx::query(&format!(
            "SELECT {ORGANIZATION_COLUMNS} FROM organizations ORDER BY slug"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(failed("listing organizations"))?;
        rows.iter().map(organization_from).collect()
    }

    /// The tenant scope of an organization the caller has named and will authenticate in
    /// (login). Handlers acting for a signed-in user use [`crate::auth::Principal::tenant`].
    pub fn tenant_of(&self, org: &Organization) -> Tenant<'_> {
        Tenant::new(self, org.id.clone())
    }

    /// The scope of the organization a stored record names (background work over records
    /// that carry their organization, never a client's id).
    pub(crate) fn tenant_by_id(&self, org_id: &str) -> Tenant<'_> {
        Tenant::new(self, org_id.to_owned())
    }

    /// The refresh token with this hash, in whichever organization it belongs to.
    pub async fn refresh_by_hash(&self, token_hash: &str) -> Result<Option<RefreshRecord>> {
        let row = sqlx::query(
            "SELECT id, org_id, user_id, family_id, created_at, expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(failed("looking up a refresh token"))?;
        row.map(|r| refresh_from(&r)).transpose()
    }

    /// The invitation with this token hash, in whichever organization it belongs to.
    pub async fn invitation_by_hash(&self, token_hash: &str) -> Result<Option<Invitation>> {
        let row = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(failed("looking up an invitation"))?;
        row.map(|r| invitation_from(&r)).transpose()
    }

    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, private_pkcs8, public_key, created_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(failed("reading the signing keys"))?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: get(r, "kid")?,
                    private_pkcs8: get(r, "private_pkcs8")?,
                    public_key: get(r, "public_key")?,
                    created_at: get(r, "created_at")?,
                })
            })
            .collect()
    }

    /// Stores a new signing key.
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.kid)
        .bind(&key.private_pkcs8)
        .bind(&key.public_key)
        .bind(key.created_at)
        .execute(&self.pool)
        .await
        .map_err(unique(format!("signing key {}", key.kid), "storing a signing key"))?;
        Ok(())
    }

    /// Deletes signing keys made before `created_before` (they verify nothing any more).
    pub async fn delete_signing_keys_before(&self, created_before: i64, keep: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE created_at < $1 AND kid <> $2")
            .bind(created_before)
            .bind(keep)
            .execute(&self.pool)
            .await
            .map_err(failed("deleting expired signing keys"))?;
        Ok(done.rows_affected())
    }

    /// Notified after every commit of this store (this process) that appended alert
    /// events; the live push waits on it.
    pub fn events_written(&self) -> Arc<tokio::sync::Notify> {
        self.events_written.clone()
    }

    /// Notified after every commit of this store (this process) that changed what
    /// document search finds; the search index waits on it.
    pub fn document_changes(&self) -> Arc<tokio::sync::Notify> {
        self.documents_changed.clone()
    }

    pub(crate) fn documents_changed(&self) {
        self.documents_changed.notify_one();
    }

    pub(crate) fn ring(&self) {
        self.events_written.notify_one();
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A statement with many parameters, numbered `$1, $2, …` each used once in textual
    /// order, in the form its backend binds fastest: SQLite looks a numbered parameter's
    /// name up by a linear scan (quadratic in a multi-row insert), so on SQLite they become
    /// anonymous `?`, which bind by position.
    pub(crate) fn bulk_sql(&self, sql: &str) -> String {
        match self.backend {
            Backend::Postgres => sql.to_owned(),
            Backend::Sqlite => positional(sql),
        }
    }

    /// Starts a transaction.
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        self.pool
            .begin()
            .await
            .map_err(failed("starting a transaction"))
    }
}

pub(crate) const ORGANIZATION_COLUMNS: &str = "id, slug, name, mfa_policy, created_at";
pub(crate) const USER_COLUMNS: &str = "id, org_id, email, name, role, password_hash, created_at";
pub(crate) const INVITATION_COLUMNS: &str =
    "id, org_id, email, role, invited_by, created_at, expires_at, accepted_at";

/// `$1, $2, …` (each once, in order) as anonymous `?` parameters.
fn positional(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut expected = 1usize;
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n * 10 + d as usize;
                chars.next();
            }
            debug_assert_eq!(n, expected, "bulk parameters must be used once, in order");
            expected += 1;
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn failed(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}

/// Maps a unique-key violation to [`StoreError::Conflict`] naming `what`.
pub(crate) fn unique(
    what: String,
    context: &'static str,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| match &source {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict { what },
        _ => StoreError::Query { context, source },
    }
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

fn role_of(row: &AnyRow) -> Result<Role> {
    let text: String = get(row, "role")?;
    text.parse().map_err(StoreError::Corrupt)
}

pub(crate) fn organization_from(r: &AnyRow) -> Result<Organization> {
    let policy: String = get(r, "mfa_policy")?;
    Ok(Organization {
        id: get(r, "id")?,
        slug: get(r, "slug")?,
        name: get(r, "name")?,
        mfa_required: match policy.as_str() {
            "required" => true,
            "optional" => false,
            other => return Err(StoreError::Corrupt(format!("mfa_policy {other:?}"))),
        },
        created_at: get(r, "created_at")?,
    })
}

pub(crate) fn user_from(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        email: get(r, "email")?,
        name: get(r, "name")?,
        role: role_of(r)?,
        password_hash: get(r, "password_hash")?,
        created_at: get(r, "created_at")?,
    })
}

pub(crate) fn invitation_from(r: &AnyRow) -> Result<Invitation> {
    Ok(Invitation {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        email: get(r, "email")?,
        role: role_of(r)?,
        invited_by: get(r, "invited_by")?,
        created_at: get(r, "created_at")?,
        expires_at: get(r, "expires_at")?,
        accepted_at: get(r, "accepted_at")?,
    })
}

fn refresh_from(r: &AnyRow) -> Result<RefreshRecord> {
    Ok(RefreshRecord {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        user_id: get(r, "user_id")?,
        family_id: get(r, "family_id")?,
        created_at: get(r, "created_at")?,
        expires_at: get(r, "expires_at")?,
        used_at: get(r, "used_at")?,
        revoked_at: get(r, "revoked_at")?,
    })
}

/// Replaces the password in `scheme://user:password@host…` with `****`.
pub fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:****{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_password("postgres://roi:pw@db:5432/roi"),
            "postgres://roi:****@db:5432/roi"
        );
        assert_eq!(
            mask_password("sqlite://./data/roi.db"),
            "sqlite://./data/roi.db"
        );
        assert_eq!(mask_password("/var/lake"), "/var/lake");
    }

    #[test]
    fn bulk_parameters_become_positional() {
        assert_eq!(
            positional("INSERT INTO t VALUES ($1, $2, 'x$'), ($3, $4, $5)"),
            "INSERT INTO t VALUES (?, ?, 'x$'), (?, ?, ?)"
        );
    }
}
