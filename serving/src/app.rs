//! The application: shared state, the router with its OpenAPI document, and the layers
//! every request passes (request id, tracing span, metrics, problem responses).

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, Method, Request, header};
use axum::response::{Html, Response};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::password::Passwords;
use crate::auth::token::KeyRing;
use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::oidc::Oidc;
use crate::problem::Problem;
use crate::push::Hub;
use crate::ratelimit::Limiter;
use crate::routes::{
    alerts, api_keys, audit, auth, campaigns, contacts, documents, health, invitations, mfa,
    notifications, oidc, organization, passwords, routing, users, webhooks, ws,
};
use crate::store::Store;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The shared parts behind [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// The relational store.
    pub store: Store,
    /// Access-token keys.
    pub keys: KeyRing,
    /// Password hashing.
    pub passwords: Passwords,
    /// The server's configuration.
    pub config: ServeConfig,
    /// Request metrics.
    pub metrics: Metrics,
    /// Attempt counters.
    pub limiter: Limiter,
    /// Sign-in providers.
    pub oidc: Oidc,
    /// Live connections for the alert event push.
    pub hub: Arc<Hub>,
    /// Signs and checks campaign tracking links.
    pub tracker: crate::campaigns::Tracker,
    /// Sends campaign mail; None when no mail transport is configured.
    pub campaign_sender: Option<Arc<crate::campaigns::Sender>>,
    /// Where engagement and document events go for the streaming job.
    pub engagement_log: crate::campaigns::EventLog,
    /// Where due campaign messages are scheduled.
    pub campaign_queue: crate::campaigns::Queue,
    /// Where documents' bytes are kept; None when documents are not configured.
    pub storage: Option<crate::documents::Storage>,
    /// Signs and checks document share links.
    pub share_signer: crate::documents::ShareSigner,
    /// This server's full-text index of documents.
    pub search: Arc<crate::search::SearchIndex>,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Builds the state over a migrated store and loads (or makes) the signing keys.
    pub async fn new(store: Store, config: ServeConfig) -> crate::Result<AppState> {
        config.validate()?;
        let keys = KeyRing::new(
            &config.issuer,
            config.access_token_ttl_secs,
            config.key_rotation_hours * 3600,
        );
        keys.sync(&store, crate::unix_now()).await?;
        let limiter = match &config.redis_url {
            Some(url) => Limiter::redis(url, &config.redis_namespace).await?,
            None => Limiter::default(),
        };
        let oidc = Oidc::new(&config.oidc).map_err(|e| crate::Error::Config(e.to_string()))?;
        let secret = store.server_secret("tracking", crate::unix_now()).await?;
        let tracker = crate::campaigns::Tracker::new(secret.as_bytes(), &config.base_url());
        let transport =
            crate::campaigns::Sender::transport_for(&config.campaigns, &config.notifications)
                .map_err(crate::Error::Config)?;
        let campaign_queue = match (config.campaigns.queue, &config.redis_url) {
            (crate::campaigns::QueueBackend::Redis, Some(url)) => {
                crate::campaigns::Queue::redis(url, &config.redis_namespace)
                    .await
                    .map_err(crate::Error::Config)?
            }
            _ => crate::campaigns::Queue::Store,
        };
        let campaign_sender = match transport {
            Some(t) => {
                let from = config
                    .campaigns
                    .from
                    .as_deref()
                    .unwrap_or(&config.notifications.email_from);
                let from = from
                    .parse()
                    .map_err(|e| crate::Error::Config(format!("campaign sender {from:?}: {e}")))?;
                let limits = match &config.redis_url {
                    Some(url) => Limiter::redis(url, &config.redis_namespace).await?,
                    None => Limiter::default(),
                };
                Some(Arc::new(crate::campaigns::Sender::new(
                    config.campaigns.clone(),
                    t,
                    from,
                    tracker.clone(),
                    limits,
                    campaign_queue.clone(),
                )))
            }
            None => None,
        };
        let engagement_log = crate::campaigns::EventLog::new(config.campaigns.events_path.clone());
        let storage =
            crate::documents::Storage::open(&config.documents).map_err(crate::Error::Config)?;
        let share_secret = store
            .server_secret("document-shares", crate::unix_now())
            .await?;
        let share_signer =
            crate::documents::ShareSigner::new(share_secret.as_bytes(), &config.base_url());
        let search = Arc::new(
            crate::search::SearchIndex::open(&config.documents.search)
                .map_err(crate::Error::Config)?,
        );
        Ok(AppState(Arc::new(Shared {
            store,
            keys,
            passwords: Passwords::new(),
            config,
            metrics: Metrics::new(),
            limiter,
            oidc,
            hub: Arc::new(Hub::default()),
            tracker,
            campaign_sender,
            engagement_log,
            campaign_queue,
            storage,
            share_signer,
            search,
        })))
    }

    /// Starts the work a serving process does besides answering requests: the event
    /// push (tailing the log, relaying this process's writes, listening to Redis), the
    /// background router, webhook delivery, notifications, and reloading the signing
    /// keys. Stops when
    /// the handle drops.
    pub fn start_background(&self) -> Background {
        let mut tasks = Vec::new();
        let push = &self.config.push;
        let redis = self
            .config
            .redis_url
            .clone()
            .map(|url| (url, self.config.redis_namespace.clone()));
        tasks.push(tokio::spawn(self.hub.clone().tail(
            self.store.clone(),
            std::time::Duration::from_millis(push.poll_ms),
        )));
        tasks.push(tokio::spawn(crate::push::relay(
            self.store.events_written(),
            self.hub.clone(),
            redis.clone(),
        )));
        if let Some((url, namespace)) = redis {
            tasks.push(tokio::spawn(crate::push::listen(
                url,
                namespace,
                self.hub.clone(),
            )));
        }
        if push.auto_route {
            tasks.push(tokio::spawn(crate::autoroute::run(
                self.store.clone(),
                self.hub.new_alerts(),
                std::time::Duration::from_secs(push.route_interval_secs),
            )));
        }
        tasks.push(tokio::spawn(crate::webhooks::run(
            self.store.clone(),
            self.config.webhooks.clone(),
            self.hub.appended(),
        )));
        tasks.push(tokio::spawn(crate::notify::run(
            self.store.clone(),
            self.config.notifications.clone(),
            self.config.base_url(),
            self.hub.appended_for_notifications(),
        )));
        tasks.push(tokio::spawn(crate::campaigns::run(
            self.store.clone(),
            self.campaign_sender.clone(),
            self.tracker.clone(),
            self.campaign_queue.clone(),
            std::time::Duration::from_millis(self.config.campaigns.poll_ms),
        )));
        if let Some(storage) = &self.storage
            && self.config.documents.extraction.enabled
        {
            tasks.push(tokio::spawn(crate::extract::work(
                self.store.clone(),
                storage.clone(),
                self.config.documents.extraction.clone(),
            )));
        }
        if self.storage.is_some() {
            tasks.push(tokio::spawn(self.search.clone().run(self.store.clone())));
        }
        let keys = self.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::server::KEY_SYNC_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = keys.keys.sync(&keys.store, crate::unix_now()).await {
                    tracing::error!(error = %e, "reloading signing keys");
                }
            }
        }));
        Background(tasks)
    }
}

