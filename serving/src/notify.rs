//! Notifications: what the alert event log means for each user, and getting it to them.
//!
//! - **In-app inbox.** An alert given to an agent makes an entry in their inbox; an alert
//!   moved away from them makes one too. Changes the user made themselves make none.
//! - **E-mail** (SMTP, `[serve.notifications] smtp_url`): each entry as it comes
//!   (`immediate`, the default), or one digest a day at the user's chosen local hour
//!   listing what arrived since the last one (`digest`), or none (`off`).
//! - **SMS** through a Twilio-compatible HTTP API (`sms_api_url`), to the number the
//!   user gave, when they turned it on.
//! - **Quiet hours** in the user's time zone hold e-mail and SMS until they end; the
//!   inbox and the WebSocket push are not held.
//!
//! E-mail and SMS are [`Deliver`] implementations ([`SmtpDelivery`], [`SmsDelivery`]):
//! another channel is one more. Only alerts given to the user go out by e-mail and SMS;
//! a move away is in-app only.
//! Messages are queued in the store with a dedupe key (never queued twice), sent with
//! leases (never sent twice at once by two replicas), and retried with back-off;
//! a permanent refusal (SMTP 5xx, HTTP 4xx) ends them at once as dead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::store::{
    AlertEvent, AttemptOutcome, Channel, DueDigest, EmailMode, NewMessage, Notification,
    OutboundMessage, Planned, Preferences, Recipient, Store,
};
use crate::webhooks::{backoff_ms, jitter, send_due};

/// `[serve.notifications]`: the e-mail and SMS channels and their attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The SMTP server: `smtp://HOST:PORT` (plain), `smtp://HOST:587?tls=required`
    /// (STARTTLS), `smtps://USER:PASSWORD@HOST` (TLS); unset means no e-mail.
    pub smtp_url: Option<String>,
    /// The From of every e-mail, e.g. `ROI Alerts <alerts@example.com>`.
    pub email_from: String,
    /// Base URL of a Twilio-compatible SMS API (`https://api.twilio.com`); unset means
    /// no SMS.
    pub sms_api_url: Option<String>,
    /// The SMS account id (the API's basic-auth user).
    pub sms_account_sid: String,
    /// The SMS API's auth token (basic-auth password).
    pub sms_auth_token: Option<String>,
    /// The number SMS come from, E.164.
    pub sms_from: String,
    /// Attempts before a message is dead.
    pub max_attempts: u32,
    /// Wait before the second attempt, milliseconds; doubles each time, ±50 % jitter.
    pub backoff_base_ms: u64,
    /// Longest wait between attempts, milliseconds.
    pub backoff_max_ms: u64,
    /// Time a server has to take a message, seconds.
    pub timeout_secs: u64,
    /// Milliseconds between looks for due messages and digests when nothing new arrived.
    pub poll_ms: u64,
    /// Messages sent at once.
    pub concurrency: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_url: None,
            email_from: "ROI Alerts <alerts@roi.localhost>".to_owned(),
            sms_api_url: None,
            sms_account_sid: String::new(),
            sms_auth_token: None,
            sms_from: String::new(),
            max_attempts: 6,
            backoff_base_ms: 5_000,
            backoff_max_ms: 3_600_000,
            timeout_secs: 30,
            poll_ms: 1_000,
            concurrency: 8,
        }
    }
}

impl NotifyConfig {
    /// Whether e-mail can be sent.
    pub fn email_enabled(&self) -> bool {
        self.smtp_url.is_some()
    }

    /// Whether SMS can be sent.
    pub fn sms_enabled(&self) -> bool {
        self.sms_api_url.is_some()
    }

