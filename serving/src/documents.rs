//! Documents' bytes: where they are stored (a local directory or any S3-compatible
//! store, through `object_store`), how an upload is streamed into storage while it is
//! hashed and its type sniffed from its first bytes, and how a download's `Range` header
//! is read.
//!
//! Object keys are made by the server (`org/ORG/doc/DOC/VERSION`), never from a name a
//! client sends, so no upload can choose or escape its path.

use std::ops::Range;
use std::sync::Arc;

use axum::body::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `[serve.documents]`: where documents are stored and for how long deleted ones stay.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    /// `file:///ABSOLUTE/DIR` (a local directory, created if missing) or
    /// `s3://BUCKET[/PREFIX]` (see `s3`). Unset: documents are off, and their endpoints
    /// answer 503 naming this key. `roi serve` defaults it to `<data_dir>/documents`.
    pub storage: Option<String>,
    /// Largest upload, in mebibytes.
    pub max_upload_mb: u64,
    /// Days a deleted document is kept (restorable) before an admin purge removes it.
    pub retention_days: u64,
    /// S3 settings; each unset one falls back to the usual `AWS_*` environment variables.
    pub s3: S3Config,
    /// Text extraction and OCR (`[serve.documents.extraction]`).
    pub extraction: crate::extract::ExtractionConfig,
    /// Full-text search (`[serve.documents.search]`).
    pub search: crate::search::SearchConfig,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            storage: None,
            max_upload_mb: 100,
            retention_days: 30,
            s3: S3Config::default(),
            extraction: crate::extract::ExtractionConfig::default(),
            search: crate::search::SearchConfig::default(),
        }
    }
}

/// `[serve.documents.s3]`: reaching an S3-compatible store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The service's URL (`http://127.0.0.1:9000` for a local MinIO or moto); unset means
    /// AWS itself.
    pub endpoint: Option<String>,
    /// Region, e.g. `us-east-1`.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Whether a plain `http://` endpoint is allowed.
    pub allow_http: bool,
}

impl DocumentsConfig {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10_240).contains(&self.max_upload_mb) {
            return Err("serve.documents.max_upload_mb: must be between 1 and 10240".to_owned());
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err("serve.documents.retention_days: must be between 1 and 3650".to_owned());
        }
        if let Some(url) = &self.storage {
            Location::parse(url).map_err(|why| format!("serve.documents.storage: {why}"))?;
        }
        self.extraction.validate()?;
        self.search.validate()
    }

    /// A copy with the S3 secret masked, for showing.
    pub fn masked(&self) -> DocumentsConfig {
        let mut c = self.clone();
        if c.s3.secret_access_key.is_some() {
            c.s3.secret_access_key = Some("****".to_owned());
        }
        c
    }

    /// The largest upload, in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb * 1024 * 1024
    }
}

/// Where the bytes go, parsed from `storage`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Local(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    fn parse(url: &str) -> Result<Location, String> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{url:?}: a file URL needs an absolute path (file:///var/roi/documents)"
                ));
            }
            return Ok(Location::Local(path.into()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{url:?}: name the bucket (s3://BUCKET[/PREFIX])"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        Err(format!(
            "{url:?}: use file:///ABSOLUTE/DIR or s3://BUCKET[/PREFIX]"
        ))
    }
}

/// The document store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    objects: Arc<dyn ObjectStore>,
    /// What the configuration named (for messages).
    pub described: String,
}

/// A failure of the object store, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("document storage ({store}) failed while {context}: {source}")]
pub struct StorageError {
    store: String,
    context: &'static str,
    source: object_store::Error,
}

