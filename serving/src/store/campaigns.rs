//! Templates, campaigns, the durable send queue and engagement.
//!
//! The queue is `campaign_messages`, keyed by (campaign, contact): queuing a campaign
//! twice, or on two replicas at once, still holds one message per contact. A sender
//! claims due messages for a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas
//! never claim the same row; one `UPDATE … RETURNING` on SQLite, whose writes are
//! serialised), and records the outcome only while its lease holds. A message whose
//! sender died is claimed again when its lease runs out.

use sqlx::any::AnyRow;

use super::{Backend, Result, Store, StoreError, Tenant, failed, get, unique};
use crate::auth::secret::new_id;
use crate::segment::Compiled;

/// A template as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    /// Id (`tpl_…`).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Subject template.
    pub subject: String,
    /// HTML part template.
    pub html: String,
    /// Plain-text part template.
    pub text: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Where a campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    /// Being written.
    Draft,
    /// Waits for `scheduled_at`.
    Scheduled,
    /// Its messages are being rendered into the queue.
    Queuing,
    /// Its messages are going out.
    Sending,
    /// Every message is sent, failed or suppressed.
    Sent,
    /// Stopped; queued messages were dropped.
    Cancelled,
    /// Queuing could not go on (`failure` says why); queued messages were dropped.
    Failed,
}

impl CampaignStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Queuing => "queuing",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Sent => "sent",
            CampaignStatus::Cancelled => "cancelled",
            CampaignStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "draft" => CampaignStatus::Draft,
            "scheduled" => CampaignStatus::Scheduled,
            "queuing" => CampaignStatus::Queuing,
            "sending" => CampaignStatus::Sending,
            "sent" => CampaignStatus::Sent,
            "cancelled" => CampaignStatus::Cancelled,
            "failed" => CampaignStatus::Failed,
            other => return Err(StoreError::Corrupt(format!("campaign status {other:?}"))),
        })
    }
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Id (`cmp_…`).
    pub id: String,
    /// Its number in pipeline events.
    pub lake_id: i64,
    /// Name.
    pub name: String,
    /// The template.
    pub template_id: String,
    /// The saved segment, when one was chosen.
    pub segment_id: Option<String>,
    /// The audience rule (frozen when queued).
    pub rule: String,
    /// Where it is.
    pub status: CampaignStatus,
    /// When it is to go (scheduled campaigns).
    pub scheduled_at: Option<i64>,
    /// When queuing began.
    pub queued_at: Option<i64>,
    /// When the last message was settled.
    pub finished_at: Option<i64>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Who made it.
    pub created_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

const CAMPAIGN_COLUMNS: &str = "id, lake_id, name, template_id, segment_id, rule, status, \
     scheduled_at, queued_at, finished_at, failure, created_by, created_at, updated_at";

fn campaign_from(r: &AnyRow) -> Result<Campaign> {
    Ok(Campaign {
        id: get(r, "id")?,
        lake_id: get(r, "lake_id")?,
        name: get(r, "name")?,
        template_id: get(r, "template_id")?,
        segment_id: get(r, "segment_id")?,
        rule: get(r, "rule")?,
        status: CampaignStatus::parse(&get::<String>(r, "status")?)?,
        scheduled_at: get(r, "scheduled_at")?,
        queued_at: get(r, "queued_at")?,
        finished_at: get(r, "finished_at")?,
        failure: get(r, "failure")?,
        created_by: get(r, "created_by")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

/// A campaign to create.
#[derive(Debug, Clone)]
pub struct NewCampaign<'a> {
    /// Name.
    pub name: &'a str,
    /// The template (must be this organization's).
    pub template_id: &'a str,
    /// The saved segment, if the audience is one.
    pub segment_id: Option<&'a str>,
    /// The audience rule.
    pub rule: &'a str,
    /// When to send; none keeps it a draft.
    pub scheduled_at: Option<i64>,
    /// Who makes it.
    pub created_by: &'a str,
}

/// One rendered message for the queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// The contact.
    pub contact_id: String,
    /// Their address.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// HTML part.
    pub html: String,
    /// Text part.
    pub text: String,
}

/// A message a sender claimed.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    /// The campaign.
    pub campaign_id: String,
    /// The contact.
    pub contact_id: String,
    /// The organization.
    pub org_id: String,
    /// Address.
    pub recipient: String,
    /// Domain of the address (rate limits are per domain).
    pub domain: String,
    /// Subject.
    pub subject: String,
    /// HTML part.
    pub html: String,
    /// Text part.
    pub text: String,
    /// Attempts before this one.
    pub attempts: i64,
    /// The lease this claim holds (a fencing token: outcomes are recorded only with it).
    pub lease_until_ms: i64,
    /// The contact's consent now (`subscribed` or why not).
    pub consent: String,
    /// The organization's sender name and address, reply-to, when branded.
    pub from_name: Option<String>,
    /// Sender address.
    pub from_email: Option<String>,
    /// Reply-To.
    pub reply_to: Option<String>,
}