    /// Checks values; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let key = |k: &str, why: &str| Err(format!("notifications.{k}: {why}"));
        if let Some(url) = &self.smtp_url
            && let Err(e) = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        {
            return key(
                "smtp_url",
                &format!("{e} (e.g. smtp://127.0.0.1:25 or smtps://user:pass@mail.example.com)"),
            );
        }
        if self.email_from.parse::<Mailbox>().is_err() {
            return key(
                "email_from",
                &format!(
                    "{:?} is not an address (e.g. ROI Alerts <alerts@example.com>)",
                    self.email_from
                ),
            );
        }
        if let Some(url) = &self.sms_api_url {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return key("sms_api_url", &format!("{url:?} is not an http(s) URL"));
            }
            if self.sms_account_sid.is_empty() || self.sms_auth_token.is_none() {
                return key(
                    "sms_account_sid",
                    "the SMS API needs sms_account_sid and sms_auth_token",
                );
            }
            if check_phone(&self.sms_from).is_err() {
                return key("sms_from", "must be an E.164 number such as +15155550100");
            }
        }
        if !(1..=50).contains(&self.max_attempts) {
            return key("max_attempts", "must be between 1 and 50");
        }
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            return key(
                "backoff_base_ms",
                "must be at least 1 and at most backoff_max_ms",
            );
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return key("timeout_secs", "must be between 1 and 300");
        }
        if !(10..=60_000).contains(&self.poll_ms) {
            return key("poll_ms", "must be between 10 and 60000");
        }
        if !(1..=256).contains(&self.concurrency) {
            return key("concurrency", "must be between 1 and 256");
        }
        Ok(())
    }

    /// The configuration with the SMTP password and the SMS token hidden.
    pub fn masked(&self) -> NotifyConfig {
        NotifyConfig {
            smtp_url: self.smtp_url.as_deref().map(crate::store::mask_password),
            sms_auth_token: self.sms_auth_token.as_ref().map(|_| "****".to_owned()),
            ..self.clone()
        }
    }
}

/// An E.164 number: `+`, then 8 to 15 digits, the first not 0.
pub fn check_phone(phone: &str) -> Result<(), String> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
    {
        Ok(())
    } else {
        Err(format!(
            "{phone:?} is not an E.164 number (+ and country code, e.g. +15155550100)"
        ))
    }
}

/// `HH:MM` as minutes after midnight.
pub fn parse_clock(text: &str) -> Result<u32, String> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map(|t| t.hour() * 60 + t.minute())
        .map_err(|_| format!("{text:?} is not a time of day HH:MM (e.g. 21:30)"))
}

/// Minutes after midnight as `HH:MM`.
pub fn format_clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The zone of `name`, falling back to UTC for a name the zone database lost.
fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

/// The instant `minutes` after local midnight of `date` in `tz`; in a gap (clocks moved
/// forward) the first instant after it, in an overlap the first of the two.
fn local_instant(tz: Tz, date: chrono::NaiveDate, minutes: u32) -> i64 {
    let mut wall = date
        .and_hms_opt(minutes / 60, minutes % 60, 0)
        .unwrap_or_default();
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&wall).earliest() {
            return t.timestamp();
        }
        wall += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&wall).timestamp()
}

/// When `now`'s quiet hours end (Unix seconds), or None when `now` is not in them.
pub fn quiet_until(now: i64, p: &Preferences) -> Option<i64> {
    let (start, end) = p.quiet_hours?;
    if start == end {
        return None;
    }
    let tz = zone(&p.timezone);
    let local = DateTime::from_timestamp(now, 0)?.with_timezone(&tz);
    let minute = local.hour() * 60 + local.minute();
    let quiet = if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    };
    if !quiet {
        return None;
    }
    let today = local.date_naive();
    let end_today = local_instant(tz, today, end);
    if end_today > now {
        Some(end_today)
    } else {
        today
            .succ_opt()
            .map(|tomorrow| local_instant(tz, tomorrow, end))
    }
}

/// The next digest time after `now`: `digest_hour`:00 local, Unix seconds.
pub fn next_digest_at(now: i64, p: &Preferences) -> i64 {
    let tz = zone(&p.timezone);
    let minutes = p.digest_hour.min(23) * 60;
    let Some(local) = DateTime::from_timestamp(now, 0).map(|t| t.with_timezone(&tz)) else {
        return now + 86_400;
    };
    let mut date = local.date_naive();
    for _ in 0..3 {
        let at = local_instant(tz, date, minutes);
        if at > now {
            return at;
        }
        date = date.succ_opt().unwrap_or(date);
    }
    now + 86_400
}

/// What planning needs besides the event: where links point and which channels exist.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The URL users reach the server at (no trailing slash).
    pub link_base: String,
    /// Whether e-mail can be sent.
    pub email: bool,
    /// Whether SMS can be sent.
    pub sms: bool,
    /// Unix milliseconds.
    pub now_ms: i64,
}

/// The alert as an event carries it, as much as the messages say.
struct AlertFacts {
    kind: String,
    contact: String,
    score: f64,
    reasons: Vec<String>,
    zip: Option<String>,
    actor: Option<String>,
}

