//! Alerts in the store and through the API, on SQLite and on the real PostgreSQL:
//! idempotent ingest by alert id, filters, order and cursor pages, who sees what, the
//! life cycle, bulk assignment and statistics.

mod common;

use common::TestApp;
use roi_serving::alerts::AlertKind;
use roi_serving::store::NewAlert;
use serde_json::{Value, json};

on_both_stores!(
    ingest_is_idempotent_and_needs_a_linked_organization,
    lists_filter_sort_and_page,
    agents_see_and_move_only_their_alerts,
    routing_assigns_new_alerts_by_the_rules_and_says_why,
    unaccepted_alerts_move_on_after_the_acceptance_time,
);

fn alert(n: i64, lake_org: i64, kind: AlertKind, score: f64) -> NewAlert {
    NewAlert {
        id: format!("al-{lake_org}-{n}"),
        lake_org_id: lake_org,
        contact_id: 100 + n,
        // Some alerts have no property: NULLs and values share one statement.
        property_id: (n % 3 != 2).then_some(500 + n),
        kind,
        score,
        confidence: 0.6,
        reasons: vec![
            format!("viewed valuation {n}× this week"),
            "equity 41%".into(),
        ],
        model_version: format!("{kind}-v1"),
        raised_at: 1_700_000_000 + n * 86_400,
        zip: Some(format!("5001{}", n % 2)),
        agent_of_record: (n == 5).then_some(42),
    }
}

/// Signs up `acme`, links it to pipeline organization 7 and ingests `alerts`.
async fn acme_with(app: &TestApp, alerts: &[NewAlert]) -> String {
    let owner = app.signup_linked("acme", "owner@acme.test", 7).await;
    app.state
        .store
        .ingest_alerts(alerts, 1_800_000_000)
        .await
        .expect("ingest");
    owner.str("/access_token")
}