/// What an upload wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The object's key.
    pub key: String,
    /// Bytes written.
    pub size: u64,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// The media type sniffed from the first bytes.
    pub content_type: &'static str,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body is larger than the configured limit.
    #[error("the file is larger than the {limit_mb} MiB this server accepts")]
    TooLarge {
        /// The limit.
        limit_mb: u64,
    },
    /// The body is empty.
    #[error("the file is empty")]
    Empty,
    /// The bytes are a program, whatever the file is called.
    #[error("the file is an executable ({0}); documents cannot be programs, whatever their name")]
    Executable(&'static str),
    /// Reading the client's body failed.
    #[error("reading the upload: {0}")]
    Body(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Bytes sniffed before anything is written: enough for every signature below.
const SNIFF_BYTES: usize = 512;
/// Parts of a multipart upload (S3's minimum is 5 MiB), and uploads in flight per file.
const PART_BYTES: usize = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 4;

impl Storage {
    /// Opens the configured store (creating a local directory if missing).
    pub fn open(config: &DocumentsConfig) -> Result<Option<Storage>, String> {
        let Some(url) = &config.storage else {
            return Ok(None);
        };
        let objects: Arc<dyn ObjectStore> = match Location::parse(url)? {
            Location::Local(dir) => {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    format!(
                        "serve.documents.storage: cannot create {}: {e}",
                        dir.display()
                    )
                })?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| format!("serve.documents.storage: {}: {e}", dir.display()))?;
                Arc::new(fs)
            }
            Location::S3 { bucket, prefix } => {
                let s3 = &config.s3;
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_allow_http(s3.allow_http);
                if let Some(v) = &s3.endpoint {
                    builder = builder.with_endpoint(v);
                }
                if let Some(v) = &s3.region {
                    builder = builder.with_region(v);
                }
                if let Some(v) = &s3.access_key_id {
                    builder = builder.with_access_key_id(v);
                }
                if let Some(v) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(v);
                }
                let store = builder
                    .build()
                    .map_err(|e| format!("serve.documents.s3: {e}"))?;
                if prefix.is_empty() {
                    Arc::new(store)
                } else {
                    Arc::new(PrefixStore::new(store, prefix.as_str()))
                }
            }
        };
        Ok(Some(Storage {
            objects,
            described: url.clone(),
        }))
    }

    fn failed(&self, context: &'static str) -> impl FnOnce(object_store::Error) -> StorageError {
        let store = self.described.clone();
        move |source| StorageError {
            store,
            context,
            source,
        }
    }

    /// The key of a version's bytes.
    pub fn key_for(org_id: &str, document_id: &str, version_id: &str) -> String {
        format!("org/{org_id}/doc/{document_id}/{version_id}")
    }

    /// Streams `chunks` into a new object at `key`, hashing them and sniffing their type;
    /// refuses (and removes what was written) past `limit` bytes or when empty.
    pub async fn upload<S, E>(
        &self,
        key: &str,
        mut chunks: S,
        limit: u64,
    ) -> Result<Stored, UploadError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        let path = ObjectPath::from(key);
        let upload = self
            .objects
            .put_multipart(&path)
            .await
            .map_err(self.failed("starting an upload"))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
        let mut size = 0u64;
        let outcome: Result<(), UploadError> = async {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(UploadError::TooLarge {
                        limit_mb: limit / (1024 * 1024),
                    });
                }
                if head.len() < SNIFF_BYTES {
                    let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                    // Refused before any part is written (a part is 5 MiB).
                    if head.len() == SNIFF_BYTES
                        && let Some(kind) = executable(&head)
                    {
                        return Err(UploadError::Executable(kind));
                    }
                }
                hash.update(&chunk);
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(self.failed("uploading a part"))?;
                writer.put(chunk);
            }
            if size == 0 {
                return Err(UploadError::Empty);
            }
            if let Some(kind) = executable(&head) {
                return Err(UploadError::Executable(kind));
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(key, error = %abort, "aborting a refused upload");
            }
            return Err(e);
        }
        writer
            .finish()
            .await
            .map_err(self.failed("finishing an upload"))?;
        Ok(Stored {
            key: key.to_owned(),
            size,
            sha256: crate::auth::secret::hex(hash.finish().as_ref()),
            content_type: sniff(&head),
        })
    }

    /// The bytes of `key` in `range` (all of it when None), as a stream.
    pub async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>, StorageError>
    {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self
            .objects
            .get_opts(&ObjectPath::from(key), options)
            .await
            .map_err(self.failed("reading a document"))?;
        match got.payload {
            // object_store reads a local file 8 KiB per blocking task; reading it here in
            // large chunks moves the bytes several times faster.
            object_store::GetResultPayload::File(file, _) => Ok(file_stream(file, got.range)),
            object_store::GetResultPayload::Stream(stream) => Ok(stream),
        }
    }

    /// Copies the object at `key` into the file `path`, streaming.
    pub async fn download_to(&self, key: &str, path: &std::path::Path) -> Result<(), String> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut stream = self.read(key, None).await.map_err(|e| e.to_string())?;
        let io = |e: std::io::Error| format!("writing {}: {e}", path.display());
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.failed("reading a document")(e).to_string())?;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }

    /// Removes `key`; an object already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.objects.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("deleting a document")(e)),
        }
    }

    /// Whether `key` exists.
    #[cfg(test)]
    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.objects.head(&ObjectPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed("looking up a document")(e)),
        }
    }
}