fn facts(event: &AlertEvent) -> AlertFacts {
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
    let alert = &data["alert"];
    AlertFacts {
        kind: alert["kind"].as_str().unwrap_or("alert").to_owned(),
        contact: match &alert["contact_id"] {
            serde_json::Value::Null => "?".to_owned(),
            v => v.to_string().trim_matches('"').to_owned(),
        },
        score: alert["score"].as_f64().unwrap_or(0.0),
        reasons: alert["reasons"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        zip: alert["zip"].as_str().map(str::to_owned),
        actor: data["change"]["actor_id"].as_str().map(str::to_owned),
    }
}

/// Escapes text for HTML.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a notification says, for its e-mail and SMS.
pub struct Notice<'a> {
    /// One line (the e-mail's subject).
    pub title: &'a str,
    /// Lines of detail.
    pub lines: &'a [String],
    /// Where to act.
    pub link: &'a str,
    /// The link's words in HTML mail.
    pub link_label: &'a str,
    /// Why the user is told ("the alert was given to you").
    pub why: &'a str,
    /// Makes each message once: with the user and channel, its dedupe key.
    pub key: &'a str,
}

/// The e-mail and SMS a notification makes for `r`, as their preferences and quiet
/// hours say (a digest user gets nothing now: the digest lists the inbox entry).
pub fn messages_for(r: &Recipient, m: &Notice<'_>, ctx: &PlanContext) -> Vec<NewMessage> {
    let p = &r.preferences;
    let due_ms = quiet_until(ctx.now_ms / 1000, p).map_or(ctx.now_ms, |t| t * 1000);
    let mut messages = Vec::new();
    if ctx.email && p.email == EmailMode::Immediate {
        let settings = format!("{}/notifications/preferences", ctx.link_base);
        let text = format!(
            "Hello {},\n\n{}\n\n{}\n\nOpen it: {}\n\n\
             You get this because {}. Change how you are told at {settings}\n",
            r.name,
            m.title,
            m.lines.join("\n"),
            m.link,
            m.why
        );
        let items: String = m
            .lines
            .iter()
            .map(|x| format!("<li>{}</li>", html_escape(x)))
            .collect();
        let html = format!(
            "<!doctype html><html><body><p>Hello {},</p><h2>{}</h2><ul>{items}</ul>\
             <p><a href=\"{}\">{}</a></p><p style=\"color:#666\">You get this \
             because {}. <a href=\"{}\">Notification settings</a></p>\
             </body></html>",
            html_escape(&r.name),
            html_escape(m.title),
            html_escape(m.link),
            html_escape(m.link_label),
            html_escape(m.why),
            html_escape(&settings)
        );
        messages.push(NewMessage {
            channel: Channel::Email,
            dedupe_key: format!("email:{}:{}", r.user_id, m.key),
            recipient: r.email.clone(),
            subject: m.title.to_owned(),
            text,
            html: Some(html),
            due_ms,
        });
    }
    if ctx.sms
        && p.sms
        && let Some(phone) = &p.phone
    {
        messages.push(NewMessage {
            channel: Channel::Sms,
            dedupe_key: format!("sms:{}:{}", r.user_id, m.key),
            recipient: phone.clone(),
            subject: String::new(),
            text: format!("ROI: {}. {}", m.title, m.link),
            html: None,
            due_ms,
        });
    }
    messages
}

/// What `event` makes for the users it concerns.
pub fn plan(
    event: &AlertEvent,
    people: &HashMap<String, Recipient>,
    ctx: &PlanContext,
) -> Vec<Planned> {
    let given = matches!(event.event.as_str(), "alert.new" | "alert.assigned");
    if !given {
        return Vec::new();
    }
    let f = facts(event);
    let mut out = Vec::new();
    let link = format!("{}/alerts/{}", ctx.link_base, event.alert_id);
    let to = event
        .assignee_id
        .as_ref()
        .filter(|a| event.previous_assignee_id.as_ref() != Some(*a))
        .filter(|a| f.actor.as_ref() != Some(*a));
    if let Some(r) = to.and_then(|a| people.get(a)) {
        let title = format!(
            "New {} alert: contact {} (score {:.2})",
            f.kind, f.contact, f.score
        );
        let mut lines = f.reasons.clone();
        if let Some(zip) = &f.zip {
            lines.push(format!("ZIP {zip}"));
        }
        let body = lines.join("\n");
        let messages = messages_for(
            r,
            &Notice {
                title: &title,
                lines: &lines,
                link: &link,
                link_label: "Open the alert",
                why: "the alert was given to you",
                key: &event.id.to_string(),
            },
            ctx,
        );
        out.push(Planned {
            user_id: r.user_id.clone(),
            kind: "alert.assigned".to_owned(),
            alert_id: Some(event.alert_id.clone()),
            title,
            body,
            messages,
        });
    }
    let from = event
        .previous_assignee_id
        .as_ref()
        .filter(|p| event.assignee_id.as_ref() != Some(*p))
        .filter(|p| f.actor.as_ref() != Some(*p));
    if let Some(r) = from.and_then(|p| people.get(p)) {
        out.push(Planned {
            user_id: r.user_id.clone(),
            kind: "alert.reassigned".to_owned(),
            alert_id: Some(event.alert_id.clone()),
            title: format!(
                "The {} alert for contact {} went to another agent",
                f.kind, f.contact
            ),
            body: String::new(),
            messages: Vec::new(),
        });
    }
    out
}

