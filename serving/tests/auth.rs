//! The authentication suite, on SQLite and on the real PostgreSQL: sign-up and login,
//! refresh rotation with reuse detection, logout, forged and expired tokens, roles and
//! invitations.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{PASSWORD, TestApp};
use serde_json::{Value, json};

on_both_stores!(
    signup_login_and_me,
    bad_requests_are_problems_that_name_the_field,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_and_logout_everywhere,
    forged_expired_and_foreign_tokens_are_refused,
    roles_bound_what_users_may_do,
    invitations_work_once,
    brute_force_locks_the_account_and_the_audit_log_shows_it,
);

async fn signup_login_and_me(app: &TestApp) {
    let s = app.signup("acme", "Owner@Acme.test").await;
    assert_eq!(s.str("/token_type"), "Bearer");
    assert_eq!(s.str("/user/role"), "owner");
    assert_eq!(
        s.str("/user/email"),
        "owner@acme.test",
        "e-mail is normalised"
    );
    let me = app
        .get("/me", Some(&s.str("/access_token")))
        .await
        .expect(200);
    assert_eq!(me.str("/id"), s.str("/user/id"));
    assert!(
        !me.text.contains("argon2"),
        "no password hash leaves the server"
    );

    let again = app.login("acme", "owner@acme.test").await.expect(200);
    assert_ne!(again.str("/refresh_token"), s.str("/refresh_token"));
    // Wrong password, unknown e-mail and unknown organization look the same.
    for (org, email, pw) in [
        ("acme", "owner@acme.test", "not the password"),
        ("acme", "nobody@acme.test", PASSWORD),
        ("nope", "owner@acme.test", PASSWORD),
    ] {
        app.post(
            "/auth/login",
            None,
            json!({"organization": org, "email": email, "password": pw}),
        )
        .await
        .expect_problem(401, "wrong organization, e-mail or password");
    }
    app.post(
        "/auth/signup",
        None,
        json!({"organization_name": "Acme 2", "organization_slug": "acme",
               "email": "x@acme.test", "name": "X", "password": PASSWORD}),
    )
    .await
    .expect_problem(409, "slug \"acme\"");
}

async fn bad_requests_are_problems_that_name_the_field(app: &TestApp) {
    let signup = |slug: &str, email: &str, pw: &str| {
        json!({"organization_name": "N", "organization_slug": slug, "email": email,
               "name": "N", "password": pw})
    };
    app.post("/auth/signup", None, signup("A B", "a@b.test", PASSWORD))
        .await
        .expect_problem(422, "organization_slug");
    app.post(
        "/auth/signup",
        None,
        signup("abc", "not-an-email", PASSWORD),
    )
    .await
    .expect_problem(422, "email");
    app.post("/auth/signup", None, signup("abc", "a@b.test", "short"))
        .await
        .expect_problem(422, "password: too short");
    app.post("/auth/signup", None, json!({"organization_slug": "abc"}))
        .await
        .expect_problem(422, "missing field");
    app.post(
        "/auth/login",
        None,
        json!({"organization": "a", "email": "a", "password": "a", "extra": 1}),
    )
    .await
    .expect_problem(422, "unknown field `extra`");
    let r = app.call("POST", "/auth/login", None, None).await;
    assert_eq!(r.status.as_u16(), 415, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/problem+json");
}

async fn refresh(app: &TestApp, token: &str) -> common::Reply {
    app.post("/auth/refresh", None, json!({"refresh_token": token}))
        .await
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: &TestApp) {
    let first = app.signup("acme", "owner@acme.test").await;
    let r1 = first.str("/refresh_token");
    let second = refresh(app, &r1).await.expect(200);
    let r2 = second.str("/refresh_token");
    assert_ne!(r1, r2);
    app.get("/me", Some(&second.str("/access_token")))
        .await
        .expect(200);
    let other = app.login("acme", "owner@acme.test").await.expect(200);

    // r1 again: a copy exists somewhere. The whole family goes, r2 included.
    refresh(app, &r1).await.expect_problem(401, "already used");
    refresh(app, &r2).await.expect_problem(401, "revoked");
    // Another login's family is untouched.
    let other2 = refresh(app, &other.str("/refresh_token")).await.expect(200);
    assert_eq!(other2.str("/user/id"), first.str("/user/id"));
    refresh(app, "rt_not-a-token")
        .await
        .expect_problem(401, "unknown refresh token");
}

async fn logout_and_logout_everywhere(app: &TestApp) {
    let a = app.signup("acme", "owner@acme.test").await;
    let b = app.login("acme", "owner@acme.test").await.expect(200);
    let out = app
        .post(
            "/auth/logout",
            None,
            json!({"refresh_token": a.str("/refresh_token")}),
        )
        .await
        .expect(200);
    assert_eq!(out.json["revoked"], 1);
    refresh(app, &a.str("/refresh_token"))
        .await
        .expect_problem(401, "revoked");
    let b2 = refresh(app, &b.str("/refresh_token")).await.expect(200);
    let c = app.login("acme", "owner@acme.test").await.expect(200);

    app.post("/auth/logout-all", None, json!({}))
        .await
        .expect(401);
    let all = app
        .post(
            "/auth/logout-all",
            Some(&b2.str("/access_token")),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(all.json["revoked"], 2, "b's successor and c: {}", all.text);
    refresh(app, &b2.str("/refresh_token"))
        .await
        .expect_problem(401, "revoked");
    refresh(app, &c.str("/refresh_token"))
        .await
        .expect_problem(401, "revoked");
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn parts(token: &str) -> (Value, Value, String) {
    let p: Vec<&str> = token.split('.').collect();
    assert_eq!(p.len(), 3, "{token}");
    let decode = |s: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).expect("base64url")).expect("json")
    };
    (decode(p[0]), decode(p[1]), p[2].to_owned())
}

