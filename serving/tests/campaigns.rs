//! Campaigns end to end, on SQLite and on the real PostgreSQL, with a real SMTP server on
//! loopback (aiosmtpd): templates validated (an unknown tag is named with its line), a
//! campaign rendered and queued for its segment, delivered once to each subscribed
//! contact with both parts, personalised content and RFC 8058 unsubscribe headers;
//! unsubscribed, bounced and other-tenant contacts never mailed; opens, clicks and
//! one-click unsubscribes recorded through signed links (forged ones refused) and
//! appended as pipeline events; statistics; bounces reported by the provider.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestApp;
use common::smtp::{Smtp, mails, picky_smtp_server, smtp_server, unfold, wait_mails};
use roi_serving::config::ServeConfig;
use roi_serving::store::{ContactAttributes, SyncContact};
use serde_json::{Value, json};

const BASE: &str = "http://roi.test";

fn config(smtp: &Smtp, events: &std::path::Path) -> ServeConfig {
    let mut config = ServeConfig {
        public_url: Some(BASE.to_owned()),
        ..ServeConfig::default()
    };
    config.notifications.smtp_url = Some(format!("smtp://127.0.0.1:{}", smtp.port));
    config.campaigns.events_path = Some(events.to_path_buf());
    config
}

fn person(lake_id: i64, name: &str, opted_in: bool, value: f64) -> SyncContact {
    SyncContact {
        lake_contact_id: lake_id,
        email: format!("{name}@home.test"),
        first_name: name[..1].to_uppercase() + &name[1..],
        last_name: "Homeowner".to_owned(),
        opted_in,
        attributes: ContactAttributes {
            zip: Some("50010".to_owned()),
            city: Some("Ames".to_owned()),
            address: Some("12 Oak St".to_owned()),
            state: Some("IA".to_owned()),
            value: Some(value),
            ..ContactAttributes::default()
        },
        values: Vec::new(),
    }
}

async fn sync(app: &TestApp, slug: &str, people: &[SyncContact]) {
    app.sync_contacts(slug, people, &[]).await;
}

/// Runs background rounds until the campaign is sent.
async fn send_out(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        app.campaign_round().await;
        let c = app
            .get(&format!("/campaigns/{id}"), Some(token))
            .await
            .expect(200);
        if c.json["status"] == "sent" {
            return c.json;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not sent: {}",
            c.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header<'a>(mail: &'a str, name: &str) -> &'a str {
    mail.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or("")
}

/// The first URL in `mail` that starts with `prefix`, up to a quote or `>`.
fn link(mail: &str, prefix: &str) -> String {
    let start = mail
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix} in {mail}"));
    let rest = &mail[start..];
    let end = rest
        .find(['"', '>', '\'', '\r', '\n', ' '])
        .unwrap_or(rest.len());
    rest[..end].replace("&amp;", "&")
}

fn path(url: &str) -> &str {
    url.strip_prefix(BASE).expect("a link to this server")
}