/// The digest e-mail listing `entries`, or None when there are none.
pub fn digest_message(
    due: &DueDigest,
    entries: &[Notification],
    link_base: &str,
    now_ms: i64,
) -> Option<NewMessage> {
    if entries.is_empty() {
        return None;
    }
    let r = &due.recipient;
    let subject = match entries.len() {
        1 => "Your ROI digest: 1 new alert".to_owned(),
        n => format!("Your ROI digest: {n} new alerts"),
    };
    let mut text = format!("Hello {},\n\nSince your last digest:\n\n", r.name);
    let mut items = String::new();
    for e in entries {
        let link = e
            .alert_id
            .as_ref()
            .map(|a| format!("{link_base}/alerts/{a}"))
            .unwrap_or_else(|| format!("{link_base}/notifications"));
        text.push_str(&format!("- {}\n  {link}\n", e.title));
        items.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>",
            html_escape(&link),
            html_escape(&e.title)
        ));
    }
    let settings = format!("{link_base}/notifications/preferences");
    text.push_str(&format!(
        "\nYou get one digest a day at {}:00 ({}). Change it at {settings}\n",
        r.preferences.digest_hour, r.preferences.timezone
    ));
    let html = format!(
        "<!doctype html><html><body><p>Hello {},</p><p>Since your last digest:</p>\
         <ul>{items}</ul><p style=\"color:#666\"><a href=\"{}\">Notification settings</a></p>\
         </body></html>",
        html_escape(&r.name),
        html_escape(&settings)
    );
    Some(NewMessage {
        channel: Channel::Email,
        dedupe_key: format!("digest:{}:{}", r.user_id, due.due_at),
        recipient: r.email.clone(),
        subject,
        text,
        html: Some(html),
        due_ms: now_ms,
    })
}

/// Queues the digests due by `now` (Unix seconds): each lists the user's entries since
/// their previous digest, goes out at once, and sets the next one. A user with nothing
/// new gets no mail, and their next digest is set all the same. Returns how many were
/// queued.
pub async fn queue_digests(
    store: &Store,
    now: i64,
    link_base: &str,
) -> Result<usize, crate::store::StoreError> {
    let mut queued = 0;
    loop {
        let due = store.due_digests(now, 100).await?;
        let full = due.len() == 100;
        for d in due {
            let entries = store
                .notifications_between(&d.recipient.user_id, d.since, now, 200)
                .await?;
            let message = digest_message(&d, &entries, link_base, crate::unix_now_ms());
            let next = next_digest_at(now, &d.recipient.preferences);
            if store.finish_digest(&d, next, now, message.as_ref()).await? && message.is_some() {
                queued += 1;
            }
        }
        if !full {
            return Ok(queued);
        }
    }
}

/// How one send ended: sent, or why not and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The channel took the message.
    Ok,
    /// It failed in a way a later attempt may not (a timeout, a 5xx, a 4xx greylist).
    Transient(String),
    /// It was refused for good (a bad address, a 5xx SMTP reply, a 4xx from the API).
    Permanent(String),
}

/// A way of getting a queued message to its person: one per [`Channel`].
pub trait Deliver: Send + Sync {
    /// The channel it serves.
    fn channel(&self) -> Channel;
    /// Sends one message.
    fn send<'a>(&'a self, m: &'a OutboundMessage) -> futures_util::future::BoxFuture<'a, Sent>;
}

