//! Documents: upload (streamed into storage), versions, downloads with ranges and
//! caching, soft delete with an admin purge, and the access log.
//!
//! A homeowner reaches only their own documents; agents and above reach every document
//! of their organization. A document the caller may not see answers 404, as if it did
//! not exist. Views and downloads by the homeowner a document belongs to are also
//! written to the event log as `document_viewed` / `document_downloaded`, so their real
//! document activity feeds the streaming job's signals.

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::Principal;
use crate::documents::{
    DocumentKind, RangeAsk, Storage, Stored, UploadError, clean_filename, content_disposition,
    parse_range,
};
use crate::problem::{Json, Path, Problem, ProblemBody, Query};
use crate::ratelimit::ClientAddr;
use crate::role::Role;
use crate::store::{
    AccessEntry, Document, DocumentChange, DocumentFilter, DocumentVersion, NewDocument,
    NewVersion, Share, Tenant,
};
use crate::{unix_now, unix_now_ms};

/// A document as served.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct DocumentView {
    /// Id.
    id: String,
    /// The homeowner user whose document it is (null: the organization's own).
    owner_user_id: Option<String>,
    /// The contact it is about.
    contact_id: Option<String>,
    /// The property it is about.
    property_ref: Option<String>,
    /// Its type.
    kind: DocumentKind,
    /// Who set the type: `user` or `classifier` (guessed from the text once extracted).
    kind_source: String,
    /// How sure the classifier is, 0–1 (null when a user set the type, or before the
    /// text is extracted).
    kind_confidence: Option<f64>,
    /// Title.
    title: String,
    /// Tags.
    tags: Vec<String>,
    /// How many versions (the newest is current).
    version_count: i64,
    /// Who made it.
    created_by: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    updated_at: i64,
    /// When it was deleted (null: live).
    deleted_at: Option<i64>,
    /// When a purge may remove it for good (null: live).
    purge_after: Option<i64>,
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> Self {
        DocumentView {
            id: d.id,
            owner_user_id: d.owner_user_id,
            contact_id: d.contact_id,
            property_ref: d.property_ref,
            kind: d.kind,
            kind_source: d.kind_source,
            kind_confidence: d.kind_confidence,
            title: d.title,
            tags: d.tags,
            version_count: d.version_count,
            created_by: d.created_by,
            created_at: d.created_at,
            updated_at: d.updated_at,
            deleted_at: d.deleted_at,
            purge_after: d.purge_after,
        }
    }
}

/// A version as served.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct VersionView {
    /// 1, 2, … within the document.
    number: i64,
    /// Bytes.
    size: i64,
    /// SHA-256 of the bytes, hex (also the download's `ETag`).
    sha256: String,
    /// The media type, sniffed from the bytes.
    content_type: String,
    /// What the uploader's client said it was.
    claimed_type: Option<String>,
    /// The file's name as uploaded.
    filename: String,
    /// The version this one restores, when it is a restore.
    restored_from: Option<i64>,
    /// Who uploaded or restored it.
    uploaded_by: String,
    /// Unix seconds.
    created_at: i64,
    /// Where to download it.
    content_url: String,
    /// Extracting its text: `pending`, `running`, `done` or `failed`.
    text_status: Option<String>,
    /// Where to read its text.
    text_url: String,
}

fn version_view(v: DocumentVersion) -> VersionView {
    VersionView {
        content_url: format!("/documents/{}/versions/{}/content", v.document_id, v.number),
        text_url: format!("/documents/{}/versions/{}/text", v.document_id, v.number),
        text_status: v.text_status,
        number: v.number,
        size: v.size,
        sha256: v.sha256,
        content_type: v.content_type,
        claimed_type: v.claimed_type,
        filename: v.filename,
        restored_from: v.restored_from,
        uploaded_by: v.uploaded_by,
        created_at: v.created_at,
    }
}

/// A document with every version, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct DocumentDetail {
    /// The document.
    document: DocumentView,
    /// Its versions; the last is current.
    versions: Vec<VersionView>,
}

/// The form of an upload (`multipart/form-data`). Fields may come in any order.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct UploadForm {
    /// The file (its type is sniffed from its bytes, whatever the part's header says).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Title (1–200 characters); defaults to the file's name.
    title: Option<String>,
    /// Type; when absent it is guessed from the text once extracted.
    kind: Option<DocumentKind>,
    /// Tags, comma-separated (at most 20, each 1–50 characters).
    tags: Option<String>,
    /// The contact it is about (agents and above; a homeowner's own documents are about
    /// their own contact record).
    contact_id: Option<String>,
    /// The homeowner user it belongs to (agents and above; a homeowner's uploads are
    /// always their own).
    owner_user_id: Option<String>,
    /// The property it is about (free text, at most 100 characters).
    property_ref: Option<String>,
}

/// The form of a new version (`multipart/form-data`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct VersionForm {
    /// The file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Which documents.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentQuery {
    /// Only about this contact.
    contact_id: Option<String>,
    /// Only this homeowner's (a homeowner always sees only their own).
    owner_user_id: Option<String>,
    /// Only of this type.
    kind: Option<DocumentKind>,
    /// Deleted documents (not yet purged) instead of live ones.
    deleted: Option<bool>,
    /// After this id (the previous page's `next_after`).
    after: Option<String>,
    /// How many (1–500, default 100).
    limit: Option<i64>,
}

/// A page of documents.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct DocumentPage {
    /// In id order.
    documents: Vec<DocumentView>,
    /// Pass as `after` for the next page; null on the last.
    next_after: Option<String>,
}

/// Changes to a document; absent fields stay.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentPatch {
    /// Title (1–200 characters).
    title: Option<String>,
    /// Type (a correction: recorded as set by a user).
    kind: Option<DocumentKind>,
    /// Tags (at most 20, each 1–50 characters).
    tags: Option<Vec<String>>,
}

/// How a download is presented.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContentQuery {
    /// `inline` shows it in the browser (logged as a view); `attachment` (the default)
    /// saves it (logged as a download).
    #[param(inline)]
    disposition: Option<Disposition>,
}

/// `inline` or `attachment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Disposition {
    /// Shown in the browser.
    Inline,
    /// Saved as a file.
    Attachment,
}

/// One access.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AccessView {
    /// Which version, when one was read or made.
    version_number: Option<i64>,
    /// `viewed`, `downloaded`, `uploaded`, `restored`, `deleted` or `undeleted`.
    action: String,
    /// The user.
    actor_id: Option<String>,
    /// The client's address.
    ip: String,
    /// The client's `User-Agent`.
    user_agent: String,
    /// Unix milliseconds.
    at_ms: i64,
}

/// Which part of the log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessQuery {
    /// Entries before this time (Unix milliseconds; the previous page's `next_before`).
    before_ms: Option<i64>,
    /// How many (1–500, default 100).
    limit: Option<i64>,
}