fn ids(page: &Value) -> Vec<String> {
    page["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn ingest_is_idempotent_and_needs_a_linked_organization(app: &TestApp) {
    let batch = vec![
        alert(1, 7, AlertKind::Sell, 0.7),
        alert(2, 7, AlertKind::Buy, 0.6),
        alert(3, 9, AlertKind::Sell, 0.9),
    ];
    let token = acme_with(app, &[]).await;
    let first = app
        .state
        .store
        .ingest_alerts(&batch, 10)
        .await
        .expect("ingest");
    assert_eq!(first.inserted, 2);
    assert_eq!(first.duplicates, 0);
    assert_eq!(
        first.unlinked.get(&9),
        Some(&1),
        "organization 9 is linked to nothing"
    );
    let again = app
        .state
        .store
        .ingest_alerts(&batch, 20)
        .await
        .expect("replay");
    assert_eq!((again.inserted, again.duplicates), (0, 2));
    let page = app.get("/alerts", Some(&token)).await.expect(200);
    assert_eq!(ids(&page.json), ["al-7-2", "al-7-1"]);
    let detail = app.get("/alerts/al-7-1", Some(&token)).await.expect(200);
    assert_eq!(
        detail.json["alert"]["reasons"][0],
        "viewed valuation 1× this week"
    );
    assert_eq!(detail.json["alert"]["status"], "new");
    // A pipeline organization links to one store organization, and back.
    let other = app.signup("other", "owner@other.test").await;
    let e = app
        .state
        .store
        .link_lake_org(7, &other.str("/user/organization_id"), 0)
        .await
        .expect_err("taken");
    assert!(e.to_string().contains("already exists"), "{e}");
}

async fn lists_filter_sort_and_page(app: &TestApp) {
    let scores = [0.55, 0.91, 0.62, 0.78, 0.70];
    let kinds = [AlertKind::Sell, AlertKind::Refinance];
    let batch: Vec<NewAlert> = (0..5)
        .map(|n| alert(n, 7, kinds[n as usize % 2], scores[n as usize]))
        .collect();
    let token = acme_with(app, &batch).await;
    // Newest first, in pages of two, then the end.
    let mut seen = Vec::new();
    let mut url = "/alerts?limit=2".to_owned();
    loop {
        let page = app.get(&url, Some(&token)).await.expect(200);
        seen.extend(ids(&page.json));
        match page.json["next_cursor"].as_str() {
            Some(c) => url = format!("/alerts?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["al-7-4", "al-7-3", "al-7-2", "al-7-1", "al-7-0"]);
    // The list's objects (built by the database) equal the detail's (built in Rust),
    // field for field, NULLs, non-ASCII reasons and scores included.
    let all = app.get("/alerts", Some(&token)).await.expect(200);
    assert!(all.json["next_cursor"].is_null());
    for listed in all.json["alerts"].as_array().expect("alerts") {
        let id = listed["id"].as_str().expect("id");
        let detail = app
            .get(&format!("/alerts/{id}"), Some(&token))
            .await
            .expect(200);
        assert_eq!(listed, &detail.json["alert"], "{id}");
    }
    assert_eq!(all.json["alerts"][0]["score"], 0.70);
    assert!(all.json["alerts"][2]["property_id"].is_null());
    let empty = app
        .get("/alerts?kind=investment&limit=3", Some(&token))
        .await
        .expect(200);
    assert_eq!(empty.json, json!({"alerts": [], "next_cursor": null}));
    // By score, filtered.
    let page = app
        .get("/alerts?sort=score&min_score=0.6&kind=sell", Some(&token))
        .await
        .expect(200);
    assert_eq!(ids(&page.json), ["al-7-4", "al-7-2"]);
    let page = app
        .get("/alerts?sort=score&limit=1", Some(&token))
        .await
        .expect(200);
    let cursor = page.str("/next_cursor");
    let next = app
        .get(
            &format!("/alerts?sort=score&limit=1&cursor={cursor}"),
            Some(&token),
        )
        .await
        .expect(200);
    assert_eq!(ids(&next.json), ["al-7-3"], "0.91 then 0.78");
    // A cursor of the other order is refused, as are bad ranges.
    app.get(&format!("/alerts?cursor={cursor}"), Some(&token))
        .await
        .expect_problem(422, "cursor");
    app.get("/alerts?min_score=2", Some(&token))
        .await
        .expect_problem(422, "min_score");
    app.get("/alerts?limit=0", Some(&token))
        .await
        .expect_problem(422, "limit");
    let window = app
        .get(
            &format!(
                "/alerts?from={}&to={}",
                1_700_000_000 + 86_400,
                1_700_000_000 + 3 * 86_400
            ),
            Some(&token),
        )
        .await
        .expect(200);
    assert_eq!(ids(&window.json), ["al-7-2", "al-7-1"]);
}

async fn agents_see_and_move_only_their_alerts(app: &TestApp) {
    let batch: Vec<NewAlert> = (0..3).map(|n| alert(n, 7, AlertKind::Sell, 0.8)).collect();
    let owner = acme_with(app, &batch).await;
    let agent = app
        .invite_and_accept(&owner, "agent@acme.test", "agent")
        .await;
    let agent_token = agent.str("/access_token");
    let agent_id = agent.str("/user/id");
    let homeowner = app
        .invite_and_accept(&owner, "client@acme.test", "homeowner")
        .await;
    app.get("/alerts", Some(&homeowner.str("/access_token")))
        .await
        .expect_problem(403, "agents and above");
    assert!(
        ids(&app
            .get("/alerts", Some(&agent_token))
            .await
            .expect(200)
            .json)
        .is_empty()
    );
    app.get("/alerts/al-7-0", Some(&agent_token))
        .await
        .expect_problem(404, "alert");

    // A manager (the owner) assigns two; unknown and final alerts are skipped.
    app.post(
        "/alerts/assign",
        Some(&agent_token),
        json!({"alert_ids": ["al-7-0"], "assignee_id": agent_id}),
    )
    .await
    .expect_problem(403, "manager");
    let r = app
        .post(
            "/alerts/assign",
            Some(&owner),
            json!({"alert_ids": ["al-7-0", "al-7-1", "nope"], "assignee_id": agent_id}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["assigned"], json!(["al-7-0", "al-7-1"]));
    assert_eq!(r.json["skipped"][0]["reason"], "no such alert");
    app.post(
        "/alerts/assign",
        Some(&owner),
        json!({"alert_ids": ["al-7-2"], "assignee_id": homeowner.str("/user/id")}),
    )
    .await
    .expect_problem(422, "assignee_id");
    let mine = app.get("/alerts", Some(&agent_token)).await.expect(200);
    assert_eq!(ids(&mine.json), ["al-7-1", "al-7-0"]);
    app.get(
        &format!("/alerts?assignee={}", owner_id(app, &owner).await),
        Some(&agent_token),
    )
    .await
    .expect_problem(403, "assigned to them");

    // The life cycle: contacted, then converted with its value; final after that.
    let status = |id: &str, body: Value| {
        let token = agent_token.clone();
        let path = format!("/alerts/{id}/status");
        async move { app.post(&path, Some(&token), body).await }
    };
    status("al-7-0", json!({"status": "converted"}))
        .await
        .expect_problem(409, "cannot become converted");
    status(
        "al-7-0",
        json!({"status": "contacted", "note": "called, wants a CMA"}),
    )
    .await
    .expect(200);
    status("al-7-0", json!({"status": "contacted", "value": 5.0}))
        .await
        .expect_problem(422, "value");
    let done = status("al-7-0", json!({"status": "converted", "value": 412000.0}))
        .await
        .expect(200);
    assert_eq!(done.json["outcome_value"], 412000.0);
    status("al-7-0", json!({"status": "dismissed"}))
        .await
        .expect_problem(409, "final");
    status("al-7-1", json!({"status": "expired"}))
        .await
        .expect_problem(403, "manager");
    status("al-7-1", json!({"status": "dismissed"}))
        .await
        .expect(200);
    status("al-7-2", json!({"status": "dismissed"}))
        .await
        .expect_problem(404, "alert");

    let detail = app
        .get("/alerts/al-7-0", Some(&agent_token))
        .await
        .expect(200);
    let steps: Vec<&str> = detail.json["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["to_status"].as_str().expect("status"))
        .collect();
    assert_eq!(steps, ["assigned", "contacted", "converted"]);
    assert_eq!(detail.json["history"][1]["detail"], "called, wants a CMA");

    let stats = app.get("/alerts/stats", Some(&owner)).await.expect(200);
    assert_eq!(stats.json["all"]["total"], 3);
    assert_eq!(stats.json["all"]["converted"], 1);
    assert_eq!(stats.json["by_kind"]["sell"]["conversion_rate"], 0.5);
    assert_eq!(stats.json["by_agent"][0]["assignee_id"], agent_id.as_str());
    assert_eq!(stats.json["converted_value"], 412000.0);
    app.get("/alerts/stats", Some(&agent_token))
        .await
        .expect_problem(403, "manager");
}

async fn owner_id(app: &TestApp, token: &str) -> String {
    app.get("/me", Some(token)).await.expect(200).str("/id")
}

async fn routing_assigns_new_alerts_by_the_rules_and_says_why(app: &TestApp) {
    // Six new alerts: zips 50010 and 50011 alternate; kinds sell, refinance, ...
    let kinds = [AlertKind::Sell, AlertKind::Refinance];
    let batch: Vec<NewAlert> = (0..6)
        .map(|n| alert(n, 7, kinds[n as usize % 2], 0.7))
        .collect();
    let owner = acme_with(app, &batch).await;
    let ann = app
        .invite_and_accept(&owner, "ann@acme.test", "agent")
        .await;
    let bob = app
        .invite_and_accept(&owner, "bob@acme.test", "agent")
        .await;
    let (ann_id, bob_id) = (ann.str("/user/id"), bob.str("/user/id"));
    app.post("/alerts/route", Some(&owner), json!({}))
        .await
        .expect_problem(409, "no routing rules");
    // Ann covers 50010 and sells; Bob covers both zips and does refinancing, with
    // room for one alert only.
    let profile = |zips: &[&str], skills: &[&str], capacity: u32| json!({"zips": zips, "skills": skills, "capacity": capacity});
    app.call(
        "PUT",
        &format!("/agents/{ann_id}"),
        Some(&ann.str("/access_token")),
        Some(profile(&["50010"], &["sell"], 10)),
    )
    .await
    .expect_problem(403, "manager");
    app.call(
        "PUT",
        &format!("/agents/{ann_id}"),
        Some(&owner),
        Some(profile(&["5001"], &["sell"], 10)),
    )
    .await
    .expect_problem(422, "five-digit");
    // Ann is also the pipeline's agent 42: the agent of record of al-7-5's homeowner.
    let mut ann_profile = profile(&["50010"], &["sell"], 10);
    ann_profile["lake_agent_id"] = json!(42);
    app.call(
        "PUT",
        &format!("/agents/{ann_id}"),
        Some(&owner),
        Some(ann_profile),
    )
    .await
    .expect(200);
    app.call(
        "PUT",
        &format!("/agents/{bob_id}"),
        Some(&owner),
        Some(profile(&["50010", "50011"], &["refinance"], 1)),
    )
    .await
    .expect(200);
    let rules = json!({"rules": [
        {"name": "agent of record", "strategies": [{"strategy": "relationship"}]},
        {"name": "local specialist", "strategies": [{"strategy": "territory"}, {"strategy": "skill"}, {"strategy": "workload"}]},
        {"name": "anyone", "strategies": [{"strategy": "round_robin"}]},
    ]});
    app.call(
        "PUT",
        "/routing/rules",
        Some(&owner),
        Some(json!({"rules": [{"name": "x", "strategies": []}]})),
    )
    .await
    .expect_problem(422, "at least one strategy");
    app.call("PUT", "/routing/rules", Some(&owner), Some(rules.clone()))
        .await
        .expect(200);
    let stored = app.get("/routing/rules", Some(&owner)).await.expect(200);
    assert_eq!(stored.json, rules);

    let run = app
        .post("/alerts/route", Some(&owner), json!({}))
        .await
        .expect(200);
    let routed = run.json["routed"].as_array().expect("routed");
    let who = |alert: &str| {
        routed.iter().find(|r| r["alert_id"] == alert).map(|r| {
            (
                r["agent_id"].as_str().unwrap_or("").to_owned(),
                r["rule"].as_str().unwrap_or("").to_owned(),
            )
        })
    };
    // al-7-0: sell in 50010 -> Ann by the specialist rule.
    assert_eq!(
        who("al-7-0"),
        Some((ann_id.clone(), "local specialist".into()))
    );
    // al-7-1: refinance in 50011 -> Bob (now full).
    assert_eq!(
        who("al-7-1"),
        Some((bob_id.clone(), "local specialist".into()))
    );
    // al-7-2: sell in 50010 -> Ann again.
    assert_eq!(
        who("al-7-2"),
        Some((ann_id.clone(), "local specialist".into()))
    );
    // al-7-3: refinance, Bob is full -> the fallback round-robin, which can only give Ann.
    assert_eq!(who("al-7-3"), Some((ann_id.clone(), "anyone".into())));
    // al-7-5: a refinance in 50011 (neither Ann's zip nor skill), but Ann is the
    // homeowner's agent of record: the first rule gives it to her.
    assert_eq!(
        who("al-7-5"),
        Some((ann_id.clone(), "agent of record".into()))
    );
    assert_eq!(routed.len(), 6, "{}", run.text);
    let detail = app.get("/alerts/al-7-0", Some(&owner)).await.expect(200);
    let why = detail.json["history"][0]["detail"]
        .as_str()
        .expect("detail");
    assert!(
        why.contains("local specialist") && why.contains("territory 50010"),
        "{why}"
    );
    // Nothing new is left to route; Bob's load shows.
    let again = app
        .post("/alerts/route", Some(&owner), json!({}))
        .await
        .expect(200);
    assert_eq!(again.json["routed"].as_array().map(Vec::len), Some(0));
    let agents = app.get("/agents", Some(&owner)).await.expect(200);
    let bob_view = agents
        .json
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["user_id"] == bob_id.as_str())
        .expect("bob");
    assert_eq!(bob_view["open"], 1);
}

async fn unaccepted_alerts_move_on_after_the_acceptance_time(app: &TestApp) {
    let owner = acme_with(app, &[alert(1, 7, AlertKind::Sell, 0.8)]).await;
    let ann = app
        .invite_and_accept(&owner, "ann@acme.test", "agent")
        .await;
    let bob = app
        .invite_and_accept(&owner, "bob@acme.test", "agent")
        .await;
    let (ann_id, bob_id) = (ann.str("/user/id"), bob.str("/user/id"));
    for id in [&ann_id, &bob_id] {
        app.call(
            "PUT",
            &format!("/agents/{id}"),
            Some(&owner),
            Some(json!({"zips": ["50011"], "skills": ["sell"], "capacity": 5})),
        )
        .await
        .expect(200);
    }
    let rules = |within: Value| json!({"rules": [{"name": "turns", "strategies": [{"strategy": "round_robin"}]}], "accept_within_secs": within});
    app.call("PUT", "/routing/rules", Some(&owner), Some(rules(json!(5))))
        .await
        .expect_problem(422, "accept_within_secs");
    app.call(
        "PUT",
        "/routing/rules",
        Some(&owner),
        Some(rules(json!(60))),
    )
    .await
    .expect(200);
    let run = app
        .post("/alerts/route", Some(&owner), json!({}))
        .await
        .expect(200);
    let first = run.json["routed"][0]["agent_id"]
        .as_str()
        .expect("routed")
        .to_owned();
    let (other, other_session) = if first == ann_id {
        (bob_id.clone(), &bob)
    } else {
        (ann_id.clone(), &ann)
    };
    let org = app
        .state
        .store
        .organization_by_slug("acme")
        .await
        .expect("read")
        .expect("acme");
    let tenant = app.state.store.tenant_of(&org);
    let assigned_at = tenant
        .alert("al-7-1")
        .await
        .expect("read")
        .expect("alert")
        .updated_at;
    // Within the minute nothing moves; after it, the alert goes to the other agent.
    let early = roi_serving::autoroute::reroute_unaccepted(&tenant, assigned_at + 59)
        .await
        .expect("reroute");
    assert!(early.placed.is_empty());
    let late = roi_serving::autoroute::reroute_unaccepted(&tenant, assigned_at + 61)
        .await
        .expect("reroute");
    assert_eq!(late.placed.len(), 1);
    assert_eq!(late.placed[0].decision.agent_id, other);
    assert_eq!(late.placed[0].taken_from.as_deref(), Some(first.as_str()));
    let detail = app.get("/alerts/al-7-1", Some(&owner)).await.expect(200);
    assert_eq!(detail.json["alert"]["assignee_id"], other.as_str());
    let why = detail.json["history"][1]["detail"].as_str().unwrap_or("");
    assert!(why.contains("not accepted within 60 s"), "{why}");
    // Only the assignee accepts; once accepted, the alert stays.
    let stranger = if other == ann_id { &bob } else { &ann };
    app.post(
        "/alerts/al-7-1/accept",
        Some(&stranger.str("/access_token")),
        json!({}),
    )
    .await
    .expect_problem(404, "alert");
    let accepted = app
        .post(
            "/alerts/al-7-1/accept",
            Some(&other_session.str("/access_token")),
            json!({}),
        )
        .await
        .expect(200);
    assert!(accepted.json["accepted_at"].is_i64());
    app.post(
        "/alerts/al-7-1/accept",
        Some(&other_session.str("/access_token")),
        json!({}),
    )
    .await
    .expect_problem(409, "already");
    let much_later = roi_serving::autoroute::reroute_unaccepted(&tenant, assigned_at + 10_000)
        .await
        .expect("reroute");
    assert!(much_later.placed.is_empty());
}
