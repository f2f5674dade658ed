//! `GET /ws`: alert events pushed to agents and managers over a WebSocket.
//!
//! Protocol (JSON text frames):
//! - Authenticate with `Authorization: Bearer <access token or API key>` on the upgrade
//!   request, with the session cookie (the page's `Origin` must be this server or one of
//!   `serve.cors_allowed_origins`), or, when neither is sent (browsers cannot set
//!   headers on a WebSocket), with a first message `{"type":"auth","token":"…"}` within
//!   10 seconds. Before an access token expires, send a fresh one the same way, or the
//!   server closes the connection (4001) when it does.
//! - The server answers `{"type":"hello","user_id":…,"org_id":…,"topics":[…],
//!   "last_event_id":…}`.
//! - Topics: `me` (events of alerts assigned to you, or taken from you) and `org` (every
//!   event of the organization, and `stats.updated`; managers and above). Choose with
//!   `?topics=me,org` (default: `org` for managers and above, `me` for agents) or later
//!   with `{"type":"subscribe"|"unsubscribe","topics":[…]}`.
//! - Events: `{"type":"event","id":N,"event":"alert.new"|"alert.assigned"|
//!   "alert.updated"|"alert.converted","at":…,"data":{"alert":{…},"change":{…}}}`, and
//!   `{"type":"event","event":"stats.updated","at":…,"data":{…}}` (no id).
//! - Resume: reconnect with `?last_event_id=N` (the last `id` received); the server
//!   first sends every event after N the topics select, then live ones, none twice. When
//!   more than 10,000 were missed it sends `{"type":"reset"}` instead: reload with
//!   `GET /alerts`.
//! - Heartbeats: the server pings every `serve.push.heartbeat_secs` and closes a
//!   connection that has sent nothing (pongs count) for two intervals. Clients may send
//!   `{"type":"ping"}`; the server answers `{"type":"pong"}`.
//! - Close codes: 4001 credentials missing, refused or expired; 4003 a topic the role
//!   may not have; 4008 silent past two heartbeats; 4009 too far behind (reconnect with
//!   `last_event_id`); 1001 the server is shutting down (reconnect shortly, with
//!   `last_event_id`).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::header::{AUTHORIZATION, ORIGIN};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::auth::{self, Principal, cookie};
use crate::problem::Problem;
use crate::push::{Frame, Topics, event_frame};
use crate::role::Role;
use crate::store::Tenant;

/// Most missed events replayed on resume; past this the client is told to reload.
pub const MAX_REPLAY: usize = 10_000;
/// Time a connection without credentials has to send its `auth` message.
const AUTH_WITHIN: Duration = Duration::from_secs(10);

/// Close codes of this protocol.
mod close {
    pub const AUTH: u16 = 4001;
    pub const FORBIDDEN: u16 = 4003;
    pub const HEARTBEAT: u16 = 4008;
    pub const GOING_AWAY: u16 = 1001;
    pub const LAGGING: u16 = 4009;
}

/// What to receive, and where to resume.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct WsQuery {
    /// Comma-separated topics: `me`, `org` (managers and above).
    topics: Option<String>,
    /// Resume after this event id: every later event is sent first.
    #[param(minimum = 0)]
    last_event_id: Option<i64>,
}

fn parse_topics<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Topics, String> {
    let mut topics = Topics::default();
    for name in names {
        match name.trim() {
            "me" => topics.me = true,
            "org" => topics.org = true,
            "" => {}
            other => return Err(format!("topics: {other:?} is not a topic (me, org)")),
        }
    }
    Ok(topics)
}

fn topic_names(t: Topics) -> Vec<&'static str> {
    let mut names = Vec::new();
    if t.me {
        names.push("me");
    }
    if t.org {
        names.push("org");
    }
    names
}

/// Who is connected, and until when their credential holds.
struct Caller {
    principal: Principal,
    /// Unix seconds; none for API keys (checked at connect).
    expires_at: Option<i64>,
}

fn verify_access(state: &AppState, token: &str) -> Result<Caller, Problem> {
    let claims = state
        .keys
        .verify(token)
        .map_err(|e| Problem::unauthorized(e.to_string()))?;
    if claims.mfa_pending {
        return Err(Problem::forbidden(
            "your organization requires two-factor authentication: enrol first",
        ));
    }
    Ok(Caller {
        expires_at: Some(claims.exp),
        principal: Principal {
            user_id: claims.sub,
            org_id: claims.org,
            role: claims.role,
            credential: auth::Credential::Bearer,
            mfa_pending: false,
        },
    })
}

