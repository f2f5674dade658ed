//! The documents' change log, and documents as the search index reads them.
//!
//! Every transaction that changes what search finds (a new document or version, a new
//! title, type or tags, a delete or undelete, extracted text) appends the document's id
//! to `document_changes`. Numbers come from the one row of `document_change_counter`,
//! written last in the transaction: its row lock makes those transactions commit in
//! number order, so a reader that has seen change N has seen every change below N.

use super::{Result, Store, StoreError, Tenant, failed, get};

/// Appends a change of `document_id` inside the caller's transaction; call it last, just
/// before the commit, so that the counter's row lock is held as briefly as can be.
pub(super) async fn changed(
    tx: &mut sqlx::AnyConnection,
    org: &str,
    document_id: &str,
    now: i64,
) -> Result<()> {
    let row = sqlx::query(
        "UPDATE document_change_counter SET value = value + 1 WHERE id = 1 RETURNING value",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(failed("numbering a document change"))?;
    let seq: i64 = get(&row, "value")?;
    sqlx::query(
        "INSERT INTO document_changes (seq, org_id, document_id, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(seq)
    .bind(org)
    .bind(document_id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(failed("recording a document change"))?;
    Ok(())
}

/// Where the change log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeBounds {
    /// The last change's number (0: none yet).
    pub latest: i64,
    /// The oldest change still kept (None: every change was pruned, or none made).
    pub oldest: Option<i64>,
}

/// A document as the search index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexableDocument {
    /// The document.
    pub id: String,
    /// Its organization.
    pub org_id: String,
    /// The homeowner user whose document it is.
    pub owner_user_id: Option<String>,
    /// The contact it is about.
    pub contact_id: Option<String>,
    /// Its type.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Whether it is deleted (a deleted document is not searchable).
    pub deleted: bool,
    /// Unix seconds.
    pub updated_at: i64,
    /// Its current version's extracted text (None until extracted), at most the
    /// requested number of characters.
    pub text: Option<String>,
}

const INDEXABLE: &str = "SELECT d.id, d.org_id, d.owner_user_id, d.contact_id, d.kind, d.title,
        d.tags, d.deleted_at, d.updated_at, SUBSTR(t.text, 1, CAST($1 AS INTEGER)) AS text
    FROM documents d
    LEFT JOIN document_versions v ON v.document_id = d.id AND v.number = d.version_count
    LEFT JOIN document_texts t ON t.version_id = v.id AND t.status = 'done'";

fn indexable_from(r: &sqlx::any::AnyRow) -> Result<IndexableDocument> {
    let tags: String = get(r, "tags")?;
    let deleted_at: Option<i64> = get(r, "deleted_at")?;
    Ok(IndexableDocument {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        owner_user_id: get(r, "owner_user_id")?,
        contact_id: get(r, "contact_id")?,
        kind: get(r, "kind")?,
        title: get(r, "title")?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| StoreError::Corrupt(format!("documents.tags: {e}")))?,
        deleted: deleted_at.is_some(),
        updated_at: get(r, "updated_at")?,
        text: get(r, "text")?,
    })
}

impl Store {
    /// The last change's number and the oldest kept.
    pub async fn document_change_bounds(&self) -> Result<ChangeBounds> {
        let latest = sqlx::query("SELECT value FROM document_change_counter WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(failed("reading the document change counter"))?;
        let oldest = sqlx::query("SELECT MIN(seq) AS oldest FROM document_changes")
            .fetch_one(self.pool())
            .await
            .map_err(failed("reading the oldest document change"))?;
        Ok(ChangeBounds {
            latest: get(&latest, "value")?,
            oldest: get(&oldest, "oldest")?,
        })
    }

    /// Changes after number `after`, in order, at most `limit`: (number, document id).
    pub async fn document_changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT seq, document_id FROM document_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(failed("reading document changes"))?;
        rows.iter()
            .map(|r| Ok((get(r, "seq")?, get(r, "document_id")?)))
            .collect()
    }

    /// These documents (any organization's) as the index holds them, with at most
    /// `max_chars` of text each; ids with no document (purged) are left out.
    pub async fn indexable_documents(
        &self,
        ids: &[String],
        max_chars: i64,
    ) -> Result<Vec<IndexableDocument>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!("{INDEXABLE} WHERE d.id IN ({})", marks.join(", "));
        let mut q = sqlx::query(&sql).bind(max_chars);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q
            .persistent(false)
            .fetch_all(self.pool())
            .await
            .map_err(failed("reading documents to index"))?;
        rows.iter().map(indexable_from).collect()
    }

    /// Live documents (every organization's) after id `after`, in id order, at most
    /// `limit`: how an index is built from nothing.
    pub async fn indexable_documents_page(
        &self,
        after: &str,
        limit: i64,
        max_chars: i64,
    ) -> Result<Vec<IndexableDocument>> {
        let rows = sqlx::query(&format!(
            "{INDEXABLE} WHERE d.id > $2 AND d.deleted_at IS NULL ORDER BY d.id LIMIT $3"
        ))
        .bind(max_chars)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(failed("reading documents to index"))?;
        rows.iter().map(indexable_from).collect()
    }

    /// Removes changes made before `before` (unix seconds), oldest first; returns how
    /// many. Only a prefix of the log goes, so what is kept stays gap-free.
    pub async fn prune_document_changes(&self, before: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM document_changes WHERE seq <= (
                SELECT MAX(seq) FROM document_changes WHERE at < $1)",
        )
        .bind(before)
        .execute(self.pool())
        .await
        .map_err(failed("pruning the document change log"))?;
        Ok(done.rows_affected())
    }
}

impl Tenant<'_> {
    /// How many of this organization's changes come after number `after`.
    pub async fn document_changes_since(&self, after: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM document_changes WHERE org_id = $1 AND seq > $2",
        )
        .bind(&self.org)
        .bind(after)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("counting document changes"))?;
        get(&row, "n")
    }
}
