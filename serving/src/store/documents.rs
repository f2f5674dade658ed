//! Documents, their immutable versions and their access log. The bytes live in the
//! object store ([`crate::documents::Storage`]); rows here name them by key.

use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, Tenant, failed, get};
use crate::documents::DocumentKind;

/// A document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Server-made id (`doc_…`).
    pub id: String,
    /// The homeowner user whose document it is (None: the organization's own).
    pub owner_user_id: Option<String>,
    /// The contact it is about.
    pub contact_id: Option<String>,
    /// The property it is about (free text: the pipeline's id or a parcel number).
    pub property_ref: Option<String>,
    /// Its type.
    pub kind: DocumentKind,
    /// Who set the type: `user` or `classifier`.
    pub kind_source: String,
    /// How sure the classifier is (None until it has run, or when a user set the type).
    pub kind_confidence: Option<f64>,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// How many versions it has (the newest is current).
    pub version_count: i64,
    /// The user who made it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// When it was deleted (it can be restored until purged).
    pub deleted_at: Option<i64>,
    /// Who deleted it.
    pub deleted_by: Option<String>,
    /// After when an admin purge removes it.
    pub purge_after: Option<i64>,
    /// The pipeline's id of its contact, when synced from the lake.
    pub lake_contact_id: Option<i64>,
    /// The pipeline's id of the organization, when linked.
    pub lake_org_id: Option<i64>,
}

/// A version of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentVersion {
    /// Server-made id (`ver_…`).
    pub id: String,
    /// The document.
    pub document_id: String,
    /// 1, 2, … within the document.
    pub number: i64,
    /// Where its bytes are.
    pub object_key: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Sniffed from the bytes.
    pub content_type: String,
    /// What the client said it was.
    pub claimed_type: Option<String>,
    /// The file's name as uploaded (cleaned).
    pub filename: String,
    /// The version this one restores.
    pub restored_from: Option<i64>,
    /// Who uploaded (or restored) it.
    pub uploaded_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Where extracting its text is: `pending`, `running`, `done` or `failed`.
    pub text_status: Option<String>,
}

/// A document to create.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// Server-made id.
    pub id: String,
    /// The homeowner user whose document it is.
    pub owner_user_id: Option<String>,
    /// The contact it is about.
    pub contact_id: Option<String>,
    /// The property it is about.
    pub property_ref: Option<String>,
    /// Its type, when the uploader said; None leaves it to the classifier.
    pub kind: Option<DocumentKind>,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The user making it.
    pub created_by: String,
}

/// A version to add.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// Server-made id.
    pub id: String,
    /// Where its bytes are.
    pub object_key: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Sniffed type.
    pub content_type: String,
    /// The client's claimed type.
    pub claimed_type: Option<String>,
    /// File name.
    pub filename: String,
    /// The version restored, for a restore.
    pub restored_from: Option<i64>,
    /// Who.
    pub uploaded_by: String,
}

/// Which documents.
#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    /// Only this homeowner's (always set for a homeowner caller).
    pub owner_user_id: Option<String>,
    /// Only about this contact.
    pub contact_id: Option<String>,
    /// Only of this type.
    pub kind: Option<DocumentKind>,
    /// Deleted ones (true) instead of live ones.
    pub deleted: bool,
    /// After this id.
    pub after: Option<String>,
    /// How many.
    pub limit: i64,
}

/// A change of a document's details.
#[derive(Debug, Clone, Default)]
pub struct DocumentChange {
    /// New title.
    pub title: Option<String>,
    /// New type, set by a user.
    pub kind: Option<DocumentKind>,
    /// New tags.
    pub tags: Option<Vec<String>>,
}