/// E-mail over SMTP (lettre, pooled connections).
pub struct SmtpDelivery {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpDelivery {
    /// A sender for `config.smtp_url`; None when no SMTP server is configured.
    pub fn new(config: &NotifyConfig) -> Result<Option<SmtpDelivery>, String> {
        let Some(url) = &config.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("notifications.smtp_url: {e}"))?
            .timeout(Some(Duration::from_secs(config.timeout_secs)))
            .build();
        let from = config
            .email_from
            .parse()
            .map_err(|e| format!("notifications.email_from: {e}"))?;
        Ok(Some(SmtpDelivery { transport, from }))
    }

    async fn deliver(&self, m: &OutboundMessage) -> Sent {
        let to = match m.recipient.parse::<lettre::Address>() {
            Ok(a) => Mailbox::new(None, a),
            Err(e) => return Sent::Permanent(format!("{:?} is not an address: {e}", m.recipient)),
        };
        let built = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&m.subject)
            .message_id(Some(format!("<{}@{}>", m.id, self.from.email.domain())));
        let message = match &m.html {
            Some(html) => built.multipart(MultiPart::alternative_plain_html(
                m.text.clone(),
                html.clone(),
            )),
            None => built.body(m.text.clone()),
        };
        let message = match message {
            Ok(msg) => msg,
            Err(e) => return Sent::Permanent(format!("cannot build the message: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Sent::Ok,
            Err(e) if e.is_permanent() => Sent::Permanent(format!("the SMTP server refused: {e}")),
            Err(e) => Sent::Transient(format!("SMTP: {e}")),
        }
    }
}

impl Deliver for SmtpDelivery {
    fn channel(&self) -> Channel {
        Channel::Email
    }
    fn send<'a>(&'a self, m: &'a OutboundMessage) -> futures_util::future::BoxFuture<'a, Sent> {
        Box::pin(self.deliver(m))
    }
}

/// SMS through a Twilio-compatible API: `POST {base}/2010-04-01/Accounts/{sid}/
/// Messages.json`, form fields `To`, `From`, `Body`, HTTP basic auth with the account id
/// and token.
pub struct SmsDelivery {
    http: reqwest::Client,
    url: String,
    account: String,
    token: Option<String>,
    from: String,
    timeout_secs: u64,
}

impl SmsDelivery {
    /// A sender for `config.sms_api_url`; None when no SMS API is configured.
    pub fn new(config: &NotifyConfig) -> Result<Option<SmsDelivery>, String> {
        let Some(base) = &config.sms_api_url else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("roi-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the SMS HTTP client: {e}"))?;
        Ok(Some(SmsDelivery {
            http,
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                base.trim_end_matches('/'),
                config.sms_account_sid
            ),
            account: config.sms_account_sid.clone(),
            token: config.sms_auth_token.clone(),
            from: config.sms_from.clone(),
            timeout_secs: config.timeout_secs,
        }))
    }

    async fn deliver(&self, m: &OutboundMessage) -> Sent {
        let sent = self
            .http
            .post(&self.url)
            .basic_auth(&self.account, self.token.as_ref())
            .form(&[
                ("To", m.recipient.as_str()),
                ("From", self.from.as_str()),
                ("Body", m.text.as_str()),
            ])
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Sent::Ok,
            Ok(r) => {
                let status = r.status();
                let body: String = r
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                let why = format!("the SMS API answered {status}: {body}");
                if status.is_client_error() && status != 408 && status != 429 {
                    Sent::Permanent(why)
                } else {
                    Sent::Transient(why)
                }
            }
            Err(e) if e.is_timeout() => {
                Sent::Transient(format!("no answer within {} s", self.timeout_secs))
            }
            Err(e) => Sent::Transient(format!("SMS request failed: {e}")),
        }
    }
}

impl Deliver for SmsDelivery {
    fn channel(&self) -> Channel {
        Channel::Sms
    }
    fn send<'a>(&'a self, m: &'a OutboundMessage) -> futures_util::future::BoxFuture<'a, Sent> {
        Box::pin(self.deliver(m))
    }
}

/// The configured channels.
struct Senders(Vec<Box<dyn Deliver>>);

impl Senders {
    fn has(&self, channel: Channel) -> bool {
        self.0.iter().any(|d| d.channel() == channel)
    }
}

