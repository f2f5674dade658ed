//! Notifications, on SQLite and on the real PostgreSQL: the in-app inbox (made from the
//! alert event log, read and unread, private to each user); preferences and their
//! checks; e-mail delivered to a real SMTP server on loopback (aiosmtpd, from PyPI;
//! `scripts/test` installs it) with both parts and the personalised content; SMS through
//! a Twilio-compatible API served here; quiet hours holding messages; the daily digest;
//! a permanent refusal ending a message as dead.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::TestApp;
use common::smtp::{Smtp, mails, picky_smtp_server, smtp_server, unfold, wait_mails};
use roi_serving::alerts::AlertKind;
use roi_serving::config::ServeConfig;
use roi_serving::notify::NotifyConfig;
use roi_serving::store::NewAlert;
use serde_json::{Value, json};

fn alert(n: i64) -> NewAlert {
    NewAlert {
        id: format!("al-7-{n}"),
        lake_org_id: 7,
        contact_id: n,
        property_id: None,
        kind: AlertKind::Refinance,
        score: 0.7,
        confidence: 0.6,
        reasons: vec![
            "rate spread 1.4 points".into(),
            "viewed valuation 6x this week".into(),
        ],
        model_version: "refinance-v1".into(),
        raised_at: 1_700_000_000,
        zip: Some("50010".into()),
        agent_of_record: None,
    }
}

/// An organization with its owner and two agents, alerts 1..=n in the store.
struct Org {
    owner: String,
    ann: (String, String),
    bob: (String, String),
}

async fn organization(app: &TestApp, alerts: i64) -> Org {
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    let token = owner.str("/access_token");
    let ann = app
        .invite_and_accept(&token, "ann@acme.test", "agent")
        .await;
    let bob = app
        .invite_and_accept(&token, "bob@acme.test", "agent")
        .await;
    let batch: Vec<NewAlert> = (1..=alerts).map(alert).collect();
    app.state
        .store
        .ingest_alerts(&batch, roi_serving::unix_now())
        .await
        .expect("ingest");
    Org {
        owner: token,
        ann: (ann.str("/access_token"), ann.str("/user/id")),
        bob: (bob.str("/access_token"), bob.str("/user/id")),
    }
}