/// A cookie-authenticated upgrade must come from a page of this server or an allowed
/// origin: otherwise any site could open a socket with the visitor's cookies.
fn check_origin(state: &AppState, parts: &Parts) -> Result<(), Problem> {
    let Some(origin) = parts.headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let own = state.config.base_url();
    if origin == own.as_str()
        || state
            .config
            .cors_allowed_origins
            .iter()
            .any(|o| o == origin)
    {
        Ok(())
    } else {
        Err(Problem::forbidden(format!(
            "origin {origin} may not open a cookie-authenticated socket"
        )))
    }
}

/// The caller named by the upgrade request's credentials; None when it has none.
async fn caller_of(state: &AppState, parts: &Parts) -> Result<Option<Caller>, Problem> {
    if let Some(header) = parts.headers.get(AUTHORIZATION) {
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        if token.starts_with(auth::API_KEY_PREFIX) {
            let principal = auth::authenticate(parts, state).await?;
            return Ok(Some(Caller {
                principal,
                expires_at: None,
            }));
        }
        return verify_access(state, token).map(Some);
    }
    if let Some(token) = cookie::get(&parts.headers, cookie::ACCESS) {
        check_origin(state, parts)?;
        let mut caller = verify_access(state, token)?;
        caller.principal.credential = auth::Credential::Cookie;
        return Ok(Some(caller));
    }
    Ok(None)
}

fn check_role(principal: &Principal, topics: Topics) -> Result<(), Problem> {
    if !principal.role.includes(Role::Agent) {
        return Err(Problem::forbidden("alerts are for agents and above"));
    }
    if topics.org && !principal.role.includes(Role::Manager) {
        return Err(Problem::forbidden(
            "the org topic needs the manager role or higher; agents subscribe to me",
        ));
    }
    Ok(())
}

/// Open a WebSocket of alert events.
///
/// Upgrade with `GET /ws` (`Connection: Upgrade`, `Upgrade: websocket`). Authenticate
/// with the `Authorization` header, the session cookie, or a first message
/// `{"type":"auth","token":"…"}`. Topics `me` and `org`; resume with `last_event_id`.
/// Events: `alert.new`, `alert.assigned`, `alert.updated`, `alert.converted`,
/// `stats.updated`. Close codes: 4001 (credentials), 4003 (topic not allowed), 4008
/// (silent), 4009 (too far behind), 1001 (server shutting down: reconnect with
/// `last_event_id`).
#[utoipa::path(get, path = "/ws", tag = "alerts", security(("bearer" = [])),
    params(WsQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request", body = crate::problem::ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn connect(State(state): State<AppState>, request: Request) -> Response {
    match open(state, request).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn open(state: AppState, request: Request) -> Result<Response, Problem> {
    let (mut parts, _) = request.into_parts();
    let Query(query) = Query::<WsQuery>::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| Problem::invalid(e.body_text()))?;
    let asked = query
        .topics
        .as_deref()
        .map(|t| parse_topics(t.split(',')))
        .transpose()
        .map_err(Problem::invalid)?;
    if query.last_event_id.is_some_and(|id| id < 0) {
        return Err(Problem::invalid("last_event_id: must be 0 or more"));
    }
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| Problem::bad_request(format!("not a WebSocket upgrade: {}", e.body_text())))?;
    let caller = caller_of(&state, &parts).await?;
    if let Some(c) = &caller {
        check_role(&c.principal, asked.unwrap_or_default())?;
    }
    let heartbeat = Duration::from_secs(state.config.push.heartbeat_secs.max(1));
    // Small buffers: the defaults (128 KiB each way) would cost more than the rest of a
    // connection; clients send little, and each frame is written when it is sent.
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let session = Session {
                state,
                caller,
                asked,
                last_event_id: query.last_event_id,
                heartbeat,
            };
            session.run(socket).await;
        }))
}

struct Session {
    state: AppState,
    caller: Option<Caller>,
    asked: Option<Topics>,
    last_event_id: Option<i64>,
    heartbeat: Duration,
}