/// A queued message as listed to users.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    /// The contact.
    pub contact_id: String,
    /// Address.
    pub recipient: String,
    /// `queued`, `sending`, `sent`, `failed` or `suppressed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it is due again (Unix milliseconds), while queued.
    pub next_attempt_ms: i64,
    /// Why the last attempt failed or the message was held back.
    pub last_error: Option<String>,
    /// The mail server's id for it.
    pub provider_id: Option<String>,
    /// When it was sent, Unix seconds.
    pub sent_at: Option<i64>,
}

/// How one attempt at a campaign message ended.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageOutcome {
    /// The server took it (with its id for the message, when it gives one).
    Sent(Option<String>),
    /// Not sent; try again at this time (Unix milliseconds). `counts` is false when the
    /// message was only held back (a rate limit), not attempted.
    Retry {
        /// Why.
        error: String,
        /// When.
        at_ms: i64,
        /// Whether it was an attempt.
        counts: bool,
    },
    /// Will never be sent. `bounced` marks the address as bounced (a permanent refusal of
    /// the recipient).
    Failed {
        /// Why.
        error: String,
        /// Whether the recipient's address was refused.
        bounced: bool,
    },
    /// The contact left the list after the message was queued.
    Suppressed,
}

/// One engagement kind.
pub const ENGAGEMENT_KINDS: &[&str] =
    &["opened", "clicked", "unsubscribed", "bounced", "complained"];

/// What a tracked message belongs to, for engagement and pipeline events.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedMessage {
    /// The organization.
    pub org_id: String,
    /// The campaign.
    pub campaign_id: String,
    /// Its number in pipeline events.
    pub campaign_lake_id: i64,
    /// The contact.
    pub contact_id: String,
    /// The pipeline's id of the contact, when synced from the lake.
    pub lake_contact_id: Option<i64>,
    /// The pipeline's id of the organization, when linked.
    pub lake_org_id: Option<i64>,
    /// The contact's address.
    pub email: String,
    /// Their consent now.
    pub consent: String,
}

/// A campaign's numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignStats {
    /// Messages queued in all.
    pub messages: i64,
    /// Still waiting or being sent.
    pub pending: i64,
    /// Taken by the mail server.
    pub delivered: i64,
    /// Failed for good.
    pub failed: i64,
    /// Not sent: the contact left the list first.
    pub suppressed: i64,
    /// Contacts who opened at least once.
    pub opened: i64,
    /// Contacts who clicked at least once.
    pub clicked: i64,
    /// Contacts who unsubscribed from it.
    pub unsubscribed: i64,
    /// Messages that bounced.
    pub bounced: i64,
    /// Spam complaints.
    pub complained: i64,
    /// Alerts raised for recipients within the window after delivery.
    pub alerts: i64,
    /// Of those, converted.
    pub conversions: i64,
    /// Their recorded value.
    pub converted_value: f64,
}

/// A stable positive number for a campaign id (its `campaign_id` in pipeline events).
pub fn lake_id_of(id: &str) -> i64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    (u64::from_be_bytes(bytes) >> 11) as i64
}

