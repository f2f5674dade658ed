//! Campaign audiences, on SQLite and on the real PostgreSQL: contacts synced from the
//! lake (consent kept across syncs), segment rules evaluated by the database (counts,
//! samples, null semantics, case-insensitive text, features and scores), saved segments,
//! CSV imports with per-row errors that never resubscribe anyone, consent history,
//! branding, roles and tenant isolation.

mod common;

use common::TestApp;
use roi_serving::store::{ContactAttributes, SyncContact};
use serde_json::{Value, json};

fn today() -> i64 {
    roi_serving::unix_now().div_euclid(86_400)
}

struct Person {
    name: &'static str,
    zip: &'static str,
    city: Option<&'static str>,
    equity_pct: Option<f64>,
    years_owned: i64,
    refinance: Option<f64>,
    opted_in: bool,
}

const PEOPLE: &[Person] = &[
    Person {
        name: "ana",
        zip: "50010",
        city: Some("Ames"),
        equity_pct: Some(55.0),
        years_owned: 11,
        refinance: Some(0.8),
        opted_in: true,
    },
    Person {
        name: "bob",
        zip: "50014",
        city: Some("Ames"),
        equity_pct: Some(45.0),
        years_owned: 8,
        refinance: Some(0.5),
        opted_in: true,
    },
    Person {
        name: "cy",
        zip: "50010",
        city: None,
        equity_pct: Some(30.0),
        years_owned: 16,
        refinance: Some(0.9),
        opted_in: false,
    },
    Person {
        name: "dee",
        zip: "50011",
        city: None,
        equity_pct: Some(60.0),
        years_owned: 14,
        refinance: Some(0.7),
        opted_in: true,
    },
    Person {
        name: "eve",
        zip: "50014",
        city: None,
        equity_pct: None,
        years_owned: 4,
        refinance: None,
        opted_in: true,
    },
    Person {
        name: "fay",
        zip: "50010",
        city: None,
        equity_pct: Some(80.0),
        years_owned: 3,
        refinance: Some(0.95),
        opted_in: true,
    },
];

fn lake_contacts(domain: &str) -> Vec<SyncContact> {
    PEOPLE
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut values = vec![("feature.valuation_views_7d".to_owned(), i as f64)];
            if let Some(r) = p.refinance {
                values.push(("score.refinance".to_owned(), r));
            }
            SyncContact {
                lake_contact_id: 100 + i as i64,
                email: format!("{}@{domain}", p.name),
                first_name: p.name[..1].to_uppercase() + &p.name[1..],
                last_name: "Homeowner".to_owned(),
                opted_in: p.opted_in,
                attributes: ContactAttributes {
                    zip: Some(p.zip.to_owned()),
                    city: p.city.map(str::to_owned),
                    equity_pct: p.equity_pct,
                    value: Some(300_000.0 + 10_000.0 * i as f64),
                    closed_on_day: Some(today() - p.years_owned * 366),
                    ..ContactAttributes::default()
                },
                values,
            }
        })
        .collect()
}

fn value_names() -> Vec<(String, String)> {
    vec![
        (
            "feature.valuation_views_7d".to_owned(),
            "valuation page views, 7d".to_owned(),
        ),
        (
            "score.refinance".to_owned(),
            "probability of refinancing".to_owned(),
        ),
    ]
}

async fn sync(
    app: &TestApp,
    slug: &str,
    contacts: &[SyncContact],
) -> roi_serving::store::SyncReport {
    app.sync_contacts(slug, contacts, &value_names()).await
}

async fn preview(app: &TestApp, token: &str, rule: &str) -> Value {
    app.post(
        "/segments/preview",
        Some(token),
        json!({"rule": rule, "sample": 100}),
    )
    .await
    .expect(200)
    .json
}