/// A page of a document's access log, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AccessPage {
    /// Entries.
    entries: Vec<AccessView>,
    /// Pass as `before_ms` for older entries; null on the last page.
    next_before: Option<i64>,
}

/// What to purge.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PurgeRequest {
    /// Purge every deleted document now, not only those whose retention has run out.
    #[serde(default)]
    all: bool,
}

/// What a purge did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct PurgeResult {
    /// Documents removed with their bytes.
    purged: Vec<String>,
    /// Documents whose bytes could not be removed (kept, to retry), with why.
    failed: Vec<String>,
}

fn storage(state: &AppState) -> Result<&Storage, Problem> {
    state.storage.as_ref().ok_or_else(|| {
        Problem::unavailable(
            "documents are not enabled on this server: set serve.documents.storage \
             (file:///DIR or s3://BUCKET)",
        )
    })
}

/// The document if the caller may see it (404 otherwise, deleted ones included only
/// when `deleted` allows).
async fn visible(
    tenant: &Tenant<'_>,
    principal: &Principal,
    id: &str,
    deleted: bool,
) -> Result<Document, Problem> {
    let doc = tenant
        .document(id)
        .await?
        .filter(|d| deleted || d.deleted_at.is_none())
        .filter(|d| may_see(principal, d))
        .ok_or_else(|| Problem::not_found("document"))?;
    Ok(doc)
}

/// Whose documents a listing or search covers: a homeowner's own always (naming anyone
/// else is refused), for agents and above the owner they asked for, if any.
fn whose(principal: &Principal, asked: Option<String>) -> Result<Option<String>, Problem> {
    if principal.role != Role::Homeowner {
        return Ok(asked);
    }
    if asked.is_some_and(|o| o != principal.user_id) {
        return Err(Problem::forbidden(
            "owner_user_id: homeowners reach only their own documents",
        ));
    }
    Ok(Some(principal.user_id.clone()))
}

fn may_see(principal: &Principal, doc: &Document) -> bool {
    principal.role.includes(Role::Agent)
        || doc.owner_user_id.as_deref() == Some(principal.user_id.as_str())
}

fn check_title(raw: &str) -> Result<String, Problem> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(Problem::invalid("title: must be 1–200 characters"));
    }
    Ok(t.to_owned())
}

fn check_tags(tags: impl IntoIterator<Item = String>) -> Result<Vec<String>, Problem> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_owned();
        if t.is_empty() || t.chars().count() > 50 || t.chars().any(char::is_control) {
            return Err(Problem::invalid(format!(
                "tags: {t:?} must be 1–50 printable characters"
            )));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > 20 {
        return Err(Problem::invalid("tags: at most 20"));
    }
    Ok(out)
}

fn multipart_problem(e: impl std::fmt::Display) -> Problem {
    Problem::bad_request(format!("the multipart/form-data body is malformed: {e}"))
}

fn upload_problem(e: UploadError) -> Problem {
    match e {
        UploadError::TooLarge { .. } => Problem::payload_too_large(e.to_string()),
        UploadError::Empty => Problem::invalid("file: the file is empty"),
        UploadError::Executable(_) => Problem::unsupported_media_type(format!("file: {e}")),
        UploadError::Body(_) => Problem::bad_request(e.to_string()),
        UploadError::Storage(s) => Problem::internal(&s),
    }
}

/// Reads a text field of at most 1 KiB.
async fn text_field(name: &str, mut field: Field<'_>) -> Result<String, Problem> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_problem)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > 1024 {
            return Err(Problem::invalid(format!("{name}: at most 1024 bytes")));
        }
    }
    String::from_utf8(bytes).map_err(|_| Problem::invalid(format!("{name}: not UTF-8 text")))
}

/// An uploaded file, stored.
struct Upload {
    stored: Stored,
    filename: String,
    claimed_type: Option<String>,
}

/// Streams a `file` part into storage at `key`.
async fn store_file(state: &AppState, key: &str, field: Field<'_>) -> Result<Upload, Problem> {
    let storage = storage(state)?;
    let filename = clean_filename(field.file_name());
    let claimed_type = field.content_type().map(str::to_owned);
    let mut field = std::pin::pin!(field);
    let stored = storage
        .upload(
            key,
            field.as_mut(),
            state.config.documents.max_upload_bytes(),
        )
        .await
        .map_err(upload_problem)?;
    Ok(Upload {
        stored,
        filename,
        claimed_type,
    })
}

/// Removes an object written for an upload that was then refused.
async fn discard(state: &AppState, key: &str) {
    if let Ok(storage) = storage(state)
        && let Err(e) = storage.delete(key).await
    {
        tracing::warn!(key, error = %e, "removing the bytes of a refused upload");
    }
}