fn template_from(r: &AnyRow) -> Result<StoredTemplate> {
    Ok(StoredTemplate {
        id: get(r, "id")?,
        name: get(r, "name")?,
        subject: get(r, "subject")?,
        html: get(r, "html")?,
        text: get(r, "text")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

/// Messages per statement when queuing (11 parameters each).
const QUEUE_CHUNK: usize = 500;

impl Tenant<'_> {
    /// Saves a template (already validated).
    pub async fn create_template(
        &self,
        name: &str,
        subject: &str,
        html: &str,
        text: &str,
        created_by: &str,
        now: i64,
    ) -> Result<StoredTemplate> {
        let id = new_id("tpl");
        sqlx::query(
            "INSERT INTO templates (id, org_id, name, subject, html, text, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(&self.org)
        .bind(name)
        .bind(subject)
        .bind(html)
        .bind(text)
        .bind(created_by)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(unique(format!("a template named {name:?}"), "saving a template"))?;
        self.template(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a template vanished as it was saved".to_owned()))
    }

    /// Replaces a template; None when it is not this organization's.
    pub async fn update_template(
        &self,
        id: &str,
        name: &str,
        subject: &str,
        html: &str,
        text: &str,
        now: i64,
    ) -> Result<Option<StoredTemplate>> {
        let done = sqlx::query(
            "UPDATE templates SET name = $1, subject = $2, html = $3, text = $4, updated_at = $5
             WHERE org_id = $6 AND id = $7",
        )
        .bind(name)
        .bind(subject)
        .bind(html)
        .bind(text)
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(unique(
            format!("a template named {name:?}"),
            "changing a template",
        ))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.template(id).await
    }

    /// One template.
    pub async fn template(&self, id: &str) -> Result<Option<StoredTemplate>> {
        let row = sqlx::query(
            "SELECT id, name, subject, html, text, created_at, updated_at FROM templates
             WHERE org_id = $1 AND id = $2",
        )
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a template"))?;
        row.map(|r| template_from(&r)).transpose()
    }

    /// Every template, by name.
    pub async fn templates(&self) -> Result<Vec<StoredTemplate>> {
        let rows = sqlx::query(
            "SELECT id, name, subject, html, text, created_at, updated_at FROM templates
             WHERE org_id = $1 ORDER BY name",
        )
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing templates"))?;
        rows.iter().map(template_from).collect()
    }

    /// Deletes a template no campaign uses: Ok(false) when it is not this
    /// organization's, a conflict when a campaign uses it.
    pub async fn delete_template(&self, id: &str) -> Result<bool> {
        let used = sqlx::query(
            "SELECT COUNT(*) AS n FROM campaigns WHERE org_id = $1 AND template_id = $2",
        )
        .bind(&self.org)
        .bind(id)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("checking a template's campaigns"))?;
        if get::<i64>(&used, "n")? > 0 {
            return Err(StoreError::Conflict {
                what: "a campaign using this template".to_owned(),
            });
        }
        let done = sqlx::query("DELETE FROM templates WHERE org_id = $1 AND id = $2")
            .bind(&self.org)
            .bind(id)
            .execute(self.store.pool())
            .await
            .map_err(failed("deleting a template"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Creates a campaign: a draft, or scheduled when it has a time.
    pub async fn create_campaign(&self, c: &NewCampaign<'_>, now: i64) -> Result<Campaign> {
        let id = new_id("cmp");
        let status = if c.scheduled_at.is_some() {
            CampaignStatus::Scheduled
        } else {
            CampaignStatus::Draft
        };
        sqlx::query(
            "INSERT INTO campaigns (id, org_id, lake_id, name, template_id, segment_id, rule, status,
                 scheduled_at, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .persistent(false)
        .bind(&id)
        .bind(&self.org)
        .bind(lake_id_of(&id))
        .bind(c.name)
        .bind(c.template_id)
        .bind(c.segment_id)
        .bind(c.rule)
        .bind(status.as_str())
        .bind(c.scheduled_at)
        .bind(c.created_by)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(failed("creating a campaign"))?;
        self.campaign(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a campaign vanished as it was made".to_owned()))
    }

    /// One campaign.
    pub async fn campaign(&self, id: &str) -> Result<Option<Campaign>> {
        let row = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE org_id = $1 AND id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a campaign"))?;
        row.map(|r| campaign_from(&r)).transpose()
    }

    /// Every campaign, newest first.
    pub async fn campaigns(&self) -> Result<Vec<Campaign>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE org_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing campaigns"))?;
        rows.iter().map(campaign_from).collect()
    }

    /// Moves a draft or scheduled campaign to `to` (scheduled with a time, or queuing to
    /// send now). False when it is in another state (or not this organization's).
    pub async fn schedule_campaign(&self, id: &str, scheduled_at: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE campaigns SET status = 'scheduled', scheduled_at = $1, updated_at = $2
             WHERE org_id = $3 AND id = $4 AND status IN ('draft', 'scheduled')",
        )
        .bind(scheduled_at)
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(failed("scheduling a campaign"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels a campaign that has not finished; its unsent messages are dropped (kept as
    /// `suppressed`). False when it is sent, cancelled or not this organization's.
    pub async fn cancel_campaign(&self, id: &str, now: i64) -> Result<bool> {
        self.stop_campaign(id, CampaignStatus::Cancelled, None, now)
            .await
    }

    /// Marks a campaign whose queuing cannot go on failed, with why, and drops the
    /// messages it had queued; false when it is not queuing.
    pub async fn fail_campaign(&self, id: &str, why: &str, now: i64) -> Result<bool> {
        self.stop_campaign(id, CampaignStatus::Failed, Some(why), now)
            .await
    }

    async fn stop_campaign(
        &self,
        id: &str,
        to: CampaignStatus,
        why: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let from = match to {
            CampaignStatus::Failed => "('queuing')",
            _ => "('draft', 'scheduled', 'queuing', 'sending')",
        };
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE campaigns SET status = $1, failure = $2, finished_at = $3, updated_at = $3
             WHERE org_id = $4 AND id = $5 AND status IN {from}"
        ))
        .bind(to.as_str())
        .bind(why)
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .persistent(false)
        .execute(&mut *tx)
        .await
        .map_err(failed("stopping a campaign"))?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "UPDATE campaign_messages SET status = 'suppressed', last_error = $1, updated_at = $2
                 WHERE org_id = $3 AND campaign_id = $4 AND status = 'queued'",
            )
            .bind(format!("campaign {}", to.as_str()))
            .bind(now)
            .bind(&self.org)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(failed("dropping a stopped campaign's messages"))?;
        }
        tx.commit()
            .await
            .map_err(failed("committing a cancellation"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Subscribed contacts a compiled rule matches, after `after` in id order.
    pub async fn audience_page(
        &self,
        rule: &Compiled,
        after: &str,
        limit: i64,
    ) -> Result<Vec<super::Contact>> {
        let after_mark = rule.binds.len() + 2;
        let sql = format!(
            "SELECT {} FROM contacts c {} WHERE c.org_id = $1 AND {} AND c.consent = 'subscribed'
             AND c.id > ${after_mark} ORDER BY c.id LIMIT {}",
            super::contacts::contact_columns("c"),
            rule.joins,
            rule.condition,
            limit.clamp(1, 10_000)
        );
        let q = sqlx::query(&sql).persistent(false).bind(&self.org);
        let rows = super::contacts::bind_segment(q, &rule.binds)
            .bind(after)
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("reading a campaign's audience"))?;
        rows.iter().map(super::contacts::contact_from).collect()
    }

    /// Puts rendered messages in the queue; a (campaign, contact) already there is left
    /// as it is. Returns how many were added.
    pub async fn queue_messages(
        &self,
        campaign_id: &str,
        messages: &[QueuedMessage],
        now_ms: i64,
    ) -> Result<u64> {
        let mut added = 0;
        let mut tx = self.store.begin().await?;
        for chunk in messages.chunks(QUEUE_CHUNK) {
            let marks: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 11;
                    let n: Vec<String> = (1..=11).map(|k| format!("${}", b + k)).collect();
                    format!(
                        "({}, {}, {}, {}, {}, {}, {}, {}, 'queued', 0, {}, 0, {}, {})",
                        n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9], n[10]
                    )
                })
                .collect();
            let sql = self.store.bulk_sql(&format!(
                "INSERT INTO campaign_messages (campaign_id, contact_id, org_id, recipient, domain,
                     subject, body_html, body_text, status, attempts, next_attempt_ms,
                     lease_until_ms, created_at, updated_at)
                 VALUES {} ON CONFLICT (campaign_id, contact_id) DO NOTHING",
                marks.join(", ")
            ));
            let mut q = sqlx::query(&sql).persistent(false);
            for m in chunk {
                let domain = m
                    .recipient
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_ascii_lowercase())
                    .unwrap_or_default();
                q = q
                    .bind(campaign_id)
                    .bind(m.contact_id.as_str())
                    .bind(&self.org)
                    .bind(m.recipient.as_str())
                    .bind(domain)
                    .bind(m.subject.as_str())
                    .bind(m.html.as_str())
                    .bind(m.text.as_str())
                    .bind(now_ms)
                    .bind(now_ms / 1000)
                    .bind(now_ms / 1000);
            }
            added += q
                .execute(&mut *tx)
                .await
                .map_err(failed("queuing campaign messages"))?
                .rows_affected();
        }
        tx.commit()
            .await
            .map_err(failed("committing queued messages"))?;
        Ok(added)
    }

    /// A page of a campaign's messages in contact order, optionally in one status.
    pub async fn campaign_messages(
        &self,
        campaign_id: &str,
        status: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<MessageRow>> {
        let rows = sqlx::query(
            "SELECT contact_id, recipient, status, attempts, next_attempt_ms, last_error,
                    provider_id, sent_at
             FROM campaign_messages
             WHERE org_id = $1 AND campaign_id = $2 AND ($3 = '' OR status = $3) AND contact_id > $4
             ORDER BY contact_id LIMIT $5",
        )
        .bind(&self.org)
        .bind(campaign_id)
        .bind(status.unwrap_or(""))
        .bind(after)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing a campaign's messages"))?;
        rows.iter()
            .map(|r| {
                Ok(MessageRow {
                    contact_id: get(r, "contact_id")?,
                    recipient: get(r, "recipient")?,
                    status: get(r, "status")?,
                    attempts: get(r, "attempts")?,
                    next_attempt_ms: get(r, "next_attempt_ms")?,
                    last_error: get(r, "last_error")?,
                    provider_id: get(r, "provider_id")?,
                    sent_at: get(r, "sent_at")?,
                })
            })
            .collect()
    }

    /// Marks a queuing campaign as sending (its queue is complete).
    pub async fn finish_queuing(&self, id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE campaigns SET status = 'sending', updated_at = $1
             WHERE org_id = $2 AND id = $3 AND status = 'queuing'",
        )
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(failed("finishing a campaign's queue"))?;
        Ok(done.rows_affected() == 1)
    }

    /// A campaign's numbers; `window_secs` bounds which alerts count as following it.
    pub async fn campaign_stats(&self, id: &str, window_secs: i64) -> Result<CampaignStats> {
        self.stats_of("= $2", id, window_secs).await
    }

    /// The numbers of every campaign sent to a saved segment, together.
    pub async fn segment_stats(&self, segment_id: &str, window_secs: i64) -> Result<CampaignStats> {
        self.stats_of(
            "IN (SELECT id FROM campaigns WHERE org_id = $1 AND segment_id = $2)",
            segment_id,
            window_secs,
        )
        .await
    }

    /// Numbers of the campaigns whose id is `campaigns` (an SQL condition on `$2`).
    async fn stats_of(
        &self,
        campaigns: &str,
        key: &str,
        window_secs: i64,
    ) -> Result<CampaignStats> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS messages,
                    COALESCE(SUM(CASE WHEN status IN ('queued', 'sending') THEN 1 ELSE 0 END), 0) AS pending,
                    COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS delivered,
                    COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
                    COALESCE(SUM(CASE WHEN status = 'suppressed' THEN 1 ELSE 0 END), 0) AS suppressed
             FROM campaign_messages WHERE org_id = $1 AND campaign_id {campaigns}"
        ))
        .bind(&self.org)
        .bind(key)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("counting campaign messages"))?;
        let mut stats = CampaignStats {
            messages: get(&row, "messages")?,
            pending: get(&row, "pending")?,
            delivered: get(&row, "delivered")?,
            failed: get(&row, "failed")?,
            suppressed: get(&row, "suppressed")?,
            ..CampaignStats::default()
        };
        let rows = sqlx::query(&format!(
            "SELECT kind, COUNT(DISTINCT campaign_id || ' ' || contact_id) AS n FROM campaign_engagements
             WHERE org_id = $1 AND campaign_id {campaigns} GROUP BY kind"
        ))
        .bind(&self.org)
        .bind(key)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("counting a campaign's engagement"))?;
        for r in &rows {
            let n: i64 = get(r, "n")?;
            match get::<String>(r, "kind")?.as_str() {
                "opened" => stats.opened = n,
                "clicked" => stats.clicked = n,
                "unsubscribed" => stats.unsubscribed = n,
                "bounced" => stats.bounced = n,
                "complained" => stats.complained = n,
                _ => {}
            }
        }
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS alerts,
                    COALESCE(SUM(CASE WHEN a.status = 'converted' THEN 1 ELSE 0 END), 0) AS conversions,
                    SUM(CASE WHEN a.status = 'converted' THEN a.outcome_value ELSE 0.0 END) AS value
             FROM campaign_messages m
             JOIN contacts c ON c.org_id = m.org_id AND c.id = m.contact_id
             JOIN alerts a ON a.org_id = m.org_id AND a.contact_id = c.lake_contact_id
             WHERE m.org_id = $1 AND m.campaign_id {campaigns} AND m.status = 'sent'
               AND a.raised_at >= m.sent_at AND a.raised_at < m.sent_at + $3"
        ))
        .bind(&self.org)
        .bind(key)
        .bind(window_secs)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("attributing alerts to a campaign"))?;
        stats.alerts = get(&row, "alerts")?;
        stats.conversions = get(&row, "conversions")?;
        stats.converted_value = get::<Option<f64>>(&row, "value")?.unwrap_or(0.0);
        Ok(stats)
    }
}

