//! Document search latency over `DOCS` documents' text (default 100,000), all in one
//! organization (the heaviest case: no tenant filter narrows the work).
//!
//! The corpus: typed real-estate documents (nine kinds, each with its own opening
//! phrases), an address and names, then about 200 words drawn from a vocabulary of
//! real-estate and everyday words with Zipf frequencies; about 1.5 KB of text each.
//! The same corpus is stored in ROI's store (rows written straight into the SQLite file
//! of a stopped `roi serve`, as if uploaded and extracted) and in PostgreSQL.
//!
//! ROI: `roi serve` is started on that store, rebuilds its search index from the
//! documents (timed), then answers `GET /documents/search` one request at a time over
//! loopback: top 20 with highlights, each hit read back from the store.
//!
//! The peer, in the same run: PostgreSQL full-text search on the same texts (a stored,
//! weighted `tsvector` of title, tags and text with a GIN index; `websearch_to_tsquery`,
//! which like ROI needs every word and reads `"…"` as a phrase; `ts_rank` for the top 20,
//! the total count, and `ts_headline` for their highlights), one query at a time from
//! this process. The peer has no HTTP, authentication or permission checks to pay for.
//!
//! Queries (`QUERIES`, default 500, after 50 unmeasured): 40% one common word, 30% two
//! words from one document, 15% a phrase of two neighbouring words of one document, 15%
//! a house number and street name. Query words are never PostgreSQL stop words, so that
//! both sides look for the same words.
//!
//! Usage: `benches/search.sh [DOCS] [QUERIES]`, which builds the release binary.
//! PostgreSQL comes from `BENCH_POSTGRES_URL` (default the test server's).

use std::time::{Duration, Instant};

mod support;
use support::start;

const WORDS: &str = "the of and to a in for is on that by this with be as at from or are \
an will any all such may not shall if which under have has other each its been than date \
property borrower lender seller buyer loan payment interest rate escrow title insurance \
policy deed grantor grantee parcel county recorder closing disclosure estimate cost fee \
tax assessment appraisal value market comparable sale inspection roof foundation water \
heater furnace electrical plumbing window door kitchen bath bedroom garage basement attic \
association dues assessment reserve budget meeting board member owner tenant lease rent \
deposit mortgage principal balance term month year annual monthly premium coverage \
dwelling liability deductible claim hazard flood zone survey boundary easement lien \
encumbrance exception schedule commitment endorsement notary acknowledgment signature \
witness agreement contract addendum contingency financing approval condition repair \
credit amount total cash funds wire transfer account bank statement income employment \
verification credit score debt ratio points origination charge recording transfer \
stamp prorated settlement agent broker commission listing offer acceptance possession \
keys utilities hoa covenant restriction pets parking fence pool landscaping snow trash \
noise quiet hours architectural review approval paint exterior improvement permit code \
compliance zoning setback lot acre square feet footage bedrooms bathrooms stories built \
renovated updated condition average good excellent fair poor adjustment location view \
site design quality age effective economic remaining life cost approach income approach \
reconciliation opinion certify intended user scope assignment neighborhood trend stable \
increasing declining supply demand marketing time median price range predominant";

const STREETS: [&str; 24] = [
    "maple",
    "oak",
    "cedar",
    "elm",
    "pine",
    "walnut",
    "birch",
    "willow",
    "lincoln",
    "washington",
    "jefferson",
    "grand",
    "lake",
    "river",
    "hill",
    "park",
    "church",
    "school",
    "mill",
    "spring",
    "prairie",
    "meadow",
    "orchard",
    "harbor",
];
const SUFFIXES: [&str; 5] = ["street", "avenue", "drive", "court", "lane"];
const CITIES: [&str; 8] = [
    "ames",
    "nevada",
    "boone",
    "ankeny",
    "huxley",
    "gilbert",
    "story city",
    "slater",
];
const NAMES: [&str; 16] = [
    "hana", "omar", "lucia", "wei", "priya", "james", "sofia", "mateo", "amara", "noah", "ingrid",
    "tomas", "keiko", "ravi", "elena", "marcus",
];
const KINDS: [(&str, &str, &str); 9] = [
    (
        "closing_disclosure",
        "Closing Disclosure",
        "closing disclosure loan terms projected payments costs at closing cash to close",
    ),
    (
        "deed",
        "Warranty Deed",
        "warranty deed the grantor hereby conveys and warrants to the grantee",
    ),
    (
        "title_policy",
        "Owner's Title Policy",
        "owner's policy of title insurance schedule a schedule b exceptions from coverage",
    ),
    (
        "inspection_report",
        "Home Inspection Report",
        "home inspection report the inspector observed the following conditions",
    ),
    (
        "appraisal",
        "Appraisal Report",
        "uniform residential appraisal report the appraiser's opinion of market value",
    ),
    (
        "hoa",
        "HOA Documents",
        "declaration of covenants conditions and restrictions homeowners association",
    ),
    (
        "insurance",
        "Homeowners Insurance",
        "homeowners insurance declarations page dwelling coverage personal liability",
    ),
    (
        "tax_statement",
        "Property Tax Statement",
        "property tax statement taxable value levy installment due",
    ),
    (
        "other",
        "Notes",
        "notes from the closing appointment and follow up items",
    ),
];

