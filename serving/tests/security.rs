//! Second factors, API keys and browser sessions, on SQLite and on the real PostgreSQL:
//! TOTP enrolment and login, replay refusal, recovery codes, the organization's MFA
//! policy, brute force on codes; scoped and revocable API keys; cookie sessions with the
//! CSRF check; CORS closed by default.

mod common;

use common::{PASSWORD, Reply, TestApp};
use roi_serving::auth::totp;
use roi_serving::config::ServeConfig;
use serde_json::json;

on_both_stores!(
    totp_enrolment_login_replay_and_recovery,
    an_organization_can_require_a_second_factor,
    wrong_codes_close_the_challenge_and_lock_the_account,
    api_keys_are_scoped_revocable_and_bounded_by_their_maker,
    cookie_sessions_need_the_csrf_header_to_change_state,
    password_change_and_reset_end_every_session,
);

/// The current code, and the next step's (accepted within the skew window), for the
/// base32 `secret`.
fn codes(secret: &str) -> (String, String) {
    let key = totp::base32_decode(secret).expect("base32 secret");
    let step = totp::step_of(roi_serving::unix_now());
    (
        totp::format_code(&key, step),
        totp::format_code(&key, step + 1),
    )
}

/// Enrols and confirms TOTP for the holder of `token`; returns the secret and the
/// recovery codes.
async fn enrol(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let e = app
        .call("POST", "/auth/mfa/totp", Some(token), None)
        .await
        .expect(201);
    let secret = e.str("/secret");
    assert!(e.str("/otpauth_uri").starts_with("otpauth://totp/"));
    assert!(e.str("/otpauth_uri").contains(&format!("secret={secret}")));
    assert!(e.str("/qr_svg").contains("<svg"));
    let (now, _) = codes(&secret);
    let r = app
        .post("/auth/mfa/totp/confirm", Some(token), json!({"code": now}))
        .await
        .expect(200);
    let recovery: Vec<String> = r.json["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("string").to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    (secret, recovery)
}

async fn challenge(app: &TestApp, slug: &str, email: &str) -> String {
    let r = app.login(slug, email).await.expect(200);
    assert!(
        r.json.get("access_token").is_none(),
        "no session before the factor"
    );
    r.str("/mfa_token")
}

async fn verify(app: &TestApp, mfa_token: &str, code: &str) -> Reply {
    app.post(
        "/auth/mfa/verify",
        None,
        json!({"mfa_token": mfa_token, "code": code}),
    )
    .await
}

async fn totp_enrolment_login_replay_and_recovery(app: &TestApp) {
    let s = app.signup("acme", "owner@acme.test").await;
    let token = s.str("/access_token");
    let status = app.get("/auth/mfa", Some(&token)).await.expect(200);
    assert_eq!(status.json["enabled"], false);
    // A wrong code does not confirm the enrolment.
    app.call("POST", "/auth/mfa/totp", Some(&token), None)
        .await
        .expect(201);
    app.post(
        "/auth/mfa/totp/confirm",
        Some(&token),
        json!({"code": "000000"}),
    )
    .await
    .expect_problem(422, "wrong code");
    let (secret, recovery) = enrol(app, &token).await;
    let status = app.get("/auth/mfa", Some(&token)).await.expect(200);
    assert_eq!(status.json["enabled"], true);
    assert_eq!(status.json["recovery_codes_left"], 10);
    app.call("POST", "/auth/mfa/totp", Some(&token), None)
        .await
        .expect_problem(409, "already on");

    // The code that confirmed the enrolment cannot sign in: a code works once.
    let (now, next) = codes(&secret);
    let mfa = challenge(app, "acme", "owner@acme.test").await;
    verify(app, &mfa, &now)
        .await
        .expect_problem(401, "already used");
    let session = verify(app, &mfa, &next).await.expect(200);
    assert_eq!(session.str("/user/email"), "owner@acme.test");
    app.get("/me", Some(&session.str("/access_token")))
        .await
        .expect(200);
    verify(app, &mfa, &next)
        .await
        .expect_problem(401, "already used; sign in again");
    // The same code on a fresh challenge is a replay.
    let mfa = challenge(app, "acme", "owner@acme.test").await;
    verify(app, &mfa, &next)
        .await
        .expect_problem(401, "already used");
    // A recovery code works once, typed in any case and grouping.
    let typed = recovery[0].to_uppercase().replace('-', " ");
    verify(app, &mfa, &typed).await.expect(200);
    let mfa = challenge(app, "acme", "owner@acme.test").await;
    verify(app, &mfa, &recovery[0])
        .await
        .expect_problem(401, "already used");
    verify(app, &mfa, &recovery[1]).await.expect(200);
    let status = app.get("/auth/mfa", Some(&token)).await.expect(200);
    assert_eq!(status.json["recovery_codes_left"], 8);

    // New recovery codes need a current code; the old ones stop working.
    let fresh = app
        .post(
            "/auth/mfa/recovery-codes",
            Some(&token),
            json!({"code": recovery[2]}),
        )
        .await
        .expect_problem(422, "6-digit code");
    drop(fresh);
    // Turning it off needs proof too; a recovery code will do.
    app.post(
        "/auth/mfa/totp/disable",
        Some(&token),
        json!({"code": "123456"}),
    )
    .await
    .expect_problem(422, "code");
    let off = app
        .post(
            "/auth/mfa/totp/disable",
            Some(&token),
            json!({"code": recovery[3]}),
        )
        .await
        .expect(200);
    assert_eq!(off.json["removed"], true);
    let plain = app.login("acme", "owner@acme.test").await.expect(200);
    assert!(plain.json.get("access_token").is_some());

    let audit = app.get("/audit?limit=100", Some(&token)).await.expect(200);
    let actions: Vec<&str> = audit
        .json
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for needed in [
        "mfa.enrolled",
        "mfa.failed",
        "mfa.recovery_used",
        "mfa.disabled",
    ] {
        assert!(actions.contains(&needed), "{needed} in {actions:?}");
    }
}

async fn an_organization_can_require_a_second_factor(app: &TestApp) {
    let owner = app.signup("acme", "owner@acme.test").await;
    let owner_token = owner.str("/access_token");
    let agent = app
        .invite_and_accept(&owner_token, "agent@acme.test", "agent")
        .await;
    let agent_token = agent.str("/access_token");
    // Only admins change the policy.
    app.call(
        "PATCH",
        "/organization",
        Some(&agent_token),
        Some(json!({"mfa_required": true})),
    )
    .await
    .expect_problem(403, "admin");
    let org = app
        .call(
            "PATCH",
            "/organization",
            Some(&owner_token),
            Some(json!({"mfa_required": true})),
        )
        .await
        .expect(200);
    assert_eq!(org.json["mfa_required"], true);

    // The agent's next session reaches only enrolment.
    let limited = app.login("acme", "agent@acme.test").await.expect(200);
    assert_eq!(limited.json["mfa_enrolment_required"], true);
    let limited_token = limited.str("/access_token");
    app.get("/me", Some(&limited_token))
        .await
        .expect_problem(403, "requires two-factor authentication");
    let status = app.get("/auth/mfa", Some(&limited_token)).await.expect(200);
    assert_eq!(status.json["required_by_organization"], true);
    let (secret, _) = enrol(app, &limited_token).await;
    // A refresh after enrolling gives a full session.
    let full = app
        .post(
            "/auth/refresh",
            None,
            json!({"refresh_token": limited.str("/refresh_token")}),
        )
        .await
        .expect(200);
    assert_eq!(full.json["mfa_enrolment_required"], false);
    app.get("/me", Some(&full.str("/access_token")))
        .await
        .expect(200);
    // It cannot be turned off while required.
    let (_, next) = codes(&secret);
    app.post(
        "/auth/mfa/totp/disable",
        Some(&full.str("/access_token")),
        json!({"code": next}),
    )
    .await
    .expect_problem(403, "requires two-factor");

    // An admin can reset a lost factor; the user must then enrol again.
    let agent_id = agent.str("/user/id");
    app.call(
        "DELETE",
        &format!("/users/{agent_id}/mfa"),
        Some(&agent_token),
        None,
    )
    .await
    .expect_problem(403, "admin");
    let reset = app
        .call(
            "DELETE",
            &format!("/users/{agent_id}/mfa"),
            Some(&owner_token),
            None,
        )
        .await
        .expect(200);
    assert_eq!(reset.json["removed"], true);
    let again = app.login("acme", "agent@acme.test").await.expect(200);
    assert_eq!(again.json["mfa_enrolment_required"], true);
}

async fn wrong_codes_close_the_challenge_and_lock_the_account(app: &TestApp) {
    let s = app.signup("acme", "owner@acme.test").await;
    let (secret, _) = enrol(app, &s.str("/access_token")).await;
    let (_, next) = codes(&secret);
    let wrong = if next == "000000" { "111111" } else { "000000" };
    let mfa = challenge(app, "acme", "owner@acme.test").await;
    for _ in 0..4 {
        verify(app, &mfa, wrong)
            .await
            .expect_problem(401, "wrong code");
    }
    verify(app, &mfa, wrong)
        .await
        .expect_problem(401, "sign in again");
    // The right code no longer rescues that challenge.
    verify(app, &mfa, &next)
        .await
        .expect_problem(401, "already used");
    // Across challenges, the account locks after mfa_failures_per_account (10).
    let mfa = challenge(app, "acme", "owner@acme.test").await;
    for _ in 0..5 {
        verify(app, &mfa, wrong).await.expect(401);
    }
    let mfa = challenge(app, "acme", "owner@acme.test").await;
    let locked = verify(app, &mfa, &next)
        .await
        .expect_problem(429, "too many wrong codes");
    assert!(
        locked
            .header("retry-after")
            .parse::<u64>()
            .expect("seconds")
            > 0
    );
}

async fn api_keys_are_scoped_revocable_and_bounded_by_their_maker(app: &TestApp) {
    let owner = app.signup("acme", "owner@acme.test").await;
    let owner_token = owner.str("/access_token");
    let admin = app
        .invite_and_accept(&owner_token, "admin@acme.test", "admin")
        .await;
    let admin_token = admin.str("/access_token");
    let agent = app
        .invite_and_accept(&owner_token, "agent@acme.test", "agent")
        .await;
    let new_key = |role: &str, scopes: serde_json::Value| json!({"name": "lake export", "role": role, "scopes": scopes});
    app.post(
        "/api-keys",
        Some(&agent.str("/access_token")),
        new_key("agent", json!(["users:read"])),
    )
    .await
    .expect_problem(403, "admin");
    app.post(
        "/api-keys",
        Some(&admin_token),
        new_key("owner", json!(["users:read"])),
    )
    .await
    .expect_problem(403, "above its maker");
    app.post(
        "/api-keys",
        Some(&admin_token),
        new_key("manager", json!(["users:read", "alerts:fly"])),
    )
    .await
    .expect_problem(422, "\"alerts:fly\"");
    let made = app
        .post(
            "/api-keys",
            Some(&admin_token),
            new_key("manager", json!(["users:read", "audit:read"])),
        )
        .await
        .expect(201);
    let key = made.str("/key");
    assert!(key.starts_with("roik_"), "{key}");
    let listed = app.get("/api-keys", Some(&admin_token)).await.expect(200);
    assert!(!listed.text.contains(&key), "the key is shown once");

    // In scope and within its role: yes. Out of scope, or above the role: no.
    let users = app.get("/users", Some(&key)).await.expect(200);
    assert_eq!(users.json.as_array().map(Vec::len), Some(3));
    app.post(
        "/invitations",
        Some(&key),
        json!({"email": "x@acme.test", "role": "agent"}),
    )
    .await
    .expect_problem(403, "lacks the scope \"invitations:write\"");
    app.get("/audit", Some(&key))
        .await
        .expect_problem(403, "admin");
    app.call("POST", "/auth/logout-all", Some(&key), None)
        .await
        .expect_problem(403, "API keys cannot");
    app.get("/api-keys", Some(&key))
        .await
        .expect_problem(403, "API keys cannot");

    // Demoting its maker demotes the key.
    let admin_id = admin.str("/user/id");
    app.call(
        "PUT",
        &format!("/users/{admin_id}/role"),
        Some(&owner_token),
        Some(json!({"role": "agent"})),
    )
    .await
    .expect(200);
    app.get("/users", Some(&key))
        .await
        .expect_problem(403, "manager");
    app.call(
        "PUT",
        &format!("/users/{admin_id}/role"),
        Some(&owner_token),
        Some(json!({"role": "admin"})),
    )
    .await
    .expect(200);
    app.get("/users", Some(&key)).await.expect(200);

    // Revoked: refused at once.
    let id = made.str("/api_key/id");
    let revoked = app
        .call(
            "DELETE",
            &format!("/api-keys/{id}"),
            Some(&owner_token),
            None,
        )
        .await
        .expect(200);
    assert!(revoked.json["revoked_at"].is_i64());
    app.get("/users", Some(&key))
        .await
        .expect_problem(401, "revoked");
    app.get("/users", Some("roik_not-a-key"))
        .await
        .expect_problem(401, "unknown API key");
    let audit = app
        .get("/audit?limit=100", Some(&owner_token))
        .await
        .expect(200);
    assert!(audit.text.contains("api_key.created") && audit.text.contains("api_key.revoked"));
}

/// The value of the `Set-Cookie` header for `name`, if the response sets it.
fn set_cookie<'r>(r: &'r Reply, name: &str) -> Option<&'r str> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().expect("pair");
    pair.split_once('=').expect("=").1.to_owned()
}

