//! The alert event push over real WebSockets on a loopback port, on SQLite and on the
//! real PostgreSQL: ingested alerts reach managers as `alert.new` and, routed in the
//! background, their agent as `alert.assigned`; a client that reconnects with its last
//! event id gets what it missed, once; another tenant's client gets nothing; replicas
//! hear of each other's events through the real Redis; silent clients, and clients whose
//! first message does not authenticate, are dropped; a server shutting down closes its
//! sockets with 1001.

mod common;

use std::time::Duration;

use common::TestApp;
use futures_util::{SinkExt, StreamExt};
use roi_serving::alerts::AlertKind;
use roi_serving::app::{AppState, router};
use roi_serving::config::{DatabaseConfig, PushConfig, ServeConfig};
use roi_serving::store::NewAlert;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for a frame that should come.
const DEADLINE: Duration = Duration::from_secs(10);

on_both_stores!(events_reach_the_right_sockets_live_and_on_resume);

fn alert(n: i64, lake_org: i64) -> NewAlert {
    NewAlert {
        id: format!("al-{lake_org}-{n}"),
        lake_org_id: lake_org,
        contact_id: 100 + n,
        property_id: Some(500 + n),
        kind: AlertKind::Sell,
        score: 0.8,
        confidence: 0.7,
        reasons: vec![format!("viewed valuation {n}× this week")],
        model_version: "sell-v1".into(),
        raised_at: 1_700_000_000 + n,
        zip: Some("50010".into()),
        agent_of_record: None,
    }
}

/// Opens `/ws` with an optional bearer token; the HTTP status when refused.
async fn open(addr: std::net::SocketAddr, query: &str, token: Option<&str>) -> Result<Ws, u16> {
    let mut request = format!("ws://{addr}/ws{query}")
        .into_client_request()
        .expect("request");
    if let Some(t) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("header"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("connecting to /ws: {e}"),
    }
}