/// What kind of program a file is, from its first bytes; None when it is not one.
pub fn executable(head: &[u8]) -> Option<&'static str> {
    const PROGRAMS: &[(&[u8], &str)] = &[
        (b"\x7fELF", "ELF"),
        (b"\xfe\xed\xfa\xce", "Mach-O"),
        (b"\xfe\xed\xfa\xcf", "Mach-O"),
        (b"\xce\xfa\xed\xfe", "Mach-O"),
        (b"\xcf\xfa\xed\xfe", "Mach-O"),
        (b"\xca\xfe\xba\xbe", "Mach-O universal or Java class"),
        (b"#!", "script"),
        (b"\0asm", "WebAssembly"),
    ];
    // A DOS/PE header is binary right after its "MZ"; text that starts with "MZ" is not.
    if head.starts_with(b"MZ") && head.iter().take(64).any(|&b| b == 0) {
        return Some("Windows PE");
    }
    PROGRAMS
        .iter()
        .find(|(sig, _)| head.starts_with(sig))
        .map(|(_, kind)| *kind)
}

/// Bytes read from a local file per chunk of a download.
const READ_CHUNK: usize = 256 * 1024;

/// The bytes of `range` of an open file, as a stream of large chunks.
fn file_stream(
    file: std::fs::File,
    range: Range<u64>,
) -> futures_util::stream::BoxStream<'static, object_store::Result<Bytes>> {
    use futures_util::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let failed = |e: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    };
    let start = futures_util::stream::once(async move {
        let mut file = tokio::fs::File::from_std(file);
        file.seek(std::io::SeekFrom::Start(range.start))
            .await
            .map(|_| (file, range.end - range.start))
    });
    start
        .map(move |opened| {
            let state = opened.map_err(failed).map(Some);
            futures_util::stream::unfold(state, move |state| async move {
                let (mut file, left) = match state {
                    Ok(Some(open)) => open,
                    Ok(None) => return None,
                    Err(e) => return Some((Err(e), Ok(None))),
                };
                if left == 0 {
                    return None;
                }
                let want = (left as usize).min(READ_CHUNK);
                let mut buf = vec![0u8; want];
                let mut filled = 0;
                while filled < want {
                    match file.read(&mut buf[filled..]).await {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) => return Some((Err(failed(e)), Ok(None))),
                    }
                }
                if filled == 0 {
                    let short = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file is shorter than its recorded size",
                    );
                    return Some((Err(failed(short)), Ok(None)));
                }
                buf.truncate(filled);
                let left = left - filled as u64;
                Some((Ok(Bytes::from(buf)), Ok(Some((file, left)))))
            })
        })
        .flatten()
        .boxed()
}