/// xorshift64*: a fast, seeded, repeatable stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Word ranks drawn with Zipf frequencies (s = 1).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let last = *self.cumulative.last().unwrap_or(&1.0);
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * last;
        self.cumulative.partition_point(|&c| c < x)
    }
}

struct Doc {
    id: String,
    kind: &'static str,
    title: String,
    tags: Vec<String>,
    text: String,
}

fn corpus(n: usize) -> Vec<Doc> {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let zipf = Zipf::new(words.len());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let (kind, title, opening) = KINDS[rng.below(KINDS.len())];
            let number = 100 + rng.below(9_900);
            let street = format!("{} {}", rng.pick(&STREETS), rng.pick(&SUFFIXES));
            let city = rng.pick(&CITIES);
            let mut text = format!(
                "{opening}. {number} {street}, {city}. prepared for {} {} and {} {}.",
                rng.pick(&NAMES),
                rng.pick(&NAMES),
                rng.pick(&NAMES),
                rng.pick(&NAMES)
            );
            let length = 120 + rng.below(160);
            for w in 0..length {
                text.push(if w % 17 == 0 { '.' } else { ' ' });
                if w % 17 == 0 {
                    text.push(' ');
                }
                text.push_str(words[zipf.sample(&mut rng)]);
            }
            text.push('.');
            Doc {
                id: format!("doc_bench{i:07}"),
                kind,
                title: format!("{title} {number} {street}"),
                tags: vec![city.to_owned(), format!("{}", 2000 + rng.below(25))],
                text,
            }
        })
        .collect()
}

/// Words both engines search for: longer than three letters and not one of
/// PostgreSQL's English stop words (which it drops from a query, so that the two would
/// do different work).
fn searchable(word: &str) -> bool {
    const STOP: [&str; 24] = [
        "will", "which", "have", "from", "that", "this", "with", "been", "than", "such", "other",
        "each", "shall", "under", "there", "their", "these", "those", "what", "when", "where",
        "were", "into", "only",
    ];
    word.chars().count() > 3 && !STOP.contains(&word)
}

fn queries(docs: &[Doc], n: usize) -> Vec<String> {
    let common: Vec<&str> = WORDS
        .split_whitespace()
        .filter(|w| searchable(w))
        .take(150)
        .collect();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    (0..n)
        .map(|i| {
            let doc = &docs[rng.below(docs.len())];
            let tokens: Vec<&str> = doc
                .text
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .filter(|t| !t.is_empty())
                .collect();
            let words: Vec<&str> = tokens.iter().copied().filter(|t| searchable(t)).collect();
            match i % 20 {
                0..8 => common[rng.below(common.len())].to_owned(),
                8..14 => format!(
                    "{} {}",
                    words[rng.below(words.len())],
                    words[rng.below(words.len())]
                ),
                14..17 => {
                    // Two neighbouring words of the text, both searchable.
                    let pairs: Vec<(&str, &str)> = tokens
                        .windows(2)
                        .filter(|p| searchable(p[0]) && searchable(p[1]))
                        .map(|p| (p[0], p[1]))
                        .collect();
                    let (a, b) = pairs[rng.below(pairs.len())];
                    format!("\"{a} {b}\"")
                }
                _ => {
                    let t: Vec<&str> = doc.title.split_whitespace().collect();
                    format!("{} {}", t[t.len() - 3], t[t.len() - 2])
                }
            }
        })
        .collect()
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn at(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e3
    }

    fn mean(&self) -> f64 {
        self.0.iter().map(Duration::as_secs_f64).sum::<f64>() / self.0.len() as f64 * 1e3
    }
}