/// The next JSON frame (pings are answered by the client library).
async fn next(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a frame before the deadline")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// The next alert event (stats frames are counted in `stats`).
async fn next_alert_event(ws: &mut Ws, stats: &mut u32) -> Value {
    loop {
        let frame = next(ws).await;
        if frame["event"] == "stats.updated" {
            *stats += 1;
            continue;
        }
        assert_eq!(frame["type"], "event", "{frame}");
        return frame;
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .expect("send");
}

async fn events_reach_the_right_sockets_live_and_on_resume(app: &TestApp) {
    let live = app.serve().await;
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    let owner_token = owner.str("/access_token");
    let ann = app
        .invite_and_accept(&owner_token, "ann@acme.test", "agent")
        .await;
    let (ann_id, ann_token) = (ann.str("/user/id"), ann.str("/access_token"));
    app.call(
        "PUT",
        &format!("/agents/{ann_id}"),
        Some(&owner_token),
        Some(json!({"zips": ["50010"], "skills": ["sell"], "capacity": 10})),
    )
    .await
    .expect(200);
    app.call(
        "PUT",
        "/routing/rules",
        Some(&owner_token),
        Some(json!({"rules": [{"name": "local", "strategies": [{"strategy": "territory"}, {"strategy": "workload"}]}]})),
    )
    .await
    .expect(200);
    let other = app.signup_linked("other", "owner@other.test", 9).await;

    // Refusals come as HTTP answers to the upgrade.
    assert_eq!(open(live.addr, "", Some("nonsense")).await.err(), Some(401));
    assert_eq!(
        open(live.addr, "?topics=org", Some(&ann_token)).await.err(),
        Some(403),
        "agents follow their own alerts, not the organization's"
    );
    assert_eq!(
        open(live.addr, "?topics=everything", Some(&owner_token))
            .await
            .err(),
        Some(422)
    );

    // The manager follows the organization (header token); Ann her own alerts, with the
    // token in a first message as a browser would; the other tenant its organization.
    let mut manager = open(live.addr, "?topics=org", Some(&owner_token))
        .await
        .expect("manager socket");
    let hello = next(&mut manager).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["topics"], json!(["org"]));
    let mut agent = open(live.addr, "", None).await.expect("agent socket");
    send(&mut agent, json!({"type": "auth", "token": ann_token})).await;
    let hello = next(&mut agent).await;
    assert_eq!(hello["user_id"], ann_id.as_str());
    assert_eq!(hello["topics"], json!(["me"]));
    let mut stranger = open(live.addr, "", Some(&other.str("/access_token")))
        .await
        .expect("other tenant's socket");
    assert_eq!(next(&mut stranger).await["type"], "hello");
    send(&mut agent, json!({"type": "ping"})).await;
    assert_eq!(next(&mut agent).await["type"], "pong");

    // Two alerts arrive; the background router gives both to Ann.
    app.state
        .store
        .ingest_alerts(&[alert(1, 7), alert(2, 7)], 1_800_000_000)
        .await
        .expect("ingest");
    let mut stats = 0;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let e = next_alert_event(&mut manager, &mut stats).await;
        seen.push((
            e["event"].as_str().unwrap_or("").to_owned(),
            e["data"]["alert"]["id"].as_str().unwrap_or("").to_owned(),
            e["id"].as_i64().expect("an event id"),
        ));
    }
    let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        ["alert.new", "alert.new", "alert.assigned", "alert.assigned"],
        "{seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0].2 < w[1].2), "ids increase");
    let mut last_seen_by_ann = 0;
    for expected in ["al-7-1", "al-7-2"] {
        let e = next_alert_event(&mut agent, &mut 0).await;
        assert_eq!(e["event"], "alert.assigned", "{e}");
        assert_eq!(e["data"]["alert"]["id"], expected);
        assert_eq!(e["data"]["alert"]["assignee_id"], ann_id.as_str());
        let detail = e["data"]["change"]["detail"].as_str().unwrap_or("");
        assert!(detail.contains("routed by rule local"), "{detail}");
        last_seen_by_ann = e["id"].as_i64().expect("id");
    }
    // Statistics follow the burst.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while stats == 0 && tokio::time::Instant::now() < deadline {
        let frame = next(&mut manager).await;
        if frame["event"] == "stats.updated" {
            assert_eq!(frame["data"]["by_status"]["assigned"], 2, "{frame}");
            stats += 1;
        }
    }
    assert!(stats > 0, "stats.updated after the alerts moved");

    // Ann goes offline; meanwhile the manager dismisses one of her alerts.
    drop(agent);
    app.post(
        "/alerts/al-7-1/status",
        Some(&owner_token),
        json!({"status": "dismissed", "note": "already listed with another firm"}),
    )
    .await
    .expect(200);
    // She comes back with her last event id and gets exactly what she missed.
    let mut agent = open(
        live.addr,
        &format!("?last_event_id={last_seen_by_ann}"),
        Some(&ann_token),
    )
    .await
    .expect("agent socket again");
    assert_eq!(next(&mut agent).await["type"], "hello");
    let missed = next_alert_event(&mut agent, &mut 0).await;
    assert_eq!(missed["event"], "alert.updated");
    assert_eq!(missed["data"]["alert"]["id"], "al-7-1");
    assert_eq!(missed["data"]["alert"]["status"], "dismissed");
    assert!(missed["id"].as_i64() > Some(last_seen_by_ann));
    // Then live again: she accepts the other alert and hears of it once.
    app.post("/alerts/al-7-2/accept", Some(&ann_token), json!({}))
        .await
        .expect(200);
    let accepted = next_alert_event(&mut agent, &mut 0).await;
    assert_eq!(accepted["data"]["alert"]["id"], "al-7-2");
    assert_eq!(accepted["data"]["change"]["detail"], "accepted");
    assert!(accepted["data"]["alert"]["accepted_at"].is_i64());
    assert!(accepted["id"].as_i64() > missed["id"].as_i64());

    // The other tenant heard nothing of acme: its first event is its own alert.
    app.state
        .store
        .ingest_alerts(&[alert(1, 9)], 1_800_000_000)
        .await
        .expect("ingest");
    let first = next_alert_event(&mut stranger, &mut 0).await;
    assert_eq!(first["event"], "alert.new");
    assert_eq!(first["data"]["alert"]["id"], "al-9-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_hear_of_each_others_events_through_redis() {
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let namespace = format!(
        "roi-test-{}",
        roi_serving::auth::secret::hex(&roi_serving::auth::secret::random_bytes::<6>())
    );
    let config = ServeConfig {
        redis_url: Some(redis),
        redis_namespace: namespace,
        // Without Redis, replica B would not look for a minute.
        push: PushConfig {
            poll_ms: 60_000,
            auto_route: false,
            ..PushConfig::default()
        },
        ..ServeConfig::default()
    };
    let a = common::sqlite_with(config.clone()).await;
    let _a_live = a.serve().await;
    // Replica B: its own process state and its own connections to the same store.
    let (store_b, _) = roi_serving::server::open_store(&DatabaseConfig {
        url: Some(a.url.clone()),
        max_connections: 2,
    })
    .await
    .expect("open the store again");
    let state_b = AppState::new(store_b, config)
        .await
        .expect("second replica (is Redis running? set TEST_REDIS_URL)");
    let b = common::TestApp::sharing(router(state_b.clone()), state_b);
    let b_live = b.serve().await;

    let owner = a.signup_linked("acme", "owner@acme.test", 7).await;
    let mut ws = open(b_live.addr, "", Some(&owner.str("/access_token")))
        .await
        .expect("socket on replica B");
    assert_eq!(next(&mut ws).await["type"], "hello");
    // Give B's subscription a moment to be in place before A announces.
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.state
        .store
        .ingest_alerts(&[alert(1, 7)], 1_800_000_000)
        .await
        .expect("ingest on replica A");
    let e = tokio::time::timeout(Duration::from_secs(5), next_alert_event(&mut ws, &mut 0))
        .await
        .expect("replica B pushes A's event well before its next poll");
    assert_eq!(e["event"], "alert.new");
    assert_eq!(e["data"]["alert"]["id"], "al-7-1");
    drop(b_live);
    b.cleanup().await;
    a.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_unauthenticated_clients_are_dropped() {
    let app = common::sqlite_with(ServeConfig {
        push: PushConfig {
            heartbeat_secs: 1,
            ..PushConfig::default()
        },
        ..ServeConfig::default()
    })
    .await;
    let live = app.serve().await;
    let owner = app.signup("acme", "owner@acme.test").await;
    let mut ws = open(live.addr, "", Some(&owner.str("/access_token")))
        .await
        .expect("socket");
    assert_eq!(next(&mut ws).await["type"], "hello");
    // Not reading means not answering pings.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut code = None;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(DEADLINE, ws.next()).await {
        if let Message::Close(Some(frame)) = message {
            code = Some(u16::from(frame.code));
            break;
        }
    }
    assert_eq!(code, Some(4008), "closed for missing heartbeats");
    // Without credentials on the upgrade, the first message must authenticate.
    for first in [
        json!({"type": "ping"}),
        json!({"type": "auth", "token": "forged"}),
    ] {
        let mut ws = open(live.addr, "", None).await.expect("socket");
        send(&mut ws, first).await;
        let mut code = None;
        while let Ok(Some(Ok(message))) = tokio::time::timeout(DEADLINE, ws.next()).await {
            if let Message::Close(Some(frame)) = message {
                code = Some(u16::from(frame.code));
                break;
            }
            assert!(!matches!(message, Message::Text(_)), "no hello before auth");
        }
        assert_eq!(code, Some(4001), "closed for missing credentials");
    }
    drop(live);
    app.cleanup().await;
}

