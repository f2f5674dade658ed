//! The shared harness: one application per test on a fresh store, SQLite or the real
//! PostgreSQL, and a client that calls the router in-process.
#![allow(dead_code)]

pub mod smtp;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use roi_serving::app::{AppState, router};
use roi_serving::config::{DatabaseConfig, ServeConfig};
use roi_serving::server::open_store;
use serde_json::{Value, json};
use sqlx::Connection;
use tower::ServiceExt;

/// Where the PostgreSQL tests make their databases (trust auth on the test machines).
pub fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// An application on its own store.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    /// The store's URL (another replica can open it).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres_db: Option<String>,
}

/// A response: status, headers, body as JSON (Null when not JSON) and as text.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
    /// The body as received.
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        self
    }

    /// Asserts an RFC 7807 problem with this status whose detail contains `needle`.
    #[track_caller]
    pub fn expect_problem(self, status: u16, needle: &str) -> Reply {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.header("content-type"), "application/problem+json");
        assert_eq!(self.json["status"], status, "{}", self.text);
        let detail = self.json["detail"].as_str().unwrap_or("");
        assert!(detail.contains(needle), "{needle:?} not in {detail:?}");
        self
    }

    /// A string field of the JSON body.
    #[track_caller]
    pub fn str(&self, pointer: &str) -> String {
        self.json
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{pointer} in {}", self.text))
            .to_owned()
    }
}

pub async fn sqlite() -> TestApp {
    sqlite_with(ServeConfig::default()).await
}

/// A SQLite-backed application with a chosen configuration.
pub async fn sqlite_with(config: ServeConfig) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/roi.db", dir.path().display());
    let mut app = build(&url, config).await;
    app._dir = Some(dir);
    app
}

pub async fn postgres() -> TestApp {
    postgres_with(ServeConfig::default()).await
}

/// A PostgreSQL-backed application (on a database of its own) with a chosen configuration.
pub async fn postgres_with(config: ServeConfig) -> TestApp {
    sqlx::any::install_default_drivers();
    let base = postgres_base_url();
    let name = format!(
        "roi_test_{}",
        roi_serving::auth::secret::hex(&roi_serving::auth::secret::random_bytes::<6>())
    );
    let mut admin = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {base} is needed by this test (set TEST_POSTGRES_URL): {e}")
        });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    admin.close().await.expect("close");
    let url = format!(
        "{}/{name}",
        &base[..base.rfind('/').expect("a database in the URL")]
    );
    let mut app = build(&url, config).await;
    app.postgres_db = Some(name);
    app
}

async fn build(url: &str, config: ServeConfig) -> TestApp {
    let database = DatabaseConfig {
        url: Some(url.to_owned()),
        max_connections: 4,
    };
    let (store, ran) = open_store(&database)
        .await
        .expect("open and migrate the store");
    assert!(ran >= 1, "migrations ran");
    let state = AppState::new(store, config).await.expect("state");
    TestApp {
        router: router(state.clone()),
        state,
        url: url.to_owned(),
        _dir: None,
        postgres_db: None,
    }
}

/// An application answering on a loopback socket, with its background work (event
/// push, routing) running; both stop when this drops.
pub struct Live {
    pub addr: std::net::SocketAddr,
    _background: roi_serving::app::Background,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// Another application (a replica) over a store some other `TestApp` owns; its
    /// cleanup leaves the store alone.
    pub fn sharing(router: Router, state: AppState) -> TestApp {
        TestApp {
            router,
            state,
            url: String::new(),
            _dir: None,
            postgres_db: None,
        }
    }

    /// Serves the application on a loopback port, background work included.
    pub async fn serve(&self) -> Live {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("address");
        let app = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Live {
            addr,
            _background: self.state.start_background(),
            server,
        }
    }

    /// Drops the PostgreSQL database (SQLite's goes with its directory).
    pub async fn cleanup(self) {
        self.state.store.close().await;
        if let Some(name) = self.postgres_db {
            let base = postgres_base_url();
            let mut admin = sqlx::AnyConnection::connect(&base).await.expect("connect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop the test database");
        }
    }

    /// Calls the application in-process.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_with(method, path, token, body, &[]).await
    }

    /// [`TestApp::call`] with extra request headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                request = request.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.respond(request.body(body).expect("request")).await
    }

    /// Sends `body` as `content_type`.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        self.send_with(method, path, token, &[("content-type", content_type)], body)
            .await
    }

    /// Sends `body` with these request headers.
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        self.respond(request.body(Body::from(body)).expect("request"))
            .await
    }

    /// Calls the router with `request` and reads the whole response.
    async fn respond(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            bytes: bytes.to_vec(),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("POST", path, token, Some(body)).await
    }

    /// Creates organization `slug` with owner `email`; returns the session.
    pub async fn signup(&self, slug: &str, email: &str) -> Reply {
        self.post(
            "/auth/signup",
            None,
            json!({"organization_name": format!("{slug} realty"), "organization_slug": slug,
                   "email": email, "name": "Owner", "password": PASSWORD}),
        )
        .await
        .expect(201)
    }

    /// [`TestApp::signup`], then links the organization to pipeline organization
    /// `lake_org` (so that its alerts can be ingested).
    pub async fn signup_linked(&self, slug: &str, email: &str, lake_org: i64) -> Reply {
        let owner = self.signup(slug, email).await;
        self.state
            .store
            .link_lake_org(lake_org, &owner.str("/user/organization_id"), 0)
            .await
            .expect("link the pipeline organization");
        owner
    }

    /// Syncs `contacts` (as from the lake) into organization `slug`, with the value
    /// `names` they use.
    pub async fn sync_contacts(
        &self,
        slug: &str,
        contacts: &[roi_serving::store::SyncContact],
        names: &[(String, String)],
    ) -> roi_serving::store::SyncReport {
        let org = self
            .state
            .store
            .organization_by_slug(slug)
            .await
            .expect("read")
            .expect("organization");
        self.state
            .store
            .tenant_of(&org)
            .sync_contacts(contacts, names, 1_000)
            .await
            .expect("sync")
    }

    /// One round of the campaign sender's background work.
    pub async fn campaign_round(&self) {
        roi_serving::campaigns::round(
            &self.state.store,
            self.state.campaign_sender.as_ref(),
            &self.state.tracker,
            &self.state.campaign_queue,
        )
        .await;
    }

    pub async fn login(&self, slug: &str, email: &str) -> Reply {
        self.post(
            "/auth/login",
            None,
            json!({"organization": slug, "email": email, "password": PASSWORD}),
        )
        .await
    }

    /// Invites `email` as `role` with `token` and accepts; returns the new user's session.
    pub async fn invite_and_accept(&self, token: &str, email: &str, role: &str) -> Reply {
        let invite = self
            .post(
                "/invitations",
                Some(token),
                json!({"email": email, "role": role}),
            )
            .await
            .expect(201);
        self.post(
            "/invitations/accept",
            None,
            json!({"token": invite.str("/token"), "name": role, "password": PASSWORD}),
        )
        .await
        .expect(201)
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// Runs a test body on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::sqlite().await;
                super::$name(&app).await;
                app.cleanup().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::common::postgres().await;
                super::$name(&app).await;
                app.cleanup().await;
            }
        }
    )*};
}