async fn attempt(s: &Senders, store: &Store, config: &NotifyConfig, m: OutboundMessage) {
    let sent = match s.0.iter().find(|d| d.channel() == m.channel) {
        Some(d) => d.send(&m).await,
        None => Sent::Permanent(format!(
            "{} is not configured on this server",
            m.channel.as_str()
        )),
    };
    let attempts = u32::try_from(m.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let outcome = match sent {
        Sent::Ok => AttemptOutcome::Delivered(0),
        Sent::Permanent(error) => AttemptOutcome::Failed {
            status: None,
            error,
            retry_at_ms: None,
        },
        Sent::Transient(error) => AttemptOutcome::Failed {
            status: None,
            error,
            retry_at_ms: (attempts < config.max_attempts).then(|| {
                crate::unix_now_ms()
                    + backoff_ms(
                        attempts,
                        config.backoff_base_ms,
                        config.backoff_max_ms,
                        jitter(),
                    ) as i64
            }),
        },
    };
    if let AttemptOutcome::Failed {
        retry_at_ms: None,
        error,
        ..
    } = &outcome
    {
        tracing::warn!(message = %m.id, channel = m.channel.as_str(), error, "message is dead after {attempts} attempts");
    }
    if let Err(e) = store
        .finish_message(&m.id, &outcome, crate::unix_now())
        .await
    {
        tracing::error!(error = %e, "recording a message attempt");
    }
}

/// One round: inbox entries and messages from the log, due digests, due messages.
async fn round(store: &Store, config: &NotifyConfig, link_base: &str, senders: &Senders) {
    loop {
        let ctx = PlanContext {
            link_base: link_base.to_owned(),
            email: senders.has(Channel::Email),
            sms: senders.has(Channel::Sms),
            now_ms: crate::unix_now_ms(),
        };
        let planner = |e: &AlertEvent, people: &HashMap<String, Recipient>| plan(e, people, &ctx);
        match store
            .notify_from_log(500, ctx.now_ms / 1000, &planner)
            .await
        {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "making notifications");
                break;
            }
        }
    }
    if senders.has(Channel::Email)
        && let Err(e) = queue_digests(store, crate::unix_now(), link_base).await
    {
        tracing::error!(error = %e, "queueing digests");
    }
    let lease_ms = (config.timeout_secs as i64 + 5) * 1000;
    send_due(
        "messages",
        config.concurrency,
        lease_ms,
        |now, until, limit| store.take_due_messages(now, until, limit),
        |m| attempt(senders, store, config, m),
    )
    .await;
}

