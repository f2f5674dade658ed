//! The caller's notifications: the in-app inbox (read and unread) and how they want to be
//! told (e-mail now or as a daily digest, SMS, quiet hours). What is notified and how it
//! is sent is [`crate::notify`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::Principal;
use crate::notify::{check_phone, format_clock, next_digest_at, parse_clock};
use crate::problem::{Json, Problem, ProblemBody, Query};
use crate::store::{EmailMode, Notification, Preferences};
use crate::unix_now;

/// One inbox entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct NotificationView {
    /// Id (sorts by creation).
    id: String,
    /// `alert.assigned` (an alert was given to you) or `alert.reassigned` (one of
    /// yours went to another agent).
    kind: String,
    /// The alert.
    alert_id: Option<String>,
    /// One line.
    title: String,
    /// The alert's reasons, one per line.
    body: String,
    /// The alert event it came from (as the WebSocket push numbers them).
    event_id: i64,
    /// Unix seconds.
    created_at: i64,
    /// When you marked it read; null while unread.
    read_at: Option<i64>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        NotificationView {
            id: n.id,
            kind: n.kind,
            alert_id: n.alert_id,
            title: n.title,
            body: n.body,
            event_id: n.event_id,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

/// A page of the inbox.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Inbox {
    /// Unread entries in all (not only this page).
    unread: i64,
    /// Newest first.
    notifications: Vec<NotificationView>,
    /// Pass as `before` for the next page; null on the last.
    next_before: Option<String>,
}

/// Which entries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct InboxQuery {
    /// Only unread ones.
    unread: Option<bool>,
    /// Entries older than this id (the previous page's `next_before`).
    before: Option<String>,
    /// How many (1–200, default 50).
    limit: Option<i64>,
}

/// How many were marked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Marked {
    /// Entries marked read.
    marked: u64,
}

/// Quiet hours, local time: e-mail and SMS wait until they end.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuietHours {
    /// Start, `HH:MM`.
    #[schema(example = "21:00")]
    start: String,
    /// End, `HH:MM`; before the start, they run over midnight.
    #[schema(example = "07:00")]
    end: String,
}

/// How you want to be told.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreferencesBody {
    /// E-mail: `immediate` (each alert given to you), `digest` (one a day at
    /// `digest_hour`), or `off`.
    email: String,
    /// Whether alerts given to you also come by SMS (needs `phone`).
    sms: bool,
    /// Your mobile number, E.164 (`+15155550100`).
    phone: Option<String>,
    /// Quiet hours; null for none.
    quiet_hours: Option<QuietHours>,
    /// IANA time zone of the quiet hours and the digest hour (`America/Chicago`).
    timezone: String,
    /// Local hour (0–23) the digest goes out.
    #[schema(minimum = 0, maximum = 23)]
    digest_hour: u32,
}

/// Your preferences and what the server can send.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct PreferencesView {
    /// E-mail: `immediate`, `digest` or `off`.
    email: String,
    /// Whether alerts given to you also come by SMS.
    sms: bool,
    /// Your mobile number, E.164.
    phone: Option<String>,
    /// Quiet hours; null for none.
    quiet_hours: Option<QuietHours>,
    /// IANA time zone of the quiet hours and the digest hour.
    timezone: String,
    /// Local hour (0–23) the digest goes out.
    digest_hour: u32,
    /// Whether this server sends e-mail (it has an SMTP server).
    email_available: bool,
    /// Whether this server sends SMS.
    sms_available: bool,
    /// When the next digest goes out (Unix seconds), with e-mail `digest`.
    next_digest_at: Option<i64>,
    /// When you last changed them; null: never (these are the defaults).
    updated_at: Option<i64>,
}

fn view(state: &AppState, p: Preferences, now: i64) -> PreferencesView {
    let next = (p.email == EmailMode::Digest).then(|| next_digest_at(now, &p));
    PreferencesView {
        email: p.email.as_str().to_owned(),
        sms: p.sms,
        phone: p.phone.clone(),
        quiet_hours: p.quiet_hours.map(|(s, e)| QuietHours {
            start: format_clock(s),
            end: format_clock(e),
        }),
        timezone: p.timezone.clone(),
        digest_hour: p.digest_hour,
        email_available: state.config.notifications.email_enabled(),
        sms_available: state.config.notifications.sms_enabled(),
        next_digest_at: next,
        updated_at: p.updated_at,
    }
}

/// Your notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/notifications", tag = "notifications", security(("bearer" = [])),
    params(InboxQuery),
    responses(
        (status = 200, description = "A page of your inbox", body = Inbox),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<InboxQuery>,
) -> Result<Json<Inbox>, Problem> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::invalid("limit: must be between 1 and 200"));
    }
    if let Some(before) = &q.before
        && (before.len() > 64 || !before.starts_with("ntf_"))
    {
        return Err(Problem::invalid(
            "before: must be a notification id (ntf_…) from next_before",
        ));
    }
    let tenant = principal.tenant(&state.store);
    let page = tenant
        .notifications(
            &principal.user_id,
            q.unread.unwrap_or(false),
            q.before.as_deref(),
            limit,
        )
        .await?;
    let next_before = (page.len() as i64 == limit)
        .then(|| page.last().map(|n| n.id.clone()))
        .flatten();
    Ok(Json(Inbox {
        unread: tenant.unread_notifications(&principal.user_id).await?,
        notifications: page.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

/// Mark one of your notifications read.
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path, description = "Notification id")),
    responses(
        (status = 204, description = "Marked read"),
        (status = 404, description = "You have no such notification", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn read(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let found = principal
        .tenant(&state.store)
        .mark_notification_read(&principal.user_id, &id, unix_now())
        .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("notification"))
    }
}

/// Mark all your notifications read.
#[utoipa::path(post, path = "/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were unread", body = Marked),
    ))]