/// Writes the corpus into ROI's store as uploaded and extracted documents.
async fn fill_store(url: &str, org: &str, user: &str, docs: &[Doc]) {
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(url)
        .await
        .expect("the ROI store");
    let mut tx = db.begin().await.expect("begin");
    let now = 1_767_225_600_i64;
    for (i, d) in docs.iter().enumerate() {
        let version = format!("ver_{}", &d.id[4..]);
        let tags = serde_json::to_string(&d.tags).expect("tags");
        sqlx::query(
            "INSERT INTO documents (id, org_id, kind, kind_source, title, tags, version_count,
                created_by, created_at, updated_at) VALUES (?, ?, ?, 'classifier', ?, ?, 1, ?, ?, ?)",
        )
        .bind(&d.id)
        .bind(org)
        .bind(d.kind)
        .bind(&d.title)
        .bind(&tags)
        .bind(user)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("a document");
        sqlx::query(
            "INSERT INTO document_versions (id, org_id, document_id, number, object_key, size,
                sha256, content_type, filename, uploaded_by, created_at)
             VALUES (?, ?, ?, 1, ?, ?, '', 'text/plain', 'doc.txt', ?, ?)",
        )
        .bind(&version)
        .bind(org)
        .bind(&d.id)
        .bind(format!("org/{org}/doc/{}/{version}", d.id))
        .bind(d.text.len() as i64)
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("a version");
        sqlx::query(
            "INSERT INTO document_texts (version_id, org_id, document_id, status, method, text,
                pages, attempts, due_at, created_at, updated_at)
             VALUES (?, ?, ?, 'done', 'text', ?, 1, 1, ?, ?, ?)",
        )
        .bind(&version)
        .bind(org)
        .bind(&d.id)
        .bind(&d.text)
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("a text");
        sqlx::query(
            "INSERT INTO document_changes (seq, org_id, document_id, at) VALUES (?, ?, ?, ?)",
        )
        .bind(i as i64 + 1)
        .bind(org)
        .bind(&d.id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("a change");
    }
    sqlx::query("UPDATE document_change_counter SET value = ? WHERE id = 1")
        .bind(docs.len() as i64)
        .execute(&mut *tx)
        .await
        .expect("the counter");
    tx.commit().await.expect("commit");
}

/// Loads the corpus into a new PostgreSQL database; returns its pool and the seconds
/// taken (insert, then the GIN index).
async fn fill_postgres(base: &str, name: &str, docs: &[Doc]) -> (sqlx::PgPool, f64) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(base).await.expect("PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create");
    let url = format!(
        "{}/{name}",
        &base[..base.rfind('/').expect("a database in the URL")]
    );
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    sqlx::query(
        "CREATE TABLE docs (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, title TEXT NOT NULL,
            tags TEXT NOT NULL, body TEXT NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english', title), 'A') ||
                setweight(to_tsvector('english', tags), 'B') ||
                to_tsvector('english', body)) STORED)",
    )
    .execute(&pool)
    .await
    .expect("table");
    let started = Instant::now();
    for chunk in docs.chunks(2_000) {
        let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
        let titles: Vec<&str> = chunk.iter().map(|d| d.title.as_str()).collect();
        let tags: Vec<String> = chunk.iter().map(|d| d.tags.join(" ")).collect();
        let bodies: Vec<&str> = chunk.iter().map(|d| d.text.as_str()).collect();
        sqlx::query(
            "INSERT INTO docs (id, org_id, title, tags, body)
             SELECT id, 'org_bench', title, tags, body
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, title, tags, body)",
        )
        .bind(&ids)
        .bind(&titles)
        .bind(&tags)
        .bind(&bodies)
        .execute(&pool)
        .await
        .expect("insert");
    }
    sqlx::query("CREATE INDEX docs_tsv ON docs USING GIN (tsv)")
        .execute(&pool)
        .await
        .expect("index");
    sqlx::query("ANALYZE docs")
        .execute(&pool)
        .await
        .expect("analyze");
    (pool, started.elapsed().as_secs_f64())
}