/// Makes notifications from the event log and sends the due messages, when `wake` is
/// notified (events were appended) and every `poll_ms`. `link_base` is the URL users
/// reach the server at. Runs until the task is dropped.
pub async fn run(store: Store, config: NotifyConfig, link_base: String, wake: Arc<Notify>) {
    let mut channels: Vec<Box<dyn Deliver>> = Vec::new();
    match SmtpDelivery::new(&config) {
        Ok(Some(smtp)) => channels.push(Box::new(smtp)),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "e-mail is not sent"),
    }
    match SmsDelivery::new(&config) {
        Ok(Some(sms)) => channels.push(Box::new(sms)),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "SMS are not sent"),
    }
    let senders = Senders(channels);
    loop {
        round(&store, &config, &link_base, &senders).await;
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(config.poll_ms)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(tz: &str, quiet: Option<(u32, u32)>) -> Preferences {
        Preferences {
            timezone: tz.to_owned(),
            quiet_hours: quiet,
            ..Preferences::default()
        }
    }

    fn at(tz: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        let tz: Tz = tz.parse().expect("zone");
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .expect("local time")
            .timestamp()
    }

    #[test]
    fn quiet_hours_over_midnight_end_the_next_morning_local() {
        let p = prefs("America/Chicago", Some((21 * 60, 7 * 60)));
        let tz = "America/Chicago";
        assert_eq!(
            quiet_until(at(tz, 2026, 6, 1, 22, 15), &p),
            Some(at(tz, 2026, 6, 2, 7, 0))
        );
        assert_eq!(
            quiet_until(at(tz, 2026, 6, 2, 3, 0), &p),
            Some(at(tz, 2026, 6, 2, 7, 0))
        );
        assert_eq!(quiet_until(at(tz, 2026, 6, 2, 7, 0), &p), None);
        assert_eq!(quiet_until(at(tz, 2026, 6, 2, 12, 0), &p), None);
        assert_eq!(quiet_until(at(tz, 2026, 6, 2, 20, 59), &p), None);
    }

    #[test]
    fn quiet_hours_within_a_day_and_across_a_clock_change() {
        let p = prefs("Europe/Berlin", Some((12 * 60, 14 * 60)));
        let tz = "Europe/Berlin";
        assert_eq!(
            quiet_until(at(tz, 2026, 1, 5, 13, 0), &p),
            Some(at(tz, 2026, 1, 5, 14, 0))
        );
        assert_eq!(quiet_until(at(tz, 2026, 1, 5, 11, 59), &p), None);
        // Clocks go forward at 02:00 on 29 March 2026 in Berlin: a night from 01:00 to
        // 03:00 local is one hour long, and ends at 03:00 CEST.
        let night = prefs(tz, Some((60, 180)));
        let start = at(tz, 2026, 3, 29, 1, 30);
        let end = quiet_until(start, &night).expect("quiet");
        assert_eq!(end, at(tz, 2026, 3, 29, 3, 0));
        assert_eq!(end - start, 30 * 60);
        // Equal start and end means no quiet hours.
        assert_eq!(quiet_until(start, &prefs(tz, Some((60, 60)))), None);
    }

    #[test]
    fn digests_fall_at_the_local_hour_next_after_now() {
        let p = Preferences {
            digest_hour: 7,
            ..prefs("America/New_York", None)
        };
        let tz = "America/New_York";
        assert_eq!(
            next_digest_at(at(tz, 2026, 11, 30, 6, 0), &p),
            at(tz, 2026, 11, 30, 7, 0)
        );
        assert_eq!(
            next_digest_at(at(tz, 2026, 11, 30, 7, 0), &p),
            at(tz, 2026, 12, 1, 7, 0)
        );
        // Across the end of daylight saving time (1 November 2026): 25 hours apart.
        let before = next_digest_at(at(tz, 2026, 10, 31, 8, 0), &p);
        assert_eq!(before, at(tz, 2026, 11, 1, 7, 0));
        assert_eq!(before - at(tz, 2026, 10, 31, 7, 0), 25 * 3600);
    }

    #[test]
    fn bad_channel_settings_are_named() {
        NotifyConfig::default().validate().expect("defaults");
        let sms = || NotifyConfig {
            sms_api_url: Some("https://sms.example.com".into()),
            sms_account_sid: "AC1".into(),
            sms_auth_token: Some("token".into()),
            sms_from: "+15155550100".into(),
            ..NotifyConfig::default()
        };
        sms().validate().expect("a complete SMS setup");
        for (bad, key) in [
            (
                NotifyConfig {
                    smtp_url: Some("ftp://mail.example.com".into()),
                    ..NotifyConfig::default()
                },
                "smtp_url",
            ),
            (
                NotifyConfig {
                    email_from: "not an address".into(),
                    ..NotifyConfig::default()
                },
                "email_from",
            ),
            (
                NotifyConfig {
                    sms_auth_token: None,
                    ..sms()
                },
                "sms_account_sid",
            ),
            (
                NotifyConfig {
                    sms_from: "5550100".into(),
                    ..sms()
                },
                "sms_from",
            ),
            (
                NotifyConfig {
                    sms_api_url: Some("sms.example.com".into()),
                    ..sms()
                },
                "sms_api_url",
            ),
            (
                NotifyConfig {
                    max_attempts: 0,
                    ..NotifyConfig::default()
                },
                "max_attempts",
            ),
        ] {
            let e = bad.validate().expect_err(key);
            assert!(e.contains(&format!("notifications.{key}")), "{e}");
        }
        let masked = NotifyConfig {
            smtp_url: Some("smtps://mailer:secret@mail.example.com".into()),
            ..sms()
        }
        .masked();
        assert!(
            !format!("{masked:?}").contains("secret")
                && !format!("{masked:?}").contains("\"token\"")
        );
    }

    #[test]
    fn phones_and_clocks_are_checked() {
        assert!(check_phone("+15155550100").is_ok());
        for bad in ["15155550100", "+0155550100", "+1515", "+1515555010x", ""] {
            assert!(check_phone(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_clock("21:30"), Ok(21 * 60 + 30));
        assert_eq!(format_clock(7 * 60 + 5), "07:05");
        assert!(parse_clock("25:00").is_err());
        assert!(parse_clock("9pm").is_err());
    }

    fn event(name: &str, to: Option<&str>, from: Option<&str>, actor: Option<&str>) -> AlertEvent {
        AlertEvent {
            id: 42,
            org_id: "org_1".into(),
            event: name.into(),
            alert_id: "al-1".into(),
            assignee_id: to.map(str::to_owned),
            previous_assignee_id: from.map(str::to_owned),
            at: 1_800_000_000,
            data: serde_json::json!({
                "alert": {"kind": "refinance", "contact_id": 17, "score": 0.8125,
                          "reasons": ["rate spread 1.4 points", "<b>loan</b> age 6 years"],
                          "zip": "50010"},
                "change": {"actor_id": actor},
            })
            .to_string(),
        }
    }

    fn person(id: &str, p: Preferences) -> (String, Recipient) {
        (
            id.to_owned(),
            Recipient {
                user_id: id.to_owned(),
                email: format!("{id}@acme.test"),
                name: id.to_uppercase(),
                preferences: p,
            },
        )
    }

    #[test]
    fn an_assignment_notifies_the_new_owner_on_their_channels_and_the_old_one_in_app() {
        let ann = Preferences {
            sms: true,
            phone: Some("+15155550100".into()),
            ..Preferences::default()
        };
        let people = HashMap::from([person("ann", ann), person("bob", Preferences::default())]);
        let ctx = PlanContext {
            link_base: "https://roi.example".into(),
            email: true,
            sms: true,
            now_ms: 1_800_000_000_000,
        };
        let made = plan(
            &event("alert.assigned", Some("ann"), Some("bob"), Some("usr_mgr")),
            &people,
            &ctx,
        );
        assert_eq!(made.len(), 2);
        let to_ann = &made[0];
        assert_eq!(to_ann.user_id, "ann");
        assert_eq!(to_ann.title, "New refinance alert: contact 17 (score 0.81)");
        assert!(to_ann.body.contains("rate spread 1.4 points") && to_ann.body.contains("50010"));
        let channels: Vec<Channel> = to_ann.messages.iter().map(|m| m.channel).collect();
        assert_eq!(channels, [Channel::Email, Channel::Sms]);
        let mail = &to_ann.messages[0];
        assert_eq!(mail.recipient, "ann@acme.test");
        assert!(mail.text.contains("https://roi.example/alerts/al-1"));
        let html = mail.html.as_deref().expect("html");
        assert!(html.contains("&lt;b&gt;loan&lt;/b&gt;") && !html.contains("<b>loan"));
        assert_eq!(mail.due_ms, ctx.now_ms);
        assert_eq!(to_ann.messages[1].recipient, "+15155550100");
        assert_eq!(made[1].user_id, "bob");
        assert_eq!(made[1].kind, "alert.reassigned");
        assert!(made[1].messages.is_empty(), "a move away is in-app only");

        // Taking it oneself tells nobody; other events tell nobody; without SMTP no mail.
        assert!(
            plan(
                &event("alert.assigned", Some("ann"), None, Some("ann")),
                &people,
                &ctx
            )
            .is_empty()
        );
        assert!(
            plan(
                &event("alert.updated", Some("ann"), None, None),
                &people,
                &ctx
            )
            .is_empty()
        );
        let no_mail = PlanContext {
            email: false,
            sms: false,
            ..ctx
        };
        let made = plan(
            &event("alert.new", Some("ann"), None, None),
            &people,
            &no_mail,
        );
        assert_eq!(made.len(), 1);
        assert!(made[0].messages.is_empty());
    }

    #[test]
    fn quiet_hours_hold_messages_and_digests_and_off_send_no_mail() {
        let tz = "UTC";
        let now = at(tz, 2026, 6, 1, 23, 0);
        let quiet = Preferences {
            sms: true,
            phone: Some("+15155550100".into()),
            ..prefs(tz, Some((22 * 60, 6 * 60)))
        };
        let digest = Preferences {
            email: EmailMode::Digest,
            ..Preferences::default()
        };
        let off = Preferences {
            email: EmailMode::Off,
            ..Preferences::default()
        };
        let people = HashMap::from([
            person("ann", quiet),
            person("cy", digest),
            person("di", off),
        ]);
        let ctx = PlanContext {
            link_base: "http://x".into(),
            email: true,
            sms: true,
            now_ms: now * 1000,
        };
        let held = plan(&event("alert.new", Some("ann"), None, None), &people, &ctx);
        let morning = at(tz, 2026, 6, 2, 6, 0) * 1000;
        assert!(held[0].messages.iter().all(|m| m.due_ms == morning));
        for who in ["cy", "di"] {
            let made = plan(&event("alert.new", Some(who), None, None), &people, &ctx);
            assert_eq!(made.len(), 1, "{who} still gets the inbox entry");
            assert!(made[0].messages.is_empty(), "{who}: no immediate mail");
        }
    }
}
