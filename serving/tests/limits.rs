//! Attempt limits shared by replicas through the real Redis (`TEST_REDIS_URL`, default
//! redis://127.0.0.1:6379): failures on one replica lock the account on the other.

mod common;

use roi_serving::app::{AppState, router};
use roi_serving::config::ServeConfig;
use serde_json::json;

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_attempt_limits_through_redis() {
    let namespace = format!(
        "roi-test-{}",
        roi_serving::auth::secret::hex(&roi_serving::auth::secret::random_bytes::<6>())
    );
    let config = ServeConfig {
        redis_url: Some(redis_url()),
        redis_namespace: namespace,
        ..ServeConfig::default()
    };
    let a = common::sqlite_with(config.clone()).await;
    // A second replica: another process state over the same store and the same Redis.
    let state_b = AppState::new(a.state.store.clone(), config)
        .await
        .expect("second replica (is Redis running? set TEST_REDIS_URL)");
    let b = common::TestApp::sharing(router(state_b.clone()), state_b);

    a.signup("acme", "owner@acme.test").await;
    let wrong = json!({"organization": "acme", "email": "owner@acme.test", "password": "guess-guess-guess"});
    for replica in [&a, &b, &a, &b, &a] {
        replica
            .post("/auth/login", None, wrong.clone())
            .await
            .expect_problem(401, "wrong organization, e-mail or password");
    }
    for replica in [&a, &b] {
        let r = replica
            .login("acme", "owner@acme.test")
            .await
            .expect_problem(429, "too many failed logins");
        let wait: u64 = r.header("retry-after").parse().expect("seconds");
        assert!(wait > 0 && wait <= 900, "{wait}");
    }
    let ready = b.get("/readyz", None).await.expect(200);
    assert_eq!(ready.json["status"], "ready");
    a.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_start_up_error() {
    let config = ServeConfig {
        redis_url: Some("redis://127.0.0.1:1".to_owned()),
        ..ServeConfig::default()
    };
    let app = common::sqlite().await;
    let err = AppState::new(app.state.store.clone(), config)
        .await
        .expect_err("no Redis on port 1");
    let msg = err.to_string();
    assert!(
        msg.contains("serve.redis_url") && msg.contains("cannot connect"),
        "{msg}"
    );
    app.cleanup().await;
}