fn new_version(upload: Upload, id: String, by: &str) -> NewVersion {
    NewVersion {
        id,
        object_key: upload.stored.key,
        size: upload.stored.size as i64,
        sha256: upload.stored.sha256,
        content_type: upload.stored.content_type.to_owned(),
        claimed_type: upload.claimed_type,
        filename: upload.filename,
        restored_from: None,
        uploaded_by: by.to_owned(),
    }
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// Logs an access and, when the homeowner a document belongs to viewed or downloaded
/// it, writes the pipeline event.
#[allow(clippy::too_many_arguments)]
async fn log_access(
    state: &AppState,
    tenant: &Tenant<'_>,
    principal: &Principal,
    doc: &Document,
    version: Option<i64>,
    action: &str,
    client: &str,
    headers: &HeaderMap,
) -> Result<(), Problem> {
    let at_ms = unix_now_ms();
    tenant
        .record_access(&AccessEntry {
            document_id: doc.id.clone(),
            version_number: version,
            action: action.to_owned(),
            actor_id: Some(principal.user_id.clone()),
            share_id: None,
            ip: client.to_owned(),
            user_agent: user_agent(headers),
            at_ms,
        })
        .await?;
    let event_type = match action {
        "viewed" => "document_viewed",
        "downloaded" => "document_downloaded",
        "shared" => "document_shared",
        _ => return Ok(()),
    };
    let own = principal.role == Role::Homeowner
        && doc.owner_user_id.as_deref() == Some(principal.user_id.as_str());
    if own
        && let (Some(org), Some(contact)) = (doc.lake_org_id, doc.lake_contact_id)
        && let Some(ts) = chrono::DateTime::from_timestamp_millis(at_ms)
    {
        let line = serde_json::json!({
            "event_id": crate::campaigns::EventLog::new_event_id(),
            "org_id": org,
            "contact_id": contact,
            "event_type": event_type,
            "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "document_id": crate::store::lake_id_of(&doc.id),
        });
        state.engagement_log.append_line(&line.to_string());
    }
    Ok(())
}

/// Uploads a document (`multipart/form-data` with a `file` part and optional fields).
/// The bytes stream into storage as they arrive, hashed with SHA-256; the type is
/// sniffed from the bytes. Homeowners upload their own documents; agents and above
/// upload for anyone in the organization.
#[utoipa::path(post, path = "/documents", tag = "documents", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The new document and its first version", body = DocumentDetail),
        (status = 403, description = "A homeowner named someone else as owner or contact", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than serve.documents.max_upload_mb", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "The file is a program (ELF, PE, Mach-O, script), whatever its name", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Documents are not enabled on this server", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<DocumentDetail>), Problem> {
    storage(&state)?;
    let mut multipart = multipart.map_err(multipart_problem)?;
    let tenant = principal.tenant(&state.store);
    let document_id = crate::auth::secret::new_id("doc");
    let version_id = crate::auth::secret::new_id("ver");
    let key = Storage::key_for(tenant.org_id(), &document_id, &version_id);
    let mut upload: Option<Upload> = None;
    let mut fields: Vec<(String, String)> = Vec::new();
    let read: Result<(), Problem> = async {
        while let Some(field) = multipart.next_field().await.map_err(multipart_problem)? {
            let name = field.name().unwrap_or("").to_owned();
            match name.as_str() {
                "file" if upload.is_some() => {
                    return Err(Problem::invalid("file: send one file per upload"));
                }
                "file" => upload = Some(store_file(&state, &key, field).await?),
                "title" | "kind" | "tags" | "contact_id" | "owner_user_id" | "property_ref" => {
                    if fields.iter().any(|(n, _)| *n == name) {
                        return Err(Problem::invalid(format!("{name}: given twice")));
                    }
                    let value = text_field(&name, field).await?;
                    fields.push((name, value));
                }
                other => {
                    return Err(Problem::invalid(format!(
                        "{other:?} is not a field of an upload (file, title, kind, tags, \
                         contact_id, owner_user_id, property_ref)"
                    )));
                }
            }
        }
        Ok(())
    }
    .await;
    let made = async {
        read?;
        let upload = upload
            .take()
            .ok_or_else(|| Problem::invalid("file: the form has no file part"))?;
        let field = |n: &str| {
            fields
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let title = check_title(&field("title").unwrap_or_else(|| upload.filename.clone()))?;
        let kind = field("kind")
            .map(|k| {
                k.parse::<DocumentKind>()
                    .map_err(|e| Problem::invalid(format!("kind: {e}")))
            })
            .transpose()?;
        let tags = check_tags(
            field("tags")
                .map(|t| t.split(',').map(str::to_owned).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .filter(|t| !t.trim().is_empty()),
        )?;
        let property_ref = field("property_ref");
        if property_ref
            .as_ref()
            .is_some_and(|p| p.chars().count() > 100)
        {
            return Err(Problem::invalid("property_ref: at most 100 characters"));
        }
        let (owner_user_id, contact_id) = owner_and_contact(
            &tenant,
            &principal,
            field("owner_user_id"),
            field("contact_id"),
        )
        .await?;
        let new = NewDocument {
            id: document_id.clone(),
            owner_user_id,
            contact_id,
            property_ref,
            kind,
            title,
            tags,
            created_by: principal.user_id.clone(),
        };
        let version = new_version(upload, version_id.clone(), &principal.user_id);
        Ok(tenant.create_document(&new, &version, unix_now()).await?)
    }
    .await;
    let (doc, version) = match made {
        Ok(made) => made,
        Err(problem) => {
            discard(&state, &key).await;
            return Err(problem);
        }
    };
    log_access(
        &state,
        &tenant,
        &principal,
        &doc,
        Some(1),
        "uploaded",
        &client,
        &headers,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(DocumentDetail {
            document: doc.into(),
            versions: vec![version_view(version)],
        }),
    ))
}

/// Whose document an upload makes, and about which contact: a homeowner's own (about
/// their own contact record); for agents and above, whoever they name.
async fn owner_and_contact(
    tenant: &Tenant<'_>,
    principal: &Principal,
    owner: Option<String>,
    contact: Option<String>,
) -> Result<(Option<String>, Option<String>), Problem> {
    if principal.role == Role::Homeowner {
        if owner.as_ref().is_some_and(|o| *o != principal.user_id) {
            return Err(Problem::forbidden(
                "owner_user_id: homeowners upload only their own documents",
            ));
        }
        let me = tenant
            .user(&principal.user_id)
            .await?
            .ok_or_else(|| Problem::not_found("user"))?;
        let mine = tenant.contact_id_by_email(&me.email).await?;
        if contact.is_some() && contact != mine {
            return Err(Problem::forbidden(
                "contact_id: homeowners upload only about themselves",
            ));
        }
        return Ok((Some(principal.user_id.clone()), mine));
    }
    let owner = match owner {
        Some(id) => {
            let user = tenant.user(&id).await?.ok_or_else(|| {
                Problem::invalid(format!(
                    "owner_user_id: no user {id:?} in your organization"
                ))
            })?;
            if user.role != Role::Homeowner {
                return Err(Problem::invalid(format!(
                    "owner_user_id: {id:?} is not a homeowner (documents belong to homeowners)"
                )));
            }
            Some(user)
        }
        None => None,
    };
    let contact = match contact {
        Some(id) => {
            tenant.contact(&id).await?.ok_or_else(|| {
                Problem::invalid(format!(
                    "contact_id: no contact {id:?} in your organization"
                ))
            })?;
            Some(id)
        }
        None => match &owner {
            Some(user) => tenant.contact_id_by_email(&user.email).await?,
            None => None,
        },
    };
    Ok((owner.map(|u| u.id), contact))
}

/// Documents the caller may see, in id order.
#[utoipa::path(get, path = "/documents", tag = "documents", security(("bearer" = [])),
    params(DocumentQuery),
    responses((status = 200, description = "A page of documents", body = DocumentPage)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DocumentQuery>,
) -> Result<Json<DocumentPage>, Problem> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit: must be between 1 and 500"));
    }
    let owner_user_id = whose(&principal, q.owner_user_id)?;
    let page = principal
        .tenant(&state.store)
        .documents(&DocumentFilter {
            owner_user_id,
            contact_id: q.contact_id,
            kind: q.kind,
            deleted: q.deleted.unwrap_or(false),
            after: q.after,
            limit,
        })
        .await?;
    let next_after = (page.len() as i64 == limit)
        .then(|| page.last().map(|d| d.id.clone()))
        .flatten();
    Ok(Json(DocumentPage {
        documents: page.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

async fn detail(tenant: &Tenant<'_>, doc: Document) -> Result<DocumentDetail, Problem> {
    let versions = tenant.document_versions(&doc.id).await?;
    Ok(DocumentDetail {
        document: doc.into(),
        versions: versions.into_iter().map(version_view).collect(),
    })
}

/// A document with its versions (deleted ones too, until purged).
#[utoipa::path(get, path = "/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "The document", body = DocumentDetail),
        (status = 404, description = "No such document that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DocumentDetail>, Problem> {
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, true).await?;
    Ok(Json(detail(&tenant, doc).await?))
}

/// Changes a document's title, type or tags. A new type is recorded as set by a user
/// (it corrects the classifier).
#[utoipa::path(patch, path = "/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id")),
    request_body = DocumentPatch,
    responses(
        (status = 200, description = "The document after the change", body = DocumentDetail),
        (status = 404, description = "No such live document that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(patch): Json<DocumentPatch>,
) -> Result<Json<DocumentDetail>, Problem> {
    let change = DocumentChange {
        title: patch.title.as_deref().map(check_title).transpose()?,
        kind: patch.kind,
        tags: patch.tags.map(check_tags).transpose()?,
    };
    let tenant = principal.tenant(&state.store);
    visible(&tenant, &principal, &id, false).await?;
    let doc = tenant
        .update_document(&id, &change, unix_now())
        .await?
        .ok_or_else(|| Problem::not_found("document"))?;
    Ok(Json(detail(&tenant, doc).await?))
}

/// Deletes a document: it leaves the lists at once and can be brought back with
/// `POST /documents/{id}/undelete` until an admin purges it after the retention period
/// (`serve.documents.retention_days`).
#[utoipa::path(delete, path = "/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "The deleted document", body = DocumentView),
        (status = 404, description = "No such live document that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DocumentView>, Problem> {
    let tenant = principal.tenant(&state.store);
    visible(&tenant, &principal, &id, false).await?;
    let now = unix_now();
    let keep = state.config.documents.retention_days as i64 * 86_400;
    let doc = tenant
        .delete_document(&id, &principal.user_id, now, now + keep)
        .await?
        .ok_or_else(|| Problem::not_found("document"))?;
    log_access(
        &state, &tenant, &principal, &doc, None, "deleted", &client, &headers,
    )
    .await?;
    Ok(Json(doc.into()))
}

/// Brings back a deleted document that has not been purged.
#[utoipa::path(post, path = "/documents/{id}/undelete", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "The document, live again", body = DocumentView),
        (status = 404, description = "No such deleted document that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn undelete(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DocumentView>, Problem> {
    let tenant = principal.tenant(&state.store);
    visible(&tenant, &principal, &id, true).await?;
    let doc = tenant
        .undelete_document(&id, unix_now())
        .await?
        .ok_or_else(|| Problem::not_found("deleted document"))?;
    log_access(
        &state,
        &tenant,
        &principal,
        &doc,
        None,
        "undeleted",
        &client,
        &headers,
    )
    .await?;
    Ok(Json(doc.into()))
}

/// Uploads a new version (`multipart/form-data` with one `file` part); it becomes the
/// current one.
#[utoipa::path(post, path = "/documents/{id}/versions", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id")),
    request_body(content = VersionForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The new version", body = VersionView),
        (status = 404, description = "No such live document that you may see", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than serve.documents.max_upload_mb", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "The file is a program (ELF, PE, Mach-O, script), whatever its name", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Documents are not enabled on this server", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn add_version(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<VersionView>), Problem> {
    storage(&state)?;
    let mut multipart = multipart.map_err(multipart_problem)?;
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, false).await?;
    let version_id = crate::auth::secret::new_id("ver");
    let key = Storage::key_for(tenant.org_id(), &doc.id, &version_id);
    let mut upload = None;
    let read: Result<(), Problem> = async {
        while let Some(field) = multipart.next_field().await.map_err(multipart_problem)? {
            match field.name().unwrap_or("") {
                "file" if upload.is_some() => {
                    return Err(Problem::invalid("file: send one file per version"));
                }
                "file" => upload = Some(store_file(&state, &key, field).await?),
                other => {
                    return Err(Problem::invalid(format!(
                        "{other:?} is not a field of a new version (only file)"
                    )));
                }
            }
        }
        Ok(())
    }
    .await;
    let added = async {
        read?;
        let upload = upload.ok_or_else(|| Problem::invalid("file: the form has no file part"))?;
        let version = new_version(upload, version_id.clone(), &principal.user_id);
        tenant
            .add_version(&doc.id, &version, unix_now())
            .await?
            .ok_or_else(|| Problem::not_found("document"))
    }
    .await;
    let version = match added {
        Ok(v) => v,
        Err(problem) => {
            discard(&state, &key).await;
            return Err(problem);
        }
    };
    log_access(
        &state,
        &tenant,
        &principal,
        &doc,
        Some(version.number),
        "uploaded",
        &client,
        &headers,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(version_view(version))))
}

/// Makes an earlier version current again, as a new version over the same bytes
/// (versions never change).
#[utoipa::path(post, path = "/documents/{id}/versions/{number}/restore", tag = "documents", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Document id"),
        ("number" = i64, Path, description = "The version to restore"),
    ),
    responses(
        (status = 201, description = "The new version", body = VersionView),
        (status = 404, description = "No such live document or version that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn restore(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path((id, number)): Path<(String, i64)>,
) -> Result<(StatusCode, Json<VersionView>), Problem> {
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, false).await?;
    let old = tenant
        .document_version(&doc.id, number)
        .await?
        .ok_or_else(|| Problem::not_found("version"))?;
    let version = NewVersion {
        id: crate::auth::secret::new_id("ver"),
        object_key: old.object_key,
        size: old.size,
        sha256: old.sha256,
        content_type: old.content_type,
        claimed_type: old.claimed_type,
        filename: old.filename,
        restored_from: Some(old.number),
        uploaded_by: principal.user_id.clone(),
    };
    let version = tenant
        .add_version(&doc.id, &version, unix_now())
        .await?
        .ok_or_else(|| Problem::not_found("document"))?;
    log_access(
        &state,
        &tenant,
        &principal,
        &doc,
        Some(version.number),
        "restored",
        &client,
        &headers,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(version_view(version))))
}

/// Downloads the current version. Answers `Range` requests (206) and revalidates with
/// `ETag` (the SHA-256); since the current version changes, it is never cached without
/// revalidation.
#[utoipa::path(get, path = "/documents/{id}/content", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id"), ContentQuery),
    responses(
        (status = 200, description = "The bytes, with the sniffed type", content(
            (String = "application/pdf"), (String = "image/png"), (String = "image/jpeg"),
            (String = "image/gif"), (String = "image/tiff"), (String = "image/webp"),
            (String = "application/zip"), (String = "application/x-ole-storage"),
            (String = "text/plain"), (String = "application/octet-stream"))),
        (status = 206, description = "The requested range (Content-Range says which)"),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 404, description = "No such live document that you may see", body = ProblemBody, content_type = "application/problem+json"),
        (status = 416, description = "The range is outside the file", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Documents are not enabled on this server", body = ProblemBody, content_type = "application/problem+json"),
    ))]