fn firsts(preview: &Value) -> Vec<String> {
    let mut names: Vec<String> = preview["sample"]
        .as_array()
        .expect("sample")
        .iter()
        .map(|c| {
            c["email"]
                .as_str()
                .expect("email")
                .split('@')
                .next()
                .expect("local")
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

async fn scenario(app: TestApp) {
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    let token = owner.str("/access_token");
    let report = sync(&app, "acme", &lake_contacts("home.test")).await;
    assert_eq!((report.inserted, report.updated), (6, 0));
    assert_eq!(report.values, 11);

    // The issue's example rule, and the language's corners, evaluated by the database.
    let example = r#"equity_pct > 40 and tenure_years >= 5 and zip in ("50010","50014") and score.refinance >= 0.6"#;
    let p = preview(&app, &token, example).await;
    assert_eq!(
        (p["matched"].as_i64(), p["subscribed"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(firsts(&p), ["ana"]);
    for (rule, expected) in [
        ("not (equity_pct > 40)", vec!["cy"]),
        ("equity_pct is null", vec!["eve"]),
        ("city = \"AMES\"", vec!["ana", "bob"]),
        ("zip not in ('50010')", vec!["bob", "dee", "eve"]),
        (
            "score.refinance >= 0.9 OR first_name = 'eve'",
            vec!["cy", "eve", "fay"],
        ),
        ("consent = \"unsubscribed\"", vec!["cy"]),
        ("tenure_years < 5", vec!["eve", "fay"]),
        (
            "feature.valuation_views_7d >= 4\n and value > 300000",
            vec!["eve", "fay"],
        ),
    ] {
        assert_eq!(
            firsts(&preview(&app, &token, rule).await),
            expected,
            "{rule}"
        );
    }
    let p = preview(&app, &token, "zip = '50010'").await;
    assert_eq!(
        (p["matched"].as_i64(), p["subscribed"].as_i64()),
        (Some(3), Some(2))
    );

    // Bad rules are 422s that say what and where.
    for (rule, needle) in [
        ("equty_pct > 40", "equity_pct"),
        ("feature.nope > 1", "feature.nope"),
        ("zip > 5", "zip"),
        ("equity_pct >", "end of rule"),
    ] {
        app.post("/segments/preview", Some(&token), json!({"rule": rule}))
            .await
            .expect_problem(422, needle);
    }

    // What rules can read.
    let fields = app.get("/segments/fields", Some(&token)).await.expect(200);
    let names: Vec<&str> = fields.json["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        names.contains(&"equity_pct") && names.contains(&"tenure_years"),
        "{names:?}"
    );
    assert_eq!(fields.json["values"][1]["name"], "score.refinance");

    // Saved segments.
    let saved = app
        .post(
            "/segments",
            Some(&token),
            json!({"name": "refi", "rule": example}),
        )
        .await
        .expect(201);
    let id = saved.str("/id");
    assert_eq!(saved.json["matched"], 1);
    app.post(
        "/segments",
        Some(&token),
        json!({"name": "refi", "rule": "zip = '1'"}),
    )
    .await
    .expect_problem(409, "refi");
    app.post(
        "/segments",
        Some(&token),
        json!({"name": "bad", "rule": "zip >"}),
    )
    .await
    .expect_problem(422, "rule");
    let changed = app
        .call(
            "PUT",
            &format!("/segments/{id}"),
            Some(&token),
            Some(json!({"name": "ames", "rule": "zip = '50010'"})),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            changed.json["matched"].as_i64(),
            changed.json["subscribed"].as_i64()
        ),
        (Some(3), Some(2))
    );
    let list = app.get("/segments", Some(&token)).await.expect(200);
    assert_eq!(list.json[0]["name"], "ames");

    // A contact's detail, a consent change, and a sync that must not undo it.
    let ana = preview(&app, &token, "first_name = 'ana'").await["sample"][0].clone();
    let ana_id = ana["id"].as_str().expect("id").to_owned();
    let detail = app
        .get(&format!("/contacts/{ana_id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(detail.json["contact"]["consent"], "subscribed");
    assert_eq!(detail.json["consent_history"][0]["source"], "sync");
    assert_eq!(
        detail.json["values"][0]["name"],
        "feature.valuation_views_7d"
    );
    app.call(
        "PUT",
        &format!("/contacts/{ana_id}/consent"),
        Some(&token),
        Some(json!({"consent": "unsubscribed", "detail": "asked by phone"})),
    )
    .await
    .expect(200);
    let mut again = lake_contacts("home.test");
    again[0].attributes.equity_pct = Some(41.0);
    again[0].opted_in = true;
    let report = sync(&app, "acme", &again).await;
    assert_eq!((report.inserted, report.updated), (0, 6));
    let detail = app
        .get(&format!("/contacts/{ana_id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(detail.json["contact"]["consent"], "unsubscribed");
    assert_eq!(detail.json["contact"]["equity_pct"], 41.0);
    let history = detail.json["consent_history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["detail"], "asked by phone");
    assert_eq!(history[1]["from"], "subscribed");

    // CSV import: new rows, updates, bad rows reported, no resubscribing.
    let csv = "email,first_name,zip,consent,closed_on\n\
               ANA@home.test,Ana,,subscribed,\n\
               new@other.test,Nia,50010,,2016-04-01\n\
               bob@home.test,,,bounced,\n\
               broken,Zed,,,\n\
               dee@home.test,Dee,5001,,\n";
    let imported = app
        .send_raw(
            "POST",
            "/contacts/import",
            Some(&token),
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await
        .expect(200);
    assert_eq!(imported.json["inserted"], 1, "{}", imported.text);
    assert_eq!(imported.json["updated"], 1, "{}", imported.text);
    let errors: Vec<(i64, &str)> = imported.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().expect("row"),
                e["column"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(errors, vec![(2, "consent"), (5, "email"), (6, "zip")]);
    assert!(
        imported.json["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot put them back")
    );
    assert_eq!(
        firsts(&preview(&app, &token, "consent = 'bounced'").await),
        ["bob"]
    );
    assert_eq!(
        firsts(&preview(&app, &token, "tenure_years >= 10 and zip = '50010'").await),
        ["ana", "cy", "new"]
    );
    app.send_raw(
        "POST",
        "/contacts/import",
        Some(&token),
        "text/csv",
        b"email,frist\nx@y.test,1\n".to_vec(),
    )
    .await
    .expect_problem(422, "frist");
    app.send_raw(
        "POST",
        "/contacts/import",
        Some(&token),
        "application/json",
        b"{}".to_vec(),
    )
    .await
    .expect_problem(415, "text/csv");
    let page = app
        .get("/contacts?consent=subscribed&limit=2", Some(&token))
        .await
        .expect(200);
    assert_eq!(page.json["contacts"].as_array().map(Vec::len), Some(2));
    let next = page.str("/next_after");
    let rest = app
        .get(
            &format!("/contacts?consent=subscribed&after={next}"),
            Some(&token),
        )
        .await
        .expect(200);
    assert_eq!(
        rest.json["contacts"].as_array().map(Vec::len),
        Some(2),
        "{}",
        rest.text
    );

    // Roles: agents read, managers change.
    let agent = app
        .invite_and_accept(&token, "agent@acme.test", "agent")
        .await;
    let agent_token = agent.str("/access_token");
    app.get("/contacts", Some(&agent_token)).await.expect(200);
    preview(&app, &agent_token, "zip = '50010'").await;
    app.send_raw(
        "POST",
        "/contacts/import",
        Some(&agent_token),
        "text/csv",
        b"email\na@b.test\n".to_vec(),
    )
    .await
    .expect_problem(403, "manager");
    app.post(
        "/segments",
        Some(&agent_token),
        json!({"name": "x", "rule": "zip = '1'"}),
    )
    .await
    .expect_problem(403, "manager");

    // Another organization sees none of it.
    let other = app.signup_linked("other", "owner@other.test", 8).await;
    let other_token = other.str("/access_token");
    app.get(&format!("/contacts/{ana_id}"), Some(&other_token))
        .await
        .expect(404);
    app.get(&format!("/segments/{id}"), Some(&other_token))
        .await
        .expect(404);
    let p = preview(&app, &other_token, "zip = '50010'").await;
    assert_eq!(p["matched"], 0);
    app.post(
        "/segments/preview",
        Some(&other_token),
        json!({"rule": "score.refinance > 0"}),
    )
    .await
    .expect_problem(422, "score.refinance");

    // Branding.
    let b = app
        .get("/organization/branding", Some(&token))
        .await
        .expect(200);
    assert_eq!(b.json["updated_at"], Value::Null);
    app.call(
        "PUT",
        "/organization/branding",
        Some(&token),
        Some(json!({"primary_color": "blue"})),
    )
    .await
    .expect_problem(422, "primary_color");
    app.call(
        "PUT",
        "/organization/branding",
        Some(&token),
        Some(json!({"logo_url": "http://x.test/a.png"})),
    )
    .await
    .expect_problem(422, "https");
    let b = app
        .call("PUT", "/organization/branding", Some(&token), Some(json!({
            "from_name": "Acme Title", "from_email": "News@Acme.test", "postal_address": "1 Main St, Ames, IA 50010",
            "primary_color": "#0a7f3c", "logo_url": "https://acme.test/logo.png"})))
        .await
        .expect(200);
    assert_eq!(b.json["from_email"], "news@acme.test");
    app.call(
        "PUT",
        "/organization/branding",
        Some(&agent_token),
        Some(json!({})),
    )
    .await
    .expect_problem(403, "admin");

    let deleted = app
        .call("DELETE", &format!("/segments/{id}"), Some(&token), None)
        .await;
    assert_eq!(deleted.status, 204);
    app.call("DELETE", &format!("/segments/{id}"), Some(&token), None)
        .await
        .expect(404);
    app.cleanup().await;
}

#[tokio::test]
async fn audiences_on_sqlite() {
    scenario(common::sqlite().await).await;
}

#[tokio::test]
async fn audiences_on_postgres() {
    scenario(common::postgres().await).await;
}
