//! Full-text search of documents: titles, tags and the current version's extracted
//! text, ranked by relevance with highlighted fragments.
//!
//! Each serving process keeps its own index (tantivy), derived from the store and never
//! the other way round. It follows the store's document change log
//! ([`Store::document_changes_after`]): changes commit in number order, so an index that
//! has applied change N has seen every change up to N, and that number is saved with
//! each index commit. An index that is new, of another format, or left behind the oldest
//! change the log still keeps is rebuilt from the documents themselves. Changes made by
//! this process are indexed at once; other replicas' within `poll_ms`.
//!
//! One index holds every organization's documents. Every search is confined to the
//! caller's organization (and to a homeowner's own documents) by required filter terms
//! the server adds, whatever the query says; the routes then read the hits back from the
//! store under the same rules before answering.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyError, Term};

use crate::store::{IndexableDocument, Store};

/// What is indexed and how; an index saved in another format is rebuilt.
const FORMAT: u32 = 1;

/// Documents read from the store per round trip while indexing.
const BATCH: i64 = 250;

/// Characters of a field that highlights are looked for in (the rest is still searched).
const SNIPPET_SCAN_CHARS: usize = 100_000;

/// `[serve.documents.search]`: the full-text index of documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Directory of this server's index (created if missing; one per server process).
    /// Unset: the index is kept in memory and rebuilt from the store at each start.
    /// `roi serve` defaults it to `<data_dir>/search`.
    pub path: Option<PathBuf>,
    /// Milliseconds between looks for changes made by other servers.
    pub poll_ms: u64,
    /// Memory the indexer may fill before it writes a segment, in mebibytes (16–4000).
    pub writer_memory_mb: u64,
    /// Longest part of a version's text that is indexed, in thousands of characters.
    pub max_text_kchars: u64,
    /// Days the store keeps the document change log; a server down for longer rebuilds
    /// its index when it comes back.
    pub keep_changes_days: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            path: None,
            poll_ms: 1_000,
            writer_memory_mb: 64,
            max_text_kchars: 1_000,
            keep_changes_days: 7,
        }
    }
}

impl SearchConfig {
    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let key = "serve.documents.search";
        if !(10..=600_000).contains(&self.poll_ms) {
            return Err(format!("{key}.poll_ms: must be between 10 and 600000"));
        }
        if !(16..=4096).contains(&self.writer_memory_mb) {
            return Err(format!(
                "{key}.writer_memory_mb: must be between 16 and 4096"
            ));
        }
        if !(1..=100_000).contains(&self.max_text_kchars) {
            return Err(format!(
                "{key}.max_text_kchars: must be between 1 and 100000"
            ));
        }
        if !(1..=3650).contains(&self.keep_changes_days) {
            return Err(format!(
                "{key}.keep_changes_days: must be between 1 and 3650"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    org: Field,
    owner: Field,
    contact: Field,
    kind: Field,
    tag: Field,
    title: Field,
    tags: Field,
    text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let words = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        org: b.add_text_field("org", STRING),
        owner: b.add_text_field("owner", STRING),
        contact: b.add_text_field("contact", STRING),
        kind: b.add_text_field("kind", STRING),
        tag: b.add_text_field("tag", STRING),
        title: b.add_text_field("title", words.clone()),
        tags: b.add_text_field("tags", words.clone()),
        text: b.add_text_field("text", words),
    };
    (b.build(), fields)
}

/// What a commit saves beside the index.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    format: u32,
    applied: i64,
}

/// Where an index is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last change of the store's log it holds.
    pub applied: i64,
    /// When it last caught up with the store (unix seconds).
    pub synced_at: Option<i64>,
    /// Whether it is being rebuilt from the documents (searches see the old index until
    /// the rebuild commits).
    pub rebuilding: bool,
}

