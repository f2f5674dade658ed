//! Text extracted from document versions: a work queue (pending → running with a lease
//! → done or failed, retried with back-off) whose results are kept per version.

use super::{Result, Store, Tenant, failed, get};
use crate::documents::DocumentKind;
use crate::extract::Extracted;

/// A version whose text a worker is extracting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractionJob {
    /// The version.
    pub version_id: String,
    /// Its organization.
    pub org_id: String,
    /// Its document.
    pub document_id: String,
    /// Its number in the document.
    pub number: i64,
    /// Where its bytes are.
    pub object_key: String,
    /// Its sniffed type.
    pub content_type: String,
    /// The document's title (for classifying).
    pub title: String,
    /// This attempt's number (1 for the first): fences a late worker's result.
    pub attempts: i64,
}

/// A version's text and where its extraction is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionText {
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    /// `text`, `pdf_text`, `ocr` or `none`, once done.
    pub method: Option<String>,
    /// Pages read.
    pub pages: Option<i64>,
    /// The text, once done.
    pub text: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Queues a new version's text for extraction (inside the version's transaction).
pub(super) async fn queue(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org: &str,
    document_id: &str,
    version_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO document_texts (version_id, org_id, document_id, status, attempts, due_at,
            created_at, updated_at)
         VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)",
    )
    .bind(version_id)
    .bind(org)
    .bind(document_id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(failed("queuing a version's text extraction"))?;
    Ok(())
}

impl Store {
    /// Takes the next version due for extraction (pending, or running with a lease that
    /// ran out), leasing it for `lease_secs`.
    pub async fn claim_extraction(
        &self,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<ExtractionJob>> {
        // Two workers may pick the same row; the condition, checked again on the locked
        // row, lets only one of them have it.
        let row = sqlx::query(
            "UPDATE document_texts
             SET status = 'running', attempts = attempts + 1, due_at = $1, updated_at = $2
             WHERE version_id = (
                 SELECT version_id FROM document_texts
                 WHERE status IN ('pending', 'running') AND due_at <= $3
                 ORDER BY due_at LIMIT 1)
               AND status IN ('pending', 'running') AND due_at <= $4
             RETURNING version_id, attempts",
        )
        .bind(now + lease_secs)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(failed("claiming a version to extract"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let version_id: String = get(&row, "version_id")?;
        let attempts: i64 = get(&row, "attempts")?;
        let job = sqlx::query(
            "SELECT v.id, v.org_id, v.document_id, v.number, v.object_key, v.content_type, d.title
             FROM document_versions v JOIN documents d ON d.id = v.document_id
             WHERE v.id = $1",
        )
        .bind(&version_id)
        .fetch_optional(self.pool())
        .await
        .map_err(failed("reading a version to extract"))?;
        let Some(r) = job else {
            return Ok(None);
        };
        Ok(Some(ExtractionJob {
            version_id,
            org_id: get(&r, "org_id")?,
            document_id: get(&r, "document_id")?,
            number: get(&r, "number")?,
            object_key: get(&r, "object_key")?,
            content_type: get(&r, "content_type")?,
            title: get(&r, "title")?,
            attempts,
        }))
    }

    /// Records an extraction's outcome: the text, or a failure to retry at `Some(when)`
    /// or give up on (`None`). With the text, `guess` becomes the document's type when no
    /// user has set one and this is its current version. A worker whose lease was taken
    /// over records nothing.
    pub async fn finish_extraction(
        &self,
        job: &ExtractionJob,
        outcome: std::result::Result<&Extracted, (&str, Option<i64>)>,
        guess: Option<(DocumentKind, f64)>,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = match outcome {
            Ok(x) => sqlx::query(
                "UPDATE document_texts
                 SET status = 'done', method = $1, text = $2, pages = $3, error = NULL, updated_at = $4
                 WHERE version_id = $5 AND status = 'running' AND attempts = $6",
            )
            .bind(x.method.as_str())
            .bind(&x.text)
            .bind(x.pages)
            .bind(now)
            .bind(&job.version_id)
            .bind(job.attempts)
            .persistent(false)
            .execute(&mut *tx)
            .await
            .map_err(failed("storing a version's text"))?,
            Err((why, retry_at)) => sqlx::query(
                "UPDATE document_texts
                 SET status = $1, error = $2, due_at = $3, updated_at = $4
                 WHERE version_id = $5 AND status = 'running' AND attempts = $6",
            )
            .bind(if retry_at.is_some() { "pending" } else { "failed" })
            .bind(why)
            .bind(retry_at.unwrap_or(now))
            .bind(now)
            .bind(&job.version_id)
            .bind(job.attempts)
            .persistent(false)
            .execute(&mut *tx)
            .await
            .map_err(failed("recording a failed extraction"))?,
        };
        if done.rows_affected() == 1
            && let Some((kind, confidence)) = guess
        {
            sqlx::query(
                "UPDATE documents SET kind = $1, kind_confidence = $2, updated_at = $3
                 WHERE id = $4 AND kind_source = 'classifier' AND version_count = $5",
            )
            .bind(kind.as_str())
            .bind(confidence)
            .bind(now)
            .bind(&job.document_id)
            .bind(job.number)
            .execute(&mut *tx)
            .await
            .map_err(failed("classifying a document"))?;
        }
        let searchable = done.rows_affected() == 1 && outcome.is_ok();
        if searchable {
            super::search::changed(&mut tx, &job.org_id, &job.document_id, now).await?;
        }
        tx.commit()
            .await
            .map_err(failed("committing an extraction"))?;
        if searchable {
            self.documents_changed();
        }
        Ok(())
    }
}

impl Tenant<'_> {
    /// A version's text and the state of its extraction.
    pub async fn version_text(&self, version_id: &str) -> Result<Option<VersionText>> {
        let row = sqlx::query(
            "SELECT status, method, pages, text, error, attempts, updated_at
             FROM document_texts WHERE org_id = $1 AND version_id = $2",
        )
        .bind(&self.org)
        .bind(version_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a version's text"))?;
        row.map(|r| {
            Ok(VersionText {
                status: get(&r, "status")?,
                method: get(&r, "method")?,
                pages: get(&r, "pages")?,
                text: get(&r, "text")?,
                error: get(&r, "error")?,
                attempts: get(&r, "attempts")?,
                updated_at: get(&r, "updated_at")?,
            })
        })
        .transpose()
    }
}
