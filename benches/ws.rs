//! The alert push under load: many WebSocket clients on one `roi serve` process, with
//! the load generated here, in a second process, on loopback.
//!
//! Each client is an agent following its own alerts (`me`). This process stores alerts
//! at a steady rate into the server's store (as `roi alerts ingest` does); the server
//! reads its event log, routes each new alert round-robin to one of the agents in the
//! background, and pushes `alert.assigned` to that agent's socket. Measured: the server's
//! resident memory per connection, and the time from storing an alert to its agent's
//! client receiving it (p50, p99, max), with how many arrived.
//!
//! The peer, in the same run: a Node.js fan-out server built on the `ws` package
//! (`benches/peers/ws/fanout.mjs`) holding the same number of clients, told of each
//! alert over a socket and forwarding it to its agent. It does no storing, reading or
//! routing, so it is a floor for the transport, not an equal: the ratios say what the
//! store, the log and the routing cost on top of it.
//!
//! Usage: `benches/ws.sh [CLIENTS] [ALERTS_PER_SEC] [SECONDS]` (default 10000 1000 20),
//! which raises the open-file limit, builds the release binary and installs the peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use roi_serving::alerts::AlertKind;
use roi_serving::auth::token::KeyRing;
use roi_serving::config::DatabaseConfig;
use roi_serving::role::Role;
use roi_serving::routing::{Rule, StrategyConfig};
use roi_serving::store::{AgentProfile, NewAlert, NewUser, Store};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

mod support;
use support::start;

/// Send times of alerts by id, and receive latencies.
#[derive(Default)]
struct Clock {
    sent: Mutex<HashMap<String, Instant>>,
    latencies: Mutex<Vec<Duration>>,
}

impl Clock {
    fn received(&self, alert_id: &str) {
        let at = Instant::now();
        let sent = self
            .sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(alert_id)
            .copied();
        if let Some(sent) = sent {
            self.latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(at - sent);
        }
    }
}

struct Settings {
    clients: usize,
    rate: usize,
    secs: u64,
    roi: String,
    peer: String,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let settings = Settings {
        clients: number(0, 10_000),
        rate: number(1, 1_000),
        secs: number(2, 20) as u64,
        roi: std::env::var("BENCH_ROI_BIN").unwrap_or_else(|_| "target/release/roi".into()),
        peer: std::env::var("BENCH_PEER_SCRIPT")
            .unwrap_or_else(|_| "benches/peers/ws/fanout.mjs".into()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(settings));
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Connects `urls.len()` clients, at most 256 handshakes at a time; each counts the
/// alerts it receives into `clock`. Returns when all are connected (hello received).
async fn connect_all(
    requests: Vec<tokio_tungstenite::tungstenite::handshake::client::Request>,
    clock: Arc<Clock>,
    field: &'static str,
) -> Vec<tokio::task::JoinHandle<()>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(requests.len().max(1));
    let n = requests.len();
    let mut tasks = Vec::with_capacity(n);
    for request in requests {
        let gate = gate.clone();
        let clock = clock.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("gate");
            let (mut ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .expect("connect a client");
            drop(permit);
            let mut first = true;
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                if first {
                    first = false;
                    let _ = ready.send(()).await;
                    continue;
                }
                let Ok(value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                    continue;
                };
                let id = value
                    .pointer(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                if !id.is_empty() {
                    clock.received(id);
                }
            }
        }));
    }
    drop(ready_tx);
    for _ in 0..n {
        ready_rx.recv().await.expect("every client says hello");
    }
    tasks
}