/// The background tasks of a serving process; dropping this stops them.
#[derive(Debug)]
pub struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ROI API",
        description = "Real-estate intelligence: organizations, users, authentication. Every \
                       error is an RFC 7807 `application/problem+json` body. Authenticate with \
                       `Authorization: Bearer <access token or API key>`, or with the session \
                       cookies of a `\"session\": \"cookie\"` login (state-changing requests \
                       then need the `x-csrf-token` header)."
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::problem::ProblemBody)),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "auth", description = "Sign-up, login, token refresh and logout"),
        (name = "users", description = "Users and roles of the caller's organization"),
        (name = "invitations", description = "Inviting people into an organization"),
        (name = "audit", description = "The organization's security events"),
        (name = "mfa", description = "Two-factor authentication: TOTP, recovery codes, login challenges"),
        (name = "organization", description = "The caller's organization and its security settings"),
        (name = "api-keys", description = "Keys for machine clients: hashed, scoped, revocable"),
        (name = "alerts", description = "Alerts to agents: lists, detail, life cycle, assignment, statistics"),
        (name = "routing", description = "Agents' territories, skills and capacity; routing rules; routing runs"),
        (name = "webhooks", description = "Alert events POSTed to your endpoints, signed, retried, replayable"),
        (name = "contacts", description = "Homeowners campaigns can reach: consent and its history, CSV imports, features and scores"),
        (name = "segments", description = "Rules that pick contacts (equity_pct > 40 and zip in (\"50010\")), previewed live and saved"),
        (name = "campaigns", description = "E-mail campaigns: templates with merge tags, sending to segments through a durable queue, delivery and engagement statistics"),
        (name = "tracking", description = "Links in campaign mail: open pixel, click redirects, unsubscribe (signed; no token)"),
        (name = "documents", description = "Homeowners' documents: streamed uploads, immutable versions, range downloads, soft delete and purge, access log"),
        (name = "sharing", description = "Share links of documents: signed, expiring, revocable, optionally with a password and a download limit (no token)"),
        (name = "notifications", description = "Your inbox of alerts given to you, and how you are told: e-mail, daily digest, SMS, quiet hours"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The documented routes and the document itself.
pub fn api() -> (Router<AppState>, OpenApiDoc) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(auth::jwks))
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(users::me))
        .routes(routes!(users::list))
        .routes(routes!(users::get_one))
        .routes(routes!(users::set_role))
        .routes(routes!(invitations::create, invitations::list))
        .routes(routes!(invitations::accept))
        .routes(routes!(audit::list))
        .routes(routes!(mfa::verify))
        .routes(routes!(mfa::status))
        .routes(routes!(mfa::enrol))
        .routes(routes!(mfa::confirm))
        .routes(routes!(mfa::disable))
        .routes(routes!(mfa::regenerate))
        .routes(routes!(mfa::reset))
        .routes(routes!(organization::get_one, organization::update))
        .routes(routes!(organization::branding, organization::set_branding))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(passwords::change))
        .routes(routes!(passwords::issue))
        .routes(routes!(passwords::reset))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::stats))
        .routes(routes!(alerts::assign))
        .routes(routes!(alerts::get_one))
        .routes(routes!(alerts::change_status))
        .routes(routes!(alerts::accept))
        .routes(routes!(ws::connect))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::replay))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::read))
        .routes(routes!(notifications::read_all))
        .routes(routes!(notifications::messages))
        .routes(routes!(
            notifications::preferences,
            notifications::set_preferences
        ))
        .routes(routes!(routing::route_new))
        .routes(routes!(routing::agents))
        .routes(routes!(routing::set_profile))
        .routes(routes!(routing::rules, routing::set_rules))
        .routes(routes!(contacts::list))
        .routes(routes!(contacts::get_one))
        .routes(routes!(contacts::set_consent))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(contacts::import))
                .layer(axum::extract::DefaultBodyLimit::max(
                    contacts::MAX_IMPORT_BYTES,
                )),
        )
        .routes(routes!(contacts::fields))
        .routes(routes!(contacts::preview))
        .routes(routes!(contacts::create, contacts::list_segments))
        .routes(routes!(
            contacts::get_segment,
            contacts::update_segment,
            contacts::delete_segment
        ))
        .routes(routes!(campaigns::tags))
        .routes(routes!(campaigns::preview))
        .routes(routes!(
            campaigns::create_template,
            campaigns::list_templates
        ))
        .routes(routes!(
            campaigns::get_template,
            campaigns::update_template,
            campaigns::delete_template
        ))
        .routes(routes!(campaigns::test_send))
        .routes(routes!(campaigns::create, campaigns::list))
        .routes(routes!(campaigns::get_one))
        .routes(routes!(campaigns::send))
        .routes(routes!(campaigns::cancel))
        .routes(routes!(campaigns::messages))
        .routes(routes!(campaigns::mail_event))
        .routes(routes!(campaigns::sendgrid_events))
        .routes(routes!(campaigns::open))
        .routes(routes!(campaigns::click))
        .routes(routes!(campaigns::unsubscribe_page, campaigns::unsubscribe))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(documents::upload, documents::list))
                .routes(routes!(documents::add_version))
                // Uploads stream into storage, which enforces serve.documents.max_upload_mb.
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .routes(routes!(documents::purge))
        .routes(routes!(documents::search))
        .routes(routes!(documents::search_status))
        .routes(routes!(
            documents::get_one,
            documents::update,
            documents::delete
        ))
        .routes(routes!(documents::undelete))
        .routes(routes!(documents::restore))
        .routes(routes!(documents::current_content))
        .routes(routes!(documents::version_content))
        .routes(routes!(documents::access))
        .routes(routes!(documents::text))
        .routes(routes!(documents::share, documents::shares))
        .routes(routes!(documents::revoke_share))
        .routes(routes!(documents::shared, documents::shared_with_password))
        .routes(routes!(oidc::providers))
        .routes(routes!(oidc::start))
        .routes(routes!(oidc::callback, oidc::callback_form))
        .split_for_parts();
    document_common_problems(&mut doc);
    (router, doc)
}