async fn forged_expired_and_foreign_tokens_are_refused(app: &TestApp) {
    let s = app.signup("acme", "owner@acme.test").await;
    let token = s.str("/access_token");
    let (header, claims, signature) = parts(&token);
    assert_eq!(header["alg"], "EdDSA");
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let jwks = app.get("/.well-known/jwks.json", None).await.expect(200);
    assert!(
        jwks.text.contains(&kid),
        "the signing key is published: {}",
        jwks.text
    );
    assert_eq!(jwks.json["keys"][0]["crv"], "Ed25519");

    let me = |t: String| async move { app.get("/me", Some(&t)).await };
    // Claims changed, signature kept.
    let mut other = claims.clone();
    other["sub"] = json!("usr_someone_else");
    me(format!("{}.{}.{}", b64(&header), b64(&other), signature))
        .await
        .expect_problem(401, "signature is invalid");
    // alg: none.
    me(format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    ))
    .await
    .expect_problem(401, "malformed");
    // HS256 keyed with the public key (algorithm confusion).
    let x = jwks.json["keys"][0]["x"].as_str().expect("x").to_owned();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
    )
    .expect("encode");
    me(confused).await.expect_problem(401, "algorithm");
    // A well-formed token from a key this server never had.
    let stranger = roi_serving::auth::token::generate(roi_serving::unix_now());
    let der = base64::engine::general_purpose::STANDARD
        .decode(&stranger.private_pkcs8)
        .expect("der");
    let mut ed = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    ed.kid = Some(stranger.kid.clone());
    let foreign = jsonwebtoken::encode(&ed, &claims, &jsonwebtoken::EncodingKey::from_ed_der(&der))
        .expect("encode");
    me(foreign).await.expect_problem(401, "unknown or retired");
    // The same foreign key claiming the real kid.
    ed.kid = Some(kid.clone());
    let impostor =
        jsonwebtoken::encode(&ed, &claims, &jsonwebtoken::EncodingKey::from_ed_der(&der))
            .expect("encode");
    me(impostor)
        .await
        .expect_problem(401, "signature is invalid");
    // No kid.
    let no_kid = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&der),
    )
    .expect("encode");
    me(no_kid).await.expect_problem(401, "names no signing key");
    // Expired: issued by the real key an hour ago.
    let old = app
        .state
        .keys
        .issue(
            &s.str("/user/id"),
            &s.str("/user/organization_id"),
            roi_serving::role::Role::Owner,
            false,
            roi_serving::unix_now() - 3600,
        )
        .expect("issue");
    me(old).await.expect_problem(401, "expired");
    // Not a bearer header at all.
    let r = app
        .call("GET", "/me", None, None)
        .await
        .expect_problem(401, "no Authorization header");
    assert_eq!(r.json["type"], "/problems/unauthorized");
    me("garbage".into()).await.expect_problem(401, "malformed");
    // And the genuine one still works.
    me(token).await.expect(200);
}

