//! Documents end to end, against local storage and a real S3-compatible server (moto,
//! from PyPI, on loopback) with the same suite: streamed uploads with sniffing and
//! checksums, server-made keys, versions and restore, range and cached downloads,
//! who may see what, soft delete and purge, the access log and the pipeline events.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Reply, TestApp};
use roi_serving::config::ServeConfig;
use roi_serving::documents::DocumentsConfig;
use roi_serving::store::{ContactAttributes, SyncContact};
use serde_json::{Value, json};

const BOUNDARY: &str = "roi-test-boundary-7MA4YWxkTrZu0gW";
const AGENT: &str = "documents-test-agent/1.0";

/// A `multipart/form-data` body: text fields, then an optional file part
/// (name, claimed type, bytes).
fn form(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((filename, claimed, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {claimed}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn send_form(app: &TestApp, path: &str, token: &str, body: Vec<u8>) -> Reply {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    app.send_with(
        "POST",
        path,
        Some(token),
        &[("content-type", &content_type), ("user-agent", AGENT)],
        body,
    )
    .await
}

async fn download(app: &TestApp, path: &str, token: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("user-agent", AGENT)];
    all.extend_from_slice(headers);
    app.call_with("GET", path, Some(token), None, &all).await
}

fn sha256_hex(bytes: &[u8]) -> String {
    roi_serving::auth::secret::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Where the suite's documents are stored, and how it lists what is there.
enum Backing {
    Local(tempfile::TempDir),
    S3(Moto),
}

impl Backing {
    /// Every stored object's key.
    async fn objects(&self) -> Vec<String> {
        match self {
            Backing::Local(dir) => {
                let mut keys = Vec::new();
                walk(dir.path(), dir.path(), &mut keys);
                keys.sort();
                keys
            }
            Backing::S3(moto) => moto.keys().await,
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let key = path.strip_prefix(root).expect("under root");
            out.push(key.to_string_lossy().into_owned());
        }
    }
}

/// A real S3-compatible server (moto, from PyPI; `scripts/test` installs it) on a
/// loopback port with one bucket; killed on drop.
struct Moto {
    port: u16,
    child: Child,
}

const BUCKET: &str = "roi-documents";

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    async fn start() -> Moto {
        let port = common::smtp::free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (scripts/test installs moto[server] from PyPI)");
        let moto = Moto { port, child };
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // moto accepts unsigned requests: make the bucket the suite stores into.
            let made = client
                .put(format!("http://127.0.0.1:{port}/{BUCKET}"))
                .send()
                .await;
            if made.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto did not start on port {port} (is it installed? pip install 'moto[server]')"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    async fn keys(&self) -> Vec<String> {
        let xml = reqwest::get(format!(
            "http://127.0.0.1:{}/{BUCKET}?list-type=2",
            self.port
        ))
        .await
        .expect("list the bucket")
        .text()
        .await
        .expect("listing");
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    fn config(&self, max_upload_mb: u64) -> DocumentsConfig {
        let mut c = DocumentsConfig {
            storage: Some(format!("s3://{BUCKET}/tenants")),
            max_upload_mb,
            ..DocumentsConfig::default()
        };
        c.s3.endpoint = Some(format!("http://127.0.0.1:{}", self.port));
        c.s3.region = Some("us-east-1".to_owned());
        c.s3.access_key_id = Some("testing".to_owned());
        c.s3.secret_access_key = Some("testing".to_owned());
        c.s3.allow_http = true;
        c
    }
}

/// The application under test, its storage and the event log it writes.
struct Docs {
    app: TestApp,
    backing: Backing,
    events: PathBuf,
    _events_dir: tempfile::TempDir,
}

#[derive(Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

async fn docs(db: Db, s3: bool) -> Docs {
    docs_with(db, s3, |_| {}).await
}

async fn docs_with(db: Db, s3: bool, tweak: impl FnOnce(&mut ServeConfig)) -> Docs {
    let events_dir = tempfile::tempdir().expect("tempdir");
    let events = events_dir.path().join("events.ndjson");
    let (backing, documents) = if s3 {
        let moto = Moto::start().await;
        let config = moto.config(1);
        (Backing::S3(moto), config)
    } else {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = DocumentsConfig {
            storage: Some(format!("file://{}", dir.path().display())),
            max_upload_mb: 1,
            ..DocumentsConfig::default()
        };
        (Backing::Local(dir), config)
    };
    let mut config = ServeConfig {
        documents,
        ..ServeConfig::default()
    };
    config.campaigns.events_path = Some(events.clone());
    tweak(&mut config);
    let app = match db {
        Db::Sqlite => common::sqlite_with(config).await,
        Db::Postgres => common::postgres_with(config).await,
    };
    Docs {
        app,
        backing,
        events,
        _events_dir: events_dir,
    }
}

fn event_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event is JSON"))
        .collect()
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";

/// The whole suite, on whichever storage `d` has.
async fn suite(d: &Docs) {
    let app = &d.app;
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    let owner_token = owner.str("/access_token");
    let org_id = owner.str("/user/organization_id");
    app.sync_contacts(
        "acme",
        &[SyncContact {
            lake_contact_id: 4242,
            email: "hana@home.test".to_owned(),
            first_name: "Hana".to_owned(),
            last_name: "Owner".to_owned(),
            opted_in: true,
            attributes: ContactAttributes::default(),
            values: Vec::new(),
        }],
        &[],
    )
    .await;
    let hana = app
        .invite_and_accept(&owner_token, "hana@home.test", "homeowner")
        .await;
    let hana_token = hana.str("/access_token");
    let hana_id = hana.str("/user/id");
    let other = app
        .invite_and_accept(&owner_token, "omar@home.test", "homeowner")
        .await;
    let other_token = other.str("/access_token");
    let agent = app
        .invite_and_accept(&owner_token, "agent@acme.test", "agent")
        .await;
    let agent_token = agent.str("/access_token");

    // A homeowner uploads: the type comes from the bytes, not the client's claim, and the
    // client's file name cannot choose where the bytes go.
    let made = send_form(
        app,
        "/documents",
        &hana_token,
        form(
            &[
                ("title", "Warranty deed"),
                ("kind", "deed"),
                ("tags", "closing, 2024,closing"),
            ],
            Some(("../../etc/deed.pdf", "text/html", PDF)),
        ),
    )
    .await
    .expect(201);
    let doc_id = made.str("/document/id");
    assert_eq!(made.json["document"]["owner_user_id"], hana_id.as_str());
    assert!(
        made.json["document"]["contact_id"].is_string(),
        "{}",
        made.text
    );
    assert_eq!(made.json["document"]["kind"], "deed");
    assert_eq!(made.json["document"]["tags"], json!(["closing", "2024"]));
    let v1 = &made.json["versions"][0];
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["content_type"], "application/pdf");
    assert_eq!(v1["claimed_type"], "text/html");
    assert_eq!(v1["filename"], "deed.pdf");
    assert_eq!(v1["size"], PDF.len());
    assert_eq!(v1["sha256"], sha256_hex(PDF).as_str());
    let keys = d.backing.objects().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let prefix = match &d.backing {
        Backing::Local(_) => format!("org/{org_id}/doc/{doc_id}/ver_"),
        Backing::S3(_) => format!("tenants/org/{org_id}/doc/{doc_id}/ver_"),
    };
    assert!(keys[0].starts_with(&prefix), "{keys:?} vs {prefix}");

    // Whole download: bytes, sniffed type, checksum ETag, cacheable for good (a version
    // never changes), a safe file name, and nothing of it may run as a page.
    let v1_url = format!("/documents/{doc_id}/versions/1/content");
    let got = download(app, &v1_url, &hana_token, &[]).await.expect(200);
    assert_eq!(got.bytes, PDF);
    assert_eq!(got.header("content-type"), "application/pdf");
    let etag = format!("\"{}\"", sha256_hex(PDF));
    assert_eq!(got.header("etag"), etag);
    assert_eq!(got.header("accept-ranges"), "bytes");
    assert!(got.header("cache-control").contains("immutable"));
    assert!(got.header("last-modified").ends_with("GMT"));
    assert!(
        got.header("content-disposition")
            .starts_with("attachment; filename=\"deed.pdf\"")
    );
    assert!(got.header("content-security-policy").contains("sandbox"));

    // Ranges: first bytes, last bytes, and one past the end.
    let part = download(app, &v1_url, &hana_token, &[("range", "bytes=0-3")])
        .await
        .expect(206);
    assert_eq!(part.bytes, b"%PDF");
    let size = PDF.len();
    assert_eq!(part.header("content-range"), format!("bytes 0-3/{size}"));
    let tail = download(app, &v1_url, &hana_token, &[("range", "bytes=-6")])
        .await
        .expect(206);
    assert_eq!(tail.bytes, &PDF[size - 6..]);
    let past = download(
        app,
        &v1_url,
        &hana_token,
        &[("range", &format!("bytes={size}-"))],
    )
    .await
    .expect_problem(416, "outside");
    assert_eq!(past.header("content-range"), format!("bytes */{size}"));
    // A resumed download whose file changed (another ETag) gets the whole file.
    let changed = download(
        app,
        &v1_url,
        &hana_token,
        &[("range", "bytes=0-3"), ("if-range", "\"elsewhere\"")],
    )
    .await
    .expect(200);
    assert_eq!(changed.bytes, PDF);
    // Revalidation: the same ETag answers 304 with no body.
    let same = download(app, &v1_url, &hana_token, &[("if-none-match", &etag)])
        .await
        .expect(304);
    assert!(same.bytes.is_empty());

    // Viewing inline is a view; the homeowner's own views and downloads become events.
    download(
        app,
        &format!("{v1_url}?disposition=inline"),
        &hana_token,
        &[],
    )
    .await
    .expect(200);

    // A new version becomes current; the first stays downloadable.
    let text = "Inspection notes: roof replaced 2019.\n".as_bytes();
    let v2 = send_form(
        app,
        &format!("/documents/{doc_id}/versions"),
        &hana_token,
        form(&[], Some(("notes.txt", "application/pdf", text))),
    )
    .await
    .expect(201);
    assert_eq!(v2.json["number"], 2);
    assert_eq!(v2.json["content_type"], "text/plain; charset=utf-8");
    let current = download(
        app,
        &format!("/documents/{doc_id}/content"),
        &hana_token,
        &[],
    )
    .await
    .expect(200);
    assert_eq!(current.bytes, text);
    assert_eq!(current.header("cache-control"), "private, no-cache");
    download(app, &v1_url, &hana_token, &[]).await.expect(200);

    // Restoring version 1 makes version 3 over the same bytes.
    let v3 = app
        .call_with(
            "POST",
            &format!("/documents/{doc_id}/versions/1/restore"),
            Some(&hana_token),
            None,
            &[("user-agent", AGENT)],
        )
        .await
        .expect(201);
    assert_eq!(v3.json["number"], 3);
    assert_eq!(v3.json["restored_from"], 1);
    assert_eq!(v3.json["sha256"], sha256_hex(PDF).as_str());
    let current = download(
        app,
        &format!("/documents/{doc_id}/content"),
        &hana_token,
        &[],
    )
    .await
    .expect(200);
    assert_eq!(current.bytes, PDF);
    let detail = app
        .get(&format!("/documents/{doc_id}"), Some(&hana_token))
        .await
        .expect(200);
    assert_eq!(detail.json["document"]["version_count"], 3);
    assert_eq!(detail.json["versions"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        d.backing.objects().await.len(),
        2,
        "a restore stores nothing new"
    );

    // Who may see it: the homeowner and the organization's staff; not another homeowner,
    // not another organization.
    app.get(&format!("/documents/{doc_id}"), Some(&agent_token))
        .await
        .expect(200);
    app.get(&format!("/documents/{doc_id}"), Some(&other_token))
        .await
        .expect_problem(404, "document");
    download(app, &v1_url, &other_token, &[])
        .await
        .expect_problem(404, "document");
    let theirs = app.get("/documents", Some(&other_token)).await.expect(200);
    assert_eq!(theirs.json["documents"], json!([]));
    app.get(
        &format!("/documents?owner_user_id={hana_id}"),
        Some(&other_token),
    )
    .await
    .expect_problem(403, "own");
    let rival = app.signup("rival", "owner@rival.test").await;
    let rival_token = rival.str("/access_token");
    app.get(&format!("/documents/{doc_id}"), Some(&rival_token))
        .await
        .expect_problem(404, "document");
    let staff = app.get("/documents", Some(&agent_token)).await.expect(200);
    assert_eq!(staff.json["documents"][0]["id"], doc_id.as_str());
    // An agent's download is logged but is not the homeowner's behaviour.
    download(app, &v1_url, &agent_token, &[]).await.expect(200);

    // A homeowner cannot file a document as someone else's.
    send_form(
        app,
        "/documents",
        &other_token,
        form(
            &[("owner_user_id", &hana_id)],
            Some(("x.pdf", "application/pdf", PDF)),
        ),
    )
    .await
    .expect_problem(403, "owner_user_id");

    // Refusals leave no bytes behind.
    let before = d.backing.objects().await;
    let big = vec![b'a'; 1024 * 1024 + 1];
    send_form(
        app,
        "/documents",
        &hana_token,
        form(
            &[("title", "Too big")],
            Some(("big.txt", "text/plain", &big)),
        ),
    )
    .await
    .expect_problem(413, "1 MiB");
    send_form(
        app,
        "/documents",
        &hana_token,
        form(&[], Some(("empty.pdf", "application/pdf", b""))),
    )
    .await
    .expect_problem(422, "empty");
    send_form(
        app,
        "/documents",
        &hana_token,
        form(
            &[("kind", "novel")],
            Some(("x.pdf", "application/pdf", PDF)),
        ),
    )
    .await
    .expect_problem(422, "kind");
    send_form(
        app,
        "/documents",
        &hana_token,
        form(&[("title", "No file")], None),
    )
    .await
    .expect_problem(422, "no file");
    send_form(
        app,
        "/documents",
        &hana_token,
        form(
            &[("colour", "red")],
            Some(("x.pdf", "application/pdf", PDF)),
        ),
    )
    .await
    .expect_problem(422, "colour");
    // An executable named .pdf and claimed as a PDF is still a program.
    send_form(
        app,
        "/documents",
        &hana_token,
        form(
            &[("title", "Closing papers")],
            Some((
                "closing.pdf",
                "application/pdf",
                b"\x7fELF\x02\x01\x01\0\0\0",
            )),
        ),
    )
    .await
    .expect_problem(415, "executable (ELF)");
    send_form(
        app,
        &format!("/documents/{doc_id}/versions"),
        &hana_token,
        form(
            &[],
            Some(("update.pdf", "application/pdf", b"MZ\x90\0\x03")),
        ),
    )
    .await
    .expect_problem(415, "Windows PE");
    // Ids are looked up, never made into paths.
    download(
        app,
        "/documents/..%2F..%2Fetc%2Fpasswd/content",
        &hana_token,
        &[],
    )
    .await
    .expect_problem(404, "document");
    app.send_raw(
        "POST",
        "/documents",
        Some(&hana_token),
        "application/json",
        b"{}".to_vec(),
    )
    .await
    .expect(400);
    assert_eq!(d.backing.objects().await, before);

    // The access log names each access with who, which version, address and agent.
    let log = app
        .get(&format!("/documents/{doc_id}/access"), Some(&hana_token))
        .await
        .expect(200);
    let entries = log.json["entries"].as_array().expect("entries").clone();
    let actions: Vec<&str> = entries
        .iter()
        .rev()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "uploaded",
            "downloaded",
            "downloaded",
            "downloaded",
            "viewed",
            "uploaded",
            "downloaded",
            "downloaded",
            "restored",
            "downloaded",
            "downloaded"
        ],
        "{}",
        log.text
    );
    assert!(entries.iter().all(|e| e["user_agent"] == AGENT));
    assert_eq!(entries[0]["actor_id"], agent.str("/user/id").as_str());
    assert_eq!(entries[2]["version_number"], 3);

    // The homeowner's own views and downloads reached the event log, as pipeline events
    // about their contact and this document; the agent's did not.
    let events = event_lines(&d.events);
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "document_downloaded",
            "document_downloaded",
            "document_downloaded",
            "document_viewed",
            "document_downloaded",
            "document_downloaded",
            "document_downloaded"
        ]
    );
    let doc_lake_id = roi_serving::store::lake_id_of(&doc_id);
    for e in &events {
        assert_eq!(e["org_id"], 7);
        assert_eq!(e["contact_id"], 4242);
        assert_eq!(e["document_id"], doc_lake_id);
        assert!(e["event_id"].is_i64() && e["ts"].is_string(), "{e}");
    }

    // Delete, find it among the deleted, bring it back, delete again, purge.
    app.call(
        "DELETE",
        &format!("/documents/{doc_id}"),
        Some(&hana_token),
        None,
    )
    .await
    .expect(200);
    let live = app.get("/documents", Some(&hana_token)).await.expect(200);
    assert_eq!(live.json["documents"], json!([]));
    download(app, &v1_url, &hana_token, &[])
        .await
        .expect_problem(404, "document");
    let deleted = app
        .get("/documents?deleted=true", Some(&hana_token))
        .await
        .expect(200);
    assert_eq!(deleted.json["documents"][0]["id"], doc_id.as_str());
    assert!(deleted.json["documents"][0]["purge_after"].is_i64());
    app.post(
        &format!("/documents/{doc_id}/undelete"),
        Some(&hana_token),
        json!({}),
    )
    .await
    .expect(200);
    download(app, &v1_url, &hana_token, &[]).await.expect(200);
    app.call(
        "DELETE",
        &format!("/documents/{doc_id}"),
        Some(&hana_token),
        None,
    )
    .await
    .expect(200);
    app.post("/documents/purge", Some(&agent_token), json!({}))
        .await
        .expect_problem(403, "admin");
    let kept = app
        .post("/documents/purge", Some(&owner_token), json!({}))
        .await
        .expect(200);
    assert_eq!(kept.json["purged"], json!([]), "retention has not run out");
    let rival_purge = app
        .post("/documents/purge", Some(&rival_token), json!({"all": true}))
        .await
        .expect(200);
    assert_eq!(
        rival_purge.json["purged"],
        json!([]),
        "another organization's"
    );
    let purged = app
        .post("/documents/purge", Some(&owner_token), json!({"all": true}))
        .await
        .expect(200);
    assert_eq!(purged.json["purged"], json!([doc_id]));
    assert_eq!(purged.json["failed"], json!([]));
    assert!(d.backing.objects().await.is_empty());
    app.get(&format!("/documents/{doc_id}"), Some(&owner_token))
        .await
        .expect_problem(404, "document");
    // The access log outlives the document.
    let rows = app
        .state
        .store
        .tenant_of(
            &app.state
                .store
                .organization_by_slug("acme")
                .await
                .expect("read")
                .expect("acme"),
        )
        .access_log(&doc_id, None, 100)
        .await
        .expect("log");
    assert_eq!(rows.first().map(|r| r.action.as_str()), Some("deleted"));
}