async fn assign(app: &TestApp, token: &str, alert: &str, to: &str) {
    let r = app
        .post(
            "/alerts/assign",
            Some(token),
            json!({"alert_ids": [alert], "assignee_id": to}),
        )
        .await
        .expect(200);
    assert_eq!(
        r.json["assigned"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
}

/// Waits until the inbox of `token` holds `n` entries.
async fn inbox(app: &TestApp, token: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = app.get("/notifications", Some(token)).await.expect(200);
        let len = page.json["notifications"].as_array().map_or(0, Vec::len);
        if len >= n {
            return page.json;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} notifications expected, {len} came"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn the_inbox_keeps_what_was_given_and_taken_and_what_was_read(app: &TestApp) {
    let _live = app.serve().await;
    let org = organization(app, 3).await;
    let (ann, ann_id) = &org.ann;
    let (bob, bob_id) = &org.bob;
    let empty = app.get("/notifications", Some(ann)).await.expect(200);
    assert_eq!(empty.json["unread"], 0);

    assign(app, &org.owner, "al-7-1", ann_id).await;
    assign(app, &org.owner, "al-7-2", ann_id).await;
    let page = inbox(app, ann, 2).await;
    assert_eq!(page["unread"], 2);
    let newest = &page["notifications"][0];
    assert_eq!(newest["kind"], "alert.assigned");
    assert_eq!(newest["alert_id"], "al-7-2");
    assert_eq!(
        newest["title"],
        "New refinance alert: contact 2 (score 0.70)"
    );
    assert!(
        newest["body"]
            .as_str()
            .is_some_and(|b| b.contains("rate spread 1.4 points")),
        "{newest}"
    );
    assert!(newest["read_at"].is_null());

    // Moving one to Bob tells Bob, and tells Ann it went.
    assign(app, &org.owner, "al-7-1", bob_id).await;
    let bobs = inbox(app, bob, 1).await;
    assert_eq!(bobs["notifications"][0]["alert_id"], "al-7-1");
    let page = inbox(app, ann, 3).await;
    assert_eq!(page["notifications"][0]["kind"], "alert.reassigned");
    assert_eq!(page["unread"], 3);

    // An unassigned alert given to Bob tells only Bob.
    let took = app
        .post(
            "/alerts/assign",
            Some(&org.owner),
            json!({"alert_ids": ["al-7-3"], "assignee_id": bob_id}),
        )
        .await
        .expect(200);
    assert_eq!(took.json["assigned"].as_array().map(Vec::len), Some(1));
    inbox(app, bob, 2).await;

    // Pages, newest first.
    let first = app
        .get("/notifications?limit=2", Some(ann))
        .await
        .expect(200);
    let before = first.json["next_before"].as_str().expect("a next page");
    let rest = app
        .get(
            &format!("/notifications?limit=2&before={before}"),
            Some(ann),
        )
        .await
        .expect(200);
    assert_eq!(rest.json["notifications"].as_array().map(Vec::len), Some(1));
    assert!(rest.json["next_before"].is_null());
    assert_eq!(rest.json["notifications"][0]["alert_id"], "al-7-1");

    // Read one, then all; someone else's cannot be touched.
    let id = first.json["notifications"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.post(&format!("/notifications/{id}/read"), Some(bob), json!({}))
        .await
        .expect_problem(404, "notification");
    app.post(&format!("/notifications/{id}/read"), Some(ann), json!({}))
        .await
        .expect(204);
    let unread = app
        .get("/notifications?unread=true", Some(ann))
        .await
        .expect(200);
    assert_eq!(unread.json["unread"], 2);
    assert!(
        unread.json["notifications"]
            .as_array()
            .expect("list")
            .iter()
            .all(|n| n["id"] != id.as_str())
    );
    let all = app
        .post("/notifications/read-all", Some(ann), json!({}))
        .await
        .expect(200);
    assert_eq!(all.json["marked"], 2);
    let after = app.get("/notifications", Some(ann)).await.expect(200);
    assert_eq!(after.json["unread"], 0);
    assert_eq!(app.get("/notifications", Some(bob)).await.json["unread"], 2);
    for (query, needle) in [("limit=0", "limit"), ("before=x", "before")] {
        app.get(&format!("/notifications?{query}"), Some(ann))
            .await
            .expect_problem(422, needle);
    }
    app.get("/notifications", None).await.expect(401);
}

async fn preferences_are_checked_and_kept(app: &TestApp) {
    let org = organization(app, 0).await;
    let (ann, _) = &org.ann;
    let defaults = app
        .get("/notifications/preferences", Some(ann))
        .await
        .expect(200);
    assert_eq!(defaults.json["email"], "immediate");
    assert_eq!(defaults.json["sms"], false);
    assert_eq!(defaults.json["timezone"], "UTC");
    assert_eq!(defaults.json["email_available"], false);
    assert!(defaults.json["updated_at"].is_null());
    let good = json!({"email": "digest", "sms": false, "phone": "+15155550100",
                      "quiet_hours": {"start": "21:30", "end": "07:00"},
                      "timezone": "America/Chicago", "digest_hour": 8});
    for (change, status, needle) in [
        (json!({"email": "weekly"}), 422, "email"),
        (json!({"timezone": "Mars/Olympus"}), 422, "timezone"),
        (json!({"digest_hour": 24}), 422, "digest_hour"),
        (json!({"phone": "5550100"}), 422, "E.164"),
        (json!({"sms": true, "phone": null}), 422, "mobile number"),
        (json!({"sms": true}), 409, "no SMS"),
        (
            json!({"quiet_hours": {"start": "9pm", "end": "07:00"}}),
            422,
            "quiet_hours.start",
        ),
        (
            json!({"quiet_hours": {"start": "07:00", "end": "07:00"}}),
            422,
            "the same",
        ),
    ] {
        let mut body = good.clone();
        for (k, v) in change.as_object().expect("object") {
            body[k] = v.clone();
        }
        app.call("PUT", "/notifications/preferences", Some(ann), Some(body))
            .await
            .expect_problem(status, needle);
    }
    let stored = app
        .call(
            "PUT",
            "/notifications/preferences",
            Some(ann),
            Some(good.clone()),
        )
        .await
        .expect(200);
    for key in ["email", "phone", "quiet_hours", "timezone", "digest_hour"] {
        assert_eq!(stored.json[key], good[key], "{key}");
    }
    let next = stored.json["next_digest_at"].as_i64().expect("next digest");
    let now = roi_serving::unix_now();
    assert!(next > now && next <= now + 86_400 + 3_600, "{next}");
    let again = app
        .get("/notifications/preferences", Some(ann))
        .await
        .expect(200);
    assert_eq!(again.json["quiet_hours"]["start"], "21:30");
    assert!(again.json["updated_at"].is_i64());
    // Each user has their own.
    let bobs = app
        .get("/notifications/preferences", Some(&org.bob.0))
        .await
        .expect(200);
    assert_eq!(bobs.json["email"], "immediate");
}

on_both_stores!(
    the_inbox_keeps_what_was_given_and_taken_and_what_was_read,
    preferences_are_checked_and_kept
);

/// A Twilio-compatible SMS API: records each message, refuses numbers ending in 99.
#[derive(Default)]
struct SmsApi {
    requests: Vec<(String, HeaderMap, String)>,
}

async fn sms_api() -> (String, Arc<Mutex<SmsApi>>) {
    let state = Arc::new(Mutex::new(SmsApi::default()));
    let shared = state.clone();
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        axum::routing::post(
            move |axum::extract::Path(sid): axum::extract::Path<String>,
                  headers: HeaderMap,
                  body: String| {
                let shared = shared.clone();
                async move {
                    let refused = body.contains("15155550199");
                    shared
                        .lock()
                        .expect("lock")
                        .requests
                        .push((sid, headers, body));
                    if refused {
                        (
                            StatusCode::BAD_REQUEST,
                            r#"{"code":21211,"message":"invalid To number"}"#,
                        )
                    } else {
                        (StatusCode::CREATED, r#"{"sid":"SM1","status":"queued"}"#)
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}"), state)
}

fn channel_config(smtp_port: u16, sms_url: &str) -> ServeConfig {
    ServeConfig {
        public_url: Some("https://roi.example".into()),
        notifications: NotifyConfig {
            smtp_url: Some(format!("smtp://127.0.0.1:{smtp_port}")),
            email_from: "ROI Alerts <alerts@roi.example>".into(),
            sms_api_url: Some(sms_url.to_owned()),
            sms_account_sid: "AC123".into(),
            sms_auth_token: Some("token-xyz".into()),
            sms_from: "+15155550000".into(),
            max_attempts: 3,
            backoff_base_ms: 50,
            backoff_max_ms: 200,
            poll_ms: 50,
            ..NotifyConfig::default()
        },
        ..ServeConfig::default()
    }
}

async fn set_prefs(app: &TestApp, token: &str, body: Value) {
    app.call("PUT", "/notifications/preferences", Some(token), Some(body))
        .await
        .expect(200);
}

fn prefs(email: &str, sms: bool, phone: Option<&str>) -> Value {
    json!({"email": email, "sms": sms, "phone": phone, "quiet_hours": null,
           "timezone": "UTC", "digest_hour": 7})
}

async fn e_mail_and_sms_reach_real_servers(app: &TestApp, smtp: &Smtp, sms: &Arc<Mutex<SmsApi>>) {
    let _live = app.serve().await;
    let org = organization(app, 5).await;
    let (ann, ann_id) = &org.ann;
    let (bob, bob_id) = &org.bob;
    let ready = app
        .get("/notifications/preferences", Some(ann))
        .await
        .expect(200);
    assert_eq!(ready.json["email_available"], true);
    assert_eq!(ready.json["sms_available"], true);
    set_prefs(app, ann, prefs("immediate", true, Some("+15155550100"))).await;
    set_prefs(app, bob, prefs("digest", false, None)).await;

    // Ann: an e-mail with both parts, and an SMS.
    assign(app, &org.owner, "al-7-1", ann_id).await;
    let mail = unfold(&wait_mails(smtp, 1).await[0]);
    for needle in [
        "ROI Alerts",
        "<alerts@roi.example>",
        "To: ann@acme.test",
        "Subject: New refinance alert: contact 1 (score 0.70)",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "Hello agent,",
        "rate spread 1.4 points",
        "https://roi.example/alerts/al-7-1",
        "<a href=\"https://roi.example/alerts/al-7-1\">Open the alert</a>",
        "https://roi.example/notifications/preferences",
    ] {
        assert!(mail.contains(needle), "{needle:?} not in\n{mail}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while sms.lock().expect("lock").requests.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no SMS came");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    {
        let seen = sms.lock().expect("lock");
        let (sid, headers, body) = &seen.requests[0];
        assert_eq!(sid, "AC123");
        let auth = headers["authorization"].to_str().expect("ascii");
        use base64::Engine;
        assert_eq!(
            auth,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("AC123:token-xyz")
            )
        );
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let field = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        assert_eq!(field("To"), "+15155550100");
        assert_eq!(field("From"), "+15155550000");
        assert!(
            field("Body").contains("contact 1") && field("Body").contains("/alerts/al-7-1"),
            "{body}"
        );
    }

    // Bob chose the digest: his alert makes an inbox entry and no mail until the digest.
    assign(app, &org.owner, "al-7-2", bob_id).await;
    inbox(app, bob, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mails(smtp.dir.path()).len(), 1, "no mail for a digest user");
    let tomorrow = roi_serving::unix_now() + 86_400 + 3_600;
    let queued =
        roi_serving::notify::queue_digests(&app.state.store, tomorrow, "https://roi.example")
            .await
            .expect("digests");
    assert_eq!(queued, 1);
    let digest = unfold(&wait_mails(smtp, 2).await[1]);
    for needle in [
        "To: bob@acme.test",
        "Subject: Your ROI digest: 1 new alert",
        "New refinance alert: contact 2 (score 0.70)",
        "https://roi.example/alerts/al-7-2",
        "07:00",
    ] {
        let needle = needle.replace("07:00", "7:00 (UTC)");
        assert!(digest.contains(&needle), "{needle:?} not in\n{digest}");
    }
    // The same digest is not queued twice.
    let again =
        roi_serving::notify::queue_digests(&app.state.store, tomorrow, "https://roi.example")
            .await
            .expect("digests");
    assert_eq!(again, 0);

    // Quiet hours around now hold Ann's messages until they end.
    let now_min = (roi_serving::unix_now() % 86_400) / 60;
    let clock = |m: i64| {
        format!(
            "{:02}:{:02}",
            m.rem_euclid(1440) / 60,
            m.rem_euclid(1440) % 60
        )
    };
    set_prefs(
        app,
        ann,
        json!({"email": "immediate", "sms": true, "phone": "+15155550100",
               "quiet_hours": {"start": clock(now_min - 60), "end": clock(now_min + 60)},
               "timezone": "UTC", "digest_hour": 7}),
    )
    .await;
    assign(app, &org.owner, "al-7-3", ann_id).await;
    inbox(app, ann, 2).await;
    let held = app
        .get("/notifications/messages", Some(ann))
        .await
        .expect(200);
    let held: Vec<&Value> = held
        .json
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["status"] == "pending")
        .collect();
    let channels: Vec<&str> = held.iter().filter_map(|m| m["channel"].as_str()).collect();
    assert_eq!(channels.len(), 2, "an e-mail and an SMS: {held:?}");
    assert!(channels.contains(&"email") && channels.contains(&"sms"));
    for m in &held {
        assert!(
            m["next_attempt_ms"]
                .as_i64()
                .is_some_and(|t| t > roi_serving::unix_now_ms() + 30 * 60_000),
            "held until the quiet hours end: {m}"
        );
    }

    // A number the SMS API refuses (4xx): dead after one attempt, no retries.
    set_prefs(app, ann, prefs("off", true, Some("+15155550199"))).await;
    let before = sms.lock().expect("lock").requests.len();
    assign(app, &org.owner, "al-7-4", ann_id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let dead = loop {
        let list = app
            .get("/notifications/messages?limit=10", Some(ann))
            .await
            .expect(200);
        if let Some(m) = list
            .json
            .as_array()
            .expect("messages")
            .iter()
            .find(|m| m["status"] == "dead")
        {
            break m.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead SMS");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(dead["channel"], "sms");
    assert_eq!(dead["recipient"], "+15155550199");
    assert_eq!(dead["attempts"], 1);
    assert!(dead["next_attempt_ms"].is_null());
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("400")),
        "{dead}"
    );
    app.get("/notifications/messages?limit=0", Some(ann))
        .await
        .expect_problem(422, "limit");
    let bobs = app
        .get("/notifications/messages", Some(bob))
        .await
        .expect(200);
    let bobs_list = bobs.json.as_array().expect("messages");
    assert!(
        !bobs_list.is_empty() && bobs_list.iter().all(|m| m["recipient"] == "bob@acme.test"),
        "each user sees only their own messages: {}",
        bobs.text
    );
    assert_eq!(sms.lock().expect("lock").requests.len(), before + 1);
    assert_eq!(
        mails(smtp.dir.path()).len(),
        2,
        "e-mail off: no mail for alert 4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_sqlite() {
    let smtp = smtp_server().await;
    let (url, sms) = sms_api().await;
    let app = common::sqlite_with(channel_config(smtp.port, &url)).await;
    e_mail_and_sms_reach_real_servers(&app, &smtp, &sms).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_postgres() {
    let smtp = smtp_server().await;
    let (url, sms) = sms_api().await;
    let app = common::postgres_with(channel_config(smtp.port, &url)).await;
    e_mail_and_sms_reach_real_servers(&app, &smtp, &sms).await;
    app.cleanup().await;
}

/// E-mail refusals: a transient one (451) is retried and the mail arrives; a refused
/// address (550) ends the message as dead at once.
async fn smtp_refusals(app: &TestApp, smtp: &Smtp) {
    let _live = app.serve().await;
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    let token = owner.str("/access_token");
    let later = app
        .invite_and_accept(&token, "later@acme.test", "agent")
        .await;
    let bounce = app
        .invite_and_accept(&token, "bounce@acme.test", "agent")
        .await;
    let batch: Vec<NewAlert> = (1..=2).map(alert).collect();
    app.state
        .store
        .ingest_alerts(&batch, roi_serving::unix_now())
        .await
        .expect("ingest");
    assign(app, &token, "al-7-1", &later.str("/user/id")).await;
    assign(app, &token, "al-7-2", &bounce.str("/user/id")).await;
    let settled = |token: String| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let list = app
                .get("/notifications/messages", Some(&token))
                .await
                .expect(200);
            if let Some(m) = list
                .json
                .as_array()
                .and_then(|l| l.first())
                .filter(|m| m["status"] == "sent" || m["status"] == "dead")
            {
                return m.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "{}", list.text);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    let retried = settled(later.str("/access_token")).await;
    assert_eq!(retried["status"], "sent", "{retried}");
    assert_eq!(retried["attempts"], 2, "{retried}");
    let dead = settled(bounce.str("/access_token")).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 1, "{dead}");
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("550")),
        "{dead}"
    );
    let got = wait_mails(smtp, 1).await;
    assert!(got[0].contains("To: later@acme.test"), "{}", got[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusals_sqlite() {
    let smtp = picky_smtp_server().await;
    let (url, _) = sms_api().await;
    let app = common::sqlite_with(channel_config(smtp.port, &url)).await;
    smtp_refusals(&app, &smtp).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refusals_postgres() {
    let smtp = picky_smtp_server().await;
    let (url, _) = sms_api().await;
    let app = common::postgres_with(channel_config(smtp.port, &url)).await;
    smtp_refusals(&app, &smtp).await;
    app.cleanup().await;
}
