//! Notifications in the store: each user's inbox, their channel preferences, and the
//! e-mail and SMS messages waiting to be sent.
//!
//! Inbox entries and messages are made from the alert event log by one consumer with a
//! cursor (`event_cursors`, `notifications`), as webhook deliveries are: a batch moves
//! the cursor and writes its entries and messages in one transaction, so no event is
//! notified twice or skipped, whichever replica takes it. What an event makes is decided
//! by [`crate::notify::plan`]; the store only keeps it. Sending leases each due message
//! first, so two replicas never send the same attempt, and every message has a unique
//! dedupe key, so nothing is queued twice.

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::events::{self, AlertEvent};
use super::{AttemptOutcome, Result, Store, StoreError, Tenant, failed, get};

/// One inbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Server-made id (`ntf_…`, sortable by creation).
    pub id: String,
    /// Whose inbox.
    pub user_id: String,
    /// The alert event it came from.
    pub event_id: i64,
    /// `alert.assigned` (given to the user) or `alert.reassigned` (moved away).
    pub kind: String,
    /// The alert.
    pub alert_id: Option<String>,
    /// One line.
    pub title: String,
    /// A few lines: the alert's reasons.
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the user marked it read.
    pub read_at: Option<i64>,
}

/// How a user wants e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailMode {
    /// One message per notification.
    Immediate,
    /// One message a day listing the day's notifications.
    Digest,
    /// None.
    Off,
}

impl EmailMode {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailMode::Immediate => "immediate",
            EmailMode::Digest => "digest",
            EmailMode::Off => "off",
        }
    }
}

impl std::str::FromStr for EmailMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "immediate" => Ok(EmailMode::Immediate),
            "digest" => Ok(EmailMode::Digest),
            "off" => Ok(EmailMode::Off),
            other => Err(format!(
                "{other:?} is not an e-mail mode; choose immediate, digest or off"
            )),
        }
    }
}

/// A user's channels and quiet hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// E-mail: each notification, a daily digest, or none.
    pub email: EmailMode,
    /// Whether notifications also go by SMS (to `phone`).
    pub sms: bool,
    /// E.164 number for SMS.
    pub phone: Option<String>,
    /// Start and end of the quiet hours, minutes after local midnight (the end may be
    /// before the start: the quiet hours then run over midnight).
    pub quiet_hours: Option<(u32, u32)>,
    /// IANA time zone of the quiet hours and the digest hour.
    pub timezone: String,
    /// Local hour (0–23) the digest goes out.
    pub digest_hour: u32,
    /// When they were last changed (None: never set, these are the defaults).
    pub updated_at: Option<i64>,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            email: EmailMode::Immediate,
            sms: false,
            phone: None,
            quiet_hours: None,
            timezone: "UTC".to_owned(),
            digest_hour: 7,
            updated_at: None,
        }
    }
}

/// A channel a message goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// SMTP.
    Email,
    /// An SMS provider's HTTP API.
    Sms,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl std::str::FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "email" => Ok(Channel::Email),
            "sms" => Ok(Channel::Sms),
            other => Err(format!("channel {other:?}")),
        }
    }
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// How it goes.
    pub channel: Channel,
    /// Queued at most once per key.
    pub dedupe_key: String,
    /// An e-mail address or an E.164 number.
    pub recipient: String,
    /// E-mail subject (empty for SMS).
    pub subject: String,
    /// The plain text (the whole SMS).
    pub text: String,
    /// The HTML part of an e-mail.
    pub html: Option<String>,
    /// Not sent before this (Unix milliseconds): the end of quiet hours, or now.
    pub due_ms: i64,
}

/// What one event makes for one user: an inbox entry and the messages about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Whose.
    pub user_id: String,
    /// The entry's kind.
    pub kind: String,
    /// The alert.
    pub alert_id: Option<String>,
    /// One line.
    pub title: String,
    /// A few lines.
    pub body: String,
    /// E-mail and SMS to send.
    pub messages: Vec<NewMessage>,
}

/// A user an event concerns, with what planning needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// User id.
    pub user_id: String,
    /// Login e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Their channels.
    pub preferences: Preferences,
}