/// The media type of a file from its first bytes. Only types this server can vouch for
/// are named; text is `text/plain` whatever markup it holds (never HTML, so a stored
/// file cannot run script in the server's origin), and anything else is
/// `application/octet-stream`.
pub fn sniff(head: &[u8]) -> &'static str {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"II*\0", "image/tiff"),
        (b"MM\0*", "image/tiff"),
        (b"PK\x03\x04", "application/zip"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "application/x-ole-storage",
        ),
    ];
    if let Some((_, kind)) = SIGNATURES.iter().find(|(sig, _)| head.starts_with(sig)) {
        return kind;
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return "image/webp";
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let printable = text
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c));
    // The head may end inside a multi-byte character: only its last three bytes may be
    // an incomplete sequence.
    let utf8 = match std::str::from_utf8(text) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && text.len() - e.valid_up_to() < 4,
    };
    if !text.is_empty() && printable && utf8 {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// Signs share links: a link carries its share's id and an HMAC-SHA256 of it under the
/// server's own key, so a link cannot be made up or altered (the row decides whether it
/// still works: revoked, expired, used up).
#[derive(Clone)]
pub struct ShareSigner {
    key: ring::hmac::Key,
    base: String,
}

impl std::fmt::Debug for ShareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareSigner")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ShareSigner {
    /// A signer with `secret`, making links under `base_url`.
    pub fn new(secret: &[u8], base_url: &str) -> ShareSigner {
        ShareSigner {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The link's token: `ID.SIGNATURE`.
    pub fn token(&self, share_id: &str) -> String {
        use base64::Engine;
        let tag = ring::hmac::sign(&self.key, share_id.as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
        format!("{share_id}.{sig}")
    }

    /// The whole link.
    pub fn url(&self, share_id: &str) -> String {
        format!("{}/s/{}", self.base, self.token(share_id))
    }

    /// The share id of a token whose signature is right; None for a forged one.
    pub fn verify<'t>(&self, token: &'t str) -> Option<&'t str> {
        use base64::Engine;
        let (id, sig) = token.rsplit_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .ok()?;
        ring::hmac::verify(&self.key, id.as_bytes(), &tag).ok()?;
        Some(id)
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAsk {
    /// No range, or one this server answers with the whole file (several ranges, or a
    /// unit other than bytes): 200.
    Whole,
    /// One satisfiable range: 206 with these bytes.
    Part(Range<u64>),
    /// Not satisfiable: 416.
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 §14.2) for a file of `size` bytes. A malformed
/// header is ignored (the whole file is sent), as the RFC allows.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let range = match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => {
            let Some(n) = number(last) else {
                return RangeAsk::Whole;
            };
            if n == 0 || size == 0 {
                return RangeAsk::Unsatisfiable;
            }
            size.saturating_sub(n)..size
        }
        (false, _) => {
            let Some(start) = number(first) else {
                return RangeAsk::Whole;
            };
            let end = if last.is_empty() {
                size
            } else {
                let Some(end) = number(last) else {
                    return RangeAsk::Whole;
                };
                if end < start {
                    return RangeAsk::Whole;
                }
                end.saturating_add(1).min(size)
            };
            if start >= size {
                return RangeAsk::Unsatisfiable;
            }
            start..end
        }
        (true, true) => return RangeAsk::Whole,
    };
    RangeAsk::Part(range)
}

/// A document's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// The closing disclosure of a purchase or refinance.
    ClosingDisclosure,
    /// A deed.
    Deed,
    /// An owner's or lender's title insurance policy.
    TitlePolicy,
    /// A home inspection report.
    InspectionReport,
    /// An appraisal.
    Appraisal,
    /// Homeowners' association papers.
    Hoa,
    /// Homeowner's insurance.
    Insurance,
    /// A property tax statement.
    TaxStatement,
    /// Anything else.
    Other,
}

impl DocumentKind {
    /// Every kind.
    pub const ALL: [DocumentKind; 9] = [
        DocumentKind::ClosingDisclosure,
        DocumentKind::Deed,
        DocumentKind::TitlePolicy,
        DocumentKind::InspectionReport,
        DocumentKind::Appraisal,
        DocumentKind::Hoa,
        DocumentKind::Insurance,
        DocumentKind::TaxStatement,
        DocumentKind::Other,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::ClosingDisclosure => "closing_disclosure",
            DocumentKind::Deed => "deed",
            DocumentKind::TitlePolicy => "title_policy",
            DocumentKind::InspectionReport => "inspection_report",
            DocumentKind::Appraisal => "appraisal",
            DocumentKind::Hoa => "hoa",
            DocumentKind::Insurance => "insurance",
            DocumentKind::TaxStatement => "tax_statement",
            DocumentKind::Other => "other",
        }
    }
}

impl std::str::FromStr for DocumentKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocumentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = DocumentKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("{s:?} is not a document kind (one of {})", names.join(", "))
            })
    }
}