pub(crate) async fn read_all(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Marked>, Problem> {
    let marked = principal
        .tenant(&state.store)
        .mark_all_notifications_read(&principal.user_id, unix_now())
        .await?;
    Ok(Json(Marked { marked }))
}

/// How you are told about alerts given to you, and what this server can send.
#[utoipa::path(get, path = "/notifications/preferences", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, description = "Your preferences (the defaults until you set them)", body = PreferencesView),
    ))]
pub(crate) async fn preferences(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<PreferencesView>, Problem> {
    let p = principal
        .tenant(&state.store)
        .notification_preferences(&principal.user_id)
        .await?;
    Ok(Json(view(&state, p, unix_now())))
}

fn parse(state: &AppState, body: PreferencesBody) -> Result<Preferences, Problem> {
    let email: EmailMode = body
        .email
        .parse()
        .map_err(|e| Problem::invalid(format!("email: {e}")))?;
    if body.timezone.len() > 64 || body.timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(Problem::invalid(format!(
            "timezone: {:?} is not an IANA time zone (e.g. America/Chicago, Europe/Berlin, UTC)",
            body.timezone
        )));
    }
    if body.digest_hour > 23 {
        return Err(Problem::invalid("digest_hour: must be between 0 and 23"));
    }
    let phone = match body.phone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => {
            check_phone(p).map_err(|e| Problem::invalid(format!("phone: {e}")))?;
            Some(p.to_owned())
        }
    };
    if body.sms && phone.is_none() {
        return Err(Problem::invalid("phone: SMS needs your mobile number"));
    }
    if body.sms && !state.config.notifications.sms_enabled() {
        return Err(Problem::conflict(
            "this server sends no SMS (serve.notifications.sms_api_url is not set)",
        ));
    }
    let quiet_hours = match &body.quiet_hours {
        None => None,
        Some(q) => {
            let start = parse_clock(&q.start)
                .map_err(|e| Problem::invalid(format!("quiet_hours.start: {e}")))?;
            let end = parse_clock(&q.end)
                .map_err(|e| Problem::invalid(format!("quiet_hours.end: {e}")))?;
            if start == end {
                return Err(Problem::invalid(
                    "quiet_hours: start and end are the same; give null for no quiet hours",
                ));
            }
            Some((start, end))
        }
    };
    Ok(Preferences {
        email,
        sms: body.sms,
        phone,
        quiet_hours,
        timezone: body.timezone,
        digest_hour: body.digest_hour,
        updated_at: None,
    })
}

/// Set how you are told about alerts given to you.
///
/// Quiet hours hold e-mail and SMS until they end (your inbox and the live push are not
/// held). A digest lists what arrived since the previous one; the first covers what
/// arrives from now on.
#[utoipa::path(put, path = "/notifications/preferences", tag = "notifications", security(("bearer" = [])),
    request_body = PreferencesBody,
    responses(
        (status = 200, description = "Your preferences as stored", body = PreferencesView),
        (status = 409, description = "SMS asked for but this server sends none", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_preferences(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<PreferencesBody>,
) -> Result<Json<PreferencesView>, Problem> {
    let p = parse(&state, body)?;
    let now = unix_now();
    let next = (p.email == EmailMode::Digest).then(|| next_digest_at(now, &p));
    let tenant = principal.tenant(&state.store);
    tenant
        .set_notification_preferences(&principal.user_id, &p, next, now)
        .await?;
    let stored = tenant.notification_preferences(&principal.user_id).await?;
    Ok(Json(view(&state, stored, now)))
}

/// One e-mail or SMS sent (or to be sent) to you.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MessageView {
    /// Id.
    id: String,
    /// `email` or `sms`.
    channel: String,
    /// The address or number it goes to.
    recipient: String,
    /// E-mail subject (empty for SMS).
    subject: String,
    /// `pending`, `sent` or `dead`.
    status: String,
    /// Attempts made.
    attempts: i64,
    /// When the next attempt is due (Unix milliseconds), while pending: the end of your
    /// quiet hours, or a retry.
    next_attempt_ms: Option<i64>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// Unix seconds.
    created_at: i64,
}

/// How many messages.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessagesQuery {
    /// How many, newest first (1–200, default 50).
    limit: Option<i64>,
}

/// Your e-mail and SMS messages, newest first, with where each is: waiting (quiet
/// hours, a retry), sent, or dead with the reason.
#[utoipa::path(get, path = "/notifications/messages", tag = "notifications", security(("bearer" = [])),
    params(MessagesQuery),
    responses(
        (status = 200, description = "Your messages", body = [MessageView]),
    ))]
pub(crate) async fn messages(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<Vec<MessageView>>, Problem> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::invalid("limit: must be between 1 and 200"));
    }
    let list = principal
        .tenant(&state.store)
        .outbound_messages(&principal.user_id, limit)
        .await?;
    Ok(Json(
        list.into_iter()
            .map(|m| MessageView {
                next_attempt_ms: (m.status == "pending").then_some(m.next_attempt_ms),
                id: m.id,
                channel: m.channel.as_str().to_owned(),
                recipient: m.recipient,
                subject: m.subject,
                status: m.status,
                attempts: m.attempts,
                last_error: m.last_error,
                created_at: m.created_at,
            })
            .collect(),
    ))
}