/// One entry of a document's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The document.
    pub document_id: String,
    /// Which version, when one was read or made.
    pub version_number: Option<i64>,
    /// `viewed`, `downloaded`, `uploaded`, `restored`, `deleted`, `undeleted` or `shared`.
    pub action: String,
    /// The user (None for a share link's visitor).
    pub actor_id: Option<String>,
    /// The share link used, for a visitor's access.
    pub share_id: Option<String>,
    /// The client's address.
    pub ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// A share link of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Server-made id (`shr_…`); the link carries it with its signature.
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// The document.
    pub document_id: String,
    /// A fixed version (None: the current one when used).
    pub version_number: Option<i64>,
    /// Who made it.
    pub created_by: String,
    /// The user of the organization it was shared with (told in-app and by e-mail).
    pub shared_with_user_id: Option<String>,
    /// argon2id hash of its password, when it has one.
    pub password_hash: Option<String>,
    /// Most downloads allowed.
    pub max_downloads: Option<i64>,
    /// Downloads so far.
    pub downloads: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

const SHARE_COLUMNS: &str = "id, org_id, document_id, version_number, created_by,
    shared_with_user_id, password_hash, max_downloads, downloads, expires_at, revoked_at,
    created_at";

fn share_from(r: &AnyRow) -> Result<Share> {
    Ok(Share {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        document_id: get(r, "document_id")?,
        version_number: get(r, "version_number")?,
        created_by: get(r, "created_by")?,
        shared_with_user_id: get(r, "shared_with_user_id")?,
        password_hash: get(r, "password_hash")?,
        max_downloads: get(r, "max_downloads")?,
        downloads: get(r, "downloads")?,
        expires_at: get(r, "expires_at")?,
        revoked_at: get(r, "revoked_at")?,
        created_at: get(r, "created_at")?,
    })
}

const DOCUMENT_COLUMNS: &str = "d.id, d.owner_user_id, d.contact_id, d.property_ref, d.kind,
    d.kind_source, d.kind_confidence, d.title, d.tags, d.version_count, d.created_by,
    d.created_at, d.updated_at, d.deleted_at, d.deleted_by, d.purge_after, c.lake_contact_id,
    l.lake_org_id";

const DOCUMENT_FROM: &str = "documents d
    LEFT JOIN contacts c ON c.id = d.contact_id
    LEFT JOIN lake_organizations l ON l.org_id = d.org_id";

const VERSION_COLUMNS: &str = "v.id, v.document_id, v.number, v.object_key, v.size, v.sha256,
    v.content_type, v.claimed_type, v.filename, v.restored_from, v.uploaded_by, v.created_at,
    t.status AS text_status";

const VERSION_FROM: &str = "document_versions v LEFT JOIN document_texts t ON t.version_id = v.id";

fn document_from(r: &AnyRow) -> Result<Document> {
    let kind: String = get(r, "kind")?;
    let tags: String = get(r, "tags")?;
    Ok(Document {
        id: get(r, "id")?,
        owner_user_id: get(r, "owner_user_id")?,
        contact_id: get(r, "contact_id")?,
        property_ref: get(r, "property_ref")?,
        kind: kind.parse().map_err(StoreError::Corrupt)?,
        kind_source: get(r, "kind_source")?,
        kind_confidence: get(r, "kind_confidence")?,
        title: get(r, "title")?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| StoreError::Corrupt(format!("documents.tags: {e}")))?,
        version_count: get(r, "version_count")?,
        created_by: get(r, "created_by")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
        deleted_at: get(r, "deleted_at")?,
        deleted_by: get(r, "deleted_by")?,
        purge_after: get(r, "purge_after")?,
        lake_contact_id: get(r, "lake_contact_id")?,
        lake_org_id: get(r, "lake_org_id")?,
    })
}

fn version_from(r: &AnyRow) -> Result<DocumentVersion> {
    Ok(DocumentVersion {
        id: get(r, "id")?,
        document_id: get(r, "document_id")?,
        number: get(r, "number")?,
        object_key: get(r, "object_key")?,
        size: get(r, "size")?,
        sha256: get(r, "sha256")?,
        content_type: get(r, "content_type")?,
        claimed_type: get(r, "claimed_type")?,
        filename: get(r, "filename")?,
        restored_from: get(r, "restored_from")?,
        uploaded_by: get(r, "uploaded_by")?,
        created_at: get(r, "created_at")?,
        text_status: get(r, "text_status")?,
    })
}

