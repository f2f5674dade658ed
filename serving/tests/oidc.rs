//! Sign-in with OpenID Connect, end to end against a real provider: `oidc-provider` (a
//! certified implementation, in `tests/oidc-provider/`) started on loopback. The server
//! under test runs in-process; it talks to the provider over HTTP for discovery, keys and
//! the code exchange, while the test plays the browser (a cookie-keeping HTTP client
//! following the provider's redirects).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Reply, TestApp};
use roi_serving::config::ServeConfig;
use serde_json::json;

/// Where the provider is told to send the browser back; the test intercepts it there.
const PUBLIC_URL: &str = "http://127.0.0.1:45678";

/// The provider's process, stopped when dropped.
struct OidcProvider {
    child: Child,
    issuer: String,
    /// Kept open: the provider dies of EPIPE if its stdout is closed while it runs.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider() -> OidcProvider {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider");
    assert!(
        dir.join("node_modules").is_dir(),
        "the test OIDC provider is not installed: run `npm ci` in {} (./scripts/test does)",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg("server.mjs")
        .args(["--port", "0"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting node (Node 20 is needed for this test): {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    stdout
        .read_line(&mut line)
        .expect("reading the provider's first line");
    let issuer = line
        .trim()
        .strip_prefix("OIDC_ISSUER=")
        .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
        .to_owned();
    OidcProvider {
        child,
        issuer,
        _stdout: stdout,
    }
}

fn config(issuer: &str) -> ServeConfig {
    let oidc = serde_json::from_value(json!({"providers": {"test": {
        "issuer": issuer, "client_id": "roi-test", "client_secret": "roi-test-secret",
        "display_name": "Test IdP"}}}))
    .expect("provider config");
    ServeConfig {
        public_url: Some(PUBLIC_URL.to_owned()),
        oidc,
        ..ServeConfig::default()
    }
}

/// The value `response` sets for cookie `name`.
fn set_cookie(response: &Reply, name: &str) -> Option<String> {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

/// Starts a sign-in and plays the browser at the provider until it redirects back to
/// us; returns the callback's path and query, and the binding cookie.
async fn at_provider(app: &TestApp, login_hint: &str, session: &str) -> (String, String) {
    let start = app
        .get(
            &format!(
                "/auth/oidc/test/start?organization=acme&login_hint={login_hint}&session={session}"
            ),
            None,
        )
        .await
        .expect(303);
    let binding = set_cookie(&start, "__Host-roi_oidc").expect("binding cookie");
    let mut url = url::Url::parse(start.header("location")).expect("location");
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    for needed in ["state", "nonce", "code_challenge", "redirect_uri"] {
        assert!(query.iter().any(|(k, _)| k == needed), "{needed} in {url}");
    }
    assert!(query.contains(&("code_challenge_method".into(), "S256".into())));
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for _ in 0..10 {
        let r = browser
            .get(url.clone())
            .send()
            .await
            .expect("provider answers");
        assert!(r.status().is_redirection(), "{url}: {}", r.status());
        let next = r.headers()["location"].to_str().expect("location");
        let next = url.join(next).expect("absolute location");
        if next.as_str().starts_with(PUBLIC_URL) {
            let back = &next.as_str()[PUBLIC_URL.len()..];
            return (back.to_owned(), binding);
        }
        url = next;
    }
    panic!("the provider never sent the browser back");
}

async fn sign_in(app: &TestApp, login_hint: &str) -> Reply {
    let (callback, binding) = at_provider(app, login_hint, "bearer").await;
    back(app, &callback, &binding).await
}

async fn back(app: &TestApp, callback: &str, binding: &str) -> Reply {
    app.call_with(
        "GET",
        callback,
        None,
        None,
        &[("cookie", &format!("__Host-roi_oidc={binding}"))],
    )
    .await
}

async fn audit_count(app: &TestApp, token: &str, action: &str) -> usize {
    let log = app.get("/audit?limit=200", Some(token)).await.expect(200);
    log.json
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == action)
        .count()
}

async fn sign_in_links_by_verified_email_and_refuses_the_rest(app: &TestApp) {
    let owner = app.signup("acme", "ann@example.com").await;
    let owner_token = owner.str("/access_token");
    let providers = app.get("/auth/oidc/providers", None).await.expect(200);
    assert_eq!(providers.json[0]["name"], "test");
    assert_eq!(providers.json[0]["display_name"], "Test IdP");

    // First sign-in links the identity by its verified e-mail; the next one uses the link.
    let (callback, binding) = at_provider(app, "ann@example.com", "bearer").await;
    let s = back(app, &callback, &binding).await.expect(200);
    assert_eq!(s.str("/user/email"), "ann@example.com");
    app.get("/me", Some(&s.str("/access_token")))
        .await
        .expect(200);
    let cleared = set_cookie(&s, "__Host-roi_oidc").expect("binding cleared");
    assert_eq!(cleared, "");
    // The same answer again is refused: each state works once.
    back(app, &callback, &binding)
        .await
        .expect_problem(401, "already used");
    sign_in(app, "ann@example.com").await.expect(200);
    assert_eq!(audit_count(app, &owner_token, "oidc.linked").await, 1);

    // An answer brought to another browser (no binding cookie) is refused.
    let (callback, _) = at_provider(app, "ann@example.com", "bearer").await;
    app.get(&callback, None)
        .await
        .expect_problem(401, "not started in this browser");
    // A user whose e-mail the provider has not verified is not linked.
    app.invite_and_accept(&owner_token, "unverified-bob@example.com", "agent")
        .await;
    sign_in(app, "unverified-bob@example.com")
        .await
        .expect_problem(403, "has not verified");
    // Nobody joins an organization by signing in.
    sign_in(app, "carol@example.com")
        .await
        .expect_problem(403, "no user of this organization");
    // The provider's refusal is passed on.
    let (callback, binding) = at_provider(app, "ann@example.com", "bearer").await;
    let state = url::Url::parse(&format!("{PUBLIC_URL}{callback}"))
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .expect("state")
        .1
        .into_owned();
    back(
        app,
        &format!("/auth/oidc/test/callback?error=access_denied&error_description=no&state={state}"),
        &binding,
    )
    .await
    .expect_problem(401, "access_denied");
    app.get("/auth/oidc/nope/start?organization=acme", None)
        .await
        .expect_problem(404, "provider");

    // Cookie sessions, and a user with a second factor gets the challenge.
    let (callback, binding) = at_provider(app, "ann@example.com", "cookie").await;
    let c = back(app, &callback, &binding).await.expect(200);
    assert!(set_cookie(&c, "__Host-roi_access").is_some_and(|v| !v.is_empty()));
    assert!(c.json.get("csrf_token").is_some());
    let e = app
        .call("POST", "/auth/mfa/totp", Some(&owner_token), None)
        .await
        .expect(201);
    let secret = roi_serving::auth::totp::base32_decode(&e.str("/secret")).expect("secret");
    let code = roi_serving::auth::totp::format_code(
        &secret,
        roi_serving::auth::totp::step_of(roi_serving::unix_now()),
    );
    app.post(
        "/auth/mfa/totp/confirm",
        Some(&owner_token),
        json!({"code": code}),
    )
    .await
    .expect(200);
    let m = sign_in(app, "ann@example.com").await.expect(200);
    assert!(m.json.get("mfa_token").is_some(), "{}", m.text);
    assert!(m.json.get("access_token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let provider = start_provider();
    let app = common::sqlite_with(config(&provider.issuer)).await;
    sign_in_links_by_verified_email_and_refuses_the_rest(&app).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let provider = start_provider();
    let app = common::postgres_with(config(&provider.issuer)).await;
    sign_in_links_by_verified_email_and_refuses_the_rest(&app).await;
    app.cleanup().await;
}
