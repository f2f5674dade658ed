//! The API as a whole: health, metrics, the OpenAPI document, problem responses for
//! every error, and tenant isolation checked over every documented route.

mod common;

use common::TestApp;
use serde_json::{Value, json};

on_both_stores!(
    health_readiness_metrics_and_request_ids,
    the_openapi_document_lists_every_route,
    no_route_lets_one_organization_reach_another,
    migrations_are_idempotent,
);

async fn health_readiness_metrics_and_request_ids(app: &TestApp) {
    let h = app.get("/healthz", None).await.expect(200);
    assert_eq!(h.json["status"], "ok");
    assert!(
        !h.header("x-request-id").is_empty(),
        "a request id is assigned"
    );
    assert_eq!(h.header("x-content-type-options"), "nosniff");
    let r = app.get("/readyz", None).await.expect(200);
    let backend = match app.state.store.backend() {
        roi_serving::store::Backend::Sqlite => "sqlite",
        roi_serving::store::Backend::Postgres => "postgres",
    };
    assert_eq!(r.json["store"], backend);

    let echoed = app
        .call_with("GET", "/healthz", None, None, &[("x-request-id", "req-42")])
        .await;
    assert_eq!(
        echoed.header("x-request-id"),
        "req-42",
        "a client's request id is kept"
    );

    app.get("/no/such/path", None)
        .await
        .expect_problem(404, "no such path");
    let r = app.call("DELETE", "/healthz", None, None).await;
    assert_eq!(r.status.as_u16(), 405);
    assert_eq!(r.header("content-type"), "application/problem+json");

    let m = app.get("/metrics", None).await.expect(200);
    assert!(
        m.header("content-type")
            .starts_with("application/openmetrics-text")
    );
    assert!(
        m.text
            .contains(r#"roi_http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{}",
        m.text
    );
    assert!(
        m.text.contains(r#"route="unmatched",status="404""#),
        "{}",
        m.text
    );
    assert!(m.text.contains("roi_http_request_duration_seconds_bucket"));
}

async fn the_openapi_document_lists_every_route(app: &TestApp) {
    let doc = app.get("/openapi.json", None).await.expect(200);
    assert!(
        doc.str("/openapi").starts_with("3.1"),
        "{}",
        doc.str("/openapi")
    );
    let paths = doc.json["paths"].as_object().expect("paths");
    for p in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/jwks.json",
        "/auth/signup",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/logout-all",
        "/me",
        "/users",
        "/users/{id}",
        "/users/{id}/role",
        "/invitations",
        "/invitations/accept",
        "/auth/mfa",
        "/auth/mfa/verify",
        "/auth/mfa/totp",
        "/auth/mfa/totp/confirm",
        "/auth/mfa/totp/disable",
        "/auth/mfa/recovery-codes",
        "/users/{id}/mfa",
        "/organization",
        "/api-keys",
        "/api-keys/{id}",
        "/auth/oidc/providers",
        "/auth/oidc/{provider}/start",
        "/auth/oidc/{provider}/callback",
        "/auth/password",
        "/auth/password-reset",
        "/users/{id}/password-reset",
        "/alerts",
        "/alerts/{id}",
        "/alerts/{id}/status",
        "/alerts/assign",
        "/alerts/stats",
        "/alerts/route",
        "/agents",
        "/agents/{id}",
        "/routing/rules",
        "/alerts/{id}/accept",
        "/ws",
    ] {
        assert!(paths.contains_key(p), "{p} is documented");
    }
    assert!(doc.json["components"]["securitySchemes"]["bearer"].is_object());
    let page = app.get("/docs", None).await.expect(200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.text.contains("/auth/refresh") && page.text.contains("bearer token"));
}

/// Every documented operation, called by organization B's owner with organization A's
/// ids in every path parameter (and in bodies), succeeds zero times and never shows any
/// of A's ids or e-mails.
async fn no_route_lets_one_organization_reach_another(app: &TestApp) {
    let a_owner = app.signup("alpha", "owner@alpha.test").await;
    let a_token = a_owner.str("/access_token");
    let a_agent = app
        .invite_and_accept(&a_token, "agent@alpha.test", "agent")
        .await;
    let a_invite = app
        .post(
            "/invitations",
            Some(&a_token),
            json!({"email": "pending@alpha.test", "role": "agent"}),
        )
        .await
        .expect(201);
    let a_key = app
        .post(
            "/api-keys",
            Some(&a_token),
            json!({"name": "alpha export", "role": "agent", "scopes": ["users:read"]}),
        )
        .await
        .expect(201);
    app.state
        .store
        .link_lake_org(1, &a_owner.str("/user/organization_id"), 0)
        .await
        .expect("link alpha to the pipeline");
    let a_alert = roi_serving::store::NewAlert {
        id: "alert-alpha-1".into(),
        lake_org_id: 1,
        contact_id: 11,
        property_id: Some(12),
        kind: roi_serving::alerts::AlertKind::Sell,
        score: 0.8,
        confidence: 0.7,
        reasons: vec!["alpha reason".into()],
        model_version: "sell-v1".into(),
        raised_at: 1_700_000_000,
        zip: Some("50010".into()),
        agent_of_record: None,
    };
    let ingested = app
        .state
        .store
        .ingest_alerts(std::slice::from_ref(&a_alert), 1_700_000_100)
        .await
        .expect("ingest");
    assert_eq!(ingested.inserted, 1);
    let b_owner = app.signup("beta", "owner@beta.test").await;
    let b_token = b_owner.str("/access_token");

    let a_ids = [
        a_owner.str("/user/id"),
        a_owner.str("/user/organization_id"),
        a_agent.str("/user/id"),
        a_invite.str("/invitation/id"),
        a_key.str("/api_key/id"),
        a_alert.id.clone(),
    ];
    let a_secrets = [
        "owner@alpha.test",
        "agent@alpha.test",
        "pending@alpha.test",
        "alpha realty",
        "alpha export",
        "alpha reason",
    ];
    let doc = app.get("/openapi.json", None).await.expect(200);
    let mut tried = 0;
    for (template, item) in doc.json["paths"].as_object().expect("paths") {
        for (method, _op) in item.as_object().expect("path item") {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let has_param = template.contains('{');
            let targets: Vec<String> = if has_param {
                a_ids.iter().map(|id| substitute(template, id)).collect()
            } else {
                vec![template.clone()]
            };
            for path in targets {
                for body in [
                    json!({}),
                    json!({"role": "agent", "user_id": a_ids[2], "organization_id": a_ids[1],
                           "alert_ids": [a_alert.id], "assignee_id": a_ids[2]}),
                ] {
                    let body = (method != "get" && method != "delete").then_some(body);
                    let r = app
                        .call(&method.to_uppercase(), &path, Some(&b_token), body)
                        .await;
                    tried += 1;
                    if has_param {
                        assert!(
                            !r.status.is_success(),
                            "{method} {path} with another organization's id succeeded: {}",
                            r.text
                        );
                    }
                    for secret in a_ids.iter().map(String::as_str).chain(a_secrets) {
                        assert!(
                            !leaks(&r.json, &r.text, secret, &path),
                            "{method} {path} showed organization A's {secret}: {}",
                            r.text
                        );
                    }
                }
            }
        }
    }
    assert!(tried > 30, "only {tried} calls");
    // And B's own view is complete: B sees exactly B.
    let users = app.get("/users", Some(&b_token)).await.expect(200);
    assert_eq!(users.json.as_array().map(Vec::len), Some(1));
}

fn substitute(template: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        out.push_str(&rest[..open]);
        out.push_str(id);
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// Whether a response shows `secret`, other than a problem's detail echoing the id the
/// caller put in the path (which reveals nothing the caller did not send).
fn leaks(json: &Value, text: &str, secret: &str, path: &str) -> bool {
    if !text.contains(secret) {
        return false;
    }
    let mut rest = json.clone();
    if path.contains(secret) && rest.get("detail").is_some() {
        rest["detail"] = Value::Null;
        return rest.to_string().contains(secret);
    }
    true
}

async fn migrations_are_idempotent(app: &TestApp) {
    assert_eq!(app.state.store.migrate().await.expect("migrate again"), 0);
    app.state.store.ping().await.expect("ping");
}