/// What one [`SearchIndex::sync`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Whether the index was rebuilt from the documents.
    pub rebuilt: bool,
    /// Documents (re)indexed.
    pub documents: usize,
    /// Changes of the log applied.
    pub changes: usize,
}

/// A search, confined to one organization.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The caller's organization (always required).
    pub org: String,
    /// Only this homeowner's documents (always set for a homeowner caller).
    pub owner: Option<String>,
    /// Only about this contact.
    pub contact: Option<String>,
    /// Only of this type.
    pub kind: Option<String>,
    /// Only with this tag (exactly).
    pub tag: Option<String>,
    /// The words, in the query language (see the route's documentation).
    pub q: String,
    /// Hits wanted.
    pub limit: usize,
    /// Hits skipped.
    pub offset: usize,
}

/// A highlighted fragment of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlight {
    /// `title` or `text`.
    pub field: &'static str,
    /// The fragment, as plain text.
    pub fragment: String,
    /// The fragment as HTML (escaped), matches in `<mark>`.
    pub html: String,
    /// The matches in `fragment`, as [start, end) character offsets.
    pub ranges: Vec<(usize, usize)>,
}

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The document.
    pub id: String,
    /// Relevance (BM25); higher is better.
    pub score: f32,
    /// Fragments of the title and text where the words are.
    pub highlights: Vec<Highlight>,
}

/// A page of hits.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Every matching document, not only this page's.
    pub total: usize,
    /// Best first.
    pub hits: Vec<SearchHit>,
}

/// A server's document index.
pub struct SearchIndex {
    reader: IndexReader,
    parser: QueryParser,
    fields: Fields,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    progress: Mutex<Progress>,
    /// One sync at a time: two could commit an older read of a document after a newer.
    syncing: tokio::sync::Mutex<()>,
    config: SearchConfig,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("path", &self.config.path)
            .field("progress", &self.progress())
            .finish()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SearchIndex {
    /// Opens the index at `config.path` (creating it, or starting it afresh when it
    /// was made in another format), or a new one in memory.
    pub fn open(config: &SearchConfig) -> Result<SearchIndex, String> {
        config.validate()?;
        let (schema, fields) = schema();
        let index = match &config.path {
            None => Index::create_in_ram(schema.clone()),
            Some(dir) => open_dir(dir, &schema)?,
        };
        let at = || match &config.path {
            Some(dir) => format!("search index {}", dir.display()),
            None => "search index in memory".to_owned(),
        };
        let writer = index
            .writer_with_num_threads(1, (config.writer_memory_mb as usize) << 20)
            .map_err(|e| match e {
                TantivyError::LockFailure(..) => format!(
                    "{}: in use by another process (give each server its own \
                     serve.documents.search.path)",
                    at()
                ),
                e => format!("{}: {e}", at()),
            })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| format!("{}: opening a reader: {e}", at()))?;
        let applied = index
            .load_metas()
            .map_err(|e| format!("{}: {e}", at()))?
            .payload
            .and_then(|p| serde_json::from_str::<Payload>(&p).ok())
            .filter(|p| p.format == FORMAT)
            .map_or(0, |p| p.applied);
        let mut parser =
            QueryParser::for_index(&index, vec![fields.title, fields.tags, fields.text]);
        parser.set_conjunction_by_default();
        parser.set_field_boost(fields.title, 3.0);
        parser.set_field_boost(fields.tags, 2.0);
        Ok(SearchIndex {
            reader,
            parser,
            fields,
            writer: Mutex::new(writer),
            progress: Mutex::new(Progress {
                applied,
                ..Progress::default()
            }),
            syncing: tokio::sync::Mutex::new(()),
            config: config.clone(),
        })
    }

    /// Where the index is.
    pub fn progress(&self) -> Progress {
        *locked(&self.progress)
    }