/// A message in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// Server-made id (`msg_…`).
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// To whom.
    pub user_id: String,
    /// How.
    pub channel: Channel,
    /// Address or number.
    pub recipient: String,
    /// E-mail subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML part.
    pub html: Option<String>,
    /// `pending`, `sent` or `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Due at (Unix milliseconds), while pending.
    pub next_attempt_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A user whose digest is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDigest {
    /// The organization.
    pub org_id: String,
    /// The user, with their preferences.
    pub recipient: Recipient,
    /// The digest lists what arrived since this (Unix seconds).
    pub since: i64,
    /// When it was due (Unix seconds): claiming it checks this did not change.
    pub due_at: i64,
}

const NOTIFICATION_COLUMNS: &str =
    "id, user_id, event_id, kind, alert_id, title, body, created_at, read_at";
const PREFERENCE_COLUMNS: &str =
    "email, sms, phone, quiet_start, quiet_end, timezone, digest_hour, updated_at";
const MESSAGE_COLUMNS: &str = "id, org_id, user_id, channel, recipient, subject, body_text, \
     body_html, status, attempts, next_attempt_ms, last_error, created_at";

fn notification_from(r: &AnyRow) -> Result<Notification> {
    Ok(Notification {
        id: get(r, "id")?,
        user_id: get(r, "user_id")?,
        event_id: get(r, "event_id")?,
        kind: get(r, "kind")?,
        alert_id: get(r, "alert_id")?,
        title: get(r, "title")?,
        body: get(r, "body")?,
        created_at: get(r, "created_at")?,
        read_at: get(r, "read_at")?,
    })
}

fn preferences_from(r: &AnyRow) -> Result<Preferences> {
    let email: String = get(r, "email")?;
    let start: Option<i64> = get(r, "quiet_start")?;
    let end: Option<i64> = get(r, "quiet_end")?;
    let minutes = |m: i64| {
        u32::try_from(m)
            .ok()
            .filter(|m| *m < 1440)
            .ok_or_else(|| StoreError::Corrupt(format!("quiet hours minute {m}")))
    };
    let quiet_hours = match (start, end) {
        (Some(s), Some(e)) => Some((minutes(s)?, minutes(e)?)),
        _ => None,
    };
    let hour: i64 = get(r, "digest_hour")?;
    Ok(Preferences {
        email: email.parse().map_err(StoreError::Corrupt)?,
        sms: get::<i64>(r, "sms")? != 0,
        phone: get(r, "phone")?,
        quiet_hours,
        timezone: get(r, "timezone")?,
        digest_hour: u32::try_from(hour)
            .map_err(|_| StoreError::Corrupt(format!("digest hour {hour}")))?,
        updated_at: Some(get(r, "updated_at")?),
    })
}

fn message_from(r: &AnyRow) -> Result<OutboundMessage> {
    let channel: String = get(r, "channel")?;
    Ok(OutboundMessage {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        user_id: get(r, "user_id")?,
        channel: channel.parse().map_err(StoreError::Corrupt)?,
        recipient: get(r, "recipient")?,
        subject: get(r, "subject")?,
        text: get(r, "body_text")?,
        html: get(r, "body_html")?,
        status: get(r, "status")?,
        attempts: get(r, "attempts")?,
        next_attempt_ms: get(r, "next_attempt_ms")?,
        last_error: get(r, "last_error")?,
        created_at: get(r, "created_at")?,
    })
}

/// Reads a user and their preferences (defaults when they never set any).
async fn recipient(conn: &mut sqlx::AnyConnection, user_id: &str) -> Result<Option<Recipient>> {
    let Some(user) = sqlx::query("SELECT id, email, name FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed("reading a user to notify"))?
    else {
        return Ok(None);
    };
    let prefs = sqlx::query(&format!(
        "SELECT {PREFERENCE_COLUMNS} FROM notification_preferences WHERE user_id = $1"
    ))
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed("reading notification preferences"))?;
    Ok(Some(Recipient {
        user_id: get(&user, "id")?,
        email: get(&user, "email")?,
        name: get(&user, "name")?,
        preferences: prefs
            .map(|p| preferences_from(&p))
            .transpose()?
            .unwrap_or_default(),
    }))
}

async fn insert_message(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    user_id: &str,
    m: &NewMessage,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbound_messages (id, org_id, user_id, channel, dedupe_key, recipient,
         subject, body_text, body_html, status, attempts, next_attempt_ms, last_error,
         created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, NULL, $11, $11)
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(crate::auth::secret::new_sortable_id("msg"))
    .bind(org_id)
    .bind(user_id)
    .bind(m.channel.as_str())
    .bind(&m.dedupe_key)
    .bind(&m.recipient)
    .bind(&m.subject)
    .bind(&m.text)
    .bind(m.html.as_deref())
    .bind(m.due_ms)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(failed("queueing a message"))?;
    Ok(())
}