impl Store {
    /// Campaigns whose time has come (scheduled, due) and campaigns whose queuing stopped
    /// half-way (a crashed replica; queuing again adds only what is missing), each moved
    /// to `queuing` by exactly one caller. Returns (organization id, campaign id).
    pub async fn take_due_campaigns(
        &self,
        now: i64,
        stale_before: i64,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT org_id, id, status, queued_at FROM campaigns
             WHERE (status = 'scheduled' AND scheduled_at <= $1)
                OR (status = 'queuing' AND queued_at < $2)
             ORDER BY scheduled_at, id LIMIT 20",
        )
        .bind(now)
        .bind(stale_before)
        .fetch_all(self.pool())
        .await
        .map_err(failed("finding due campaigns"))?;
        let mut taken = Vec::new();
        for r in &rows {
            let id: String = get(r, "id")?;
            let status: String = get(r, "status")?;
            let queued_at: Option<i64> = get(r, "queued_at")?;
            // Conditional on what was read: of two replicas, one moves it.
            let done = sqlx::query(
                "UPDATE campaigns SET status = 'queuing', queued_at = $1, updated_at = $1
                 WHERE id = $2 AND status = $3 AND COALESCE(queued_at, -1) = $4",
            )
            .bind(now)
            .bind(&id)
            .bind(&status)
            .bind(queued_at.unwrap_or(-1))
            .execute(self.pool())
            .await
            .map_err(failed("taking a due campaign"))?;
            if done.rows_affected() == 1 {
                taken.push((get(r, "org_id")?, id));
            }
        }
        Ok(taken)
    }

    /// Claims up to `limit` due messages until `lease_until_ms`: queued ones whose time
    /// has come, and ones whose sender's lease ran out.
    pub async fn claim_messages(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>> {
        let pick = "SELECT campaign_id, contact_id FROM campaign_messages
             WHERE (status = 'queued' AND next_attempt_ms <= $2)
                OR (status = 'sending' AND lease_until_ms <= $2)
             ORDER BY next_attempt_ms LIMIT $3";
        let sql = match self.backend() {
            Backend::Postgres => format!(
                "UPDATE campaign_messages SET status = 'sending', lease_until_ms = $1
                 WHERE (campaign_id, contact_id) IN ({pick} FOR UPDATE SKIP LOCKED)
                 RETURNING campaign_id, contact_id"
            ),
            Backend::Sqlite => format!(
                "UPDATE campaign_messages SET status = 'sending', lease_until_ms = $1
                 WHERE (campaign_id, contact_id) IN ({pick})
                 RETURNING campaign_id, contact_id"
            ),
        };
        let keys = sqlx::query(&sql)
            .bind(lease_until_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(failed("claiming campaign messages"))?;
        let mut claimed = Vec::with_capacity(keys.len());
        for k in &keys {
            let campaign: String = get(k, "campaign_id")?;
            let contact: String = get(k, "contact_id")?;
            claimed.push(self.claimed_message(&campaign, &contact).await?);
        }
        Ok(claimed)
    }

    /// Claims the given messages until `lease_until_ms`, each only if the store agrees it
    /// is due (queued and due, or sending with a lapsed lease): the claim step of a queue
    /// that keeps its schedule elsewhere (Redis).
    pub async fn claim_keys(
        &self,
        keys: &[(String, String)],
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Vec<ClaimedMessage>> {
        let mut claimed = Vec::with_capacity(keys.len());
        for (campaign, contact) in keys {
            let done = sqlx::query(
                "UPDATE campaign_messages SET status = 'sending', lease_until_ms = $1
                 WHERE campaign_id = $2 AND contact_id = $3
                   AND ((status = 'queued' AND next_attempt_ms <= $4)
                     OR (status = 'sending' AND lease_until_ms <= $4))",
            )
            .bind(lease_until_ms)
            .bind(campaign)
            .bind(contact)
            .bind(now_ms)
            .execute(self.pool())
            .await
            .map_err(failed("claiming a campaign message"))?;
            if done.rows_affected() == 1 {
                claimed.push(self.claimed_message(campaign, contact).await?);
            }
        }
        Ok(claimed)
    }

    /// Every message waiting to be sent, with when it is due (Unix milliseconds): queued
    /// ones at their next attempt, claimed ones at their lease's end.
    pub async fn waiting_messages(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT campaign_id, contact_id,
                    CASE WHEN status = 'queued' THEN next_attempt_ms ELSE lease_until_ms END AS due
             FROM campaign_messages WHERE status IN ('queued', 'sending')",
        )
        .fetch_all(self.pool())
        .await
        .map_err(failed("listing waiting campaign messages"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    get(r, "campaign_id")?,
                    get(r, "contact_id")?,
                    get(r, "due")?,
                ))
            })
            .collect()
    }

    async fn claimed_message(&self, campaign: &str, contact: &str) -> Result<ClaimedMessage> {
        let row = sqlx::query(
            "SELECT m.campaign_id, m.contact_id, m.org_id, m.recipient, m.domain, m.subject,
                    m.body_html, m.body_text, m.attempts, m.lease_until_ms, c.consent,
                    b.from_name, b.from_email, b.reply_to
             FROM campaign_messages m
             JOIN contacts c ON c.id = m.contact_id
             LEFT JOIN branding b ON b.org_id = m.org_id
             WHERE m.campaign_id = $1 AND m.contact_id = $2",
        )
        .bind(campaign)
        .bind(contact)
        .fetch_one(self.pool())
        .await
        .map_err(failed("reading a claimed message"))?;
        Ok(ClaimedMessage {
            campaign_id: campaign.to_owned(),
            contact_id: contact.to_owned(),
            org_id: get(&row, "org_id")?,
            recipient: get(&row, "recipient")?,
            domain: get(&row, "domain")?,
            subject: get(&row, "subject")?,
            html: get(&row, "body_html")?,
            text: get(&row, "body_text")?,
            attempts: get(&row, "attempts")?,
            lease_until_ms: get(&row, "lease_until_ms")?,
            consent: get(&row, "consent")?,
            from_name: get(&row, "from_name")?,
            from_email: get(&row, "from_email")?,
            reply_to: get(&row, "reply_to")?,
        })
    }

    /// Records the outcomes of attempts at claimed messages, in one transaction (one
    /// commit for the lot): for each, whether it was recorded (false when its lease ran
    /// out and another sender may have it). A bounce also records the engagement and
    /// marks the contact bounced.
    pub async fn finish_campaign_messages(
        &self,
        done: &[(&ClaimedMessage, &MessageOutcome)],
        now_ms: i64,
    ) -> Result<Vec<bool>> {
        let mut tx = self.begin().await?;
        let mut recorded = Vec::with_capacity(done.len());
        for (m, outcome) in done {
            recorded.push(finish_message_in(&mut tx, m, outcome, now_ms).await?);
        }
        tx.commit()
            .await
            .map_err(failed("committing campaign messages"))?;
        Ok(recorded)
    }

    /// Marks campaigns whose every message is settled as sent. Returns how many.
    pub async fn complete_campaigns(&self, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE campaigns SET status = 'sent', finished_at = $1, updated_at = $1
             WHERE status = 'sending' AND NOT EXISTS (
                 SELECT 1 FROM campaign_messages m
                 WHERE m.campaign_id = campaigns.id AND m.status IN ('queued', 'sending'))",
        )
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(failed("completing campaigns"))?;
        Ok(done.rows_affected())
    }

    /// The message of (campaign, contact), for tracking.
    pub async fn tracked_message(
        &self,
        campaign_id: &str,
        contact_id: &str,
    ) -> Result<Option<TrackedMessage>> {
        let row = sqlx::query(
            "SELECT m.org_id, m.campaign_id, p.lake_id, m.contact_id, c.lake_contact_id,
                    l.lake_org_id, c.email, c.consent
             FROM campaign_messages m
             JOIN campaigns p ON p.id = m.campaign_id
             JOIN contacts c ON c.id = m.contact_id
             LEFT JOIN lake_organizations l ON l.org_id = m.org_id
             WHERE m.campaign_id = $1 AND m.contact_id = $2",
        )
        .bind(campaign_id)
        .bind(contact_id)
        .fetch_optional(self.pool())
        .await
        .map_err(failed("reading a tracked message"))?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(TrackedMessage {
            org_id: get(&r, "org_id")?,
            campaign_id: get(&r, "campaign_id")?,
            campaign_lake_id: get(&r, "lake_id")?,
            contact_id: get(&r, "contact_id")?,
            lake_contact_id: get(&r, "lake_contact_id")?,
            lake_org_id: get(&r, "lake_org_id")?,
            email: get(&r, "email")?,
            consent: get(&r, "consent")?,
        }))
    }

    /// Records an engagement with a tracked message; `unsubscribed` and `complained`
    /// also take the contact off the list (with `detail` in their consent history).
    /// Returns false when the same (contact, campaign, kind) was already recorded for
    /// kinds that happen once (unsubscribed, bounced, complained).
    pub async fn record_engagement(
        &self,
        m: &TrackedMessage,
        kind: &str,
        url: Option<&str>,
        detail: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        if matches!(kind, "unsubscribed" | "bounced" | "complained") {
            let seen = sqlx::query(
                "SELECT COUNT(*) AS n FROM campaign_engagements
                 WHERE campaign_id = $1 AND contact_id = $2 AND kind = $3",
            )
            .bind(&m.campaign_id)
            .bind(&m.contact_id)
            .bind(kind)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed("checking an engagement"))?;
            if get::<i64>(&seen, "n")? > 0 {
                return Ok(false);
            }
        }
        record_engagement_in(
            &mut tx,
            &m.org_id,
            &m.campaign_id,
            &m.contact_id,
            kind,
            url,
            now,
        )
        .await?;
        let consent = match kind {
            "unsubscribed" => Some(("unsubscribed", "unsubscribe")),
            "bounced" => Some(("bounced", "bounce")),
            "complained" => Some(("complained", "complaint")),
            _ => None,
        };
        if let Some((to, source)) = consent {
            set_consent_in(&mut tx, &m.org_id, &m.contact_id, to, source, detail, now).await?;
        }
        tx.commit()
            .await
            .map_err(failed("committing an engagement"))?;
        Ok(true)
    }

    /// The server's secret `name`, made (32 random bytes, hex) the first time it is asked
    /// for; every replica reads the same one.
    pub async fn server_secret(&self, name: &str, now: i64) -> Result<String> {
        let fresh = crate::auth::secret::hex(&crate::auth::secret::random_bytes::<32>());
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&fresh)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(failed("making a server secret"))?;
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await
            .map_err(failed("reading a server secret"))?;
        get(&row, "value")
    }
}