    /// Brings the index up to date with the store: rebuilds it from the documents when
    /// it cannot follow the change log from where it is, then applies the changes after
    /// the last one it holds.
    pub async fn sync(self: &Arc<Self>, store: &Store) -> Result<SyncReport, String> {
        let _one = self.syncing.lock().await;
        let result = self.catch_up(store).await;
        if result.is_err() {
            // Drop what a failed round added but did not commit, so that no later commit
            // publishes half of it.
            let this = self.clone();
            if let Err(e) = blocking(move || {
                locked(&this.writer)
                    .rollback()
                    .map(drop)
                    .map_err(|e| format!("rolling the search index back: {e}"))
            })
            .await
            {
                tracing::error!(error = %e, "after a failed search index update");
            }
        } else {
            locked(&self.progress).synced_at = Some(crate::unix_now());
        }
        result
    }

    async fn catch_up(self: &Arc<Self>, store: &Store) -> Result<SyncReport, String> {
        let bounds = store
            .document_change_bounds()
            .await
            .map_err(|e| e.to_string())?;
        let applied = self.progress().applied;
        let behind = bounds.latest > applied;
        let gone = bounds.oldest.is_none_or(|oldest| oldest > applied + 1);
        let mut report = SyncReport::default();
        if applied > bounds.latest || (behind && (applied == 0 || gone)) {
            report.documents = self.rebuild(store, bounds.latest).await?;
            report.rebuilt = true;
        }
        let max_chars = self.max_chars();
        loop {
            let applied = self.progress().applied;
            let changes = store
                .document_changes_after(applied, BATCH)
                .await
                .map_err(|e| e.to_string())?;
            let (Some(&(first, _)), Some(&(last, _))) = (changes.first(), changes.last()) else {
                break;
            };
            if first != applied + 1 {
                // Another server pruned the log past this index since the bounds were
                // read: what is missing can only come from the documents.
                let latest = store
                    .document_change_bounds()
                    .await
                    .map_err(|e| e.to_string())?
                    .latest;
                report.documents = self.rebuild(store, latest).await?;
                report.rebuilt = true;
                continue;
            }
            report.changes += changes.len();
            let mut ids: Vec<String> = changes.into_iter().map(|(_, id)| id).collect();
            ids.sort_unstable();
            ids.dedup();
            let docs = store
                .indexable_documents(&ids, max_chars)
                .await
                .map_err(|e| e.to_string())?;
            report.documents += docs.iter().filter(|d| !d.deleted).count();
            let this = self.clone();
            blocking(move || {
                this.replace(&ids, docs)?;
                this.commit(last)
            })
            .await?;
        }
        Ok(report)
    }

    fn max_chars(&self) -> i64 {
        (self.config.max_text_kchars * 1_000) as i64
    }

    /// Indexes every live document afresh, as of change `through`.
    async fn rebuild(self: &Arc<Self>, store: &Store, through: i64) -> Result<usize, String> {
        locked(&self.progress).rebuilding = true;
        let result = async {
            tracing::info!(
                through,
                "rebuilding the document search index from the store"
            );
            let started = std::time::Instant::now();
            let this = self.clone();
            blocking(move || {
                let mut writer = locked(&this.writer);
                writer
                    .rollback()
                    .and_then(|_| writer.delete_all_documents())
                    .map(drop)
                    .map_err(|e| format!("clearing the search index: {e}"))
            })
            .await?;
            let mut after = String::new();
            let mut indexed = 0;
            loop {
                let page = store
                    .indexable_documents_page(&after, BATCH, self.max_chars())
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(last) = page.last() else {
                    break;
                };
                after = last.id.clone();
                indexed += page.len();
                let this = self.clone();
                blocking(move || this.replace(&[], page)).await?;
                if indexed % 20_000 < BATCH as usize {
                    tracing::info!(indexed, "rebuilding the document search index");
                }
            }
            let this = self.clone();
            blocking(move || this.commit(through)).await?;
            tracing::info!(
                indexed,
                secs = started.elapsed().as_secs_f64(),
                "rebuilt the document search index"
            );
            Ok(indexed)
        }
        .await;
        locked(&self.progress).rebuilding = false;
        result
    }

