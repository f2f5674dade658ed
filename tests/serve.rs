//! `roi db migrate` and `roi serve` as a user runs them: a real process, a real socket,
//! and a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn roi(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run roi")
}

#[test]
fn db_migrate_applies_once_then_reports_up_to_date() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = roi(tmp.path(), &["db", "migrate"]);
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        out.contains("roi.db") && out.contains("migrations applied"),
        "{out}"
    );
    assert!(tmp.path().join("data/roi.db").is_file());
    let again = roi(tmp.path(), &["db", "migrate"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));

    let bad = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(["db", "migrate"])
        .current_dir(tmp.path())
        .env("ROI_DATABASE__URL", "mysql://root:hunter2@localhost/roi")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("database.url") && err.contains("****") && !err.contains("hunter2"),
        "{err}"
    );
}

/// One HTTP/1.1 GET over a plain socket: (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response.lines().next().unwrap_or("").to_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn serve_answers_on_its_socket_and_stops_gracefully_on_sigterm() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roi serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    let (status, body) = get(&addr, "/healthz");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"ok\""), "{body}");
    let (status, body) = get(&addr, "/readyz");
    assert!(
        status.contains("200") && body.contains("sqlite"),
        "{status} {body}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "roi serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

/// Alerts as the streaming job leaves them in the lake: `alerts.alerts`.
fn write_lake_alerts(data_dir: &std::path::Path, lake_org: i64) {
    use roi_schemas::alert::{Alert, AlertStatus, IntentKind};
    use roi_schemas::ids::{ContactId, OrgId, PropertyId};
    use roi_schemas::table::Table;
    let at = chrono::DateTime::from_timestamp(1_710_000_000, 0).expect("time");
    let rows: Vec<Alert> = (0..2)
        .map(|n| Alert {
            alert_id: format!("alert-{n}"),
            org_id: OrgId(lake_org),
            contact_id: ContactId(40 + n),
            property_id: (n == 0).then_some(PropertyId(70)),
            kind: IntentKind::Refinance,
            score: 0.7,
            confidence: 0.6,
            reasons: vec!["rate spread 1.4 points".into()],
            model_version: "refinance-v1".into(),
            created_at: at,
            status: AlertStatus::New,
            assignee: None,
        })
        .collect();
    let batch = Alert::to_batch(&rows).expect("batch");
    roi_pipeline::lake::write_parquet_atomic(
        &data_dir.join("lake/alerts/alerts/month=2024-03/part-0.parquet"),
        Alert::schema(),
        &[batch],
    )
    .expect("write the lake's alerts");
}

#[test]
fn alerts_ingest_into_linked_organizations_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let none = roi(tmp.path(), &["alerts", "ingest"]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("roi stream"));
    write_lake_alerts(&tmp.path().join("data"), 3);

    let unlinked = roi(tmp.path(), &["alerts", "ingest"]);
    let out = String::from_utf8_lossy(&unlinked.stdout);
    assert!(
        unlinked.status.success(),
        "{}",
        String::from_utf8_lossy(&unlinked.stderr)
    );
    assert!(out.contains("2 alerts read: 0 stored"), "{out}");
    assert!(
        out.contains("pipeline organization 3 is linked to no organization"),
        "{out}"
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let database = roi_serving::config::DatabaseConfig {
            url: Some(format!("sqlite://{}/data/roi.db", tmp.path().display())),
            max_connections: 1,
        };
        let (store, _) = roi_serving::server::open_store(&database)
            .await
            .expect("store");
        store
            .create_organization(
                "acme",
                "Acme Title",
                roi_serving::store::NewUser {
                    email: "owner@acme.test".into(),
                    name: "Owner".into(),
                    role: roi_serving::role::Role::Owner,
                    password_hash: "unused".into(),
                },
                0,
            )
            .await
            .expect("organization");
        store.close().await;
    });
    let missing = roi(tmp.path(), &["orgs", "link", "nope", "3"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no organization with slug"));
    let link = roi(tmp.path(), &["orgs", "link", "acme", "3"]);
    assert!(
        link.status.success(),
        "{}",
        String::from_utf8_lossy(&link.stderr)
    );
    let list = roi(tmp.path(), &["orgs", "list"]);
    let out = String::from_utf8_lossy(&list.stdout);
    assert!(
        out.contains("acme") && out.contains("pipeline org_id 3"),
        "{out}"
    );

    let first = roi(tmp.path(), &["alerts", "ingest"]);
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.contains("2 alerts read: 2 stored, 0 already"), "{out}");
    let again = roi(tmp.path(), &["alerts", "ingest"]);
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(out.contains("0 stored, 2 already in the store"), "{out}");

    // An agent works alert-0 to a deal; alert-1 stays new. Outcomes flow back to the
    // lake as labels.
    runtime.block_on(async {
        use roi_serving::alerts::AlertStatus::{Assigned, Contacted, Converted, New};
        let database = roi_serving::config::DatabaseConfig {
            url: Some(format!("sqlite://{}/data/roi.db", tmp.path().display())),
            max_connections: 1,
        };
        let (store, _) = roi_serving::server::open_store(&database)
            .await
            .expect("store");
        let org = store
            .organization_by_slug("acme")
            .await
            .expect("read")
            .expect("acme");
        let owner = store
            .tenant_of(&org)
            .user_by_email("owner@acme.test")
            .await
            .expect("read")
            .expect("owner");
        let tenant = store.tenant_of(&org);
        for (from, to, at, value) in [
            (New, Assigned, 1_710_000_100, None),
            (Assigned, Contacted, 1_710_003_700, None),
            (Contacted, Converted, 1_710_090_000, Some(412_000.0)),
        ] {
            let change = roi_serving::store::AlertMove {
                from,
                to,
                assignee_id: Some(&owner.id),
                outcome_value: value,
                actor_id: Some(&owner.id),
                detail: "by hand".into(),
            };
            assert!(
                tenant
                    .move_alert("alert-0", &change, at)
                    .await
                    .expect("move")
            );
        }
        store.close().await;
    });
    let outcomes = roi(tmp.path(), &["alerts", "outcomes"]);
    let out = String::from_utf8_lossy(&outcomes.stdout);
    assert!(
        out.contains("alerts.outcomes: 2 alerts (1 converted, 0 dismissed or expired, 1 open)"),
        "{out}{}",
        String::from_utf8_lossy(&outcomes.stderr)
    );
    let labels = roi(
        tmp.path(),
        &[
            "sql",
            "--format",
            "csv",
            "SELECT alert_id, org_id, status, converted, closed, outcome_value, \
             to_unixtime(contacted_at) - to_unixtime(assigned_at) AS to_contact \
             FROM alerts.outcomes ORDER BY alert_id",
        ],
    );
    let csv = String::from_utf8_lossy(&labels.stdout);
    assert!(
        csv.contains("alert-0,3,converted,true,true,412000.0,3600"),
        "{csv}{}",
        String::from_utf8_lossy(&labels.stderr)
    );
    assert!(csv.contains("alert-1,3,new,false,false,,"), "{csv}");
}

#[test]
fn contacts_sync_needs_a_lake_and_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = roi(tmp.path(), &["contacts", "sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no contacts at") && err.contains("roi demo"),
        "{err}"
    );
}