/// Why a connection ended.
enum End {
    /// The client closed or vanished.
    Gone,
    /// The server closes with this code and reason.
    Close(u16, String),
}

fn text(value: serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

/// Closes with `code` and finishes the closing handshake: reads (and drops) what the
/// client still sends until its Close, for up to a second, so that the connection ends
/// cleanly instead of being reset under the client's last frames.
async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    // The client may be gone already; nothing more to do then.
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Waits for `{"type":"auth","token":…}` as the first message.
async fn first_message_auth(state: &AppState, socket: &mut WebSocket) -> Result<Caller, End> {
    let deadline = tokio::time::sleep(AUTH_WITHIN);
    tokio::pin!(deadline);
    loop {
        let message = tokio::select! {
            () = &mut deadline => {
                return Err(End::Close(close::AUTH, "no credentials: send {\"type\":\"auth\",\"token\":…} first".into()));
            }
            m = socket.recv() => m,
        };
        match message {
            Some(Ok(Message::Text(t))) => {
                let value: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if value["type"] != "auth" {
                    return Err(End::Close(
                        close::AUTH,
                        "the first message must be {\"type\":\"auth\",\"token\":…}".into(),
                    ));
                }
                let token = value["token"].as_str().unwrap_or("");
                return verify_access(state, token)
                    .map_err(|p| End::Close(close::AUTH, p.detail().to_owned()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(_)) => {
                return Err(End::Close(close::AUTH, "send JSON text frames".into()));
            }
            Some(Err(_)) | None => return Err(End::Gone),
        }
    }
}

impl Session {
    async fn run(mut self, mut socket: WebSocket) {
        let _open = self.state.hub.socket_opened();
        let mut closing = self.state.hub.closing();
        let end = tokio::select! {
            end = self.serve(&mut socket) => end,
            _ = closing.wait_for(|c| *c) => End::Close(
                close::GOING_AWAY,
                "the server is shutting down; reconnect with last_event_id".into(),
            ),
        };
        if let End::Close(code, reason) = end {
            close_with(&mut socket, code, &reason).await;
        }
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> End {
        let mut caller = match self.caller.take() {
            Some(c) => c,
            None => match first_message_auth(&self.state, socket).await {
                Ok(c) => c,
                Err(end) => return end,
            },
        };
        let principal = caller.principal.clone();
        let default = if principal.role.includes(Role::Manager) {
            Topics {
                org: true,
                me: false,
            }
        } else {
            Topics {
                org: false,
                me: true,
            }
        };
        let mut topics = self.asked.unwrap_or(default);
        if let Err(p) = check_role(&principal, topics) {
            return End::Close(close::FORBIDDEN, p.detail().to_owned());
        }
        // Join before replaying: an event committed meanwhile is either in the replay or
        // arrives live (and ids already sent are skipped), so none is lost.
        let (membership, mut live) =
            self.state
                .hub
                .join(&principal.org_id, &principal.user_id, topics);
        let tenant = principal.tenant(&self.state.store);
        let latest = match self.state.store.latest_event_id().await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "reading the event log for a new socket");
                return End::Close(1011, "the server cannot read its event log".into());
            }
        };
        let hello = json!({
            "type": "hello",
            "user_id": principal.user_id,
            "org_id": principal.org_id,
            "role": principal.role.as_str(),
            "topics": topic_names(topics),
            "last_event_id": latest,
        });
        if socket.send(text(hello)).await.is_err() {
            return End::Gone;
        }
        let mut sent_up_to = latest;
        if let Some(after) = self.last_event_id {
            match replay(&tenant, &principal.user_id, topics, after, socket).await {
                Ok(Some(last)) => sent_up_to = sent_up_to.max(last),
                Ok(None) => {}
                Err(end) => return end,
            }
        }
        let mut ping = tokio::time::interval(self.heartbeat);
        ping.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                frame = live.recv() => {
                    let Some(Frame { id, text: body }) = frame else {
                        return End::Close(close::LAGGING, "too far behind; reconnect with last_event_id".into());
                    };
                    if id != 0 && id <= sent_up_to {
                        continue;
                    }
                    if socket.send(Message::Text(body)).await.is_err() {
                        return End::Gone;
                    }
                    sent_up_to = sent_up_to.max(id);
                }
                message = socket.recv() => {
                    last_heard = tokio::time::Instant::now();
                    match message {
                        Some(Ok(Message::Text(t))) => {
                            match self.command(t.as_str(), &mut caller, &mut topics) {
                                Ok(Some(reply)) => {
                                    membership.set_topics(topics);
                                    if socket.send(text(reply)).await.is_err() {
                                        return End::Gone;
                                    }
                                }
                                Ok(None) => {}
                                Err(end) => return end,
                            }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return End::Gone,
                        Some(Ok(_)) => {}
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > self.heartbeat * 2 {
                        return End::Close(close::HEARTBEAT, "no answer to heartbeats".into());
                    }
                    if let Some(exp) = caller.expires_at && exp <= crate::unix_now() {
                        return End::Close(close::AUTH, "the access token expired; reconnect with a fresh one".into());
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return End::Gone;
                    }
                }
            }
        }
    }

    /// Handles a client message; returns the reply to send, if any.
    fn command(
        &self,
        body: &str,
        caller: &mut Caller,
        topics: &mut Topics,
    ) -> Result<Option<serde_json::Value>, End> {
        let error = |detail: String| Ok(Some(json!({ "type": "error", "detail": detail })));
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            return error("messages are JSON objects with a type".into());
        };
        let names = || -> Result<Topics, String> {
            let list = value["topics"]
                .as_array()
                .ok_or("topics: give a list, e.g. [\"me\"]")?;
            parse_topics(list.iter().map(|v| v.as_str().unwrap_or("?")))
        };
        match value["type"].as_str() {
            Some("ping") => Ok(Some(json!({ "type": "pong" }))),
            Some(kind @ ("subscribe" | "unsubscribe")) => {
                let change = match names() {
                    Ok(t) => t,
                    Err(e) => return error(e),
                };
                let next = if kind == "subscribe" {
                    Topics {
                        org: topics.org || change.org,
                        me: topics.me || change.me,
                    }
                } else {
                    Topics {
                        org: topics.org && !change.org,
                        me: topics.me && !change.me,
                    }
                };
                if let Err(p) = check_role(&caller.principal, next) {
                    return error(p.detail().to_owned());
                }
                *topics = next;
                Ok(Some(
                    json!({ "type": "subscribed", "topics": topic_names(*topics) }),
                ))
            }
            Some("auth") => {
                let token = value["token"].as_str().unwrap_or("");
                match verify_access(&self.state, token) {
                    Ok(fresh)
                        if fresh.principal.user_id == caller.principal.user_id
                            && fresh.principal.org_id == caller.principal.org_id =>
                    {
                        caller.expires_at = fresh.expires_at;
                        Ok(Some(
                            json!({ "type": "authenticated", "expires_at": caller.expires_at }),
                        ))
                    }
                    Ok(_) => Err(End::Close(
                        close::AUTH,
                        "a token of another user cannot take over this connection".into(),
                    )),
                    Err(p) => error(p.detail().to_owned()),
                }
            }
            _ => error("type: one of ping, subscribe, unsubscribe, auth".into()),
        }
    }
}