const PEER_SQL: &str = "WITH q AS (SELECT websearch_to_tsquery('english', $1) AS q),
    hits AS (
        SELECT d.id, d.body, ts_rank(d.tsv, q.q) AS rank, COUNT(*) OVER () AS total
        FROM docs d, q WHERE d.org_id = $2 AND d.tsv @@ q.q
        ORDER BY rank DESC LIMIT 20)
    SELECT h.id, h.rank, h.total, ts_headline('english', h.body, q.q,
        'MaxFragments=1, MaxWords=35, MinWords=15, StartSel=<mark>, StopSel=</mark>') AS fragment
    FROM hits h, q ORDER BY h.rank DESC";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n_docs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let n_queries: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let roi = std::env::var("BENCH_ROI_BIN").unwrap_or_else(|_| "target/release/roi".into());
    let postgres = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("roi");
    let serve = || {
        let mut command = std::process::Command::new(&roi);
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("ROI_DATA_DIR", &data)
            .env("ROI_SERVE__DOCUMENTS__EXTRACTION__ENABLED", "false");
        start(command, "http://")
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let docs = corpus(n_docs);
        let asks = queries(&docs, n_queries + 50);
        let mb = docs.iter().map(|d| d.text.len()).sum::<usize>() as f64 / 1e6;
        println!("corpus: {n_docs} documents, {mb:.0} MB of text, one organization");

        // An organization and its owner, then the documents written into the store.
        let (org, user) = {
            let (server, addr) = serve();
            let signup = support::sign_up(&client, &format!("http://{addr}")).await;
            drop(server);
            (
                signup["user"]["organization_id"].as_str().expect("org").to_owned(),
                signup["user"]["id"].as_str().expect("user").to_owned(),
            )
        };
        let url = format!("sqlite://{}", data.join("roi.db").display());
        fill_store(&url, &org, &user, &docs).await;

        // ROI: rebuild the index from the store, then search.
        let started = Instant::now();
        let (_server, addr) = serve();
        let base = format!("http://{addr}");
        let login: serde_json::Value = client
            .post(format!("{base}/auth/login"))
            .json(&serde_json::json!({"organization": "bench", "email": "owner@bench.test",
                "password": "correct horse battery staple"}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let token = login["access_token"].as_str().expect("a token").to_owned();
        let deadline = Instant::now() + Duration::from_secs(540);
        loop {
            let r = client
                .get(format!("{base}/documents/search/status"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("status");
            assert_eq!(r.status(), 200, "the index status");
            let status: serde_json::Value = r.json().await.expect("json");
            if status["documents"] == n_docs && status["pending_changes"] == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the index is not built: {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let roi_indexing = started.elapsed().as_secs_f64();
        let mut roi = Latencies(Vec::new());
        let mut roi_hits = 0;
        for (i, q) in asks.iter().enumerate() {
            let started = Instant::now();
            let r = client
                .get(format!("{base}/documents/search"))
                .query(&[("q", q.as_str()), ("limit", "20")])
                .bearer_auth(&token)
                .send()
                .await
                .expect("search");
            assert_eq!(r.status(), 200, "{q}");
            let page: serde_json::Value = r.json().await.expect("json");
            let took = started.elapsed();
            if i >= 50 {
                roi.0.push(took);
                roi_hits += page["total"].as_u64().unwrap_or(0);
            }
        }

        // The peer.
        let name = format!("roi_bench_search_{}", std::process::id());
        let (pool, pg_indexing) = fill_postgres(&postgres, &name, &docs).await;
        let mut pg = Latencies(Vec::new());
        let mut pg_hits = 0;
        for (i, q) in asks.iter().enumerate() {
            let started = Instant::now();
            let rows = sqlx::query(PEER_SQL)
                .bind(q)
                .bind("org_bench")
                .fetch_all(&pool)
                .await
                .expect("peer search");
            let took = started.elapsed();
            if i >= 50 {
                pg.0.push(took);
                pg_hits += rows
                    .first()
                    .map_or(0, |r| sqlx::Row::get::<i64, _>(r, "total") as u64);
            }
        }

        println!(
            "{n_queries} queries, top 20 with highlights, one at a time ({} before them unmeasured)",
            50
        );
        println!(
            "{:<34} {:>8} {:>8} {:>8} {:>8} {:>8} {:>11}",
            "", "mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean total"
        );
        for (name, l, hits) in [
            ("roi GET /documents/search (HTTP)", &roi, roi_hits),
            ("postgres full-text search (SQL)", &pg, pg_hits),
        ] {
            println!(
                "{:<34} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>11.0}",
                name,
                l.mean(),
                l.at(0.5),
                l.at(0.9),
                l.at(0.99),
                l.at(1.0),
                hits as f64 / n_queries as f64
            );
        }
        println!(
            "p99 ratio (postgres / roi): {:.2}x; p50 ratio: {:.2}x",
            pg.at(0.99) / roi.at(0.99),
            pg.at(0.5) / roi.at(0.5)
        );
        println!(
            "indexing: roi rebuilt its index from the store in {roi_indexing:.1} s (start included, {:.0} docs/s); \
             postgres insert + GIN index in {pg_indexing:.1} s ({:.0} docs/s)",
            n_docs as f64 / roi_indexing,
            n_docs as f64 / pg_indexing
        );
        pool.close().await;
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&postgres)
            .await
            .expect("PostgreSQL");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .expect("drop the peer's database");
    });
}