fn tags_json(tags: &[String]) -> String {
    serde_json::Value::from(tags.to_vec()).to_string()
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org: &str,
    document_id: &str,
    number: i64,
    v: &NewVersion,
    now: i64,
) -> Result<DocumentVersion> {
    sqlx::query(
        "INSERT INTO document_versions (id, org_id, document_id, number, object_key, size,
            sha256, content_type, claimed_type, filename, restored_from, uploaded_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&v.id)
    .bind(org)
    .bind(document_id)
    .bind(number)
    .bind(&v.object_key)
    .bind(v.size)
    .bind(&v.sha256)
    .bind(&v.content_type)
    .bind(v.claimed_type.as_deref())
    .bind(&v.filename)
    .bind(v.restored_from)
    .bind(&v.uploaded_by)
    .bind(now)
    .persistent(false)
    .execute(&mut **tx)
    .await
    .map_err(failed("storing a document version"))?;
    super::texts::queue(tx, org, document_id, &v.id, now).await?;
    Ok(DocumentVersion {
        id: v.id.clone(),
        document_id: document_id.to_owned(),
        number,
        object_key: v.object_key.clone(),
        size: v.size,
        sha256: v.sha256.clone(),
        content_type: v.content_type.clone(),
        claimed_type: v.claimed_type.clone(),
        filename: v.filename.clone(),
        restored_from: v.restored_from,
        uploaded_by: v.uploaded_by.clone(),
        created_at: now,
        text_status: Some("pending".to_owned()),
    })
}

/// An access log id that sorts by time, and within one millisecond by the order this
/// process logged them; the random tail keeps replicas' ids apart.
fn access_id(at_ms: i64) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1_000_000;
    format!(
        "acc_{at_ms:015}{n:06}{}",
        crate::auth::secret::hex(&crate::auth::secret::random_bytes::<4>())
    )
}