async fn roles_bound_what_users_may_do(app: &TestApp) {
    let owner = app.signup("acme", "owner@acme.test").await;
    let owner_t = owner.str("/access_token");
    let admin = app
        .invite_and_accept(&owner_t, "admin@acme.test", "admin")
        .await;
    let manager = app
        .invite_and_accept(&owner_t, "manager@acme.test", "manager")
        .await;
    let agent = app
        .invite_and_accept(&manager.str("/access_token"), "agent@acme.test", "agent")
        .await;
    let homeowner = app
        .invite_and_accept(
            &manager.str("/access_token"),
            "client@home.test",
            "homeowner",
        )
        .await;
    let (admin_t, manager_t, agent_t, home_t) = (
        admin.str("/access_token"),
        manager.str("/access_token"),
        agent.str("/access_token"),
        homeowner.str("/access_token"),
    );
    assert_eq!(agent.str("/user/role"), "agent");

    // Listing users needs manager or higher.
    for t in [&agent_t, &home_t] {
        app.get("/users", Some(t))
            .await
            .expect_problem(403, "needs the manager role");
    }
    let users = app.get("/users", Some(&manager_t)).await.expect(200);
    assert_eq!(users.json.as_array().map(Vec::len), Some(5));
    // Anyone may read themself; not others.
    let agent_id = agent.str("/user/id");
    app.get(&format!("/users/{agent_id}"), Some(&agent_t))
        .await
        .expect(200);
    app.get(
        &format!("/users/{}", manager.str("/user/id")),
        Some(&agent_t),
    )
    .await
    .expect(403);

    // Inviting: agents cannot; managers not above themselves.
    app.post(
        "/invitations",
        Some(&agent_t),
        json!({"email": "x@acme.test", "role": "homeowner"}),
    )
    .await
    .expect(403);
    app.post(
        "/invitations",
        Some(&manager_t),
        json!({"email": "x@acme.test", "role": "admin"}),
    )
    .await
    .expect_problem(403, "cannot invite with the admin role");

    // Role changes: admin and up; not to or from owner unless owner.
    let role_of = |id: String, role: &str| (format!("/users/{id}/role"), json!({"role": role}));
    let (path, body) = role_of(agent_id.clone(), "manager");
    app.call("PUT", &path, Some(&manager_t), Some(body.clone()))
        .await
        .expect(403);
    let changed = app
        .call("PUT", &path, Some(&admin_t), Some(body))
        .await
        .expect(200);
    assert_eq!(changed.str("/role"), "manager");
    let (path, body) = role_of(agent_id.clone(), "owner");
    app.call("PUT", &path, Some(&admin_t), Some(body.clone()))
        .await
        .expect_problem(403, "the owner role");
    let (path, body) = role_of(owner.str("/user/id"), "agent");
    app.call("PUT", &path, Some(&admin_t), Some(body.clone()))
        .await
        .expect_problem(403, "the owner role");
    app.call("PUT", &path, Some(&owner_t), Some(body))
        .await
        .expect_problem(409, "last owner");
    let (path, body) = role_of("usr_000000000000000000000000".into(), "agent");
    app.call("PUT", &path, Some(&owner_t), Some(body))
        .await
        .expect(404);
    let (path, _) = role_of(agent_id, "x");
    app.call("PUT", &path, Some(&owner_t), Some(json!({"role": "boss"})))
        .await
        .expect_problem(422, "unknown variant `boss`");
    // The new role takes effect at the next token.
    let promoted = app.login("acme", "agent@acme.test").await.expect(200);
    app.get("/users", Some(&promoted.str("/access_token")))
        .await
        .expect(200);
}

async fn invitations_work_once(app: &TestApp) {
    let owner = app.signup("acme", "owner@acme.test").await;
    let t = owner.str("/access_token");
    let invite = app
        .post(
            "/invitations",
            Some(&t),
            json!({"email": "New@Acme.test", "role": "agent"}),
        )
        .await
        .expect(201);
    let token = invite.str("/token");
    assert!(token.starts_with("inv_"));
    let listed = app.get("/invitations", Some(&t)).await.expect(200);
    assert_eq!(listed.json[0]["email"], "new@acme.test");
    assert!(
        !listed.text.contains(&token),
        "the token is shown only once"
    );
    let accept = |name: &str| json!({"token": token, "name": name, "password": PASSWORD});
    let session = app
        .post("/invitations/accept", None, accept("New"))
        .await
        .expect(201);
    assert_eq!(session.str("/user/email"), "new@acme.test");
    app.post("/invitations/accept", None, accept("Again"))
        .await
        .expect_problem(409, "already been accepted");
    app.post(
        "/invitations/accept",
        None,
        json!({"token": "inv_nope", "name": "N", "password": PASSWORD}),
    )
    .await
    .expect_problem(401, "unknown invitation");
    app.post(
        "/invitations",
        Some(&t),
        json!({"email": "new@acme.test", "role": "agent"}),
    )
    .await
    .expect_problem(409, "already a user");
    app.login("acme", "new@acme.test").await.expect(200);
}