#[allow(clippy::too_many_arguments)]
pub(crate) async fn current_content(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ContentQuery>,
) -> Result<Response, Problem> {
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, false).await?;
    let number = doc.version_count;
    let ask = Download {
        method,
        headers: &headers,
        client: &client,
        disposition: q.disposition,
        immutable: false,
    };
    content(&state, &tenant, &principal, doc, number, ask).await
}

/// Downloads one version. Versions never change, so the response may be cached for a
/// year; `Range` requests get 206, and `If-None-Match` with the ETag gets 304.
#[utoipa::path(get, path = "/documents/{id}/versions/{number}/content", tag = "documents", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Document id"),
        ("number" = i64, Path, description = "Version number"),
        ContentQuery,
    ),
    responses(
        (status = 200, description = "The bytes, with the sniffed type", content(
            (String = "application/pdf"), (String = "image/png"), (String = "image/jpeg"),
            (String = "image/gif"), (String = "image/tiff"), (String = "image/webp"),
            (String = "application/zip"), (String = "application/x-ole-storage"),
            (String = "text/plain"), (String = "application/octet-stream"))),
        (status = 206, description = "The requested range (Content-Range says which)"),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 404, description = "No such document or version that you may see", body = ProblemBody, content_type = "application/problem+json"),
        (status = 416, description = "The range is outside the file", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Documents are not enabled on this server", body = ProblemBody, content_type = "application/problem+json"),
    ))]