async fn record_engagement_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org: &str,
    campaign_id: &str,
    contact_id: &str,
    kind: &str,
    url: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO campaign_engagements (id, org_id, campaign_id, contact_id, kind, url, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .persistent(false)
    .bind(new_id("eng"))
    .bind(org)
    .bind(campaign_id)
    .bind(contact_id)
    .bind(kind)
    .bind(url)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(failed("recording an engagement"))?;
    Ok(())
}

/// Moves a contact's consent to `to` (unless it is there already), with history.
async fn set_consent_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org: &str,
    contact_id: &str,
    to: &str,
    source: &str,
    detail: &str,
    now: i64,
) -> Result<()> {
    let row = sqlx::query("SELECT consent FROM contacts WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(contact_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(failed("reading a contact's consent"))?;
    let Some(row) = row else {
        return Ok(());
    };
    let was: String = get(&row, "consent")?;
    if was == to {
        return Ok(());
    }
    sqlx::query("UPDATE contacts SET consent = $1, consent_at = $2, updated_at = $2 WHERE org_id = $3 AND id = $4")
        .bind(to)
        .bind(now)
        .bind(org)
        .bind(contact_id)
        .execute(&mut **tx)
        .await
        .map_err(failed("changing a contact's consent"))?;
    sqlx::query(
        "INSERT INTO consent_changes (id, org_id, contact_id, at, from_state, to_state, source, actor_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)",
    )
    .bind(new_id("cc"))
    .bind(org)
    .bind(contact_id)
    .bind(now)
    .bind(was)
    .bind(to)
    .bind(source)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map_err(failed("recording a consent change"))?;
    Ok(())
}

/// Records one attempt's outcome inside the caller's transaction; false when the
/// message's lease ran out.
async fn finish_message_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    m: &ClaimedMessage,
    outcome: &MessageOutcome,
    now_ms: i64,
) -> Result<bool> {
    let now = now_ms / 1000;
    let (status, attempts, next, error, provider, sent_at) = match outcome {
        MessageOutcome::Sent(id) => ("sent", 1, 0, None, id.clone(), Some(now)),
        MessageOutcome::Retry {
            error,
            at_ms,
            counts,
        } => (
            "queued",
            i64::from(*counts),
            *at_ms,
            Some(error.clone()),
            None,
            None,
        ),
        MessageOutcome::Failed { error, .. } => ("failed", 1, 0, Some(error.clone()), None, None),
        MessageOutcome::Suppressed => (
            "suppressed",
            0,
            0,
            Some(format!("the contact is {}", m.consent)),
            None,
            None,
        ),
    };
    let done = sqlx::query(
        "UPDATE campaign_messages SET status = $1, attempts = attempts + $2, next_attempt_ms = $3,
             last_error = $4, provider_id = $5, sent_at = $6, lease_until_ms = 0, updated_at = $7
         WHERE campaign_id = $8 AND contact_id = $9 AND status = 'sending' AND lease_until_ms = $10",
    )
    .persistent(false)
    .bind(status)
    .bind(attempts)
    .bind(next)
    .bind(error)
    .bind(provider)
    .bind(sent_at)
    .bind(now)
    .bind(&m.campaign_id)
    .bind(&m.contact_id)
    .bind(m.lease_until_ms)
    .execute(&mut **tx)
    .await
    .map_err(failed("recording a campaign message"))?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    if let MessageOutcome::Failed {
        error,
        bounced: true,
    } = outcome
    {
        record_engagement_in(
            tx,
            &m.org_id,
            &m.campaign_id,
            &m.contact_id,
            "bounced",
            None,
            now,
        )
        .await?;
        set_consent_in(
            tx,
            &m.org_id,
            &m.contact_id,
            "bounced",
            "bounce",
            error,
            now,
        )
        .await?;
    }
    Ok(true)
}