/// A server shutting down (as on SIGTERM) closes its sockets with 1001, going away,
/// finishing the closing handshake, and then returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_going_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = DatabaseConfig {
        url: Some(format!(
            "sqlite://{}",
            dir.path().join("roi.db").to_string_lossy()
        )),
        ..DatabaseConfig::default()
    };
    let config = ServeConfig {
        bind: "127.0.0.1:0".into(),
        ..ServeConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (bound, addr) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        roi_serving::server::run_with(
            &config,
            &database,
            async {
                let _ = stopped.await;
            },
            move |addr, _, _| {
                let _ = bound.send(addr);
            },
        )
        .await
    });
    let addr = addr.await.expect("the server listens");
    let signup: Value = reqwest::Client::new()
        .post(format!("http://{addr}/auth/signup"))
        .json(
            &json!({"organization_name": "Acme realty", "organization_slug": "acme",
                      "email": "owner@acme.test", "name": "Owner",
                      "password": common::PASSWORD}),
        )
        .send()
        .await
        .expect("signup")
        .json()
        .await
        .expect("JSON");
    let token = signup["access_token"].as_str().expect("token");
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = open(addr, "", Some(token)).await.expect("socket");
        assert_eq!(next(&mut ws).await["type"], "hello");
        sockets.push(ws);
    }
    stop.send(()).expect("stop");
    for ws in &mut sockets {
        let mut code = None;
        while let Ok(Some(Ok(message))) = tokio::time::timeout(DEADLINE, ws.next()).await {
            if let Message::Close(Some(frame)) = message {
                code = Some(u16::from(frame.code));
                break;
            }
        }
        assert_eq!(code, Some(1001), "closed as going away");
        // Our answering Close ends the handshake; the server does not wait it out.
        let _ = ws.close(None).await;
    }
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("the server stops")
        .expect("task")
        .expect("served");
}