/// Adds the problem responses any operation can give, so the document lists every status
/// the server may answer: 400 and 500 everywhere, 415 and 422 where a body or query is
/// read, 401 and 403 where a token is needed. Handlers document only their own cases.
fn document_common_problems(doc: &mut OpenApiDoc) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::problem::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ProblemBody")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            let reads_input =
                op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut common = vec![
                ("400", "Malformed request"),
                ("500", "Server fault (logged, not shown)"),
            ];
            if op.request_body.is_some() {
                common.push(("415", "The body is not JSON"));
            }
            if reads_input {
                common.push((
                    "422",
                    "A field or parameter is invalid; the detail names it",
                ));
            }
            if secured {
                common.push(("401", "No valid access token"));
                common.push(("403", "The caller's role does not allow this"));
            }
            for (status, description) in common {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description).into());
            }
        }
    }
}

/// The whole application, ready to serve.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api();
    let spec: Arc<str> = serde_json::to_string_pretty(&doc)
        .expect("the OpenAPI document serialises")
        .into();
    let page: Arc<str> = docs_page(&doc).into();
    let request_id = HeaderName::from_static("x-request-id");
    let cors = cors_layer(&state.config.cors_allowed_origins);
    let app = routes
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], spec.to_string()) }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let page = page.clone();
                async move { Html(page.to_string()) }
            }),
        )
        .fallback(|| async { Problem::not_found("no such path") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<axum::body::Body>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    let app = match cors {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Cross-origin access for the listed origins (credentials included, so that a dashboard
/// served elsewhere can use its session cookies); None, and so closed, when the list is
/// empty. Origins were checked by [`ServeConfig::validate`].
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<header::HeaderValue> = origins
        .iter()
        .filter_map(|o| header::HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(crate::auth::cookie::CSRF_HEADER),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .allow_credentials(true)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    response
}

/// A readable page listing every operation, made from the OpenAPI document itself.
fn docs_page(doc: &OpenApiDoc) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let summary = op.summary.as_deref().unwrap_or("");
            let detail = op.description.as_deref().unwrap_or("");
            let secured = if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                "bearer token"
            } else {
                "public"
            };
            rows.push_str(&format!(
                "<tr><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td><td><b>{}</b><br>{}</td></tr>\n",
                esc(path),
                secured,
                esc(summary),
                esc(detail)
            ));
        }
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} {version}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td{{vertical-align:top;padding:.3em .6em;border-top:1px solid #ddd}}</style>\
         </head><body><h1>{title} {version}</h1><p>{desc}</p>\
         <p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {oa}).</p>\
         <table><tr><th>method</th><th>path</th><th>auth</th><th>what it does</th></tr>\n{rows}</table></body></html>",
        title = esc(&doc.info.title),
        version = esc(&doc.info.version),
        desc = esc(doc.info.description.as_deref().unwrap_or("")),
        oa = "3.1",
    )
}