#[allow(clippy::too_many_arguments)]
pub(crate) async fn version_content(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    method: Method,
    headers: HeaderMap,
    Path((id, number)): Path<(String, i64)>,
    Query(q): Query<ContentQuery>,
) -> Result<Response, Problem> {
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, false).await?;
    let ask = Download {
        method,
        headers: &headers,
        client: &client,
        disposition: q.disposition,
        immutable: true,
    };
    content(&state, &tenant, &principal, doc, number, ask).await
}

/// How a download was asked for.
struct Download<'a> {
    method: Method,
    headers: &'a HeaderMap,
    client: &'a str,
    disposition: Option<Disposition>,
    /// The URL names a fixed version (cacheable for good).
    immutable: bool,
}

fn last_modified(v: &DocumentVersion) -> Option<String> {
    chrono::DateTime::from_timestamp(v.created_at, 0)
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

/// The headers of a response carrying a version's bytes: type, name, checksum, caching,
/// and a policy under which the bytes never run as a page of this origin.
fn file_headers(
    v: &DocumentVersion,
    inline: bool,
    cache: &'static str,
) -> axum::http::response::Builder {
    let mut b = Response::builder()
        .header(header::ETAG, format!("\"{}\"", v.sha256))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, cache)
        .header(header::CONTENT_TYPE, &v.content_type)
        .header(
            header::CONTENT_DISPOSITION,
            content_disposition(inline, &v.filename),
        )
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        );
    if let Some(modified) = last_modified(v) {
        b = b.header(header::LAST_MODIFIED, modified);
    }
    b
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn etag_matches(header: Option<&HeaderValue>, etag: &str) -> bool {
    header.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    })
}

async fn content(
    state: &AppState,
    tenant: &Tenant<'_>,
    principal: &Principal,
    doc: Document,
    number: i64,
    ask: Download<'_>,
) -> Result<Response, Problem> {
    let storage = storage(state)?;
    let version = tenant
        .document_version(&doc.id, number)
        .await?
        .ok_or_else(|| Problem::not_found("version"))?;
    let etag = format!("\"{}\"", version.sha256);
    let size = version.size as u64;
    if etag_matches(ask.headers.get(header::IF_NONE_MATCH), &etag) {
        let mut not_modified = Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, &etag)
            .header(
                header::CACHE_CONTROL,
                if ask.immutable {
                    "private, max-age=31536000, immutable"
                } else {
                    "private, no-cache"
                },
            );
        if let Some(modified) = last_modified(&version) {
            not_modified = not_modified.header(header::LAST_MODIFIED, modified);
        }
        return not_modified
            .body(Body::empty())
            .map_err(|e| Problem::internal(&e));
    }
    // If-Range with another ETag (the file changed under a resumed download): send all.
    let range_header = match ask.headers.get(header::IF_RANGE) {
        Some(v) if v.to_str().ok() != Some(etag.as_str()) => None,
        _ => ask.headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
    };
    let (status, range) = match parse_range(range_header, size) {
        RangeAsk::Whole => (StatusCode::OK, None),
        RangeAsk::Part(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        RangeAsk::Unsatisfiable => {
            let mut p = Problem::range_not_satisfiable(format!(
                "the range is outside the file's {size} bytes"
            ))
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                p.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(p);
        }
    };
    let inline = ask.disposition == Some(Disposition::Inline);
    let cache = if ask.immutable {
        "private, max-age=31536000, immutable"
    } else {
        "private, no-cache"
    };
    let mut response = file_headers(&version, inline, cache).status(status);
    let length = match &range {
        Some(r) => {
            response = response.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            );
            r.end - r.start
        }
        None => size,
    };
    response = response.header(header::CONTENT_LENGTH, length);
    if ask.method == Method::HEAD {
        return response
            .body(Body::empty())
            .map_err(|e| Problem::internal(&e));
    }
    let stream = storage
        .read(&version.object_key, range.clone())
        .await
        .map_err(|e| Problem::internal(&e))?;
    // A reader fetching the rest of a file it is already showing is not a new access.
    if range.as_ref().is_none_or(|r| r.start == 0) {
        let action = if inline { "viewed" } else { "downloaded" };
        log_access(
            state,
            tenant,
            principal,
            &doc,
            Some(version.number),
            action,
            ask.client,
            ask.headers,
        )
        .await?;
    }
    response
        .body(Body::from_stream(stream))
        .map_err(|e| Problem::internal(&e))
}

/// A document's access log, newest first: every view, download, upload, restore and
/// deletion, with who, when, which version, address and user agent.
#[utoipa::path(get, path = "/documents/{id}/access", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id"), AccessQuery),
    responses(
        (status = 200, description = "Entries", body = AccessPage),
        (status = 404, description = "No such document that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn access(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<AccessQuery>,
) -> Result<Json<AccessPage>, Problem> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit: must be between 1 and 500"));
    }
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, true).await?;
    let entries = tenant.access_log(&doc.id, q.before_ms, limit).await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.at_ms))
        .flatten();
    Ok(Json(AccessPage {
        entries: entries
            .into_iter()
            .map(|e| AccessView {
                version_number: e.version_number,
                action: e.action,
                actor_id: e.actor_id,
                ip: e.ip,
                user_agent: e.user_agent,
                at_ms: e.at_ms,
            })
            .collect(),
        next_before,
    }))
}