async fn scenario(app: TestApp, smtp: Smtp, events: tempfile::TempDir) {
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    let token = owner.str("/access_token");
    sync(
        &app,
        "acme",
        &[
            person(100, "ana", true, 310_000.0),
            person(101, "bob", true, 420_000.0),
            person(102, "cy", false, 200_000.0),
            person(103, "dee", true, 250_000.0),
        ],
    )
    .await;
    let other = app.signup_linked("other", "owner@other.test", 8).await;
    sync(&app, "other", &[person(200, "zed", true, 1.0)]).await;
    // Dee's address bounced before.
    let dee = app
        .post(
            "/segments/preview",
            Some(&token),
            json!({"rule": "first_name = 'dee'"}),
        )
        .await
        .expect(200);
    let dee_id = dee.json["sample"][0]["id"]
        .as_str()
        .expect("dee")
        .to_owned();
    app.call(
        "PUT",
        &format!("/contacts/{dee_id}/consent"),
        Some(&token),
        Some(json!({"consent": "bounced", "detail": "550 no such user"})),
    )
    .await
    .expect(200);

    // Templates: unknown tags are named with their line; a good one is saved.
    let bad = app
        .post("/templates", Some(&token), json!({
            "name": "bad", "subject": "Hi", "text": "ok",
            "html": "<p>Hello</p>\n<p>{{ contact.first_name }}</p>\n<p>{{ contact.frist_name }}</p>"}))
        .await
        .expect_problem(422, "contact.frist_name");
    let detail = bad.json["detail"].as_str().unwrap_or("");
    assert!(detail.contains("line 3"), "{detail}");
    let tags = app.get("/templates/tags", Some(&token)).await.expect(200);
    assert!(
        tags.json.as_array().map_or(0, Vec::len) >= 40,
        "{}",
        tags.text
    );
    let template = app
        .post("/templates", Some(&token), json!({
            "name": "value update",
            "subject": "{{ contact.first_name }}, your home in {{ property.city }}",
            "html": "<html><body><p>Dear {{ contact.first_name }},</p><p>Your home at {{ property.full_address }} is worth about {{ valuation.value }}.</p><p><a href=\"https://acme.test/report?id=1&amp;x=2\">See the report</a></p><p><a href=\"{{ links.unsubscribe }}\">Unsubscribe</a> - {{ org.name }}</p></body></html>",
            "text": "Dear {{ contact.first_name }},\nYour home is worth about {{ valuation.value }}.\nUnsubscribe: {{ links.unsubscribe }}\n"}))
        .await
        .expect(201);
    let template_id = template.str("/id");
    let preview = app
        .post("/templates/preview", Some(&token), json!({
            "subject": "{{ contact.first_name }} {{ valuation.value }}", "html": "<b>{{ contact.last_name }}</b>", "text": "x",
            "contact_id": dee_id}))
        .await
        .expect(200);
    assert_eq!(preview.json["subject"], "Dee $250,000");

    // The campaign: a segment of everyone in 50010, which only reaches acme's subscribed
    // contacts.
    let segment = app
        .post(
            "/segments",
            Some(&token),
            json!({"name": "ames", "rule": "zip = '50010'"}),
        )
        .await
        .expect(201)
        .str("/id");
    let made = app
        .post(
            "/campaigns",
            Some(&token),
            json!({"name": "October values", "template_id": template_id, "segment_id": segment}),
        )
        .await
        .expect(201);
    assert_eq!(made.json["rule"], "zip = '50010'");
    let id = made.str("/id");
    assert_eq!(made.json["status"], "draft");
    app.post(&format!("/campaigns/{id}/send"), Some(&token), json!({}))
        .await
        .expect(202);
    app.post(&format!("/campaigns/{id}/send"), Some(&token), json!({}))
        .await
        .expect(202);
    let sent = send_out(&app, &token, &id).await;
    assert_eq!(sent["stats"]["messages"], 2, "{sent}");
    assert_eq!(sent["stats"]["delivered"], 2, "{sent}");
    app.post(&format!("/campaigns/{id}/send"), Some(&token), json!({}))
        .await
        .expect_problem(409, "sent");

    let got = wait_mails(&smtp, 2).await;
    // Nothing more arrives after further rounds.
    app.campaign_round().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got_now = mails(smtp.dir.path());
    assert_eq!(
        got_now.len(),
        2,
        "exactly one message per subscribed contact"
    );
    let mut to: Vec<&str> = got.iter().map(|m| header(m, "To")).collect();
    to.sort();
    assert_eq!(to, ["ana@home.test", "bob@home.test"]);
    let ana = unfold(
        got.iter()
            .find(|m| header(m, "To") == "ana@home.test")
            .expect("ana's"),
    );
    assert_eq!(header(&ana, "Subject"), "Ana, your home in Ames");
    assert!(header(&ana, "Message-ID").contains(&id), "{ana}");
    assert!(
        header(&ana, "List-Unsubscribe").starts_with(&format!("<{BASE}/u/{id}/")),
        "{ana}"
    );
    assert_eq!(
        header(&ana, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert!(
        ana.contains("text/plain") && ana.contains("text/html"),
        "{ana}"
    );
    assert!(
        ana.contains("Your home at 12 Oak St, Ames, IA 50010 is worth about $310,000."),
        "{ana}"
    );
    assert!(ana.contains("Your home is worth about $310,000."), "{ana}");
    assert!(ana.contains("acme realty"), "{ana}");

    // Tracking: the pixel, a click, forged links, one-click unsubscribe.
    let pixel = link(&ana, &format!("{BASE}/t/o/"));
    let open = app.get(path(&pixel), None).await.expect(200);
    assert_eq!(open.header("content-type"), "image/gif");
    let click = link(&ana, &format!("{BASE}/t/c/"));
    let went = app.get(path(&click), None).await.expect(302);
    assert_eq!(went.header("location"), "https://acme.test/report?id=1&x=2");
    let forged = click.replace("report%3Fid%3D1", "report%3Fid%3D2");
    app.get(path(&forged), None).await.expect(404);
    let (head, sig) = click
        .split_once("?")
        .map(|(h, _)| h.rsplit_once('/').expect("sig"))
        .expect("query");
    let resigned = format!(
        "{head}/{}AA?u=https%3A%2F%2Fevil.test",
        &sig[..sig.len() - 2]
    );
    app.get(path(&resigned), None).await.expect(404);
    let stranger = pixel.replace(&format!("/{id}/"), "/cmp_nope/");
    app.get(path(&stranger), None).await.expect(404);
    let unsubscribe = link(&ana, &format!("{BASE}/u/"));
    let page = app.get(path(&unsubscribe), None).await.expect(200);
    assert!(page.text.contains("ana@home.test"), "{}", page.text);
    let done = app
        .send_raw(
            "POST",
            path(&unsubscribe),
            None,
            "application/x-www-form-urlencoded",
            b"List-Unsubscribe=One-Click".to_vec(),
        )
        .await
        .expect(200);
    assert!(done.text.contains("unsubscribed"), "{}", done.text);
    app.send_raw(
        "POST",
        path(&unsubscribe),
        None,
        "application/x-www-form-urlencoded",
        b"List-Unsubscribe=One-Click".to_vec(),
    )
    .await
    .expect(200);
    let ana_id = header(&ana, "Message-ID")
        .trim_matches(['<', '>'])
        .split_once('.')
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(contact, _)| contact.to_owned())
        .expect("contact id in Message-ID");
    let detail = app
        .get(&format!("/contacts/{ana_id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(detail.json["contact"]["consent"], "unsubscribed");
    assert_eq!(
        detail.json["consent_history"]
            .as_array()
            .and_then(|h| h.last())
            .map(|c| c["source"].clone()),
        Some(json!("unsubscribe"))
    );

    // The provider reports Bob's address bounced.
    let bob_id = header(
        got.iter()
            .find(|m| header(m, "To") == "bob@home.test")
            .expect("bob's"),
        "Message-ID",
    )
    .trim_matches(['<', '>'])
    .split_once('.')
    .and_then(|(_, rest)| rest.split_once('@'))
    .map(|(contact, _)| contact.to_owned())
    .expect("bob's id");
    let reported = app
        .post("/campaigns/mail-events", Some(&token), json!({"kind": "bounced", "campaign_id": id, "contact_id": bob_id, "detail": "550 5.1.1 mailbox gone"}))
        .await
        .expect(200);
    assert_eq!(reported.json["recorded"], true);
    app.post(
        "/campaigns/mail-events",
        Some(&other.str("/access_token")),
        json!({"kind": "bounced", "campaign_id": id, "contact_id": bob_id}),
    )
    .await
    .expect(404);

    let stats = app
        .get(&format!("/campaigns/{id}"), Some(&token))
        .await
        .expect(200)
        .json["stats"]
        .clone();
    assert_eq!(
        (
            stats["opened"].as_i64(),
            stats["clicked"].as_i64(),
            stats["unsubscribed"].as_i64(),
            stats["bounced"].as_i64()
        ),
        (Some(1), Some(1), Some(1), Some(1)),
        "{stats}"
    );

    let by_segment = app
        .get(&format!("/segments/{segment}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(
        by_segment.json["campaigns"]["delivered"], 2,
        "{}",
        by_segment.text
    );
    assert_eq!(
        by_segment.json["campaigns"]["clicked"], 1,
        "{}",
        by_segment.text
    );

    // Engagement reached the pipeline's event log.
    let log = std::fs::read_to_string(events.path().join("events.ndjson")).expect("event log");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let kinds: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["event_type"].as_str())
        .collect();
    assert_eq!(kinds, ["email_opened", "email_clicked"]);
    assert_eq!(lines[0]["org_id"], 7);
    assert_eq!(lines[0]["contact_id"], 100);
    assert_eq!(lines[0]["campaign_id"], sent["pipeline_id"]);

    // A second campaign to the same audience reaches nobody now (Ana left, Bob bounced,
    // Cy never opted in, Dee bounced before).
    let second = create_and_send(
        &app,
        &token,
        json!({"name": "November", "template_id": template_id, "rule": "zip = '50010'"}),
    )
    .await;
    let second = send_out(&app, &token, &second).await;
    assert_eq!(second["stats"]["messages"], 0, "{second}");
    assert_eq!(mails(smtp.dir.path()).len(), 2);

    // A test send goes to a user of the organization, now, marked as a test.
    let tested = app
        .post(
            &format!("/templates/{template_id}/test"),
            Some(&token),
            json!({"contact_id": dee_id}),
        )
        .await
        .expect(200);
    assert_eq!(tested.json["to"], "owner@acme.test");
    let test_mail = unfold(&wait_mails(&smtp, 3).await[2]);
    assert_eq!(
        header(&test_mail, "Subject"),
        "[TEST] Dee, your home in Ames"
    );
    app.post(
        &format!("/templates/{template_id}/test"),
        Some(&token),
        json!({"to": "stranger@else.test"}),
    )
    .await
    .expect_problem(404, "user");

    // The other organization sees none of it.
    let other_token = other.str("/access_token");
    app.get(&format!("/campaigns/{id}"), Some(&other_token))
        .await
        .expect(404);
    app.get(&format!("/templates/{template_id}"), Some(&other_token))
        .await
        .expect(404);
    app.call(
        "DELETE",
        &format!("/templates/{template_id}"),
        Some(&token),
        None,
    )
    .await
    .expect_problem(409, "campaign");
    app.cleanup().await;
}

#[tokio::test]
async fn campaigns_on_sqlite() {
    let smtp = smtp_server().await;
    let events = tempfile::tempdir().expect("tempdir");
    let app = common::sqlite_with(config(&smtp, &events.path().join("events.ndjson"))).await;
    scenario(app, smtp, events).await;
}

#[tokio::test]
async fn campaigns_on_postgres() {
    let smtp = smtp_server().await;
    let events = tempfile::tempdir().expect("tempdir");
    let app = common::postgres_with(config(&smtp, &events.path().join("events.ndjson"))).await;
    scenario(app, smtp, events).await;
}

/// Creates a campaign from `body` and sends it now; returns its id.
async fn create_and_send(app: &TestApp, token: &str, body: Value) -> String {
    let id = app
        .post("/campaigns", Some(token), body)
        .await
        .expect(201)
        .str("/id");
    app.post(&format!("/campaigns/{id}/send"), Some(token), json!({}))
        .await
        .expect(202);
    id
}

/// Makes acme (pipeline org 7) with one subscribed contact per address, a template and a
/// campaign to all of them, sends it; returns (token, campaign id).
async fn campaign_to(app: &TestApp, addresses: &[&str]) -> (String, String) {
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    let token = owner.str("/access_token");
    let people: Vec<SyncContact> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| SyncContact {
            email: (*a).to_owned(),
            ..person(300 + i as i64, "x", true, 1.0)
        })
        .collect();
    sync(app, "acme", &people).await;
    let template = app
        .post(
            "/templates",
            Some(&token),
            json!({"name": "t", "subject": "Hello {{ contact.email }}",
            "html": "<p>Hi</p>", "text": "Hi"}),
        )
        .await
        .expect(201)
        .str("/id");
    let id = create_and_send(
        app,
        &token,
        json!({"name": "c", "template_id": template, "rule": "consent = 'subscribed'"}),
    )
    .await;
    (token, id)
}

/// The campaign's messages by recipient: (status, attempts, last error).
async fn messages(
    app: &TestApp,
    token: &str,
    id: &str,
) -> std::collections::BTreeMap<String, (String, i64, String)> {
    let page = app
        .get(&format!("/campaigns/{id}/messages"), Some(token))
        .await
        .expect(200);
    page.json["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["recipient"].as_str().unwrap_or("").to_owned(),
                (
                    m["status"].as_str().unwrap_or("").to_owned(),
                    m["attempts"].as_i64().unwrap_or(-1),
                    m["last_error"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect()
}

/// Rounds until `done` says the messages are as expected.
async fn rounds_until(
    app: &TestApp,
    token: &str,
    id: &str,
    done: impl Fn(&std::collections::BTreeMap<String, (String, i64, String)>) -> bool,
) -> std::collections::BTreeMap<String, (String, i64, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        app.campaign_round().await;
        let now = messages(app, token, id).await;
        if done(&now) {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn refusals(app: TestApp, smtp: Smtp) {
    let (token, id) = campaign_to(
        &app,
        &[
            "ok@home.test",
            "later@home.test",
            "bounce@home.test",
            "a@slow.test",
            "b@slow.test",
        ],
    )
    .await;
    let got = rounds_until(&app, &token, &id, |m| {
        m.len() == 5
            && m["later@home.test"].0 == "sent"
            && m["bounce@home.test"].0 == "failed"
            && m.values().filter(|v| v.0 == "sent").count() == 3
    })
    .await;
    // A transient refusal (451) is retried; it took two attempts.
    assert_eq!(got["later@home.test"].1, 2, "{got:?}");
    // A refused address (550) fails at once and the contact is marked bounced.
    assert_eq!(got["bounce@home.test"].1, 1, "{got:?}");
    assert!(got["bounce@home.test"].2.contains("550"), "{got:?}");
    let bounced = app
        .post(
            "/segments/preview",
            Some(&token),
            json!({"rule": "consent = 'bounced'"}),
        )
        .await
        .expect(200);
    assert_eq!(bounced.json["sample"][0]["email"], "bounce@home.test");
    // One message a minute to slow.test: the second waits, without using an attempt.
    let slow: Vec<&(String, i64, String)> = ["a@slow.test", "b@slow.test"]
        .iter()
        .map(|a| &got[*a])
        .collect();
    let waiting: Vec<&&(String, i64, String)> = slow.iter().filter(|m| m.0 == "queued").collect();
    assert_eq!(waiting.len(), 1, "{got:?}");
    assert_eq!(waiting[0].1, 0, "{got:?}");
    assert!(waiting[0].2.contains("held back"), "{got:?}");
    assert_eq!(wait_mails(&smtp, 3).await.len(), 3);
    let stats = app
        .get(&format!("/campaigns/{id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(
        stats.json["status"], "sending",
        "the held-back message keeps it open"
    );
    assert_eq!(stats.json["stats"]["bounced"], 1);
    app.get(
        &format!("/campaigns/{id}/messages?status=nope"),
        Some(&token),
    )
    .await
    .expect_problem(422, "status");
    app.cleanup().await;
}

fn picky_config(smtp: &Smtp) -> ServeConfig {
    let mut config = ServeConfig {
        public_url: Some(BASE.to_owned()),
        ..ServeConfig::default()
    };
    config.campaigns.smtp_url = Some(format!("smtp://127.0.0.1:{}", smtp.port));
    config.campaigns.backoff_base_ms = 20;
    config.campaigns.backoff_max_ms = 40;
    config
        .campaigns
        .domain_limits
        .insert("slow.test".to_owned(), 1);
    config
}

#[tokio::test]
async fn refusals_retries_and_rate_limits_on_sqlite() {
    let smtp = picky_smtp_server().await;
    let app = common::sqlite_with(picky_config(&smtp)).await;
    refusals(app, smtp).await;
}

#[tokio::test]
async fn refusals_retries_and_rate_limits_on_postgres() {
    let smtp = picky_smtp_server().await;
    let app = common::postgres_with(picky_config(&smtp)).await;
    refusals(app, smtp).await;
}

/// A SendGrid v3 API served here: records each request; answers 400 for `reject@`
/// recipients, 500 the first time for `later@` ones, else 202 with an `x-message-id`.
async fn sendgrid_api() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let shared = seen.clone();
    let app = axum::Router::new().route(
        "/v3/mail/send",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let shared = shared.clone();
            async move {
                let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let to = json["personalizations"][0]["to"][0]["email"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let mut seen = shared.lock().expect("lock");
                let earlier = seen
                    .iter()
                    .filter(|(_, j)| j["personalizations"][0]["to"][0]["email"] == to.as_str())
                    .count();
                seen.push((auth, json));
                let mut response =
                    axum::response::IntoResponse::into_response(if to.starts_with("reject") {
                        (
                            axum::http::StatusCode::BAD_REQUEST,
                            r#"{"errors":[{"message":"invalid email"}]}"#,
                        )
                    } else if to.starts_with("later") && earlier == 0 {
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "")
                    } else {
                        (axum::http::StatusCode::ACCEPTED, "")
                    });
                response.headers_mut().insert(
                    "x-message-id",
                    axum::http::HeaderValue::from_static("sg-123"),
                );
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, seen)
}

/// A P-256 key pair standing in for SendGrid's webhook signing key, and its public key
/// as SendGrid shows it (base64 SubjectPublicKeyInfo).
fn webhook_key() -> (ring::signature::EcdsaKeyPair, String) {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .expect("pair");
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, spki);
    (pair, b64)
}

/// Posts SendGrid events signed with `key` at `timestamp`.
async fn post_events(
    app: &TestApp,
    key: &ring::signature::EcdsaKeyPair,
    timestamp: i64,
    events: &Value,
) -> common::Reply {
    let body = events.to_string();
    let ts = timestamp.to_string();
    let signed = [ts.as_bytes(), body.as_bytes()].concat();
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), &signed)
        .expect("sign");
    let sig = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig.as_ref());
    app.call_with(
        "POST",
        "/campaigns/sendgrid-events",
        None,
        Some(events.clone()),
        &[
            ("x-twilio-email-event-webhook-signature", &sig),
            ("x-twilio-email-event-webhook-timestamp", &ts),
        ],
    )
    .await
}

async fn sendgrid(
    app: TestApp,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    key: ring::signature::EcdsaKeyPair,
) {
    let (token, id) = campaign_to(
        &app,
        &["ok@home.test", "later@home.test", "reject@home.test"],
    )
    .await;
    let got = rounds_until(&app, &token, &id, |m| {
        m.len() == 3 && m.values().all(|v| v.0 == "sent" || v.0 == "failed")
    })
    .await;
    assert_eq!(got["ok@home.test"].0, "sent");
    assert_eq!(
        got["later@home.test"],
        ("sent".to_owned(), 2, String::new()),
        "a 500 is retried"
    );
    assert_eq!(got["reject@home.test"].0, "failed");
    assert!(
        got["reject@home.test"].2.contains("invalid email"),
        "{got:?}"
    );
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests.len(), 4, "one try each, and a retry");
    let (auth, body) = requests
        .iter()
        .find(|(_, b)| b["personalizations"][0]["to"][0]["email"] == "ok@home.test")
        .expect("ok's request");
    assert_eq!(auth, "Bearer SG.test-key");
    assert_eq!(body["subject"], "Hello ok@home.test");
    assert_eq!(body["from"]["email"], "alerts@roi.localhost");
    assert_eq!(body["content"][0]["type"], "text/plain");
    assert_eq!(body["content"][1]["type"], "text/html");
    assert!(
        body["content"][1]["value"]
            .as_str()
            .unwrap_or("")
            .contains("/t/o/"),
        "{body}"
    );
    assert!(
        body["headers"]["List-Unsubscribe"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("<{BASE}/u/{id}/")),
        "{body}"
    );
    assert_eq!(
        body["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(body["custom_args"]["campaign_id"], id.as_str());

    // SendGrid's signed Event Webhook: a click and a bounce for ok@, an event of a
    // message this server never sent, and a delivery report (not kept).
    let contact = body["custom_args"]["contact_id"].clone();
    let now = roi_serving::unix_now();
    let events = json!([
        {"email": "ok@home.test", "event": "click", "url": "https://acme.test/x",
         "campaign_id": id, "contact_id": contact, "timestamp": now},
        {"email": "ok@home.test", "event": "bounce", "reason": "550 5.1.1 mailbox unavailable",
         "type": "bounce", "campaign_id": id, "contact_id": contact, "timestamp": now},
        {"email": "x@y.test", "event": "bounce", "campaign_id": "cmp_nope", "contact_id": "ct_nope"},
        {"email": "ok@home.test", "event": "delivered", "campaign_id": id, "contact_id": contact},
    ]);
    let done = post_events(&app, &key, now, &events).await.expect(200);
    assert_eq!(
        (
            done.json["recorded"].as_i64(),
            done.json["skipped"].as_i64()
        ),
        (Some(2), Some(2))
    );
    let again = post_events(&app, &key, now, &events).await.expect(200);
    assert_eq!(
        again.json["recorded"], 1,
        "a second click counts; a second bounce does not"
    );
    let stats = app
        .get(&format!("/campaigns/{id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(stats.json["stats"]["bounced"], 1);
    assert_eq!(stats.json["stats"]["clicked"], 1);
    let bounced = app
        .post(
            "/segments/preview",
            Some(&token),
            json!({"rule": "consent = 'bounced'"}),
        )
        .await
        .expect(200);
    assert_eq!(bounced.json["sample"][0]["email"], "ok@home.test");
    // Forged, stale and unsigned requests are refused.
    let (stranger, _) = webhook_key();
    post_events(&app, &stranger, now, &events)
        .await
        .expect_problem(403, "signature");
    post_events(&app, &key, now - 3600, &events)
        .await
        .expect_problem(403, "ten minutes");
    app.post("/campaigns/sendgrid-events", None, events)
        .await
        .expect_problem(403, "SendGrid");
    app.cleanup().await;
}

fn sendgrid_config(url: &str, webhook_key: &str) -> ServeConfig {
    let mut config = ServeConfig {
        public_url: Some(BASE.to_owned()),
        ..ServeConfig::default()
    };
    config.campaigns.sendgrid_api_key = Some("SG.test-key".to_owned());
    config.campaigns.sendgrid_api_url = url.to_owned();
    config.campaigns.sendgrid_webhook_key = Some(webhook_key.to_owned());
    config.campaigns.backoff_base_ms = 20;
    config.campaigns.backoff_max_ms = 40;
    config
}

#[tokio::test]
async fn sendgrid_v3_api_on_sqlite() {
    let (url, seen) = sendgrid_api().await;
    let (key, public) = webhook_key();
    let app = common::sqlite_with(sendgrid_config(&url, &public)).await;
    sendgrid(app, seen, key).await;
}

#[tokio::test]
async fn sendgrid_v3_api_on_postgres() {
    let (url, seen) = sendgrid_api().await;
    let (key, public) = webhook_key();
    let app = common::postgres_with(sendgrid_config(&url, &public)).await;
    sendgrid(app, seen, key).await;
}

fn redis_config(smtp: &Smtp, events: &std::path::Path) -> ServeConfig {
    let mut config = config(smtp, events);
    config.redis_url =
        Some(std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()));
    config.redis_namespace = format!(
        "roi-test-{}",
        roi_serving::auth::secret::hex(&roi_serving::auth::secret::random_bytes::<6>())
    );
    config.campaigns.queue = roi_serving::campaigns::QueueBackend::Redis;
    config
}

#[tokio::test]
async fn campaigns_on_sqlite_with_the_redis_queue() {
    let smtp = smtp_server().await;
    let events = tempfile::tempdir().expect("tempdir");
    let app = common::sqlite_with(redis_config(&smtp, &events.path().join("events.ndjson"))).await;
    assert!(matches!(
        app.state.campaign_queue,
        roi_serving::campaigns::Queue::Redis { .. }
    ));
    scenario(app, smtp, events).await;
}

/// Two replicas drain one campaign's queue at once; each subscriber gets one message.
async fn two_replicas(config: ServeConfig, smtp: Smtp, postgres: bool) {
    let a = if postgres {
        common::postgres_with(config.clone()).await
    } else {
        common::sqlite_with(config.clone()).await
    };
    let (store_b, _) = roi_serving::server::open_store(&roi_serving::config::DatabaseConfig {
        url: Some(a.url.clone()),
        max_connections: 4,
    })
    .await
    .expect("open the store again");
    let b = roi_serving::app::AppState::new(store_b, config)
        .await
        .expect("second replica");
    let addresses: Vec<String> = (0..24).map(|i| format!("owner{i:02}@home.test")).collect();
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let (token, id) = campaign_to(&a, &refs).await;
    if let roi_serving::campaigns::Queue::Redis { connection, key } = &a.state.campaign_queue {
        // Redis loses its schedule after queuing; reconciling with the store restores it.
        roi_serving::campaigns::queue_due(
            &a.state.store,
            &a.state.tracker,
            &a.state.campaign_queue,
            600,
        )
        .await;
        let mut c = connection.clone();
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut c)
            .await
            .expect("DEL");
        let restored = a
            .state
            .campaign_queue
            .reconcile(&a.state.store)
            .await
            .expect("reconcile");
        assert_eq!(restored, 24);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::join!(
            a.campaign_round(),
            roi_serving::campaigns::round(
                &b.store,
                b.campaign_sender.as_ref(),
                &b.tracker,
                &b.campaign_queue,
            ),
        );
        let c = a
            .get(&format!("/campaigns/{id}"), Some(&token))
            .await
            .expect(200);
        if c.json["status"] == "sent" {
            assert_eq!(c.json["stats"]["delivered"], 24, "{}", c.text);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", c.text);
    }
    let got = wait_mails(&smtp, 24).await;
    let mut to: Vec<&str> = got.iter().map(|m| header(m, "To")).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 24, "each subscriber once: {} mails", got.len());
    assert_eq!(mails(smtp.dir.path()).len(), 24);
    drop(b);
    a.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_store_queue_on_postgres() {
    let smtp = smtp_server().await;
    let events = tempfile::tempdir().expect("tempdir");
    let mut config = config(&smtp, &events.path().join("events.ndjson"));
    config.campaigns.concurrency = 4;
    two_replicas(config, smtp, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_redis_queue() {
    let smtp = smtp_server().await;
    let events = tempfile::tempdir().expect("tempdir");
    let mut config = redis_config(&smtp, &events.path().join("events.ndjson"));
    config.campaigns.concurrency = 4;
    two_replicas(config, smtp, false).await;
}

/// A campaign that cannot be queued (its frozen rule no longer compiles: a field it
/// names was dropped) fails with the reason, instead of being retried for ever.
async fn unqueueable_campaigns_fail(app: TestApp, smtp: Smtp) {
    let (token, id) = campaign_to(&app, &["ok@home.test"]).await;
    // Sent but not yet queued: its rule now names a field that does not exist.
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.url)
        .await
        .expect("connect to the test store");
    sqlx::query("UPDATE campaigns SET rule = 'feature.dropped_field > 1' WHERE id = $1")
        .bind(&id)
        .execute(&mut db)
        .await
        .expect("change the rule");
    app.campaign_round().await;
    let got = app
        .get(&format!("/campaigns/{id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(got.json["status"], "failed", "{}", got.text);
    let why = got.json["failure"].as_str().unwrap_or("");
    assert!(
        why.contains("rule") && why.contains("dropped_field"),
        "{why}"
    );
    assert!(got.json["finished_at"].is_i64());
    // Nothing goes out, and later rounds leave it be.
    app.campaign_round().await;
    assert!(messages(&app, &token, &id).await.is_empty());
    assert!(mails(smtp.dir.path()).is_empty());
    drop(db);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unqueueable_campaigns_fail_on_sqlite() {
    let smtp = smtp_server().await;
    let events = tempfile::tempdir().expect("tempdir");
    let app = common::sqlite_with(config(&smtp, &events.path().join("events.ndjson"))).await;
    unqueueable_campaigns_fail(app, smtp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unqueueable_campaigns_fail_on_postgres() {
    let smtp = smtp_server().await;
    let events = tempfile::tempdir().expect("tempdir");
    let app = common::postgres_with(config(&smtp, &events.path().join("events.ndjson"))).await;
    unqueueable_campaigns_fail(app, smtp).await;
}
