//! Webhooks against a real HTTP receiver on loopback, on SQLite and on the real
//! PostgreSQL: alert events arrive signed (the receiver checks the HMAC); failures are
//! retried with back-off until a 2xx; after the last attempt the delivery is dead and
//! listed; a replay sends it again; only admins manage endpoints.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::TestApp;
use roi_serving::alerts::AlertKind;
use roi_serving::config::ServeConfig;
use roi_serving::store::NewAlert;
use roi_serving::webhooks::WebhookConfig;
use serde_json::{Value, json};

fn config() -> ServeConfig {
    ServeConfig {
        webhooks: WebhookConfig {
            max_attempts: 3,
            backoff_base_ms: 50,
            backoff_max_ms: 200,
            poll_ms: 50,
            ..WebhookConfig::default()
        },
        ..ServeConfig::default()
    }
}

async fn sqlite_app() -> TestApp {
    common::sqlite_with(config()).await
}

async fn postgres_app() -> TestApp {
    common::postgres_with(config()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let app = sqlite_app().await;
    events_are_signed_retried_dead_lettered_and_replayed(&app).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let app = postgres_app().await;
    events_are_signed_retried_dead_lettered_and_replayed(&app).await;
    app.cleanup().await;
}

/// What the receiver saw, and what it answers next.
#[derive(Default)]
struct Receiver {
    requests: Vec<(HeaderMap, String)>,
    /// Statuses to answer, in order; 200 once they run out.
    script: Vec<u16>,
}

/// A receiver on a loopback port.
async fn receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let shared = state.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let shared = shared.clone();
            async move {
                let mut r = shared.lock().expect("lock");
                r.requests.push((headers, body));
                let status = if r.script.is_empty() {
                    200
                } else {
                    r.script.remove(0)
                };
                StatusCode::from_u16(status).expect("status")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}/hook"), state)
}

fn alert(n: i64) -> NewAlert {
    NewAlert {
        id: format!("al-7-{n}"),
        lake_org_id: 7,
        contact_id: n,
        property_id: None,
        kind: AlertKind::Refinance,
        score: 0.7,
        confidence: 0.6,
        reasons: vec!["rate spread 1.4 points".into()],
        model_version: "refinance-v1".into(),
        raised_at: 1_700_000_000,
        zip: None,
        agent_of_record: None,
    }
}

/// Waits until the receiver has `n` requests.
async fn wait_for(state: &Arc<Mutex<Receiver>>, n: usize) -> Vec<(HeaderMap, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let seen = state.lock().expect("lock").requests.clone();
        if seen.len() >= n {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} requests expected, {} came",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the delivery list matches.
async fn wait_for_status(app: &TestApp, token: &str, hook: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let list = app
            .get(
                &format!("/webhooks/{hook}/deliveries?status={status}"),
                Some(token),
            )
            .await
            .expect(200);
        if list.json.as_array().is_some_and(|a| !a.is_empty()) {
            return list.json[0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {status} delivery"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn verify(headers: &HeaderMap, body: &str, secret: &str) {
    let signature = headers["x-roi-signature"].to_str().expect("ascii");
    let (t, v1) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature layout: {signature}"));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = roi_serving::auth::secret::hex(
        ring::hmac::sign(&key, format!("{t}.{body}").as_bytes()).as_ref(),
    );
    assert_eq!(v1, tag, "the receiver recomputes the signature");
    let at: i64 = t.parse().expect("timestamp");
    assert!(
        (roi_serving::unix_now() - at).abs() < 60,
        "a fresh timestamp"
    );
}

async fn events_are_signed_retried_dead_lettered_and_replayed(app: &TestApp) {
    let _live = app.serve().await;
    let (url, state) = receiver().await;
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    let token = owner.str("/access_token");
    let agent = app
        .invite_and_accept(&token, "ann@acme.test", "agent")
        .await;
    app.post(
        "/webhooks",
        Some(&agent.str("/access_token")),
        json!({"url": url}),
    )
    .await
    .expect_problem(403, "admin");
    for (body, needle) in [
        (json!({"url": "ftp://example.com/x"}), "http or https"),
        (json!({"url": "not a url"}), "not a URL"),
        (
            json!({"url": url, "events": ["alert.deleted"]}),
            "not an event",
        ),
        (json!({"url": url, "events": []}), "at least one"),
    ] {
        app.post("/webhooks", Some(&token), body)
            .await
            .expect_problem(422, needle);
    }
    let created = app
        .post(
            "/webhooks",
            Some(&token),
            json!({"url": url, "events": ["alert.new"]}),
        )
        .await
        .expect(201);
    let hook = created.str("/webhook/id");
    let secret = created.str("/secret");
    let listed = app.get("/webhooks", Some(&token)).await.expect(200);
    assert_eq!(listed.json[0]["id"], hook.as_str());
    assert!(
        !listed.text.contains(&secret),
        "the secret is shown only once"
    );

    // Two failures, then the receiver takes it: three attempts, one delivery.
    state.lock().expect("lock").script = vec![500, 503];
    app.state
        .store
        .ingest_alerts(&[alert(1)], 1_800_000_000)
        .await
        .expect("ingest");
    let seen = wait_for(&state, 3).await;
    let ids: Vec<&str> = seen
        .iter()
        .map(|(h, _)| h["x-roi-delivery"].to_str().expect("ascii"))
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every attempt carries the same delivery id"
    );
    for (headers, body) in &seen {
        assert_eq!(headers["x-roi-event"], "alert.new");
        verify(headers, body, &secret);
        let payload: Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(payload["event"], "alert.new");
        assert_eq!(payload["data"]["alert"]["id"], "al-7-1");
    }
    let delivered = wait_for_status(app, &token, &hook, "delivered").await;
    assert_eq!(delivered["attempts"], 3);
    assert_eq!(delivered["last_status"], 200);

    // Always failing: dead after the third attempt, then replayed once fixed.
    state.lock().expect("lock").script = vec![500, 500, 500];
    app.state
        .store
        .ingest_alerts(&[alert(2)], 1_800_000_000)
        .await
        .expect("ingest");
    let dead = wait_for_status(app, &token, &hook, "dead").await;
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["last_status"], 500);
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{dead}"
    );
    let before = state.lock().expect("lock").requests.len();
    let replayed = app
        .post(
            &format!(
                "/webhooks/{hook}/deliveries/{}/replay",
                dead["id"].as_str().expect("id")
            ),
            Some(&token),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(replayed.json["status"], "pending");
    let seen = wait_for(&state, before + 1).await;
    let (_, body) = &seen[before];
    assert!(body.contains("al-7-2"), "{body}");
    app.post(
        &format!("/webhooks/{hook}/deliveries/dlv_nope/replay"),
        Some(&token),
        json!({}),
    )
    .await
    .expect_problem(404, "delivery");

    // Events it did not ask for are not sent; a removed endpoint gets nothing more.
    app.call("DELETE", &format!("/webhooks/{hook}"), Some(&token), None)
        .await
        .expect(204);
    let before = state.lock().expect("lock").requests.len();
    app.state
        .store
        .ingest_alerts(&[alert(3)], 1_800_000_000)
        .await
        .expect("ingest");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state.lock().expect("lock").requests.len(), before);
    let audit = app.get("/audit", Some(&token)).await.expect(200);
    assert!(
        audit.text.contains("webhook.created") && audit.text.contains("webhook.deleted"),
        "{}",
        audit.text
    );
}