/// Removes deleted documents for good, bytes and versions (admins and above): those
/// whose retention has run out, or every deleted one with `"all": true`. Access logs
/// stay. A document whose bytes cannot be removed is kept and named, to retry.
#[utoipa::path(post, path = "/documents/purge", tag = "documents", security(("bearer" = [])),
    request_body = PurgeRequest,
    responses(
        (status = 200, description = "What was purged", body = PurgeResult),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "Documents are not enabled on this server", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn purge(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<PurgeRequest>,
) -> Result<Json<PurgeResult>, Problem> {
    principal.require(Role::Admin)?;
    let storage = storage(&state)?;
    let tenant = principal.tenant(&state.store);
    let mut result = PurgeResult {
        purged: Vec::new(),
        failed: Vec::new(),
    };
    let now = unix_now();
    loop {
        let batch = tenant.purgeable_documents(now, req.all, 100).await?;
        let full = batch.len() == 100;
        let mut progressed = false;
        for (id, keys) in batch {
            if result.failed.iter().any(|f| f.starts_with(&id)) {
                continue;
            }
            let mut removed = Ok(());
            for key in &keys {
                if let Err(e) = storage.delete(key).await {
                    removed = Err(e);
                    break;
                }
            }
            match removed {
                Ok(()) => {
                    if tenant.purge_document(&id).await? {
                        result.purged.push(id);
                        progressed = true;
                    }
                }
                Err(e) => {
                    tracing::error!(document = %id, error = %e, "purging a document's bytes");
                    result.failed.push(format!("{id}: {e}"));
                }
            }
        }
        if !full || !progressed {
            break;
        }
    }
    Ok(Json(result))
}

/// A share link as served.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ShareView {
    /// Id.
    id: String,
    /// The link to give (signed; works without signing in).
    url: String,
    /// The document.
    document_id: String,
    /// A fixed version (null: whichever is current when the link is used).
    version_number: Option<i64>,
    /// The user it was shared with (told in-app and by e-mail).
    shared_with_user_id: Option<String>,
    /// Whether the link asks for a password.
    has_password: bool,
    /// Most downloads allowed (null: no limit).
    max_downloads: Option<i64>,
    /// Downloads so far.
    downloads: i64,
    /// Unix seconds.
    expires_at: i64,
    /// When it was revoked.
    revoked_at: Option<i64>,
    /// `active`, `expired`, `revoked` or `used_up`.
    status: String,
    /// Who made it.
    created_by: String,
    /// Unix seconds.
    created_at: i64,
}

fn share_status(s: &Share, now: i64) -> &'static str {
    if s.revoked_at.is_some() {
        "revoked"
    } else if s.expires_at <= now {
        "expired"
    } else if s.max_downloads.is_some_and(|m| s.downloads >= m) {
        "used_up"
    } else {
        "active"
    }
}

fn share_view(state: &AppState, s: Share) -> ShareView {
    ShareView {
        url: state.share_signer.url(&s.id),
        status: share_status(&s, unix_now()).to_owned(),
        id: s.id,
        document_id: s.document_id,
        version_number: s.version_number,
        shared_with_user_id: s.shared_with_user_id,
        has_password: s.password_hash.is_some(),
        max_downloads: s.max_downloads,
        downloads: s.downloads,
        expires_at: s.expires_at,
        revoked_at: s.revoked_at,
        created_by: s.created_by,
        created_at: s.created_at,
    }
}

/// A share link to make.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareRequest {
    /// Hours the link works (1–720, default 168: a week).
    expires_in_hours: Option<i64>,
    /// A password the visitor must give (the sign-in password rules apply).
    password: Option<String>,
    /// Most downloads (1–10000; default: no limit).
    max_downloads: Option<i64>,
    /// A user of your organization to share it with: they are told in-app and by e-mail.
    user_id: Option<String>,
    /// Share this version for good (default: whichever is current when the link is used).
    version: Option<i64>,
}

/// The share links of a document.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ShareList {
    /// Newest first.
    shares: Vec<ShareView>,
}

/// Makes a share link: signed, expiring, revocable, optionally with a password and a
/// download limit. Sharing with a user of the organization tells them in their inbox
/// and, as their preferences say, by e-mail.
#[utoipa::path(post, path = "/documents/{id}/shares", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id")),
    request_body = ShareRequest,
    responses(
        (status = 201, description = "The link", body = ShareView),
        (status = 404, description = "No such live document or version that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn share(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<ShareRequest>,
) -> Result<(StatusCode, Json<ShareView>), Problem> {
    let hours = req.expires_in_hours.unwrap_or(168);
    if !(1..=720).contains(&hours) {
        return Err(Problem::invalid(
            "expires_in_hours: must be between 1 and 720",
        ));
    }
    if req
        .max_downloads
        .is_some_and(|m| !(1..=10_000).contains(&m))
    {
        return Err(Problem::invalid(
            "max_downloads: must be between 1 and 10000",
        ));
    }
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, false).await?;
    if let Some(n) = req.version
        && tenant.document_version(&doc.id, n).await?.is_none()
    {
        return Err(Problem::not_found("version"));
    }
    let with = match &req.user_id {
        Some(uid) => Some(tenant.user(uid).await?.ok_or_else(|| {
            Problem::invalid(format!("user_id: no user {uid:?} in your organization"))
        })?),
        None => None,
    };
    let password_hash = match req.password {
        Some(pw) => {
            let hashing = state.clone();
            Some(super::blocking(move || hashing.passwords.hash(&pw)).await??)
        }
        None => None,
    };
    let now = unix_now();
    let share = Share {
        id: crate::auth::secret::new_id("shr"),
        org_id: tenant.org_id().to_owned(),
        document_id: doc.id.clone(),
        version_number: req.version,
        created_by: principal.user_id.clone(),
        shared_with_user_id: with.as_ref().map(|u| u.id.clone()),
        password_hash,
        max_downloads: req.max_downloads,
        downloads: 0,
        expires_at: now + hours * 3600,
        revoked_at: None,
        created_at: now,
    };
    tenant.create_share(&share).await?;
    log_access(
        &state,
        &tenant,
        &principal,
        &doc,
        req.version,
        "shared",
        &client,
        &headers,
    )
    .await?;
    if let Some(user) = with {
        let sharer = tenant
            .user(&principal.user_id)
            .await?
            .map_or_else(|| "Someone".to_owned(), |u| u.name);
        let url = state.share_signer.url(&share.id);
        let ctx = crate::notify::PlanContext {
            link_base: state.config.base_url(),
            email: state.config.notifications.email_enabled(),
            sms: state.config.notifications.sms_enabled(),
            now_ms: unix_now_ms(),
        };
        let title = format!("{sharer} shared \"{}\" with you", doc.title);
        let lines = vec![format!(
            "The link works until {}{}.",
            chrono::DateTime::from_timestamp(share.expires_at, 0)
                .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            if share.password_hash.is_some() {
                "; ask them for its password"
            } else {
                ""
            }
        )];
        let key = -crate::store::lake_id_of(&share.id) - 1;
        tenant
            .notify_user(&user.id, key, now, |r| crate::store::Planned {
                user_id: r.user_id.clone(),
                kind: "document.shared".to_owned(),
                alert_id: None,
                title: title.clone(),
                body: format!("{}\n{url}", lines.join("\n")),
                messages: crate::notify::messages_for(
                    r,
                    &crate::notify::Notice {
                        title: &title,
                        lines: &lines,
                        link: &url,
                        link_label: "Open the document",
                        why: "a document was shared with you",
                        key: &share.id,
                    },
                    &ctx,
                ),
            })
            .await?;
    }
    Ok((StatusCode::CREATED, Json(share_view(&state, share))))
}