/// Staff file documents for homeowners, and correct their type and tags.
async fn staff_filing(d: &Docs) {
    let app = &d.app;
    let owner = app.signup("acme", "owner@acme.test").await;
    let owner_token = owner.str("/access_token");
    let hana = app
        .invite_and_accept(&owner_token, "hana@home.test", "homeowner")
        .await;
    let hana_id = hana.str("/user/id");
    let agent = app
        .invite_and_accept(&owner_token, "agent@acme.test", "agent")
        .await;
    let made = send_form(
        app,
        "/documents",
        &owner_token,
        form(
            &[
                ("owner_user_id", &hana_id),
                ("property_ref", "parcel 0912-44"),
            ],
            Some(("Title policy.pdf", "application/pdf", PDF)),
        ),
    )
    .await
    .expect(201);
    let doc_id = made.str("/document/id");
    assert_eq!(made.json["document"]["title"], "Title policy.pdf");
    assert_eq!(made.json["document"]["kind"], "other");
    assert_eq!(made.json["document"]["property_ref"], "parcel 0912-44");
    // The homeowner sees what was filed for them.
    let theirs = app
        .get("/documents", Some(&hana.str("/access_token")))
        .await
        .expect(200);
    assert_eq!(theirs.json["documents"][0]["id"], doc_id.as_str());
    // Only homeowners own documents.
    send_form(
        app,
        "/documents",
        &owner_token,
        form(
            &[("owner_user_id", &agent.str("/user/id"))],
            Some(("x.pdf", "application/pdf", PDF)),
        ),
    )
    .await
    .expect_problem(422, "not a homeowner");
    send_form(
        app,
        "/documents",
        &owner_token,
        form(
            &[("contact_id", "ct_nobody")],
            Some(("x.pdf", "application/pdf", PDF)),
        ),
    )
    .await
    .expect_problem(422, "contact_id");
    let changed = app
        .call(
            "PATCH",
            &format!("/documents/{doc_id}"),
            Some(&agent.str("/access_token")),
            Some(json!({"kind": "title_policy", "tags": ["owner policy"], "title": "Owner's title policy"})),
        )
        .await
        .expect(200);
    assert_eq!(changed.json["document"]["kind"], "title_policy");
    assert_eq!(changed.json["document"]["kind_source"], "user");
    assert_eq!(changed.json["document"]["tags"], json!(["owner policy"]));
    assert_eq!(changed.json["document"]["title"], "Owner's title policy");
    app.call(
        "PATCH",
        &format!("/documents/{doc_id}"),
        Some(&owner_token),
        Some(json!({"title": " "})),
    )
    .await
    .expect_problem(422, "title");
    // Forms and share requests that cannot be right are refused, naming what is wrong.
    let file_part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.4\r\n"
    );
    let two_files = format!("{file_part}{file_part}--{BOUNDARY}--\r\n").into_bytes();
    send_form(app, "/documents", &owner_token, two_files)
        .await
        .expect_problem(422, "one file");
    send_form(
        app,
        "/documents",
        &owner_token,
        form(
            &[("title", "a"), ("title", "b")],
            Some(("x.pdf", "application/pdf", PDF)),
        ),
    )
    .await
    .expect_problem(422, "given twice");
    let shares = format!("/documents/{doc_id}/shares");
    for (body, needle) in [
        (json!({"expires_in_hours": 0}), "expires_in_hours"),
        (json!({"max_downloads": 0}), "max_downloads"),
        (json!({"user_id": "usr_nobody"}), "user_id"),
    ] {
        app.post(&shares, Some(&owner_token), body)
            .await
            .expect_problem(422, needle);
    }
    app.post(&shares, Some(&owner_token), json!({"version": 9}))
        .await
        .expect_problem(404, "version");
    app.get(
        &format!("/documents/{doc_id}/versions/9/text"),
        Some(&owner_token),
    )
    .await
    .expect_problem(404, "version");
    // HEAD says what a download would be, without the bytes.
    let head = app
        .call(
            "HEAD",
            &format!("/documents/{doc_id}/content"),
            Some(&owner_token),
            None,
        )
        .await
        .expect(200);
    assert!(head.bytes.is_empty());
    assert_eq!(head.header("content-length"), PDF.len().to_string());
    assert_eq!(head.header("content-type"), "application/pdf");
    app.get("/documents?kind=deed", Some(&owner_token))
        .await
        .expect(200);
    let by_kind = app
        .get("/documents?kind=title_policy&limit=1", Some(&owner_token))
        .await
        .expect(200);
    assert_eq!(by_kind.json["documents"][0]["id"], doc_id.as_str());
}