/// Sends the events after `after` that `topics` select; returns the last id sent. More
/// than [`MAX_REPLAY`] missed: sends `reset` instead.
async fn replay(
    tenant: &Tenant<'_>,
    user_id: &str,
    topics: Topics,
    after: i64,
    socket: &mut WebSocket,
) -> Result<Option<i64>, End> {
    let mut cursor = after;
    let mut sent = 0usize;
    let mut last = None;
    loop {
        let batch = match tenant.events_after(cursor, 1000).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "replaying alert events");
                return Err(End::Close(
                    1011,
                    "the server cannot read its event log".into(),
                ));
            }
        };
        let Some(end) = batch.last().map(|e| e.id) else {
            return Ok(last);
        };
        for event in batch.iter().filter(|e| topics.wants(user_id, e)) {
            if sent == MAX_REPLAY {
                let reset = json!({
                    "type": "reset",
                    "detail": format!("more than {MAX_REPLAY} events were missed: reload with GET /alerts"),
                });
                if socket.send(text(reset)).await.is_err() {
                    return Err(End::Gone);
                }
                return Ok(None);
            }
            if socket
                .send(Message::Text(Utf8Bytes::from(event_frame(event))))
                .await
                .is_err()
            {
                return Err(End::Gone);
            }
            sent += 1;
            last = Some(event.id);
        }
        cursor = end;
    }
}