impl Tenant<'_> {
    /// Makes one inbox entry, with the messages `plan` decides for the user's
    /// preferences, about something other than an alert event (a document shared with
    /// them). `key` (negative, so it never meets an alert event's id) makes it once per
    /// user. Returns false when the user is not of this organization or it was made.
    pub async fn notify_user(
        &self,
        user_id: &str,
        key: i64,
        now: i64,
        plan: impl FnOnce(&Recipient) -> Planned,
    ) -> Result<bool> {
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(failed("reading whom to notify"))?;
        let member = sqlx::query("SELECT id FROM users WHERE org_id = $1 AND id = $2")
            .bind(&self.org)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(failed("checking whom to notify"))?;
        let Some(r) = (match member {
            Some(_) => recipient(&mut conn, user_id).await?,
            None => None,
        }) else {
            return Ok(false);
        };
        drop(conn);
        let p = plan(&r);
        // The transaction only writes, so SQLite's write lock is taken at its start.
        let mut tx = self.store.begin().await?;
        let made = sqlx::query(&format!(
            "INSERT INTO notifications ({NOTIFICATION_COLUMNS}, org_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)
             ON CONFLICT (user_id, event_id) DO NOTHING"
        ))
        .bind(crate::auth::secret::new_sortable_id("ntf"))
        .bind(&r.user_id)
        .bind(key)
        .bind(&p.kind)
        .bind(p.alert_id.as_deref())
        .bind(&p.title)
        .bind(&p.body)
        .bind(now)
        .bind(&self.org)
        .persistent(false)
        .execute(&mut *tx)
        .await
        .map_err(failed("storing a notification"))?;
        if made.rows_affected() == 0 {
            return Ok(false);
        }
        for m in &p.messages {
            insert_message(&mut tx, &self.org, &r.user_id, m, now).await?;
        }
        tx.commit()
            .await
            .map_err(failed("committing a notification"))?;
        Ok(true)
    }

    /// A user's inbox, newest first: entries older than `before` (an entry id) when
    /// given, only unread ones when asked, at most `limit`.
    pub async fn notifications(
        &self,
        user_id: &str,
        unread_only: bool,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let unread = if unread_only {
            "AND read_at IS NULL"
        } else {
            ""
        };
        let older = if before.is_some() { "AND id < $4" } else { "" };
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications
             WHERE org_id = $1 AND user_id = $2 {unread} {older}
             ORDER BY id DESC LIMIT $3"
        );
        let mut query = sqlx::query(&sql).bind(&self.org).bind(user_id).bind(limit);
        if let Some(id) = before {
            query = query.bind(id);
        }
        let rows = query
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("listing notifications"))?;
        rows.iter().map(notification_from).collect()
    }

    /// How many of a user's entries are unread.
    pub async fn unread_notifications(&self, user_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM notifications
             WHERE org_id = $1 AND user_id = $2 AND read_at IS NULL",
        )
        .bind(&self.org)
        .bind(user_id)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("counting unread notifications"))?;
        get(&row, "n")
    }

    /// Marks one of a user's entries read (reading it again keeps the first time).
    /// False when the user has no such entry.
    pub async fn mark_notification_read(&self, user_id: &str, id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET read_at = COALESCE(read_at, $1)
             WHERE org_id = $2 AND user_id = $3 AND id = $4",
        )
        .bind(now)
        .bind(&self.org)
        .bind(user_id)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(failed("marking a notification read"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks all of a user's unread entries read; returns how many.
    pub async fn mark_all_notifications_read(&self, user_id: &str, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE notifications SET read_at = $1
             WHERE org_id = $2 AND user_id = $3 AND read_at IS NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(user_id)
        .execute(self.store.pool())
        .await
        .map_err(failed("marking notifications read"))?;
        Ok(done.rows_affected())
    }

    /// A user's preferences (the defaults when they never set any).
    pub async fn notification_preferences(&self, user_id: &str) -> Result<Preferences> {
        let row = sqlx::query(&format!(
            "SELECT {PREFERENCE_COLUMNS} FROM notification_preferences
             WHERE org_id = $1 AND user_id = $2"
        ))
        .bind(&self.org)
        .bind(user_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading notification preferences"))?;
        Ok(row
            .map(|r| preferences_from(&r))
            .transpose()?
            .unwrap_or_default())
    }

    /// Replaces a user's preferences. `next_digest_at` is when their next digest is due
    /// (None unless e-mail is `digest`); a digest starts with what arrives from `now` on
    /// when digests are newly chosen.
    pub async fn set_notification_preferences(
        &self,
        user_id: &str,
        p: &Preferences,
        next_digest_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        let (start, end) = match p.quiet_hours {
            Some((s, e)) => (Some(i64::from(s)), Some(i64::from(e))),
            None => (None, None),
        };
        sqlx::query(
            "INSERT INTO notification_preferences (user_id, org_id, email, sms, phone,
             quiet_start, quiet_end, timezone, digest_hour, next_digest_at, last_digest_at,
             updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
             ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, sms = excluded.sms,
             phone = excluded.phone, quiet_start = excluded.quiet_start,
             quiet_end = excluded.quiet_end, timezone = excluded.timezone,
             digest_hour = excluded.digest_hour, next_digest_at = excluded.next_digest_at,
             last_digest_at = CASE WHEN notification_preferences.email = 'digest'
                 THEN notification_preferences.last_digest_at ELSE excluded.last_digest_at END,
             updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(&self.org)
        .bind(p.email.as_str())
        .bind(i64::from(p.sms))
        .bind(p.phone.as_deref())
        .bind(start)
        .bind(end)
        .bind(&p.timezone)
        .bind(i64::from(p.digest_hour))
        .bind(next_digest_at)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(failed("storing notification preferences"))?;
        Ok(())
    }

    /// A user's messages, newest first, at most `limit`.
    pub async fn outbound_messages(
        &self,
        user_id: &str,
        limit: i64,
    ) -> Result<Vec<OutboundMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbound_messages
             WHERE org_id = $1 AND user_id = $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(&self.org)
        .bind(user_id)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing messages"))?;
        rows.iter().map(message_from).collect()
    }
}

/// Decides what an event makes for the users it concerns (by user id).
pub type Planner<'a> =
    dyn Fn(&AlertEvent, &HashMap<String, Recipient>) -> Vec<Planned> + Send + Sync + 'a;

impl Store {
    /// Makes inbox entries and messages for the next events of the log (at most
    /// `limit`), as `plan` decides, and moves the notification cursor past them; returns
    /// how many events were taken (0: the log is done).
    pub async fn notify_from_log(&self, limit: i64, now: i64, plan: &Planner<'_>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let events = events::take_next(&mut tx, "notifications", limit).await?;
        let Some(last) = events.last().map(|e| e.id) else {
            return Ok(0);
        };
        let mut people: HashMap<String, Option<Recipient>> = HashMap::new();
        for event in &events {
            let mut concerned = HashMap::new();
            for id in [&event.assignee_id, &event.previous_assignee_id]
                .into_iter()
                .flatten()
            {
                if !people.contains_key(id) {
                    let found = recipient(&mut tx, id).await?;
                    people.insert(id.clone(), found);
                }
                if let Some(Some(r)) = people.get(id) {
                    concerned.insert(id.clone(), r.clone());
                }
            }
            if concerned.is_empty() {
                continue;
            }
            for p in plan(event, &concerned) {
                let made = sqlx::query(&format!(
                    "INSERT INTO notifications ({NOTIFICATION_COLUMNS}, org_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)
                     ON CONFLICT (user_id, event_id) DO NOTHING"
                ))
                .bind(crate::auth::secret::new_sortable_id("ntf"))
                .bind(&p.user_id)
                .bind(event.id)
                .bind(&p.kind)
                .bind(p.alert_id.as_deref())
                .bind(&p.title)
                .bind(&p.body)
                .bind(now)
                .bind(&event.org_id)
                .execute(&mut *tx)
                .await
                .map_err(failed("storing a notification"))?;
                if made.rows_affected() == 0 {
                    continue;
                }
                for m in &p.messages {
                    insert_message(&mut tx, &event.org_id, &p.user_id, m, now).await?;
                }
            }
        }
        events::advance(&mut tx, "notifications", last).await?;
        tx.commit()
            .await
            .map_err(failed("committing notifications"))?;
        Ok(events.len() as u64)
    }

    /// Users whose digest is due by `now` (Unix seconds), at most `limit`.
    pub async fn due_digests(&self, now: i64, limit: i64) -> Result<Vec<DueDigest>> {
        let rows = sqlx::query(&format!(
            "SELECT p.org_id, p.user_id, p.next_digest_at, p.last_digest_at, u.email AS user_email, u.name,
                    {}
             FROM notification_preferences p JOIN users u ON u.id = p.user_id
             WHERE p.email = 'digest' AND p.next_digest_at <= $1
             ORDER BY p.next_digest_at LIMIT $2",
            PREFERENCE_COLUMNS
                .split(", ")
                .map(|c| format!("p.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(failed("finding due digests"))?;
        rows.iter()
            .map(|r| {
                Ok(DueDigest {
                    org_id: get(r, "org_id")?,
                    recipient: Recipient {
                        user_id: get(r, "user_id")?,
                        email: get(r, "user_email")?,
                        name: get(r, "name")?,
                        preferences: preferences_from(r)?,
                    },
                    since: get(r, "last_digest_at")?,
                    due_at: get(r, "next_digest_at")?,
                })
            })
            .collect()
    }

    /// A user's entries made in `[since, until)`, oldest first, at most `limit`.
    pub async fn notifications_between(
        &self,
        user_id: &str,
        since: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications
             WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
             ORDER BY id LIMIT $4"
        ))
        .bind(user_id)
        .bind(since)
        .bind(until)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(failed("reading notifications for a digest"))?;
        rows.iter().map(notification_from).collect()
    }

    /// Claims a due digest (it covered everything before `now`; the next is due at
    /// `next_at`) and queues its message, if any, in one transaction. False when
    /// another replica claimed it first or the user changed their preferences.
    pub async fn finish_digest(
        &self,
        due: &DueDigest,
        next_at: i64,
        now: i64,
        message: Option<&NewMessage>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let claimed = sqlx::query(
            "UPDATE notification_preferences SET last_digest_at = $1, next_digest_at = $2
             WHERE user_id = $3 AND email = 'digest' AND next_digest_at = $4",
        )
        .bind(now)
        .bind(next_at)
        .bind(&due.recipient.user_id)
        .bind(due.due_at)
        .execute(&mut *tx)
        .await
        .map_err(failed("claiming a digest"))?;
        if claimed.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(m) = message {
            insert_message(&mut tx, &due.org_id, &due.recipient.user_id, m, now).await?;
        }
        tx.commit().await.map_err(failed("committing a digest"))?;
        Ok(true)
    }

    /// Pending messages due by `now_ms`, earliest first, at most `limit`, each leased
    /// to the caller until `lease_until_ms`.
    pub async fn take_due_messages(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboundMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbound_messages
             WHERE status = 'pending' AND next_attempt_ms <= $1
             ORDER BY next_attempt_ms, id LIMIT $2"
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(failed("finding due messages"))?;
        let mut taken = Vec::new();
        for r in &rows {
            let m = message_from(r)?;
            let leased = sqlx::query(
                "UPDATE outbound_messages SET next_attempt_ms = $1
                 WHERE id = $2 AND status = 'pending' AND next_attempt_ms = $3",
            )
            .bind(lease_until_ms)
            .bind(&m.id)
            .bind(m.next_attempt_ms)
            .execute(self.pool())
            .await
            .map_err(failed("leasing a message"))?;
            if leased.rows_affected() == 1 {
                taken.push(m);
            }
        }
        Ok(taken)
    }

    /// Records how an attempt to send a message ended.
    pub async fn finish_message(&self, id: &str, outcome: &AttemptOutcome, now: i64) -> Result<()> {
        let (status, error, next) = match outcome {
            AttemptOutcome::Delivered(_) => ("sent", None, 0),
            AttemptOutcome::Failed {
                error, retry_at_ms, ..
            } => (
                if retry_at_ms.is_some() {
                    "pending"
                } else {
                    "dead"
                },
                Some(error.as_str()),
                retry_at_ms.unwrap_or(0),
            ),
        };
        sqlx::query(
            "UPDATE outbound_messages SET status = $1, attempts = attempts + 1,
             next_attempt_ms = $2, last_error = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(next)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(failed("recording a message attempt"))?;
        Ok(())
    }
}