    /// Drops these documents from the index and adds the live ones of `docs`.
    fn replace(&self, ids: &[String], docs: Vec<IndexableDocument>) -> Result<(), String> {
        let f = self.fields;
        let writer = locked(&self.writer);
        for id in ids {
            writer.delete_term(Term::from_field_text(f.id, id));
        }
        for d in docs.into_iter().filter(|d| !d.deleted) {
            let mut doc = TantivyDocument::default();
            doc.add_text(f.id, &d.id);
            doc.add_text(f.org, &d.org_id);
            if let Some(owner) = &d.owner_user_id {
                doc.add_text(f.owner, owner);
            }
            if let Some(contact) = &d.contact_id {
                doc.add_text(f.contact, contact);
            }
            doc.add_text(f.kind, &d.kind);
            doc.add_text(f.title, &d.title);
            for tag in &d.tags {
                doc.add_text(f.tag, tag);
                doc.add_text(f.tags, tag);
            }
            if let Some(text) = &d.text {
                doc.add_text(f.text, text);
            }
            writer
                .add_document(doc)
                .map_err(|e| format!("indexing document {}: {e}", d.id))?;
        }
        Ok(())
    }

    /// Commits what was added, as holding the log up to change `applied`, and shows it
    /// to searches.
    fn commit(&self, applied: i64) -> Result<(), String> {
        let payload = serde_json::to_string(&Payload {
            format: FORMAT,
            applied,
        })
        .map_err(|e| e.to_string())?;
        {
            let mut writer = locked(&self.writer);
            let mut prepared = writer
                .prepare_commit()
                .map_err(|e| format!("committing the search index: {e}"))?;
            prepared.set_payload(&payload);
            prepared
                .commit()
                .map_err(|e| format!("committing the search index: {e}"))?;
        }
        self.reader
            .reload()
            .map_err(|e| format!("reloading the search index: {e}"))?;
        locked(&self.progress).applied = applied;
        Ok(())
    }