/// Share links: signed, expiring, revocable, password-protected, download-limited; the
/// user shared with is told in the inbox and by e-mail (to a real SMTP server).
async fn sharing(d: &Docs, smtp: &common::smtp::Smtp) {
    let app = &d.app;
    let _live = app.serve().await;
    let owner = app.signup_linked("acme", "owner@acme.test", 9).await;
    let owner_token = owner.str("/access_token");
    app.sync_contacts(
        "acme",
        &[SyncContact {
            lake_contact_id: 77,
            email: "hana@home.test".to_owned(),
            first_name: "Hana".to_owned(),
            last_name: "Owner".to_owned(),
            opted_in: true,
            attributes: ContactAttributes::default(),
            values: Vec::new(),
        }],
        &[],
    )
    .await;
    let hana = app
        .invite_and_accept(&owner_token, "hana@home.test", "homeowner")
        .await;
    let hana_token = hana.str("/access_token");
    let agent = app
        .invite_and_accept(&owner_token, "agent@acme.test", "agent")
        .await;
    let agent_id = agent.str("/user/id");
    let made = send_form(
        app,
        "/documents",
        &hana_token,
        form(
            &[("title", "Closing disclosure")],
            Some(("cd.pdf", "application/pdf", PDF)),
        ),
    )
    .await
    .expect(201);
    let doc_id = made.str("/document/id");

    // The homeowner shares it with their agent: a link, an inbox entry, an e-mail.
    let share = app
        .post(
            &format!("/documents/{doc_id}/shares"),
            Some(&hana_token),
            json!({"user_id": agent_id, "expires_in_hours": 48}),
        )
        .await
        .expect(201);
    let url = share.str("/url");
    let path = url
        .split_once("/s/")
        .map(|(_, t)| format!("/s/{t}"))
        .expect("a share URL");
    assert_eq!(share.json["status"], "active");
    assert_eq!(share.json["has_password"], false);
    let inbox = app
        .get("/notifications", Some(&agent.str("/access_token")))
        .await
        .expect(200);
    let entry = inbox.json["notifications"]
        .as_array()
        .and_then(|n| n.iter().find(|e| e["kind"] == "document.shared"))
        .cloned()
        .unwrap_or_else(|| panic!("an inbox entry in {}", inbox.text));
    assert!(
        entry["title"]
            .as_str()
            .is_some_and(|t| t.contains("Closing disclosure")),
        "{entry}"
    );
    let mail = common::smtp::unfold(&common::smtp::wait_mails(smtp, 1).await[0]);
    assert!(mail.contains("To: agent@acme.test"), "{mail}");
    assert!(mail.contains("Closing disclosure"), "{mail}");
    assert!(mail.contains(&url), "the mail carries the link: {mail}");

    // Anyone with the link downloads, without signing in; nothing is cached.
    let got = app.get(&path, None).await.expect(200);
    assert_eq!(got.bytes, PDF);
    assert_eq!(got.header("cache-control"), "no-store");
    assert!(got.header("content-disposition").starts_with("attachment"));

    // Forged links: another signature, another id under a real signature, no signature.
    let (id, sig) = path
        .trim_start_matches("/s/")
        .split_once('.')
        .expect("id.sig");
    let flipped: String = sig
        .chars()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    app.get(&format!("/s/{id}.{flipped}"), None)
        .await
        .expect_problem(404, "share link");
    app.get(&format!("/s/shr_forged.{sig}"), None)
        .await
        .expect_problem(404, "share link");
    app.get(&format!("/s/{id}"), None)
        .await
        .expect_problem(404, "share link");

    // A download limit, then gone.
    let once = app
        .post(
            &format!("/documents/{doc_id}/shares"),
            Some(&hana_token),
            json!({"max_downloads": 1}),
        )
        .await
        .expect(201);
    let once_path = format!("/s/{}", once.str("/url").split_once("/s/").expect("url").1);
    app.get(&once_path, None).await.expect(200);
    app.get(&once_path, None)
        .await
        .expect_problem(410, "download limit");

    // A password: asked for, refused when wrong, accepted when right.
    let secret = "a long share password";
    let locked = app
        .post(
            &format!("/documents/{doc_id}/shares"),
            Some(&hana_token),
            json!({"password": secret}),
        )
        .await
        .expect(201);
    assert_eq!(locked.json["has_password"], true);
    let locked_path = format!(
        "/s/{}",
        locked.str("/url").split_once("/s/").expect("url").1
    );
    app.get(&locked_path, None)
        .await
        .expect_problem(401, "password");
    let form_type = "application/x-www-form-urlencoded";
    app.send_raw(
        "POST",
        &locked_path,
        None,
        form_type,
        b"password=wrong+guess".to_vec(),
    )
    .await
    .expect_problem(401, "wrong password");
    let opened = app
        .send_raw(
            "POST",
            &locked_path,
            None,
            form_type,
            b"password=a+long+share+password".to_vec(),
        )
        .await
        .expect(200);
    assert_eq!(opened.bytes, PDF);

    // Revoked: gone at once.
    app.call(
        "DELETE",
        &format!("/documents/{doc_id}/shares/{}", share.str("/id")),
        Some(&hana_token),
        None,
    )
    .await
    .expect(200);
    app.get(&path, None).await.expect_problem(410, "revoked");

    // Expired: a link whose time has passed.
    let org = app
        .state
        .store
        .organization_by_slug("acme")
        .await
        .expect("read")
        .expect("acme");
    let tenant = app.state.store.tenant_of(&org);
    tenant
        .create_share(&roi_serving::store::Share {
            id: "shr_expired_for_test".to_owned(),
            org_id: org.id.clone(),
            document_id: doc_id.clone(),
            version_number: None,
            created_by: hana.str("/user/id"),
            shared_with_user_id: None,
            password_hash: None,
            max_downloads: None,
            downloads: 0,
            expires_at: roi_serving::unix_now() - 1,
            revoked_at: None,
            created_at: roi_serving::unix_now() - 3600,
        })
        .await
        .expect("store a share");
    let expired = app.state.share_signer.token("shr_expired_for_test");
    app.get(&format!("/s/{expired}"), None)
        .await
        .expect_problem(410, "expired");

    // The list shows each link's state; the access log has the shares and the visitors.
    let list = app
        .get(&format!("/documents/{doc_id}/shares"), Some(&hana_token))
        .await
        .expect(200);
    let states: Vec<&str> = list.json["shares"]
        .as_array()
        .expect("shares")
        .iter()
        .filter_map(|s| s["status"].as_str())
        .collect();
    assert!(
        states.contains(&"revoked") && states.contains(&"used_up"),
        "{states:?}"
    );
    assert!(
        states.contains(&"expired") && states.contains(&"active"),
        "{states:?}"
    );
    let rows = tenant.access_log(&doc_id, None, 100).await.expect("log");
    let visits = rows
        .iter()
        .filter(|r| r.share_id.is_some() && r.actor_id.is_none())
        .count();
    assert_eq!(visits, 3, "three downloads through links");
    assert_eq!(rows.iter().filter(|r| r.action == "shared").count(), 3);
    let events = event_lines(&d.events);
    let shared = events
        .iter()
        .filter(|e| e["event_type"] == "document_shared")
        .count();
    assert_eq!(shared, 3, "the homeowner's shares are pipeline events");

    // Guessing a link's password is cut short: after five wrong tries, 429 even for the
    // right one, until the window passes.
    let guarded = app
        .post(
            &format!("/documents/{doc_id}/shares"),
            Some(&hana_token),
            json!({"password": secret}),
        )
        .await
        .expect(201);
    let guarded_path = format!(
        "/s/{}",
        guarded.str("/url").split_once("/s/").expect("url").1
    );
    for n in 0..5 {
        app.send_raw(
            "POST",
            &guarded_path,
            None,
            form_type,
            format!("password=guess{n}").into_bytes(),
        )
        .await
        .expect_problem(401, "wrong password");
    }
    let locked_out = app
        .send_raw(
            "POST",
            &guarded_path,
            None,
            form_type,
            b"password=a+long+share+password".to_vec(),
        )
        .await
        .expect_problem(429, "wrong passwords for this link");
    assert!(!locked_out.header("retry-after").is_empty());

    // Someone else's document cannot be shared; a deleted one stops its links.
    let other = app
        .invite_and_accept(&owner_token, "omar@home.test", "homeowner")
        .await;
    app.post(
        &format!("/documents/{doc_id}/shares"),
        Some(&other.str("/access_token")),
        json!({}),
    )
    .await
    .expect_problem(404, "document");
    app.call(
        "DELETE",
        &format!("/documents/{doc_id}"),
        Some(&hana_token),
        None,
    )
    .await
    .expect(200);
    app.send_raw(
        "POST",
        &locked_path,
        None,
        form_type,
        b"password=a+long+share+password".to_vec(),
    )
    .await
    .expect_problem(410, "deleted");
}