impl Tenant<'_> {
    /// Creates a document with its first version.
    pub async fn create_document(
        &self,
        new: &NewDocument,
        version: &NewVersion,
        now: i64,
    ) -> Result<(Document, DocumentVersion)> {
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "INSERT INTO documents (id, org_id, owner_user_id, contact_id, property_ref, kind,
                kind_source, title, tags, version_count, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $11)",
        )
        .bind(&new.id)
        .bind(&self.org)
        .bind(new.owner_user_id.as_deref())
        .bind(new.contact_id.as_deref())
        .bind(new.property_ref.as_deref())
        .bind(new.kind.unwrap_or(DocumentKind::Other).as_str())
        .bind(if new.kind.is_some() {
            "user"
        } else {
            "classifier"
        })
        .bind(&new.title)
        .bind(tags_json(&new.tags))
        .bind(&new.created_by)
        .bind(now)
        .persistent(false)
        .execute(&mut *tx)
        .await
        .map_err(failed("storing a document"))?;
        let v = insert_version(&mut tx, &self.org, &new.id, 1, version, now).await?;
        super::search::changed(&mut tx, &self.org, &new.id, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing a new document"))?;
        self.store.documents_changed();
        let doc = self
            .document(&new.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("document {} vanished", new.id)))?;
        Ok((doc, v))
    }

    /// Adds a version to a live document; None when there is no such live document.
    pub async fn add_version(
        &self,
        document_id: &str,
        version: &NewVersion,
        now: i64,
    ) -> Result<Option<DocumentVersion>> {
        let mut tx = self.store.begin().await?;
        // The row lock (PostgreSQL) or the write lock (SQLite) taken here numbers
        // concurrent uploads one after the other.
        let row = sqlx::query(
            "UPDATE documents SET version_count = version_count + 1, updated_at = $1
             WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL
             RETURNING version_count",
        )
        .bind(now)
        .bind(&self.org)
        .bind(document_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("numbering a document version"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let number: i64 = get(&row, "version_count")?;
        let v = insert_version(&mut tx, &self.org, document_id, number, version, now).await?;
        super::search::changed(&mut tx, &self.org, document_id, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing a document version"))?;
        self.store.documents_changed();
        Ok(Some(v))
    }

    /// The document with this id (live or deleted).
    pub async fn document(&self, id: &str) -> Result<Option<Document>> {
        let row = sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM {DOCUMENT_FROM} WHERE d.org_id = $1 AND d.id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a document"))?;
        row.map(|r| document_from(&r)).transpose()
    }

    /// These documents of the organization (live or deleted), in no particular order;
    /// ids of none are left out.
    pub async fn documents_by_ids(&self, ids: &[String]) -> Result<Vec<Document>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM {DOCUMENT_FROM} WHERE d.org_id = $1 AND d.id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(&self.org);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q
            .persistent(false)
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("reading documents"))?;
        rows.iter().map(document_from).collect()
    }

    /// A page of documents in id order.
    pub async fn documents(&self, f: &DocumentFilter) -> Result<Vec<Document>> {
        let mut sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM {DOCUMENT_FROM} WHERE d.org_id = $1 AND d.deleted_at IS {} NULL",
            if f.deleted { "NOT" } else { "" }
        );
        let mut n = 1;
        let mut next = |column: &str, sql: &mut String| {
            n += 1;
            sql.push_str(&format!(" AND {column} ${n}"));
        };
        if f.owner_user_id.is_some() {
            next("d.owner_user_id =", &mut sql);
        }
        if f.contact_id.is_some() {
            next("d.contact_id =", &mut sql);
        }
        if f.kind.is_some() {
            next("d.kind =", &mut sql);
        }
        if f.after.is_some() {
            next("d.id >", &mut sql);
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY d.id LIMIT ${n}"));
        let mut q = sqlx::query(&sql).bind(&self.org);
        if let Some(v) = &f.owner_user_id {
            q = q.bind(v);
        }
        if let Some(v) = &f.contact_id {
            q = q.bind(v);
        }
        if let Some(v) = f.kind {
            q = q.bind(v.as_str());
        }
        if let Some(v) = &f.after {
            q = q.bind(v);
        }
        let rows = q
            .bind(f.limit)
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("listing documents"))?;
        rows.iter().map(document_from).collect()
    }

    /// A document's versions, oldest first.
    pub async fn document_versions(&self, document_id: &str) -> Result<Vec<DocumentVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM {VERSION_FROM}
             WHERE v.org_id = $1 AND v.document_id = $2 ORDER BY v.number"
        ))
        .bind(&self.org)
        .bind(document_id)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing document versions"))?;
        rows.iter().map(version_from).collect()
    }

    /// One version of a document.
    pub async fn document_version(
        &self,
        document_id: &str,
        number: i64,
    ) -> Result<Option<DocumentVersion>> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM {VERSION_FROM}
             WHERE v.org_id = $1 AND v.document_id = $2 AND v.number = $3"
        ))
        .bind(&self.org)
        .bind(document_id)
        .bind(number)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a document version"))?;
        row.map(|r| version_from(&r)).transpose()
    }

    /// Changes a live document's title, type or tags; None when there is no such live
    /// document.
    pub async fn update_document(
        &self,
        id: &str,
        change: &DocumentChange,
        now: i64,
    ) -> Result<Option<Document>> {
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(
            "UPDATE documents SET
                title = COALESCE($1, title),
                kind = COALESCE($2, kind),
                kind_source = CASE WHEN $3 THEN 'user' ELSE kind_source END,
                kind_confidence = CASE WHEN $3 THEN NULL ELSE kind_confidence END,
                tags = COALESCE($4, tags),
                updated_at = $5
             WHERE org_id = $6 AND id = $7 AND deleted_at IS NULL",
        )
        .bind(change.title.as_deref())
        .bind(change.kind.map(DocumentKind::as_str))
        .bind(change.kind.is_some())
        .bind(change.tags.as_deref().map(tags_json))
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .persistent(false)
        .execute(&mut *tx)
        .await
        .map_err(failed("changing a document"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        super::search::changed(&mut tx, &self.org, id, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing a document change"))?;
        self.store.documents_changed();
        self.document(id).await
    }

    /// Marks a live document deleted, purgeable after `purge_after`; None when there is
    /// no such live document.
    pub async fn delete_document(
        &self,
        id: &str,
        actor: &str,
        now: i64,
        purge_after: i64,
    ) -> Result<Option<Document>> {
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(
            "UPDATE documents SET deleted_at = $1, deleted_by = $2, purge_after = $3, updated_at = $1
             WHERE org_id = $4 AND id = $5 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(actor)
        .bind(purge_after)
        .bind(&self.org)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(failed("deleting a document"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        super::search::changed(&mut tx, &self.org, id, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing a document change"))?;
        self.store.documents_changed();
        self.document(id).await
    }

    /// Brings a deleted (not yet purged) document back; None when there is no such
    /// deleted document.
    pub async fn undelete_document(&self, id: &str, now: i64) -> Result<Option<Document>> {
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(
            "UPDATE documents SET deleted_at = NULL, deleted_by = NULL, purge_after = NULL, updated_at = $1
             WHERE org_id = $2 AND id = $3 AND deleted_at IS NOT NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(failed("restoring a deleted document"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        super::search::changed(&mut tx, &self.org, id, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing a document change"))?;
        self.store.documents_changed();
        self.document(id).await
    }

    /// Deleted documents whose retention has run out by `now` (every deleted one when
    /// `all`), at most `limit`, with the object keys of their versions.
    pub async fn purgeable_documents(
        &self,
        now: i64,
        all: bool,
        limit: i64,
    ) -> Result<Vec<(String, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT id FROM documents
             WHERE org_id = $1 AND deleted_at IS NOT NULL AND ($2 OR purge_after <= $3)
             ORDER BY purge_after, id LIMIT $4",
        )
        .bind(&self.org)
        .bind(all)
        .bind(now)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("finding documents to purge"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = get(r, "id")?;
            let mut keys: Vec<String> = self
                .document_versions(&id)
                .await?
                .into_iter()
                .map(|v| v.object_key)
                .collect();
            keys.sort();
            keys.dedup();
            out.push((id, keys));
        }
        Ok(out)
    }

    /// Removes a deleted document and its versions (its access log stays). Returns false
    /// when it is not a deleted document of this organization.
    pub async fn purge_document(&self, id: &str) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        // Writing first takes SQLite's write lock at the start: a transaction that read
        // first could not upgrade after another writer's commit.
        let deleted = sqlx::query(
            "UPDATE documents SET updated_at = updated_at
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NOT NULL",
        )
        .bind(&self.org)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(failed("checking a document to purge"))?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        // Rows that refer to the document first, the document last.
        for sql in [
            "DELETE FROM document_shares WHERE org_id = $1 AND document_id = $2",
            "DELETE FROM document_texts WHERE org_id = $1 AND document_id = $2",
            "DELETE FROM document_versions WHERE org_id = $1 AND document_id = $2",
            "DELETE FROM documents WHERE org_id = $1 AND id = $2",
        ] {
            sqlx::query(sql)
                .bind(&self.org)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(failed("purging a document"))?;
        }
        tx.commit().await.map_err(failed("committing a purge"))?;
        Ok(true)
    }

    /// Appends to a document's access log.
    pub async fn record_access(&self, e: &AccessEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO document_access (id, org_id, document_id, version_number, action,
                actor_id, share_id, ip, user_agent, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(access_id(e.at_ms))
        .bind(&self.org)
        .bind(&e.document_id)
        .bind(e.version_number)
        .bind(&e.action)
        .bind(e.actor_id.as_deref())
        .bind(e.share_id.as_deref())
        .bind(&e.ip)
        .bind(&e.user_agent)
        .bind(e.at_ms)
        .persistent(false)
        .execute(self.store.pool())
        .await
        .map_err(failed("logging a document access"))?;
        Ok(())
    }

    /// A document's access log, newest first, before `before_ms` when given.
    pub async fn access_log(
        &self,
        document_id: &str,
        before_ms: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AccessEntry>> {
        let rows = sqlx::query(
            "SELECT document_id, version_number, action, actor_id, share_id, ip, user_agent, at_ms
             FROM document_access
             WHERE org_id = $1 AND document_id = $2 AND at_ms < $3
             ORDER BY at_ms DESC, id DESC LIMIT $4",
        )
        .bind(&self.org)
        .bind(document_id)
        .bind(before_ms.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("reading a document's access log"))?;
        rows.iter()
            .map(|r| {
                Ok(AccessEntry {
                    document_id: get(r, "document_id")?,
                    version_number: get(r, "version_number")?,
                    action: get(r, "action")?,
                    actor_id: get(r, "actor_id")?,
                    share_id: get(r, "share_id")?,
                    ip: get(r, "ip")?,
                    user_agent: get(r, "user_agent")?,
                    at_ms: get(r, "at_ms")?,
                })
            })
            .collect()
    }

    /// Stores a new share link (its `org_id` is this organization's).
    pub async fn create_share(&self, share: &Share) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO document_shares ({SHARE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&share.id)
        .bind(&self.org)
        .bind(&share.document_id)
        .bind(share.version_number)
        .bind(&share.created_by)
        .bind(share.shared_with_user_id.as_deref())
        .bind(share.password_hash.as_deref())
        .bind(share.max_downloads)
        .bind(share.downloads)
        .bind(share.expires_at)
        .bind(share.revoked_at)
        .bind(share.created_at)
        .persistent(false)
        .execute(self.store.pool())
        .await
        .map_err(failed("storing a share link"))?;
        Ok(())
    }

    /// A document's share links, newest first.
    pub async fn shares(&self, document_id: &str) -> Result<Vec<Share>> {
        let rows = sqlx::query(&format!(
            "SELECT {SHARE_COLUMNS} FROM document_shares
             WHERE org_id = $1 AND document_id = $2 ORDER BY created_at DESC, id DESC"
        ))
        .bind(&self.org)
        .bind(document_id)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing share links"))?;
        rows.iter().map(share_from).collect()
    }

    /// Revokes a live share link of a document; None when there is no such live link.
    pub async fn revoke_share(
        &self,
        document_id: &str,
        share_id: &str,
        now: i64,
    ) -> Result<Option<Share>> {
        let row = sqlx::query(&format!(
            "UPDATE document_shares SET revoked_at = $1
             WHERE org_id = $2 AND document_id = $3 AND id = $4 AND revoked_at IS NULL
             RETURNING {SHARE_COLUMNS}"
        ))
        .bind(now)
        .bind(&self.org)
        .bind(document_id)
        .bind(share_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("revoking a share link"))?;
        row.map(|r| share_from(&r)).transpose()
    }

    /// Counts one download through a share link if it still allows one (not revoked,
    /// not expired at `now`, under its limit); false when it does not.
    pub async fn take_share_download(&self, share_id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE document_shares SET downloads = downloads + 1
             WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL AND expires_at > $3
               AND (max_downloads IS NULL OR downloads < max_downloads)",
        )
        .bind(&self.org)
        .bind(share_id)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(failed("counting a share download"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The id of this organization's contact with the e-mail `email` (a homeowner's own
    /// contact record).
    pub async fn contact_id_by_email(&self, email: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT id FROM contacts WHERE org_id = $1 AND email = $2")
            .bind(&self.org)
            .bind(email)
            .fetch_optional(self.store.pool())
            .await
            .map_err(failed("finding a contact by e-mail"))?;
        row.map(|r| get(&r, "id")).transpose()
    }
}

impl Store {
    /// The share link with this id, in whichever organization it belongs to (a visitor
    /// holding a signed link).
    pub async fn share_by_id(&self, id: &str) -> Result<Option<Share>> {
        let row = sqlx::query(&format!(
            "SELECT {SHARE_COLUMNS} FROM document_shares WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(failed("looking up a share link"))?;
        row.map(|r| share_from(&r)).transpose()
    }
}