/// A document's share links, newest first, with their state.
#[utoipa::path(get, path = "/documents/{id}/shares", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "The links", body = ShareList),
        (status = 404, description = "No such document that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn shares(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ShareList>, Problem> {
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, true).await?;
    let shares = tenant.shares(&doc.id).await?;
    Ok(Json(ShareList {
        shares: shares.into_iter().map(|s| share_view(&state, s)).collect(),
    }))
}

/// Revokes a share link: it stops working at once.
#[utoipa::path(delete, path = "/documents/{id}/shares/{share_id}", tag = "documents", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Document id"),
        ("share_id" = String, Path, description = "Share link id"),
    ),
    responses(
        (status = 200, description = "The revoked link", body = ShareView),
        (status = 404, description = "No such live link of a document you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn revoke_share(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path((id, share_id)): Path<(String, String)>,
) -> Result<Json<ShareView>, Problem> {
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, true).await?;
    let share = tenant
        .revoke_share(&doc.id, &share_id, unix_now())
        .await?
        .ok_or_else(|| Problem::not_found("share link"))?;
    log_access(
        &state, &tenant, &principal, &doc, None, "revoked", &client, &headers,
    )
    .await?;
    Ok(Json(share_view(&state, share)))
}

/// Downloads a shared document (no sign-in: the signed link is the credential). A link
/// with a password answers 401 here; POST the password to the same URL instead.
#[utoipa::path(get, path = "/s/{token}", tag = "sharing",
    params(("token" = String, Path, description = "The link's token (id and signature)")),
    responses(
        (status = 200, description = "The file", content(
            (String = "application/pdf"), (String = "image/png"), (String = "image/jpeg"),
            (String = "image/gif"), (String = "image/tiff"), (String = "image/webp"),
            (String = "application/zip"), (String = "application/x-ole-storage"),
            (String = "text/plain"), (String = "application/octet-stream"))),
        (status = 401, description = "The link needs its password (POST it)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such link (or a forged one)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "The link was revoked, expired, used up, or its document deleted", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn shared(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    method: Method,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Problem> {
    shared_download(&state, &client, &method, &headers, &token, None).await
}

/// Downloads a shared document whose link has a password, given as the form field
/// `password` (`application/x-www-form-urlencoded`).
#[utoipa::path(post, path = "/s/{token}", tag = "sharing",
    params(("token" = String, Path, description = "The link's token (id and signature)")),
    request_body(content = SharePassword, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The file", content(
            (String = "application/pdf"), (String = "image/png"), (String = "image/jpeg"),
            (String = "image/gif"), (String = "image/tiff"), (String = "image/webp"),
            (String = "application/zip"), (String = "application/x-ole-storage"),
            (String = "text/plain"), (String = "application/octet-stream"))),
        (status = 401, description = "Wrong or missing password", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such link (or a forged one)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "The link was revoked, expired, used up, or its document deleted", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this link", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn shared_with_password(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    method: Method,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let password = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    shared_download(&state, &client, &method, &headers, &token, Some(password)).await
}

/// The form of a password-protected share link.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct SharePassword {
    /// The link's password.
    password: String,
}

async fn shared_download(
    state: &AppState,
    client: &str,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
    password: Option<String>,
) -> Result<Response, Problem> {
    let storage = storage(state)?;
    let no_link = || Problem::not_found("share link");
    let id = state.share_signer.verify(token).ok_or_else(no_link)?;
    let share = state.store.share_by_id(id).await?.ok_or_else(no_link)?;
    let now = unix_now();
    match share_status(&share, now) {
        "revoked" => return Err(Problem::gone("this link was revoked")),
        "expired" => return Err(Problem::gone("this link has expired")),
        "used_up" => return Err(Problem::gone("this link has reached its download limit")),
        _ => {}
    }
    if let Some(hash) = &share.password_hash {
        let Some(given) = password.filter(|p| !p.is_empty()) else {
            return Err(Problem::unauthorized(
                "this link needs its password: POST it to this URL as the form field password",
            ));
        };
        let key = format!("share-password:{}", share.id);
        let policy = state.config.limits.login_failures_per_account;
        state
            .limiter
            .refuse_if_locked(&key, policy, now, "wrong passwords for this link")
            .await?;
        let checking = state.clone();
        let hash = hash.clone();
        let right = super::blocking(move || checking.passwords.verify(&given, Some(&hash))).await?;
        if !right {
            state.limiter.hit(&key, policy, now).await;
            return Err(Problem::unauthorized("wrong password for this link"));
        }
    }
    let tenant = state.store.tenant_by_id(&share.org_id);
    let doc = tenant
        .document(&share.document_id)
        .await?
        .filter(|d| d.deleted_at.is_none())
        .ok_or_else(|| Problem::gone("the shared document was deleted"))?;
    let number = share.version_number.unwrap_or(doc.version_count);
    let version = tenant
        .document_version(&doc.id, number)
        .await?
        .ok_or_else(|| Problem::gone("the shared version no longer exists"))?;
    let response = file_headers(&version, false, "no-store")
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, version.size as u64);
    if method == Method::HEAD {
        return response
            .body(Body::empty())
            .map_err(|e| Problem::internal(&e));
    }
    if !tenant.take_share_download(&share.id, now).await? {
        return Err(Problem::gone("this link has reached its download limit"));
    }
    let stream = storage
        .read(&version.object_key, None)
        .await
        .map_err(|e| Problem::internal(&e))?;
    tenant
        .record_access(&AccessEntry {
            document_id: doc.id.clone(),
            version_number: Some(version.number),
            action: "downloaded".to_owned(),
            actor_id: None,
            share_id: Some(share.id.clone()),
            ip: client.to_owned(),
            user_agent: user_agent(headers),
            at_ms: unix_now_ms(),
        })
        .await?;
    response
        .body(Body::from_stream(stream))
        .map_err(|e| Problem::internal(&e))
}

/// A version's text as extracted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TextView {
    /// `pending`, `running`, `done` or `failed`.
    status: String,
    /// How it was got: `text` (a text file), `pdf_text` (a PDF's text layer), `ocr`
    /// (Tesseract on an image or a scanned PDF) or `none` (a type with no text).
    method: Option<String>,
    /// Pages read.
    pages: Option<i64>,
    /// The text (null until done).
    text: Option<String>,
    /// Why the last attempt failed.
    error: Option<String>,
    /// Attempts made.
    attempts: i64,
    /// Unix seconds.
    updated_at: i64,
}