async fn sharing_on(db: Db) {
    let smtp = common::smtp::smtp_server().await;
    let port = smtp.port;
    let d = docs_with(db, false, |c| {
        c.public_url = Some("https://roi.example".to_owned());
        c.notifications.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.notifications.poll_ms = 50;
    })
    .await;
    sharing(&d, &smtp).await;
    d.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_links_on_sqlite() {
    sharing_on(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_links_on_postgres() {
    sharing_on(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_storage_on_sqlite() {
    let d = docs(Db::Sqlite, false).await;
    suite(&d).await;
    d.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_storage_on_sqlite() {
    let d = docs(Db::Sqlite, true).await;
    suite(&d).await;
    d.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_storage_on_postgres() {
    let d = docs(Db::Postgres, false).await;
    suite(&d).await;
    d.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_file_documents_for_homeowners() {
    let d = docs(Db::Sqlite, false).await;
    staff_filing(&d).await;
    d.app.cleanup().await;
    let d = docs(Db::Postgres, false).await;
    staff_filing(&d).await;
    d.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_off_answer_503_naming_the_setting() {
    let app = common::sqlite().await;
    let owner = app.signup("acme", "owner@acme.test").await;
    send_form(
        &app,
        "/documents",
        &owner.str("/access_token"),
        form(&[], Some(("x.pdf", "application/pdf", PDF))),
    )
    .await
    .expect_problem(503, "serve.documents.storage");
    app.cleanup().await;
}

/// A one-page PDF with a text layer (Helvetica), written by hand with a correct xref.
fn text_pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 14 Tf 72 720 Td 18 TL\n");
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!("({escaped}) Tj T*\n"));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// A picture of typed text, as PNG and as an image-only (scanned) PDF, drawn by Pillow.
fn scans(dir: &Path, lines: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let script = r#"
import os, sys
from PIL import Image, ImageDraw, ImageFont
out, lines = sys.argv[1], sys.argv[2:]
path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
font = ImageFont.truetype(path, 48) if os.path.exists(path) else ImageFont.load_default(size=48)
img = Image.new("L", (1600, 120 + 100 * len(lines)), 255)
draw = ImageDraw.Draw(img)
for i, line in enumerate(lines):
    draw.text((60, 60 + 100 * i), line, font=font, fill=0)
img.save(os.path.join(out, "scan.png"))
img.convert("RGB").save(os.path.join(out, "scan.pdf"), resolution=150)
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .args(lines)
        .status()
        .expect("python3 with Pillow (scripts/test installs it)");
    assert!(status.success(), "drawing the scans (pip install pillow)");
    (
        std::fs::read(dir.join("scan.png")).expect("png"),
        std::fs::read(dir.join("scan.pdf")).expect("pdf"),
    )
}

/// Waits for a version's text to be extracted (or to fail for good).
async fn text_of(app: &TestApp, token: &str, doc: &str, number: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let t = app
            .get(
                &format!("/documents/{doc}/versions/{number}/text"),
                Some(token),
            )
            .await
            .expect(200);
        if t.json["status"] == "done" || t.json["status"] == "failed" {
            return t.json;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "extraction still {}",
            t.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn upload(app: &TestApp, token: &str, title: &str, name: &str, bytes: &[u8]) -> String {
    send_form(
        app,
        "/documents",
        token,
        form(
            &[("title", title)],
            Some((name, "application/octet-stream", bytes)),
        ),
    )
    .await
    .expect(201)
    .str("/document/id")
}

/// Text from a text file, a PDF's text layer, an image (OCR) and a scanned PDF (OCR);
/// the type guessed from it, a user's correction kept; a file that cannot be read fails
/// with its reason.
async fn extraction(d: &Docs) {
    let app = &d.app;
    let _live = app.serve().await;
    let owner = app.signup("acme", "owner@acme.test").await;
    let token = owner.str("/access_token");
    let scratch = tempfile::tempdir().expect("tempdir");
    let (png, scanned) = scans(
        scratch.path(),
        &["WARRANTY DEED", "The Grantor conveys parcel 0912-44"],
    );

    let notes = upload(
        app,
        &token,
        "Valuation for the refinance",
        "report.txt",
        b"Uniform Residential Appraisal Report\nThe appraiser's opinion of value rests on comparable sales.",
    )
    .await;
    let t = text_of(app, &token, &notes, 1).await;
    assert_eq!(t["method"], "text", "{t}");
    assert!(
        t["text"]
            .as_str()
            .is_some_and(|x| x.contains("comparable sales"))
    );

    let layered = upload(
        app,
        &token,
        "Closing papers",
        "cd.pdf",
        &text_pdf(&[
            "Closing Disclosure",
            "Loan Terms and Projected Payments",
            "Cash to Close: $12,400.00",
        ]),
    )
    .await;
    let t = text_of(app, &token, &layered, 1).await;
    assert_eq!(t["method"], "pdf_text", "{t}");
    assert_eq!(t["pages"], 1);
    assert!(
        t["text"]
            .as_str()
            .is_some_and(|x| x.contains("Cash to Close")),
        "{t}"
    );

    let photo = upload(app, &token, "scan_0012", "scan.png", &png).await;
    let t = text_of(app, &token, &photo, 1).await;
    assert_eq!(t["method"], "ocr", "{t}");
    let read = t["text"].as_str().unwrap_or("").to_owned();
    assert!(
        read.contains("WARRANTY DEED") && read.contains("0912-44"),
        "{read}"
    );

    let scan = upload(app, &token, "scan_0013", "scan.pdf", &scanned).await;
    let t = text_of(app, &token, &scan, 1).await;
    assert_eq!(
        t["method"], "ocr",
        "a PDF without a text layer is read by OCR: {t}"
    );
    assert_eq!(t["pages"], 1);
    assert!(
        t["text"]
            .as_str()
            .is_some_and(|x| x.contains("WARRANTY DEED")),
        "{t}"
    );

    // Types guessed from the text, with a confidence.
    for (id, kind) in [
        (&notes, "appraisal"),
        (&layered, "closing_disclosure"),
        (&photo, "deed"),
        (&scan, "deed"),
    ] {
        let doc = app
            .get(&format!("/documents/{id}"), Some(&token))
            .await
            .expect(200);
        assert_eq!(doc.json["document"]["kind"], kind, "{}", doc.text);
        assert_eq!(doc.json["document"]["kind_source"], "classifier");
        let c = doc.json["document"]["kind_confidence"]
            .as_f64()
            .expect("confidence");
        assert!((0.0..=1.0).contains(&c) && c > 0.3, "{c}");
        assert_eq!(doc.json["versions"][0]["text_status"], "done");
    }

    // A user's correction stays: a new version is read but does not re-type it.
    app.call(
        "PATCH",
        &format!("/documents/{photo}"),
        Some(&token),
        Some(json!({"kind": "title_policy"})),
    )
    .await
    .expect(200);
    send_form(
        app,
        &format!("/documents/{photo}/versions"),
        &token,
        form(&[], Some(("again.png", "image/png", &png))),
    )
    .await
    .expect(201);
    text_of(app, &token, &photo, 2).await;
    let doc = app
        .get(&format!("/documents/{photo}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(doc.json["document"]["kind"], "title_policy");
    assert_eq!(doc.json["document"]["kind_source"], "user");
    assert!(doc.json["document"]["kind_confidence"].is_null());

    // A PDF that is not one: the attempt fails and says why.
    let broken = upload(
        app,
        &token,
        "broken",
        "broken.pdf",
        b"%PDF-1.4\nnot really a pdf",
    )
    .await;
    let t = text_of(app, &token, &broken, 1).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert!(
        t["error"].as_str().is_some_and(|e| e.contains("pdftoppm")),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_extraction_ocr_and_classification() {
    let d = docs_with(Db::Sqlite, false, |c| {
        c.documents.extraction.poll_ms = 50;
        c.documents.extraction.max_attempts = 1;
    })
    .await;
    extraction(&d).await;
    d.app.cleanup().await;
    let d = docs_with(Db::Postgres, true, |c| {
        c.documents.extraction.poll_ms = 50;
        c.documents.extraction.max_attempts = 1;
    })
    .await;
    extraction(&d).await;
    d.app.cleanup().await;
}

/// A search as `token`; `query` is `key=value` pairs, values encoded here.
async fn find(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Reply {
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            format!("{k}={v}")
        })
        .collect();
    app.get(
        &format!("/documents/search?{}", query.join("&")),
        Some(token),
    )
    .await
}

/// The ids of a search's hits, best first.
fn hit_ids(r: &Reply) -> Vec<String> {
    r.json["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("hits in {}", r.text))
        .iter()
        .map(|h| h["document"]["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Uploads a text file with these form fields; returns the document's id.
async fn file_as(
    app: &TestApp,
    token: &str,
    fields: &[(&str, &str)],
    name: &str,
    text: &[u8],
) -> String {
    send_form(
        app,
        "/documents",
        token,
        form(fields, Some((name, "text/plain", text))),
    )
    .await
    .expect(201)
    .str("/document/id")
}

/// Waits until every version's text is extracted and the index holds every change.
async fn settled(app: &TestApp, token: &str, docs: &[&str]) {
    for doc in docs {
        let versions = app
            .get(&format!("/documents/{doc}"), Some(token))
            .await
            .expect(200);
        let n = versions.json["versions"].as_array().map_or(0, Vec::len);
        text_of(app, token, doc, n as i64).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = app
            .get("/documents/search/status", Some(token))
            .await
            .expect(200);
        if s.json["pending_changes"] == 0 && s.json["rebuilding"] == false {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "index behind: {}",
            s.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Full-text search: titles, tags and extracted text, stemmed, ranked and highlighted;
/// confined to the caller's organization and a homeowner's own documents; following
/// renames, deletes, restores and new versions.
async fn searching(d: &Docs) {
    let app = &d.app;
    let _live = app.serve().await;
    let owner = app.signup("acme", "owner@acme.test").await;
    let token = owner.str("/access_token");
    let hana = app
        .invite_and_accept(&token, "hana@home.test", "homeowner")
        .await;
    let hana_token = hana.str("/access_token");
    let omar = app
        .invite_and_accept(&token, "omar@home.test", "homeowner")
        .await;
    let omar_id = omar.str("/user/id");
    let closing = file_as(
        app,
        &token,
        &[
            ("title", "Closing papers"),
            ("owner_user_id", &hana.str("/user/id")),
            ("tags", "closing, 2024"),
        ],
        "cd.txt",
        "Closing Disclosure. Loan Terms. Cash to Close $12,400 for the home at 12 Maple Street, Ames."
            .as_bytes(),
    )
    .await;
    let inspection = file_as(
        app,
        &token,
        &[("title", "Inspection report"), ("owner_user_id", &omar_id)],
        "inspection.txt",
        b"The inspector found water damage where the maple roots meet the foundation.",
    )
    .await;
    let rules = file_as(
        app,
        &token,
        &[("title", "HOA rules")],
        "rules.txt",
        "Pets on a leash. Quiet hours after ten. Caf\u{e9} tables by the pool.".as_bytes(),
    )
    .await;
    let rival = app.signup("rival", "owner@rival.test").await;
    let rival_token = rival.str("/access_token");
    let theirs = file_as(
        app,
        &rival_token,
        &[("title", "Maple Street deed")],
        "deed.txt",
        b"The grantor conveys 14 Maple Street.",
    )
    .await;
    settled(app, &token, &[&closing, &inspection, &rules]).await;
    settled(app, &rival_token, &[&theirs]).await;

    // Words in the text, in the organization only; the hit carries the document and
    // where the words are.
    let r = find(app, &token, &[("q", "maple")]).await.expect(200);
    let mut got = hit_ids(&r);
    got.sort();
    let mut want = vec![closing.clone(), inspection.clone()];
    want.sort();
    assert_eq!(got, want, "{}", r.text);
    assert_eq!(r.json["total"], 2);
    assert_eq!(r.json["next_offset"], Value::Null);
    let hit = r.json["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .find(|h| h["document"]["id"] == closing.as_str())
        .expect("the closing papers");
    assert_eq!(hit["document"]["title"], "Closing papers");
    let text = hit["highlights"]
        .as_array()
        .expect("highlights")
        .iter()
        .find(|h| h["field"] == "text")
        .unwrap_or_else(|| panic!("a text highlight in {hit}"));
    let fragment = text["fragment"].as_str().expect("fragment");
    let [start, end] = [0, 1].map(|i| text["ranges"][0][i].as_u64().expect("range") as usize);
    let marked: String = fragment.chars().skip(start).take(end - start).collect();
    assert_eq!(marked, "Maple");
    assert!(
        text["html"]
            .as_str()
            .is_some_and(|h| h.contains("<mark>Maple</mark>")),
        "{text}"
    );
    // Other forms of a word; titles weigh most.
    let r = find(app, &token, &[("q", "closed")]).await.expect(200);
    assert_eq!(hit_ids(&r), [closing.as_str()], "{}", r.text);
    let r = find(app, &token, &[("q", "inspections")]).await.expect(200);
    assert_eq!(hit_ids(&r), [inspection.as_str()]);
    assert!(
        r.json["hits"][0]["highlights"]
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["field"] == "title")),
        "{}",
        r.text
    );
    // Every word must be there; phrases, exclusions, one field, accents kept.
    let r = find(app, &token, &[("q", "maple water")]).await.expect(200);
    assert_eq!(hit_ids(&r), [inspection.as_str()]);
    let r = find(app, &token, &[("q", "maple -water")])
        .await
        .expect(200);
    assert_eq!(hit_ids(&r), [closing.as_str()]);
    let r = find(app, &token, &[("q", "\"cash to close\"")])
        .await
        .expect(200);
    assert_eq!(hit_ids(&r), [closing.as_str()]);
    let r = find(app, &token, &[("q", "\"close to cash\"")])
        .await
        .expect(200);
    assert_eq!(hit_ids(&r), Vec::<String>::new());
    let r = find(app, &token, &[("q", "title:maple")]).await.expect(200);
    assert_eq!(
        hit_ids(&r),
        Vec::<String>::new(),
        "the rival's title is theirs"
    );
    let r = find(app, &token, &[("q", "café")]).await.expect(200);
    assert_eq!(hit_ids(&r), [rules.as_str()]);
    // Filters and pages.
    let r = find(app, &token, &[("q", "maple"), ("tag", "closing")])
        .await
        .expect(200);
    assert_eq!(hit_ids(&r), [closing.as_str()]);
    let r = find(app, &token, &[("q", "maple"), ("owner_user_id", &omar_id)])
        .await
        .expect(200);
    assert_eq!(hit_ids(&r), [inspection.as_str()]);
    let r = find(
        app,
        &token,
        &[("q", "maple"), ("kind", "closing_disclosure")],
    )
    .await
    .expect(200);
    assert_eq!(hit_ids(&r), [closing.as_str()], "classified from the text");
    let first = find(app, &token, &[("q", "maple"), ("limit", "1")])
        .await
        .expect(200);
    assert_eq!(first.json["next_offset"], 1);
    let second = find(
        app,
        &token,
        &[("q", "maple"), ("limit", "1"), ("offset", "1")],
    )
    .await
    .expect(200);
    assert_eq!(second.json["next_offset"], Value::Null);
    let mut both = [hit_ids(&first), hit_ids(&second)].concat();
    both.sort();
    assert_eq!(both, want);

    // A homeowner finds only their own; other organizations only theirs.
    let r = find(app, &hana_token, &[("q", "maple")]).await.expect(200);
    assert_eq!(hit_ids(&r), [closing.as_str()]);
    assert_eq!(r.json["total"], 1);
    find(
        app,
        &hana_token,
        &[("q", "maple"), ("owner_user_id", &omar_id)],
    )
    .await
    .expect_problem(403, "owner_user_id");
    app.get("/documents/search/status", Some(&hana_token))
        .await
        .expect(403);
    let r = find(app, &rival_token, &[("q", "maple")]).await.expect(200);
    assert_eq!(hit_ids(&r), [theirs.as_str()]);
    let r = find(app, &rival_token, &[("q", "water OR closing OR pool")])
        .await
        .expect(200);
    assert_eq!(hit_ids(&r), Vec::<String>::new());

    // Renames, deletes, restores and new versions are followed.
    app.call(
        "PATCH",
        &format!("/documents/{rules}"),
        Some(&token),
        Some(json!({"title": "Community association rules", "tags": ["hoa"]})),
    )
    .await
    .expect(200);
    app.call(
        "DELETE",
        &format!("/documents/{closing}"),
        Some(&token),
        None,
    )
    .await
    .expect(200);
    settled(app, &token, &[]).await;
    let r = find(app, &token, &[("q", "community")]).await.expect(200);
    assert_eq!(hit_ids(&r), [rules.as_str()]);
    let r = find(app, &token, &[("q", "hoa"), ("tag", "hoa")])
        .await
        .expect(200);
    assert_eq!(hit_ids(&r), [rules.as_str()]);
    let r = find(app, &token, &[("q", "maple")]).await.expect(200);
    assert_eq!(
        hit_ids(&r),
        [inspection.as_str()],
        "the deleted one is gone"
    );
    app.post(
        &format!("/documents/{closing}/undelete"),
        Some(&token),
        json!({}),
    )
    .await
    .expect(200);
    send_form(
        app,
        &format!("/documents/{inspection}/versions"),
        &token,
        form(
            &[],
            Some(("v2.txt", "text/plain", b"Roof replaced in 2021.")),
        ),
    )
    .await
    .expect(201);
    settled(app, &token, &[&inspection]).await;
    let r = find(app, &token, &[("q", "maple")]).await.expect(200);
    assert_eq!(
        hit_ids(&r),
        [closing.as_str()],
        "back, and the new version has no maple"
    );
    let r = find(app, &token, &[("q", "roof")]).await.expect(200);
    assert_eq!(hit_ids(&r), [inspection.as_str()]);
    let status = app
        .get("/documents/search/status", Some(&token))
        .await
        .expect(200);
    assert_eq!(status.json["documents"], 3, "{}", status.text);

    // Bad asks are named.
    for (query, needle) in [
        (vec![("q", "  ")], "q:"),
        (vec![("q", "maple"), ("limit", "0")], "limit"),
        (vec![("q", "maple"), ("offset", "-1")], "offset"),
    ] {
        find(app, &token, &query).await.expect_problem(422, needle);
    }
    find(app, &token, &[("q", "maple"), ("sort", "date")])
        .await
        .expect_problem(422, "sort");
    // Query syntax a user gets wrong still searches what it can.
    let r = find(app, &token, &[("q", "maple AND (")]).await.expect(200);
    assert!(r.json["hits"].is_array(), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_text_search() {
    let fast = |c: &mut ServeConfig| {
        c.documents.extraction.poll_ms = 50;
        c.documents.search.poll_ms = 50;
    };
    let d = docs_with(Db::Sqlite, false, fast).await;
    searching(&d).await;
    d.app.cleanup().await;
    let d = docs_with(Db::Postgres, true, fast).await;
    searching(&d).await;
    d.app.cleanup().await;
}

/// An index on disk keeps what it applied across restarts, is one server's alone, and
/// rebuilds from the documents when the change log no longer reaches back to it.
async fn index_on_disk(db: Db) {
    use roi_serving::search::{SearchConfig, SearchIndex, SearchRequest};
    use std::sync::Arc;
    let d = docs_with(db, false, |c| c.documents.extraction.poll_ms = 50).await;
    let app = &d.app;
    let _live = app.serve().await;
    let owner = app.signup("acme", "owner@acme.test").await;
    let token = owner.str("/access_token");
    let org = owner.str("/user/organization_id");
    let deed = upload(
        app,
        &token,
        "Deed",
        "deed.txt",
        b"The grantor conveys parcel 0912-44.",
    )
    .await;
    text_of(app, &token, &deed, 1).await;
    let store = app.state.store.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SearchConfig {
        path: Some(dir.path().join("index")),
        ..SearchConfig::default()
    };
    let ask = |q: &str| SearchRequest {
        org: org.clone(),
        q: q.to_owned(),
        limit: 10,
        ..SearchRequest::default()
    };
    let first = Arc::new(SearchIndex::open(&config).expect("open"));
    let report = first.sync(&store).await.expect("sync");
    assert!(report.rebuilt, "a new index is built from the documents");
    let applied = first.progress().applied;
    assert!(applied >= 2, "the upload and its text: {applied}");
    let err = SearchIndex::open(&config).expect_err("a second writer");
    assert!(err.contains("in use by another process"), "{err}");
    drop(first);

    let again = Arc::new(SearchIndex::open(&config).expect("reopen"));
    assert_eq!(again.progress().applied, applied, "kept across the restart");
    let found = again.search(&ask("grantor")).expect("search");
    assert_eq!(found.hits.len(), 1, "searchable before any sync");
    assert_eq!(found.hits[0].id, deed);
    let report = again.sync(&store).await.expect("sync");
    assert_eq!((report.rebuilt, report.changes), (false, 0));

    // The log pruned past what it holds: rebuilt, new documents included.
    let lease = upload(
        app,
        &token,
        "Lease",
        "lease.txt",
        b"The tenant pays rent monthly.",
    )
    .await;
    text_of(app, &token, &lease, 1).await;
    let pruned = store
        .prune_document_changes(roi_serving::unix_now() + 1)
        .await
        .expect("prune");
    assert!(pruned >= 4, "{pruned}");
    let report = again.sync(&store).await.expect("sync");
    assert!(report.rebuilt, "{report:?}");
    assert_eq!(report.documents, 2);
    assert_eq!(
        again.search(&ask("rent")).expect("search").hits[0].id,
        lease
    );
    // Only this organization's, whatever the words ask for.
    let mut elsewhere = ask("grantor OR rent");
    elsewhere.org = "org_someone_else".to_owned();
    assert_eq!(again.search(&elsewhere).expect("search").total, 0);
    let sneaky = ask(&format!("org:{org} OR grantor"));
    let mut sneaky_elsewhere = sneaky.clone();
    sneaky_elsewhere.org = "org_someone_else".to_owned();
    assert_eq!(again.search(&sneaky_elsewhere).expect("search").total, 0);
    drop(_live);
    d.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_index_on_disk_survives_restarts_and_rebuilds() {
    index_on_disk(Db::Sqlite).await;
    index_on_disk(Db::Postgres).await;
}