async fn brute_force_locks_the_account_and_the_audit_log_shows_it(app: &TestApp) {
    let owner = app.signup("acme", "owner@acme.test").await;
    let owner_t = owner.str("/access_token");
    let agent = app
        .invite_and_accept(&owner_t, "agent@acme.test", "agent")
        .await;
    let wrong = json!({"organization": "acme", "email": "owner@acme.test", "password": "guess-guess-guess"});
    for _ in 0..5 {
        app.post("/auth/login", None, wrong.clone())
            .await
            .expect_problem(401, "wrong organization");
    }
    // Locked: even the right password is refused until the window passes.
    let locked = app
        .login("acme", "owner@acme.test")
        .await
        .expect_problem(429, "too many failed logins");
    assert_eq!(locked.json["type"], "/problems/rate-limited");
    let wait: u64 = locked
        .header("retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!(wait > 0 && wait <= 900, "{wait}");
    // Another account of the same organization is not locked.
    app.login("acme", "agent@acme.test").await.expect(200);

    let events = app
        .get("/audit?limit=500", Some(&owner_t))
        .await
        .expect(200);
    let actions: Vec<&str> = events
        .json
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    let count = |a: &str| actions.iter().filter(|x| **x == a).count();
    assert_eq!(count("login.failed"), 5, "{actions:?}");
    assert_eq!(count("login.locked"), 1, "{actions:?}");
    assert_eq!(count("login.succeeded"), 1, "{actions:?}");
    for a in [
        "organization.created",
        "invitation.created",
        "invitation.accepted",
    ] {
        assert_eq!(count(a), 1, "{a} in {actions:?}");
    }
    assert_eq!(actions.first(), Some(&"login.succeeded"), "newest first");
    let failed = &events.json.as_array().expect("events")[1];
    assert_eq!(failed["subject"], "owner@acme.test");

    let ids: Vec<&str> = events
        .json
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    let page = app.get("/audit?limit=2", Some(&owner_t)).await.expect(200);
    assert_eq!(page.json.as_array().map(Vec::len), Some(2));
    let next = app
        .get(
            &format!("/audit?limit=3&before={}", page.str("/1/id")),
            Some(&owner_t),
        )
        .await
        .expect(200);
    let paged: Vec<&str> = page
        .json
        .as_array()
        .into_iter()
        .chain(next.json.as_array())
        .flatten()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(
        paged,
        ids[..5],
        "pages follow each other without gaps or overlap"
    );
    app.get("/audit?limit=0", Some(&owner_t))
        .await
        .expect_problem(422, "limit");
    app.get("/audit?limit=x", Some(&owner_t)).await.expect(422);
    app.get("/audit", Some(&agent.str("/access_token")))
        .await
        .expect_problem(403, "needs the admin role");
}

/// Per-address limits, with the address taken from a trusted proxy's header.
#[tokio::test]
async fn login_attempts_are_limited_per_client_address() {
    let mut config = roi_serving::config::ServeConfig::default();
    config.limits.login_per_ip.limit = 3;
    config.client_ip_header = Some("x-forwarded-for".into());
    let app = common::sqlite_with(config).await;
    app.signup("acme", "owner@acme.test").await;
    let body = json!({"organization": "acme", "email": "owner@acme.test", "password": PASSWORD});
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..3 {
        app.call_with(
            "POST",
            "/auth/login",
            None,
            Some(body.clone()),
            &from("203.0.113.7, 10.0.0.1"),
        )
        .await
        .expect(200);
    }
    app.call_with(
        "POST",
        "/auth/login",
        None,
        Some(body.clone()),
        &from("203.0.113.7"),
    )
    .await
    .expect_problem(429, "login attempts from your address");
    app.call_with(
        "POST",
        "/auth/login",
        None,
        Some(body),
        &from("198.51.100.2"),
    )
    .await
    .expect(200);
    app.cleanup().await;
}