/// A version's extracted text, with where its extraction is (a background job: text
/// files and PDF text layers take moments, OCR longer).
#[utoipa::path(get, path = "/documents/{id}/versions/{number}/text", tag = "documents", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Document id"),
        ("number" = i64, Path, description = "Version number"),
    ),
    responses(
        (status = 200, description = "The text and its status", body = TextView),
        (status = 404, description = "No such document or version that you may see", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn text(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, number)): Path<(String, i64)>,
) -> Result<Json<TextView>, Problem> {
    let tenant = principal.tenant(&state.store);
    let doc = visible(&tenant, &principal, &id, false).await?;
    let version = tenant
        .document_version(&doc.id, number)
        .await?
        .ok_or_else(|| Problem::not_found("version"))?;
    let t = tenant
        .version_text(&version.id)
        .await?
        .ok_or_else(|| Problem::not_found("version text"))?;
    Ok(Json(TextView {
        status: t.status,
        method: t.method,
        pages: t.pages,
        text: t.text,
        error: t.error,
        attempts: t.attempts,
        updated_at: t.updated_at,
    }))
}

/// What to search for.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    /// The words (1–500 characters), matched in titles, tags and the current version's
    /// extracted text, in any form of the word (`closing` finds `closed`). Every word
    /// must be there; `"two words"` is a phrase, `a OR b` either, `-word` excludes,
    /// `title:word` / `tags:word` / `text:word` look in one field, `word^2` weighs more.
    #[param(min_length = 1, max_length = 500, pattern = r"\S")]
    q: String,
    /// Only of this type.
    kind: Option<DocumentKind>,
    /// Only with this tag (exactly).
    tag: Option<String>,
    /// Only about this contact.
    contact_id: Option<String>,
    /// Only this homeowner's (a homeowner always searches only their own).
    owner_user_id: Option<String>,
    /// How many hits (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Hits to skip (0–10000; the previous page's `next_offset`).
    #[param(minimum = 0, maximum = 10000)]
    offset: Option<i64>,
}

/// A highlighted fragment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct HighlightView {
    /// `title` or `text`.
    field: String,
    /// The fragment, plain text.
    fragment: String,
    /// The fragment as HTML (escaped), the matched words in `<mark>`.
    html: String,
    /// Where the matched words are in `fragment`: [start, end) character offsets.
    ranges: Vec<[usize; 2]>,
}

/// One hit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SearchHitView {
    /// The document.
    document: DocumentView,
    /// Fragments of the title and text where the words are.
    highlights: Vec<HighlightView>,
}

/// A page of hits, best first (BM25 relevance, titles weighing 3× and tags 2× the
/// text).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SearchPage {
    /// Matching documents in all (a change made in the last moments may not be counted
    /// yet).
    total: usize,
    /// This page's hits.
    hits: Vec<SearchHitView>,
    /// Pass as `offset` for the next page; null on the last.
    next_offset: Option<i64>,
}

/// Full-text search of the documents the caller may see: titles, tags and extracted
/// text, ranked by relevance, with highlighted fragments. The index follows the store
/// within moments of a change (`GET /documents/search/status` says how far it is).
#[utoipa::path(get, path = "/documents/search", tag = "documents", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of hits", body = SearchPage),
        (status = 403, description = "A homeowner asked for someone else's documents", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is missing, unknown or out of range (named in the detail)", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn search(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<SearchQuery>,
) -> Result<Json<SearchPage>, Problem> {
    storage(&state)?;
    let words = q.q.trim();
    if words.is_empty() || words.chars().count() > 500 {
        return Err(Problem::invalid("q: must be 1–500 characters"));
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Problem::invalid("limit: must be between 1 and 100"));
    }
    let offset = q.offset.unwrap_or(0);
    if !(0..=10_000).contains(&offset) {
        return Err(Problem::invalid("offset: must be between 0 and 10000"));
    }
    let owner = whose(&principal, q.owner_user_id)?;
    let request = crate::search::SearchRequest {
        org: principal.org_id.clone(),
        owner,
        contact: q.contact_id,
        kind: q.kind.map(|k| k.as_str().to_owned()),
        tag: q.tag,
        q: words.to_owned(),
        limit: limit as usize,
        offset: offset as usize,
    };
    let index = state.search.clone();
    let found = super::blocking(move || index.search(&request))
        .await?
        .map_err(|e| Problem::internal(&e))?;
    // The store has the last word: a document changed since it was indexed is shown
    // as it is now, and one deleted or out of the caller's reach since is left out.
    let tenant = principal.tenant(&state.store);
    let ids: Vec<String> = found.hits.iter().map(|h| h.id.clone()).collect();
    let mut docs: std::collections::HashMap<String, Document> = tenant
        .documents_by_ids(&ids)
        .await?
        .into_iter()
        .filter(|d| d.deleted_at.is_none() && may_see(&principal, d))
        .map(|d| (d.id.clone(), d))
        .collect();
    let more = found.total > offset as usize + found.hits.len();
    let hits = found
        .hits
        .into_iter()
        .filter_map(|h| {
            let doc = docs.remove(&h.id)?;
            Some(SearchHitView {
                document: doc.into(),
                highlights: h
                    .highlights
                    .into_iter()
                    .map(|x| HighlightView {
                        field: x.field.to_owned(),
                        fragment: x.fragment,
                        html: x.html,
                        ranges: x.ranges.into_iter().map(|(a, b)| [a, b]).collect(),
                    })
                    .collect(),
            })
        })
        .collect();
    Ok(Json(SearchPage {
        total: found.total,
        hits,
        next_offset: more.then_some(offset + limit),
    }))
}

/// How far the search index is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SearchStatus {
    /// The organization's documents the index holds.
    documents: usize,
    /// The organization's document changes the index has yet to apply (0: searches
    /// see every change).
    pending_changes: i64,
    /// Whether the index is being rebuilt from the store (searches see the previous
    /// index until it is done).
    rebuilding: bool,
    /// When it last caught up with the store (unix seconds; null: not yet since start).
    synced_at: Option<i64>,
}

/// How far this server's search index is behind the organization's documents
/// (agents and above).
#[utoipa::path(get, path = "/documents/search/status", tag = "documents", security(("bearer" = [])),
    responses(
        (status = 200, description = "Where the index is", body = SearchStatus),
        (status = 403, description = "Not an agent or above", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn search_status(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<SearchStatus>, Problem> {
    principal.require(Role::Agent)?;
    storage(&state)?;
    let progress = state.search.progress();
    let pending_changes = principal
        .tenant(&state.store)
        .document_changes_since(progress.applied)
        .await?;
    let index = state.search.clone();
    let org = principal.org_id.clone();
    let documents = super::blocking(move || index.documents_of(&org))
        .await?
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(SearchStatus {
        documents,
        pending_changes,
        rebuilding: progress.rebuilding,
        synced_at: progress.synced_at,
    }))
}