    /// How many of an organization's documents the index holds.
    pub fn documents_of(&self, org: &str) -> Result<usize, String> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.org, org),
            IndexRecordOption::Basic,
        );
        self.reader
            .searcher()
            .search(&query, &Count)
            .map_err(|e| format!("counting indexed documents: {e}"))
    }

    /// Runs a search (CPU-bound: call it off the async workers).
    pub fn search(&self, r: &SearchRequest) -> Result<Found, String> {
        let f = self.fields;
        let (words, _ignored) = self.parser.parse_query_lenient(&r.q);
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))
        };
        let mut clauses = vec![(Occur::Must, words), (Occur::Must, term(f.org, &r.org))];
        for (field, value) in [
            (f.owner, &r.owner),
            (f.contact, &r.contact),
            (f.kind, &r.kind),
            (f.tag, &r.tag),
        ] {
            if let Some(value) = value {
                clauses.push((Occur::Must, term(field, value)));
            }
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let failed = |e: TantivyError| format!("searching documents: {e}");
        let (top, total) = searcher
            .search(
                &query,
                &(
                    TopDocs::with_limit(r.limit.max(1))
                        .and_offset(r.offset)
                        .order_by_score(),
                    Count,
                ),
            )
            .map_err(failed)?;
        let mut generators = Vec::new();
        for (name, field, chars) in [("title", f.title, 200), ("text", f.text, 240)] {
            let mut g = SnippetGenerator::create(&searcher, &query, field).map_err(failed)?;
            g.set_max_num_chars(chars);
            generators.push((name, field, g));
        }
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(failed)?;
            let Some(id) = doc.get_first(f.id).and_then(|v| v.as_str()) else {
                continue;
            };
            let highlights = generators
                .iter()
                .filter_map(|&(name, field, ref g)| {
                    highlight(name, g.snippet(&field_text(&doc, field)))
                })
                .collect();
            hits.push(SearchHit {
                id: id.to_owned(),
                score,
                highlights,
            });
        }
        Ok(Found { total, hits })
    }

    /// Keeps the index up to date until the task is dropped: at once after this
    /// process changes a document, and every `poll_ms` for other servers' changes. Also
    /// prunes the store's change log past `keep_changes_days`.
    pub async fn run(self: Arc<Self>, store: Store) {
        let changed = store.document_changes();
        let poll = Duration::from_millis(self.config.poll_ms);
        let keep = self.config.keep_changes_days as i64 * 86_400;
        let mut pruned_at = 0;
        loop {
            match self.sync(&store).await {
                Ok(r) if r.changes > 0 || r.rebuilt => {
                    tracing::debug!(
                        changes = r.changes,
                        documents = r.documents,
                        "search index updated"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "updating the document search index"),
            }
            let now = crate::unix_now();
            if now - pruned_at >= 3_600 {
                pruned_at = now;
                match store.prune_document_changes(now - keep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(pruned = n, "pruned the document change log"),
                    Err(e) => tracing::error!(error = %e, "pruning the document change log"),
                }
            }
            tokio::select! {
                _ = changed.notified() => {
                    // Let a burst of changes gather into one commit.
                    tokio::time::sleep(poll.min(Duration::from_millis(50))).await;
                }
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Opens or creates the index in `dir`; an index with another schema is replaced.
fn open_dir(dir: &std::path::Path, schema: &Schema) -> Result<Index, String> {
    let at = format!("search index {}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| format!("{at}: creating the directory: {e}"))?;
    let open = || -> Result<Index, TantivyError> {
        let directory = MmapDirectory::open(dir).map_err(TantivyError::from)?;
        Index::open_or_create(directory, schema.clone())
    };
    match open() {
        Ok(index) => Ok(index),
        Err(TantivyError::SchemaError(_)) => {
            tracing::warn!(path = %dir.display(), "the search index has another schema; starting it afresh");
            std::fs::remove_dir_all(dir)
                .map_err(|e| format!("{at}: removing the old index: {e}"))?;
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("{at}: creating the directory: {e}"))?;
            open().map_err(|e| format!("{at}: {e}"))
        }
        Err(e) => Err(format!("{at}: {e}")),
    }
}

/// A stored field's text, at most [`SNIPPET_SCAN_CHARS`] of it.
fn field_text(doc: &TantivyDocument, field: Field) -> String {
    let mut text = String::new();
    for value in doc.get_all(field).filter_map(|v| v.as_str()) {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(value);
    }
    match text.char_indices().nth(SNIPPET_SCAN_CHARS) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text,
    }
}

/// A snippet as a highlight; None when no word of the query is in it.
fn highlight(field: &'static str, mut snippet: tantivy::snippet::Snippet) -> Option<Highlight> {
    if snippet.highlighted().is_empty() {
        return None;
    }
    let fragment = snippet.fragment();
    let chars = |byte: usize| fragment[..byte].chars().count();
    let ranges = snippet
        .highlighted()
        .iter()
        .map(|r| (chars(r.start), chars(r.end)))
        .collect();
    let fragment = fragment.to_owned();
    snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
    Some(Highlight {
        field,
        html: snippet.to_html(),
        fragment,
        ranges,
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the search indexer stopped: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, org: &str, owner: Option<&str>, title: &str, text: &str) -> IndexableDocument {
        IndexableDocument {
            id: id.to_owned(),
            org_id: org.to_owned(),
            owner_user_id: owner.map(str::to_owned),
            contact_id: None,
            kind: "other".to_owned(),
            title: title.to_owned(),
            tags: vec!["Closing 2024".to_owned()],
            deleted: false,
            updated_at: 0,
            text: Some(text.to_owned()),
        }
    }

    fn ask(org: &str, q: &str) -> SearchRequest {
        SearchRequest {
            org: org.to_owned(),
            q: q.to_owned(),
            limit: 10,
            ..SearchRequest::default()
        }
    }

    #[test]
    fn searches_stay_in_their_organization_and_mark_the_words() {
        let index = SearchIndex::open(&SearchConfig::default()).expect("in memory");
        index
            .replace(
                &[],
                vec![
                    doc(
                        "d1",
                        "org_a",
                        Some("u1"),
                        "Deed",
                        "Ünter den Linden — the grantor conveys parcel 9.",
                    ),
                    doc(
                        "d2",
                        "org_a",
                        Some("u2"),
                        "Survey",
                        "The surveyor marked the parcel corners.",
                    ),
                    doc(
                        "d3",
                        "org_b",
                        None,
                        "Deed",
                        "Another grantor, another parcel.",
                    ),
                ],
            )
            .expect("index");
        index.commit(3).expect("commit");
        assert_eq!(index.progress().applied, 3);

        let found = index.search(&ask("org_a", "grantor")).expect("search");
        assert_eq!(found.total, 1);
        let hit = &found.hits[0];
        assert_eq!(hit.id, "d1");
        let text = hit
            .highlights
            .iter()
            .find(|h| h.field == "text")
            .expect("a text highlight");
        // Character offsets, after the multi-byte letters before the word.
        let (start, end) = text.ranges[0];
        let word: String = text
            .fragment
            .chars()
            .skip(start)
            .take(end - start)
            .collect();
        assert_eq!(word, "grantor");
        assert!(text.html.contains("<mark>grantor</mark>"), "{}", text.html);

        // Required filters: organization, owner; a query naming other fields cannot
        // widen them.
        let mut theirs = ask("org_a", "parcel");
        theirs.owner = Some("u2".to_owned());
        let found = index.search(&theirs).expect("search");
        assert_eq!(
            found.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["d2"]
        );
        let found = index
            .search(&ask("org_b", "parcel OR org:org_a OR owner:u1"))
            .expect("search");
        assert_eq!(
            found.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["d3"]
        );
        let mut tagged = ask("org_a", "parcel");
        tagged.tag = Some("Closing 2024".to_owned());
        assert_eq!(index.search(&tagged).expect("search").total, 2);
        tagged.tag = Some("closing".to_owned());
        assert_eq!(
            index.search(&tagged).expect("search").total,
            0,
            "tags match exactly"
        );
        // Tags are searchable words too.
        assert_eq!(
            index
                .search(&ask("org_b", "closing"))
                .expect("search")
                .total,
            1
        );

        // Replacing drops the old form; a deleted document is not added back.
        let mut gone = doc("d1", "org_a", Some("u1"), "Deed", "");
        gone.deleted = true;
        index
            .replace(&["d1".to_owned()], vec![gone])
            .expect("replace");
        index.commit(4).expect("commit");
        assert_eq!(
            index
                .search(&ask("org_a", "grantor"))
                .expect("search")
                .total,
            0
        );
        assert_eq!(index.documents_of("org_a").expect("count"), 1);

        // Whatever a user types searches what it can, and answers.
        for q in [
            "a:(^", "title:(", "\"open", "((((", "*", "^2", "-", "OR", "AND AND", "[1 TO",
            "parcel~2", "text:\"a", "é\u{0}",
        ] {
            index
                .search(&ask("org_a", q))
                .unwrap_or_else(|e| panic!("{q:?}: {e}"));
        }
    }

    #[test]
    fn bad_settings_are_named() {
        SearchConfig::default().validate().expect("defaults");
        let c = SearchConfig {
            writer_memory_mb: 1,
            ..SearchConfig::default()
        };
        assert!(
            c.validate()
                .expect_err("memory")
                .contains("writer_memory_mb")
        );
    }
}