async fn cookie_sessions_need_the_csrf_header_to_change_state(app: &TestApp) {
    app.signup("acme", "owner@acme.test").await;
    let login = app
        .post(
            "/auth/login",
            None,
            json!({"organization": "acme", "email": "owner@acme.test", "password": PASSWORD,
                   "session": "cookie"}),
        )
        .await
        .expect(200);
    assert!(
        login.json.get("access_token").is_none(),
        "no token in the body"
    );
    assert!(login.json.get("refresh_token").is_none());
    let access = set_cookie(&login, "__Host-roi_access").expect("access cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(access.contains(attribute), "{attribute} in {access}");
    }
    let refresh = set_cookie(&login, "__Host-roi_refresh").expect("refresh cookie");
    assert!(refresh.contains("HttpOnly"), "{refresh}");
    let csrf_cookie = set_cookie(&login, "__Host-roi_csrf").expect("csrf cookie");
    assert!(
        !csrf_cookie.contains("HttpOnly"),
        "page scripts read it: {csrf_cookie}"
    );
    let csrf = login.str("/csrf_token");
    assert_eq!(cookie_value(csrf_cookie), csrf);
    let cookies = format!(
        "__Host-roi_access={}; __Host-roi_refresh={}; __Host-roi_csrf={csrf}",
        cookie_value(access),
        cookie_value(refresh)
    );

    // Reads need only the cookie.
    let me = app
        .call_with("GET", "/me", None, None, &[("cookie", &cookies)])
        .await
        .expect(200);
    assert_eq!(me.str("/email"), "owner@acme.test");
    // A state-changing request without the CSRF header is refused, as is a wrong one.
    let invite = json!({"email": "agent@acme.test", "role": "agent"});
    app.call_with(
        "POST",
        "/invitations",
        None,
        Some(invite.clone()),
        &[("cookie", &cookies)],
    )
    .await
    .expect_problem(403, "CSRF");
    app.call_with(
        "POST",
        "/invitations",
        None,
        Some(invite.clone()),
        &[("cookie", &cookies), ("x-csrf-token", "forged")],
    )
    .await
    .expect_problem(403, "CSRF");
    app.call_with(
        "POST",
        "/invitations",
        None,
        Some(invite),
        &[("cookie", &cookies), ("x-csrf-token", &csrf)],
    )
    .await
    .expect(201);

    // Refresh by cookie: CSRF needed; new cookies come back.
    app.call_with(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({})),
        &[("cookie", &cookies)],
    )
    .await
    .expect_problem(403, "CSRF");
    let renewed = app
        .call_with(
            "POST",
            "/auth/refresh",
            None,
            Some(json!({})),
            &[("cookie", &cookies), ("x-csrf-token", &csrf)],
        )
        .await
        .expect(200);
    let new_refresh = set_cookie(&renewed, "__Host-roi_refresh").expect("rotated");
    assert_ne!(cookie_value(new_refresh), cookie_value(refresh));
    let new_csrf = renewed.str("/csrf_token");
    let cookies = format!(
        "__Host-roi_access={}; __Host-roi_refresh={}; __Host-roi_csrf={new_csrf}",
        cookie_value(set_cookie(&renewed, "__Host-roi_access").expect("access")),
        cookie_value(new_refresh)
    );
    // Logout by cookie deletes the cookies and ends the session.
    let out = app
        .call_with(
            "POST",
            "/auth/logout",
            None,
            Some(json!({})),
            &[("cookie", &cookies), ("x-csrf-token", &new_csrf)],
        )
        .await
        .expect(200);
    assert_eq!(out.json["revoked"], 1);
    assert!(
        set_cookie(&out, "__Host-roi_access")
            .expect("cleared")
            .contains("Max-Age=0")
    );
    app.call_with(
        "POST",
        "/auth/refresh",
        None,
        Some(json!({})),
        &[("cookie", &cookies), ("x-csrf-token", &new_csrf)],
    )
    .await
    .expect_problem(401, "revoked");
}