fn summary(name: &str, clock: &Clock, sent: usize) -> Option<(Duration, Duration)> {
    let mut l = clock
        .latencies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    l.sort();
    if l.is_empty() {
        println!("{name:<8} no alerts arrived");
        return None;
    }
    let at = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
    let (p50, p99, max) = (at(0.50), at(0.99), l[l.len() - 1]);
    println!(
        "{name:<8} delivered {}/{sent}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        l.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    Some((p50, p99))
}

/// Paces `total` sends at `rate` per second in 10 ms ticks.
async fn pace(rate: usize, secs: u64, mut send: impl AsyncFnMut(usize, usize)) -> usize {
    let per_tick = (rate / 100).max(1);
    let ticks = secs * 100;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut next = 0;
    for _ in 0..ticks {
        tick.tick().await;
        send(next, per_tick).await;
        next += per_tick;
    }
    next
}

async fn run(s: Settings) {
    let dir = tempfile::tempdir().expect("tempdir");
    // BENCH_DATABASE_URL: an empty PostgreSQL database instead of a SQLite file.
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/roi.db", dir.path().display()));
    let database = DatabaseConfig {
        url: Some(url.clone()),
        max_connections: 4,
    };
    println!(
        "{} agents, one socket each; {} alerts/s for {} s; store {url}",
        s.clients, s.rate, s.secs
    );

    // The organization, its agents (round-robin over all of them) and their tokens.
    let (store, _) = roi_serving::server::open_store(&database)
        .await
        .expect("store");
    let started = Instant::now();
    let tokens = seed(&store, s.clients).await;
    println!(
        "seeded {} agents in {:.1} s",
        s.clients,
        started.elapsed().as_secs_f64()
    );

    // roi serve, in its own process.
    let mut command = std::process::Command::new(&s.roi);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("ROI_DATABASE__URL", &url)
        .env("ROI_SERVE__PUSH__POLL_MS", "10")
        .env("ROI_SERVE__PUSH__ROUTE_INTERVAL_SECS", "3600");
    let (server, addr) = start(command, "http://");
    let pid = server.0.id();
    let idle = rss_kib(pid);
    let clock = Arc::new(Clock::default());
    let requests = tokens
        .iter()
        .map(|t| {
            let mut r = format!("ws://{addr}/ws")
                .into_client_request()
                .expect("request");
            r.headers_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
            r
        })
        .collect();
    let started = Instant::now();
    let clients = connect_all(requests, clock.clone(), "/data/alert/id").await;
    let connected = rss_kib(pid);
    let per_conn = (connected.saturating_sub(idle)) as f64 * 1024.0 / s.clients as f64;
    println!(
        "roi      {} sockets open in {:.1} s; server memory {} MiB idle, {} MiB with them: {:.1} KiB per connection",
        s.clients,
        started.elapsed().as_secs_f64(),
        idle / 1024,
        connected / 1024,
        per_conn / 1024.0
    );

    // The load: alerts stored here, found, routed and pushed there.
    let sent = pace(s.rate, s.secs, async |first, n| {
        let batch: Vec<NewAlert> = (first..first + n).map(alert).collect();
        {
            let mut sent = clock.sent.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            for a in &batch {
                sent.insert(a.id.clone(), now);
            }
        }
        store
            .ingest_alerts(&batch, roi_serving::unix_now())
            .await
            .expect("ingest");
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let server_rss = rss_kib(pid);
    let ours = summary("roi", &clock, sent);
    println!(
        "roi      server memory after the load: {} MiB",
        server_rss / 1024
    );
    for c in clients {
        c.abort();
    }
    drop(server);
    store.close().await;

    // The peer: the same clients and rate through a plain fan-out server.
    let mut command = std::process::Command::new("node");
    command.arg(&s.peer);
    let (peer, addr) = start(command, "listening on ");
    let pid = peer.0.id();
    let idle = rss_kib(pid);
    let clock = Arc::new(Clock::default());
    let requests = (0..s.clients)
        .map(|i| {
            format!("ws://{addr}/?agent={i}")
                .into_client_request()
                .expect("request")
        })
        .collect();
    let clients = connect_all(requests, clock.clone(), "/id").await;
    let connected = rss_kib(pid);
    let peer_per_conn = (connected.saturating_sub(idle)) as f64 * 1024.0 / s.clients as f64;
    println!(
        "peer     {} sockets; memory {} MiB idle, {} MiB with them: {:.1} KiB per connection",
        s.clients,
        idle / 1024,
        connected / 1024,
        peer_per_conn / 1024.0
    );
    let (mut publisher, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/?publish=1"))
        .await
        .expect("publisher");
    let agents = s.clients;
    let sent = pace(s.rate, s.secs, async |first, n| {
        let now = Instant::now();
        let mut lines = Vec::with_capacity(n);
        {
            let mut sent = clock.sent.lock().unwrap_or_else(|p| p.into_inner());
            for i in first..first + n {
                let id = format!("bench-{i}");
                let payload = serde_json::json!({
                    "agent": i % agents,
                    "type": "event",
                    "event": "alert.assigned",
                    "id": id,
                    "data": {"alert": alert(i).reasons, "change": {"detail": "routed by rule turns (round_robin): next in turn"}},
                });
                lines.push(payload.to_string());
                sent.insert(id, now);
            }
        }
        for line in lines {
            publisher
                .send(Message::Text(line.into()))
                .await
                .expect("publish");
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let theirs = summary("peer", &clock, sent);
    for c in clients {
        c.abort();
    }
    drop(peer);
    if let (Some((_, ours)), Some((_, theirs))) = (ours, theirs) {
        println!(
            "ratio    p99 roi/peer {:.1}x; memory per connection roi/peer {:.2}x",
            ours.as_secs_f64() / theirs.as_secs_f64(),
            per_conn / peer_per_conn
        );
    }
}

fn alert(i: usize) -> NewAlert {
    NewAlert {
        id: format!("bench-{i}"),
        lake_org_id: 1,
        contact_id: i as i64,
        property_id: Some(i as i64),
        kind: AlertKind::Sell,
        score: 0.8,
        confidence: 0.7,
        reasons: vec!["viewed valuation 6× this week vs 0.4/week usual".into()],
        model_version: "sell-v1".into(),
        raised_at: 1_700_000_000 + i as i64,
        zip: Some("50010".into()),
        agent_of_record: None,
    }
}

/// One organization with `n` agents, round-robin routing, and an access token for each.
async fn seed(store: &Store, n: usize) -> Vec<String> {
    let now = roi_serving::unix_now();
    let hash = roi_serving::auth::password::Passwords::new()
        .hash("correct horse battery staple")
        .expect("hash");
    let user = |email: String, role| NewUser {
        email,
        name: "Bench".into(),
        role,
        password_hash: hash.clone(),
    };
    let (org, _) = store
        .create_organization(
            "bench",
            "Bench",
            user("owner@bench.test".into(), Role::Owner),
            now,
        )
        .await
        .expect("organization");
    store.link_lake_org(1, &org.id, now).await.expect("link");
    let tenant = store.tenant_of(&org);
    let keys = KeyRing::new("roi", 3600, 24 * 3600);
    keys.sync(store, now).await.expect("signing keys");
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let agent = tenant
            .add_user(user(format!("agent{i}@bench.test"), Role::Agent), now)
            .await
            .expect("agent");
        tenant
            .set_agent_profile(
                &AgentProfile {
                    user_id: agent.id.clone(),
                    zips: ["50010".to_owned()].into(),
                    skills: [AlertKind::Sell].into(),
                    capacity: 10_000,
                    active: true,
                },
                now,
            )
            .await
            .expect("profile");
        tokens.push(
            keys.issue(&agent.id, &org.id, Role::Agent, false, now)
                .expect("token"),
        );
    }
    let rules = vec![Rule {
        name: "turns".into(),
        strategies: vec![StrategyConfig::RoundRobin],
    }];
    tenant
        .set_routing_rules(&rules, None, now)
        .await
        .expect("rules");
    tokens
}