/// A file name as a client sent it, made safe to keep and to send back in a
/// `Content-Disposition` header: the last path segment, control characters removed,
/// at most 200 characters; `document` when nothing is left.
pub fn clean_filename(raw: Option<&str>) -> String {
    let last = raw
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>();
    let trimmed = last.trim().trim_start_matches('.');
    if trimmed.is_empty() {
        "document".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `Content-Disposition` for a download: RFC 6266 with an ASCII fallback name and the
/// UTF-8 name percent-encoded (RFC 8187).
pub fn content_disposition(inline: bool, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), "image/jpeg");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(
            sniff("Closing on 5 May — café".as_bytes()),
            "text/plain; charset=utf-8"
        );
        // Markup is text, never HTML.
        assert_eq!(
            sniff(b"<html><script>alert(1)</script>"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff(b"\0\x01\x02binary"), "application/octet-stream");
        assert_eq!(sniff(b""), "application/octet-stream");
        assert_eq!(executable(b"\x7fELF\x02\x01"), Some("ELF"));
        assert_eq!(executable(b"MZ\x90\0"), Some("Windows PE"));
        assert_eq!(executable(b"#!/bin/sh\nrm -rf /"), Some("script"));
        assert_eq!(executable(b"%PDF-1.7"), None);
        assert_eq!(executable(b"MZ Smith: inspection notes"), None);
        // A head cut inside a multi-byte character is still text.
        let cut = &"ab€".as_bytes()[..4];
        assert_eq!(sniff(cut), "text/plain; charset=utf-8");
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeAsk::*;
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Part(0..10));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Part(90..100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Part(90..100));
        assert_eq!(parse_range(Some("bytes=-500"), 100), Part(0..100));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Part(50..100));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=9-2"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=x-2"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=-"), 100), Whole);
    }

    #[test]
    fn file_names_cannot_carry_paths_or_break_headers() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_filename(Some("C:\\docs\\deed.pdf")), "deed.pdf");
        assert_eq!(clean_filename(Some("..")), "document");
        assert_eq!(clean_filename(Some("a\r\nb.pdf")), "ab.pdf");
        assert_eq!(clean_filename(None), "document");
        assert_eq!(
            content_disposition(false, "Acte de vente é.pdf"),
            "attachment; filename=\"Acte de vente _.pdf\"; filename*=UTF-8''Acte%20de%20vente%20%C3%A9.pdf"
        );
        assert!(content_disposition(true, "a\"b").starts_with("inline; filename=\"a_b\""));
    }

    #[test]
    fn share_links_are_signed() {
        let signer = ShareSigner::new(b"k1", "https://roi.test/");
        let url = signer.url("shr_abc");
        assert!(url.starts_with("https://roi.test/s/shr_abc."), "{url}");
        let token = signer.token("shr_abc");
        assert_eq!(signer.verify(&token), Some("shr_abc"));
        let forged = token.replace("shr_abc", "shr_abd");
        assert_eq!(signer.verify(&forged), None);
        assert_eq!(signer.verify("shr_abc"), None);
        assert_eq!(signer.verify("shr_abc.!!"), None);
        let other = ShareSigner::new(b"k2", "https://roi.test");
        assert_eq!(other.verify(&token), None);
    }

    #[test]
    fn storage_urls_are_checked() {
        assert_eq!(
            Location::parse("s3://docs/roi/prod/").expect("s3"),
            Location::S3 {
                bucket: "docs".into(),
                prefix: "roi/prod".into()
            }
        );
        assert!(Location::parse("file://relative").is_err());
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("/var/docs").is_err());
        let c = DocumentsConfig {
            max_upload_mb: 0,
            ..DocumentsConfig::default()
        };
        assert!(c.validate().expect_err("zero").contains("max_upload_mb"));
    }

    #[tokio::test]
    async fn uploads_are_hashed_sniffed_and_limited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&DocumentsConfig {
            storage: Some(format!("file://{}", dir.path().display())),
            ..DocumentsConfig::default()
        })
        .expect("open")
        .expect("configured");
        let body = b"%PDF-1.4 hello".to_vec();
        let chunks = futures_util::stream::iter(
            body.chunks(3)
                .map(|c| Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        let stored = storage
            .upload("org/o/doc/d/v1", chunks, 1024)
            .await
            .expect("upload");
        assert_eq!(stored.size, body.len() as u64);
        assert_eq!(stored.content_type, "application/pdf");
        let expected = ring::digest::digest(&ring::digest::SHA256, &body);
        assert_eq!(stored.sha256, crate::auth::secret::hex(expected.as_ref()));
        assert!(storage.exists("org/o/doc/d/v1").await.expect("head"));
        let too_big = futures_util::stream::iter(vec![Ok::<_, std::convert::Infallible>(
            Bytes::from(vec![b'a'; 2048]),
        )]);
        let e = storage
            .upload("org/o/doc/d/v2", too_big, 1024)
            .await
            .expect_err("too large");
        assert!(matches!(e, UploadError::TooLarge { .. }), "{e}");
        assert!(!storage.exists("org/o/doc/d/v2").await.expect("head"));
        let empty =
            futures_util::stream::iter(Vec::<Result<Bytes, std::convert::Infallible>>::new());
        let e = storage
            .upload("org/o/doc/d/v3", empty, 1024)
            .await
            .expect_err("empty");
        assert!(matches!(e, UploadError::Empty), "{e}");
    }
}