/// Preflight from a page on another origin.
async fn preflight(app: &TestApp, origin: &str) -> Reply {
    app.call_with(
        "OPTIONS",
        "/me",
        None,
        None,
        &[
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
    )
    .await
}

#[tokio::test]
async fn cors_is_closed_by_default_and_open_only_to_listed_origins() {
    let app = common::sqlite().await;
    let r = preflight(&app, "https://evil.example").await;
    assert_eq!(r.header("access-control-allow-origin"), "");
    let r = app
        .call_with(
            "GET",
            "/healthz",
            None,
            None,
            &[("origin", "https://evil.example")],
        )
        .await
        .expect(200);
    assert_eq!(r.header("access-control-allow-origin"), "");
    app.cleanup().await;

    let app = common::sqlite_with(ServeConfig {
        cors_allowed_origins: vec!["https://app.example.com".into()],
        ..ServeConfig::default()
    })
    .await;
    let r = preflight(&app, "https://app.example.com").await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert_eq!(r.header("access-control-allow-credentials"), "true");
    assert!(
        r.header("access-control-allow-headers")
            .contains("authorization")
    );
    let r = preflight(&app, "https://evil.example").await;
    assert_eq!(r.header("access-control-allow-origin"), "");
    app.cleanup().await;
}

async fn password_change_and_reset_end_every_session(app: &TestApp) {
    let owner = app.signup("acme", "owner@acme.test").await;
    let owner_token = owner.str("/access_token");
    let agent = app
        .invite_and_accept(&owner_token, "agent@acme.test", "agent")
        .await;
    let agent_token = agent.str("/access_token");
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    app.post(
        "/auth/password",
        Some(&agent_token),
        change("wrong password!", "a new long password"),
    )
    .await
    .expect_problem(401, "current password is wrong");
    app.post(
        "/auth/password",
        Some(&agent_token),
        change(PASSWORD, "short"),
    )
    .await
    .expect_problem(422, "password: too short");
    let changed = app
        .post(
            "/auth/password",
            Some(&agent_token),
            change(PASSWORD, "a new long password"),
        )
        .await
        .expect(200);
    assert_eq!(changed.json["revoked"], 1);
    app.post(
        "/auth/refresh",
        None,
        json!({"refresh_token": agent.str("/refresh_token")}),
    )
    .await
    .expect_problem(401, "revoked");
    app.login("acme", "agent@acme.test")
        .await
        .expect_problem(401, "wrong organization, e-mail or password");

    // An admin issues a one-time reset token; the user sets a password with it.
    let agent_id = agent.str("/user/id");
    app.call(
        "POST",
        &format!("/users/{agent_id}/password-reset"),
        Some(&agent_token),
        None,
    )
    .await
    .expect_problem(403, "admin");
    let issued = app
        .call(
            "POST",
            &format!("/users/{agent_id}/password-reset"),
            Some(&owner_token),
            None,
        )
        .await
        .expect(201);
    let token = issued.str("/token");
    app.post(
        "/auth/password-reset",
        None,
        json!({"token": token, "password": "short"}),
    )
    .await
    .expect_problem(422, "too short");
    app.post(
        "/auth/password-reset",
        None,
        json!({"token": token, "password": PASSWORD}),
    )
    .await
    .expect(200);
    app.post(
        "/auth/password-reset",
        None,
        json!({"token": token, "password": PASSWORD}),
    )
    .await
    .expect_problem(401, "already used");
    app.post(
        "/auth/password-reset",
        None,
        json!({"token": "pwr_nope", "password": PASSWORD}),
    )
    .await
    .expect_problem(401, "unknown");
    app.login("acme", "agent@acme.test").await.expect(200);
    let audit = app
        .get("/audit?limit=100", Some(&owner_token))
        .await
        .expect(200);
    for action in [
        "password.changed",
        "password.reset_issued",
        "password.reset",
    ] {
        assert!(audit.text.contains(action), "{action}");
    }
    // Guessing the current password locks the change after login_failures_per_account.
    for _ in 0..5 {
        app.post(
            "/auth/password",
            Some(&owner_token),
            change("a wrong guess!", "another long password"),
        )
        .await
        .expect_problem(401, "current password is wrong");
    }
    app.post(
        "/auth/password",
        Some(&owner_token),
        change(PASSWORD, "another long password"),
    )
    .await
    .expect_problem(429, "too many wrong passwords");
}
