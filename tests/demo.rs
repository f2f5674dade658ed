//! `roi demo` end to end, then the served side of it as separate processes do it: the
//! demo's world is generated, its batch jobs run, its models trained, its events
//! streamed into alerts, and the alerts stored and routed; then, on a fresh store, a
//! running `roi serve` pushes the alerts that `roi alerts ingest` brings in to a manager's
//! WebSocket as `alert.new` (and, routed in the background, `alert.assigned`); a client
//! that reconnects with its last event id gets the rest, none twice; another tenant's
//! client gets nothing.

mod common;
use common::roi;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(20);

/// A `roi serve` child, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        // Read the event log often: `roi alerts ingest` is another process.
        .env("ROI_SERVE__PUSH__POLL_MS", "200")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    (Server(child), addr)
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut request = client.request(method, &url).json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

async fn open(addr: &str, query: &str, token: &str) -> Ws {
    let mut request = format!("ws://{addr}/ws{query}")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("open /ws");
    assert_eq!(next(&mut ws).await["type"], "hello");
    ws
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a frame before the deadline")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(t) = message {
            return serde_json::from_str(t.as_str()).expect("JSON");
        }
    }
}

#[test]
fn demo_then_alerts_pushed_live_to_websocket_clients() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // The small world: the tiny one is too small for the models to raise alerts.
    let (ok, summary, err) = roi(dir, &["demo", "--scale", "small"]);
    assert!(ok, "{err}");
    for needle in [
        "oracle",
        "events:",
        "property-master: succeeded",
        "comparables: succeeded",
        "homes from curated.property_master",
        "alert-training-set: succeeded",
        "sell-v1 (sell), promoted",
        "alerts against the world's outcomes",
        "alerts routed now",
        "rule \"agent of record\" (relationship)",
        "demo-credentials.txt",
        "homeowners read from the lake; scores from the promoted",
        "new contacts",
    ] {
        assert!(summary.contains(needle), "{needle:?} in {summary}");
    }
    assert!(dir.join("data/lake/raw/manifest.json").is_file());
    assert!(dir.join("data/lake/curated/market_stats").is_dir());
    assert!(
        dir.join("data/lake/models/registry/promoted.json")
            .is_file()
    );
    let credentials = std::fs::read_to_string(dir.join("data/demo-credentials.txt"))
        .expect("the demo users' sign-in file");
    assert!(credentials.contains("\towner"), "{credentials}");
    // The served side, on a fresh store, as separate processes.
    for file in ["roi.db", "roi.db-wal", "roi.db-shm"] {
        let _ = std::fs::remove_file(dir.join("data").join(file));
    }
    let alerts: Vec<roi_schemas::alert::Alert> =
        roi_pipeline::lake::read_table(&dir.join("data/lake/alerts/alerts")).expect("lake alerts");
    let mut by_org: HashMap<i64, BTreeSet<String>> = HashMap::new();
    for a in &alerts {
        by_org
            .entry(a.org_id.0)
            .or_default()
            .insert(a.alert_id.clone());
    }
    let (&lake_org, expected) = by_org
        .iter()
        .max_by_key(|(_, ids)| ids.len())
        .expect("the demo raised alerts");
    let (server, addr) = serve(dir);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://{addr}");
        let signup = |slug: &str| {
            json!({"organization_name": slug, "organization_slug": slug, "email": format!("owner@{slug}.test"),
                   "name": "Owner", "password": "correct horse battery staple"})
        };
        let owner = call(&http, reqwest::Method::POST, format!("{base}/auth/signup"), None, signup("brokerage")).await;
        let token = owner["access_token"].as_str().expect("token").to_owned();
        let rival = call(&http, reqwest::Method::POST, format!("{base}/auth/signup"), None, signup("rival")).await;
        let rival_token = rival["access_token"].as_str().expect("token").to_owned();
        let (ok, _, err) = roi(dir, &["orgs", "link", "brokerage", &lake_org.to_string()]);
        assert!(ok, "{err}");
        // One agent takes everything, in turn.
        let invite = call(&http, reqwest::Method::POST, format!("{base}/invitations"), Some(&token),
            json!({"email": "ann@brokerage.test", "role": "agent"})).await;
        let ann = call(&http, reqwest::Method::POST, format!("{base}/invitations/accept"), None,
            json!({"token": invite["token"], "name": "Ann", "password": "correct horse battery staple"})).await;
        let ann_id = ann["user"]["id"].as_str().expect("id").to_owned();
        call(&http, reqwest::Method::PUT, format!("{base}/agents/{ann_id}"), Some(&token),
            json!({"zips": [], "skills": ["sell", "buy", "refinance", "investment"], "capacity": 10000})).await;
        call(&http, reqwest::Method::PUT, format!("{base}/routing/rules"), Some(&token),
            json!({"rules": [{"name": "anyone", "strategies": [{"strategy": "round_robin"}]}]})).await;

        let mut manager = open(&addr, "?topics=org", &token).await;
        let mut stranger = open(&addr, "", &rival_token).await;
        let (ok, out, err) = roi(dir, &["alerts", "ingest"]);
        assert!(ok, "{err}");
        assert!(out.contains(&format!("{} stored", expected.len())), "{out}");

        // The first alert arrives live; then the manager drops off and comes back.
        let mut new_ids = Vec::new();
        let mut assigned = 0;
        let mut last_id = 0;
        while new_ids.is_empty() {
            let e = next(&mut manager).await;
            if e["event"] == "alert.new" {
                new_ids.push(e["data"]["alert"]["id"].as_str().expect("id").to_owned());
                last_id = e["id"].as_i64().expect("event id");
            }
        }
        drop(manager);
        let mut manager = open(&addr, &format!("?topics=org&last_event_id={last_id}"), &token).await;
        while new_ids.len() < expected.len() || assigned < expected.len() {
            let e = next(&mut manager).await;
            if e["event"] == "stats.updated" {
                continue;
            }
            let id = e["id"].as_i64().expect("event id");
            assert!(id > last_id, "event {id} after {last_id}: none twice, in order");
            last_id = id;
            match e["event"].as_str() {
                Some("alert.new") => new_ids.push(e["data"]["alert"]["id"].as_str().expect("id").to_owned()),
                Some("alert.assigned") => {
                    assert_eq!(e["data"]["alert"]["assignee_id"], ann_id.as_str());
                    assigned += 1;
                }
                other => panic!("unexpected {other:?}: {e}"),
            }
        }
        let got: BTreeSet<String> = new_ids.iter().cloned().collect();
        assert_eq!(got.len(), new_ids.len(), "no alert twice");
        assert_eq!(&got, expected, "every ingested alert, live or on resume");

        // The other tenant heard nothing: its next frame is the answer to its ping.
        stranger
            .send(Message::Text(json!({"type": "ping"}).to_string().into()))
            .await
            .expect("ping");
        assert_eq!(next(&mut stranger).await["type"], "pong");
    });
    drop(server);
}
