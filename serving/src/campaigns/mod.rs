//! E-mail campaigns: rendering a campaign's template for every subscribed contact its
//! segment rule matches into the durable queue, sending the queue through a mail
//! transport with per-domain rate limits and retries, and tracking what recipients do
//! with signed links.
//!
//! - **Queue.** One row per (campaign, contact) in the store: queuing twice adds nothing,
//!   so a crash while queuing is mended by queuing again. Senders claim due messages for a
//!   lease and record each outcome only while their lease holds; a sender that dies leaves
//!   its claims to run out and be claimed again. The one window in which a message can go
//!   twice is a crash after the mail server accepted it and before the store recorded it
//!   (no SMTP server tells a client whether it saw a message before); its `Message-ID` is
//!   the same on every attempt, so receivers that deduplicate drop the copy.
//! - **Transports** ([`Transport`]): SMTP (lettre) or the SendGrid v3 HTTP API.
//! - **Rate limits**: at most `per_domain_per_minute` messages a minute to one recipient
//!   domain, with overrides per domain, counted in Redis across replicas when the server
//!   has one (else per process); a message held back waits without using an attempt.
//! - **Tracking** ([`Tracker`]): every link in the HTML part goes through a signed click
//!   redirect, an open pixel ends it, and each message carries RFC 8058 one-click
//!   unsubscribe headers. Links are HMAC-signed with a secret of the store, so a forged or
//!   altered link is refused. Opens and clicks are appended to the pipeline's event log
//!   (`email_opened`, `email_clicked`) so campaigns feed the alert signals.

mod queue;
mod tracking;
mod transport;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

pub use queue::Queue;
pub use tracking::{EventLog, LinkKind, Tracker, track_html};
pub use transport::{Outgoing, SendGridTransport, Sent, SmtpTransport, Transport};

use crate::merge::{self, MergeValues, Template};
use crate::store::{
    Branding, Campaign, ClaimedMessage, Contact, MessageOutcome, QueuedMessage, Store, Tenant,
};

/// Where due campaign messages are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackend {
    /// The store's own index.
    Store,
    /// A Redis sorted set in front of the store.
    Redis,
}

/// `[serve.campaigns]`: how campaign mail is sent and tracked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignConfig {
    /// SMTP server for campaign mail (`smtp://HOST:PORT`, `smtps://USER:PASS@HOST`);
    /// unset uses `[serve.notifications] smtp_url`.
    pub smtp_url: Option<String>,
    /// SendGrid API key; when set, campaign mail goes through the SendGrid v3 API instead
    /// of SMTP.
    pub sendgrid_api_key: Option<String>,
    /// Base URL of the SendGrid API.
    pub sendgrid_api_url: String,
    /// The verification key of SendGrid's signed Event Webhook (base64, as SendGrid shows
    /// it); set, `POST /campaigns/sendgrid-events` takes bounces, spam reports,
    /// unsubscribes, opens and clicks from SendGrid.
    pub sendgrid_webhook_key: Option<String>,
    /// Sender when the organization's branding names none; unset uses
    /// `[serve.notifications] email_from`.
    pub from: Option<String>,
    /// Where due messages are scheduled: `store` (the store's own index; `FOR UPDATE
    /// SKIP LOCKED` on PostgreSQL) or `redis` (a sorted set in `serve.redis_url` in front
    /// of the store).
    pub queue: QueueBackend,
    /// Messages a minute to one recipient domain (across replicas with Redis, else per
    /// process).
    pub per_domain_per_minute: u32,
    /// Overrides of that limit by domain (`"gmail.com" = 300`).
    pub domain_limits: BTreeMap<String, u32>,
    /// Attempts before a message fails for good.
    pub max_attempts: u32,
    /// Wait before the second attempt, milliseconds; doubles each time, ±50 % jitter.
    pub backoff_base_ms: u64,
    /// Longest wait between attempts, milliseconds.
    pub backoff_max_ms: u64,
    /// Time the mail server has to take a message, seconds.
    pub timeout_secs: u64,
    /// Milliseconds between looks for due campaigns and messages.
    pub poll_ms: u64,
    /// Messages sent at once.
    pub concurrency: u32,
    /// How long a sender holds a claimed message before another may take it, seconds.
    pub lease_secs: u64,
    /// Days after delivery in which an alert for the recipient counts for the campaign.
    pub attribution_days: u32,
    /// The NDJSON file engagement events are appended to for the streaming job; unset
    /// writes none.
    pub events_path: Option<PathBuf>,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        CampaignConfig {
            smtp_url: None,
            sendgrid_api_key: None,
            sendgrid_api_url: "https://api.sendgrid.com".to_owned(),
            sendgrid_webhook_key: None,
            from: None,
            queue: QueueBackend::Store,
            per_domain_per_minute: 600,
            domain_limits: BTreeMap::new(),
            max_attempts: 6,
            backoff_base_ms: 30_000,
            backoff_max_ms: 3_600_000,
            timeout_secs: 30,
            poll_ms: 1_000,
            concurrency: 8,
            lease_secs: 120,
            attribution_days: 90,
            events_path: None,
        }
    }
}

impl CampaignConfig {
    /// Checks every key; the message names the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err("serve.campaigns.smtp_url: must start with smtp:// or smtps://".to_owned());
        }
        if url::Url::parse(&self.sendgrid_api_url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            return Err("serve.campaigns.sendgrid_api_url: must be an http(s) URL".to_owned());
        }
        if let Some(key) = &self.sendgrid_webhook_key
            && webhook_point(key).is_none()
        {
            return Err(
                "serve.campaigns.sendgrid_webhook_key: not a P-256 public key in base64 (SendGrid's verification key)"
                    .to_owned(),
            );
        }
        if let Some(from) = &self.from
            && from.parse::<Mailbox>().is_err()
        {
            return Err(format!(
                "serve.campaigns.from: {from:?} is not a sender (`Name <address>` or `address`)"
            ));
        }
        if self.per_domain_per_minute == 0 || self.domain_limits.values().any(|v| *v == 0) {
            return Err(
                "serve.campaigns.per_domain_per_minute and domain_limits: must be positive"
                    .to_owned(),
            );
        }
        if self.max_attempts == 0
            || self.concurrency == 0
            || self.lease_secs == 0
            || self.poll_ms == 0
        {
            return Err(
                "serve.campaigns: max_attempts, concurrency, lease_secs and poll_ms must be positive"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// The configuration with secrets masked (for `roi config show`).
    pub fn masked(&self) -> CampaignConfig {
        CampaignConfig {
            smtp_url: self.smtp_url.as_deref().map(crate::store::mask_password),
            sendgrid_api_key: self
                .sendgrid_api_key
                .as_ref()
                .map(|_| "********".to_owned()),
            ..self.clone()
        }
    }
}

/// The P-256 point of a base64 public key: a SubjectPublicKeyInfo (as SendGrid shows
/// its verification key) or a bare uncompressed point.
pub fn webhook_point(key: &str) -> Option<Vec<u8>> {
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key.trim()).ok()?;
    /// The DER header of a P-256 SubjectPublicKeyInfo, before its 65-byte point.
    const SPKI_P256: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    match bytes.len() {
        65 if bytes[0] == 4 => Some(bytes),
        91 if bytes[..26] == SPKI_P256 && bytes[26] == 4 => Some(bytes[26..].to_vec()),
        _ => None,
    }
}

/// Checks a signed SendGrid Event Webhook request: the ECDSA (P-256, SHA-256)
/// `signature` (base64 DER) of `timestamp` followed by the body, made no more than ten
/// minutes from `now`.
pub fn verify_sendgrid(
    point: &[u8],
    signature: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
) -> Result<(), String> {
    let at: i64 = timestamp
        .parse()
        .map_err(|_| "the timestamp header is not a Unix time".to_owned())?;
    if (now - at).abs() > 600 {
        return Err("the request is more than ten minutes old (or early)".to_owned());
    }
    let sig = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature.trim())
        .map_err(|_| "the signature header is not base64".to_owned())?;
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(&message, &sig)
        .map_err(|_| "the signature does not match".to_owned())
}

/// Everything a message's merge tags read besides the contact.
#[derive(Debug, Clone, Default)]
pub struct MergeContext {
    /// The organization's display name.
    pub org_name: String,
    /// Its branding.
    pub branding: Branding,
    /// The campaign's name.
    pub campaign_name: String,
    /// The send date, e.g. "November 30, 2026".
    pub today: String,
}

fn civil(day: i64) -> Option<(i32, u32, u32)> {
    use chrono::Datelike;
    let d = crate::contacts::date_of_day(day)?;
    Some((d.year(), d.month(), d.day()))
}

/// The merge values of one contact.
pub fn merge_values(
    c: &Contact,
    ctx: &MergeContext,
    unsubscribe: &str,
    today_day: i64,
) -> MergeValues {
    let a = &c.attributes;
    let mut v = MergeValues::new();
    let mut put = |tag: &str, value: Option<String>| {
        if let Some(value) = value {
            v.set(tag, value);
        }
    };
    put("contact.first_name", Some(c.first_name.clone()));
    put("contact.last_name", Some(c.last_name.clone()));
    let full = format!("{} {}", c.first_name, c.last_name)
        .trim()
        .to_owned();
    put("contact.full_name", Some(full));
    put("contact.email", Some(c.email.clone()));
    put(
        "contact.closed_on",
        a.closed_on_day
            .and_then(civil)
            .map(|(y, m, d)| merge::long_date(y, m, d)),
    );
    put(
        "contact.tenure_years",
        a.closed_on_day.map(|d| {
            format!(
                "{}",
                ((today_day - d) as f64 / 365.25).floor().max(0.0) as i64
            )
        }),
    );
    put("property.address", a.address.clone());
    put("property.city", a.city.clone());
    put("property.state", a.state.clone());
    put("property.zip", a.zip.clone());
    let full_address = match (&a.address, &a.city, &a.state, &a.zip) {
        (Some(s), Some(c), Some(st), Some(z)) => Some(format!("{s}, {c}, {st} {z}")),
        (Some(s), _, _, _) => Some(s.clone()),
        _ => None,
    };
    put("property.full_address", full_address);
    put("property.beds", a.beds.map(merge::count));
    put(
        "property.baths",
        a.baths.map(|b| {
            if b.fract() == 0.0 {
                merge::count(b)
            } else {
                format!("{b:.1}")
            }
        }),
    );
    put("property.sqft", a.sqft.map(merge::count));
    put(
        "property.year_built",
        a.year_built.map(|y| format!("{y:.0}")),
    );
    put(
        "property.property_type",
        a.property_type.as_deref().map(|t| {
            match t {
                "single_family" => "single-family home",
                "townhouse" => "townhouse",
                "condo" => "condominium",
                "multi_family" => "multi-family home",
                other => other,
            }
            .to_owned()
        }),
    );
    let year = civil(today_day).map(|(y, _, _)| f64::from(y));
    put(
        "property.age_years",
        a.year_built
            .zip(year)
            .map(|(built, now)| format!("{:.0}", (now - built).max(0.0))),
    );
    put("valuation.value", a.value.map(merge::money));
    put("valuation.low", a.value_low.map(merge::money));
    put("valuation.high", a.value_high.map(merge::money));
    put(
        "valuation.as_of",
        a.valued_on_day
            .and_then(civil)
            .map(|(y, m, d)| merge::long_date(y, m, d)),
    );
    put(
        "valuation.change_pct",
        a.value_change_pct.map(merge::signed_percent),
    );
    put("equity.amount", a.equity.map(merge::money));
    put("equity.percent", a.equity_pct.map(|p| merge::percent(p, 0)));
    put("equity.ltv", a.ltv.map(|p| merge::percent(p, 0)));
    put("equity.loan_balance", a.loan_balance.map(merge::money));
    put(
        "equity.loan_rate",
        a.loan_rate_pct.map(|p| merge::percent(p, 2)),
    );
    put(
        "equity.market_rate",
        a.market_rate_pct.map(|p| merge::percent(p, 2)),
    );
    put(
        "equity.refinance_saving",
        a.refinance_saving
            .filter(|s| *s > 0.0)
            .map(|s| format!("{}/month", merge::money(s))),
    );
    put("equity.cash_out", a.cash_out.map(merge::money));
    put("market.zip", a.zip.clone());
    put(
        "market.month",
        a.market_month_day
            .and_then(civil)
            .map(|(y, m, _)| merge::month_year(y, m)),
    );
    put(
        "market.median_price",
        a.market_median_price.map(merge::money),
    );
    put(
        "market.median_price_per_sqft",
        a.market_median_ppsf.map(merge::money),
    );
    put(
        "market.yoy_change",
        a.market_yoy_pct.map(merge::signed_percent),
    );
    put("market.sales", a.market_sales.map(merge::count));
    put("agent.name", a.agent_name.clone());
    put(
        "agent.first_name",
        a.agent_name
            .as_deref()
            .and_then(|n| n.split_whitespace().next())
            .map(str::to_owned),
    );
    put("agent.email", a.agent_email.clone());
    put("org.name", Some(ctx.org_name.clone()));
    put("org.logo_url", ctx.branding.logo_url.clone());
    put("org.website", ctx.branding.website.clone());
    put("org.postal_address", ctx.branding.postal_address.clone());
    put("org.primary_color", ctx.branding.primary_color.clone());
    put("org.support_email", ctx.branding.support_email.clone());
    put("links.unsubscribe", Some(unsubscribe.to_owned()));
    put("links.preferences", Some(unsubscribe.to_owned()));
    put("campaign.name", Some(ctx.campaign_name.clone()));
    put("today", Some(ctx.today.clone()));
    v
}

/// Renders one contact's message, links tracked.
pub fn render_for(
    template: &Template,
    contact: &Contact,
    ctx: &MergeContext,
    tracker: &Tracker,
    campaign_id: &str,
    today_day: i64,
) -> Result<QueuedMessage, String> {
    let unsubscribe = tracker.unsubscribe_url(campaign_id, &contact.id);
    let values = merge_values(contact, ctx, &unsubscribe, today_day);
    let rendered = template
        .render(&values)
        .map_err(|e| format!("rendering for {}: {e}", contact.email))?;
    Ok(QueuedMessage {
        contact_id: contact.id.clone(),
        recipient: contact.email.clone(),
        subject: rendered.subject.replace(['\r', '\n'], " "),
        html: track_html(
            &rendered.html,
            tracker,
            campaign_id,
            &contact.id,
            &unsubscribe,
        ),
        text: rendered.text,
    })
}

/// What queuing a campaign did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queued {
    /// Subscribed contacts the audience matched.
    pub matched: u64,
    /// Messages added to the queue (less than matched when queuing resumed).
    pub added: u64,
}

/// Contacts rendered per round while queuing.
const QUEUE_PAGE: i64 = 1_000;

/// Renders a campaign (already moved to `queuing`) for every subscribed contact its rule
/// matches and queues the messages, then marks it sending. Safe to run again after a
/// crash: messages already queued are kept as they are. `Error::Config` means the
/// campaign itself cannot be queued (its rule or template, a message that cannot be
/// rendered); other errors are the store's or the queue's, and pass.
pub async fn queue_campaign(
    tenant: &Tenant<'_>,
    campaign: &Campaign,
    tracker: &Tracker,
    queue: &Queue,
    now: i64,
) -> Result<Queued, crate::Error> {
    let template = tenant
        .template(&campaign.template_id)
        .await?
        .ok_or_else(|| {
            crate::Error::Config(format!("campaign {}: its template is gone", campaign.id))
        })?;
    let known = tenant
        .value_names()
        .await?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let compiled = crate::segment::Rule::parse(&campaign.rule)
        .and_then(|r| r.compile(&known, now.div_euclid(86_400), 2))
        .map_err(|e| crate::Error::Config(format!("campaign {}: rule: {e}", campaign.id)))?;
    let compiled_template = Template::compile(&template.subject, &template.html, &template.text)
        .map_err(|e| crate::Error::Config(format!("campaign {}: template: {e}", campaign.id)))?;
    let org = tenant.organization().await?;
    let ctx = MergeContext {
        org_name: org.name,
        branding: tenant.branding().await?,
        campaign_name: campaign.name.clone(),
        today: civil(now.div_euclid(86_400))
            .map(|(y, m, d)| merge::long_date(y, m, d))
            .unwrap_or_default(),
    };
    let mut report = Queued::default();
    let mut after = String::new();
    loop {
        let page = tenant.audience_page(&compiled, &after, QUEUE_PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id.clone();
        report.matched += page.len() as u64;
        let messages = page
            .iter()
            .map(|c| {
                render_for(
                    &compiled_template,
                    c,
                    &ctx,
                    tracker,
                    &campaign.id,
                    now.div_euclid(86_400),
                )
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(crate::Error::Config)?;
        report.added += tenant
            .queue_messages(&campaign.id, &messages, now * 1000)
            .await?;
        let ids: Vec<String> = messages.iter().map(|m| m.contact_id.clone()).collect();
        queue
            .added(&campaign.id, &ids, now * 1000)
            .await
            .map_err(crate::Error::Unavailable)?;
        if (page.len() as i64) < QUEUE_PAGE {
            break;
        }
    }
    tenant
        .finish_queuing(&campaign.id, crate::unix_now())
        .await?;
    Ok(report)
}

/// The sending side: configuration, transport, limits.
pub struct Sender {
    config: CampaignConfig,
    transport: Arc<dyn Transport>,
    default_from: Mailbox,
    limits: crate::ratelimit::Limiter,
    tracker: Tracker,
    queue: Queue,
    outcomes: Outcomes,
}

/// An attempt's outcome waiting to be recorded, and where to say how that went.
type Waiting = (
    ClaimedMessage,
    MessageOutcome,
    tokio::sync::oneshot::Sender<Result<bool, String>>,
);

/// Outcomes of attempts, recorded in groups: each attempt adds its own, then whichever
/// takes the pen first writes every outcome waiting, in one transaction. Attempts that
/// end together (a sender runs `concurrency` at once) share one commit instead of paying
/// one each; none waits for a timer.
#[derive(Default)]
struct Outcomes {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    pen: tokio::sync::Mutex<()>,
}

impl Outcomes {
    /// Records `outcome` (with others waiting); false when the message's lease ran out.
    async fn record(
        &self,
        store: &Store,
        m: ClaimedMessage,
        outcome: MessageOutcome,
    ) -> Result<bool, String> {
        let (said, told) = tokio::sync::oneshot::channel();
        self.waiting().push((m, outcome, said));
        {
            let _pen = self.pen.lock().await;
            let mut batch = std::mem::take(&mut *self.waiting());
            if !batch.is_empty() {
                // One order for every writer: rows are locked in the same order.
                batch.sort_by(|a, b| {
                    (&a.0.contact_id, &a.0.campaign_id).cmp(&(&b.0.contact_id, &b.0.campaign_id))
                });
                let items: Vec<(&ClaimedMessage, &MessageOutcome)> =
                    batch.iter().map(|(m, o, _)| (m, o)).collect();
                let result = store
                    .finish_campaign_messages(&items, crate::unix_now_ms())
                    .await;
                drop(items);
                match result {
                    Ok(recorded) => {
                        for ((_, _, said), ok) in batch.into_iter().zip(recorded) {
                            let _ = said.send(Ok(ok));
                        }
                    }
                    Err(e) => {
                        let why = e.to_string();
                        for (_, _, said) in batch {
                            let _ = said.send(Err(why.clone()));
                        }
                    }
                }
            }
        }
        told.await
            .map_err(|_| "the outcome's writer stopped before recording it".to_owned())?
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("config", &self.config.masked())
            .field("default_from", &self.default_from)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Sends one message now, outside the queue (template test sends).
    pub async fn send_now(&self, m: &Outgoing) -> Sent {
        self.transport.send(m).await
    }

    /// The sender of an organization's mail: its branded address and name, else the
    /// configured one.
    pub fn from_for(&self, branding: &Branding) -> Mailbox {
        match (&branding.from_email, &branding.from_name) {
            (Some(email), name) => email
                .parse::<lettre::Address>()
                .map(|a| Mailbox::new(name.clone(), a))
                .unwrap_or_else(|_| self.default_from.clone()),
            (None, Some(name)) => Mailbox::new(Some(name.clone()), self.default_from.email.clone()),
            (None, None) => self.default_from.clone(),
        }
    }

    /// A sender over `transport`; `default_from` when an organization names no sender.
    /// `limits` counts each domain's sends (in Redis, shared by every replica, when the
    /// server has one).
    pub fn new(
        config: CampaignConfig,
        transport: Arc<dyn Transport>,
        default_from: Mailbox,
        tracker: Tracker,
        limits: crate::ratelimit::Limiter,
        queue: Queue,
    ) -> Sender {
        Sender {
            config,
            transport,
            default_from,
            limits,
            tracker,
            queue,
            outcomes: Outcomes::default(),
        }
    }

    /// The transport the configuration asks for: SendGrid when it has a key, else SMTP;
    /// None when neither is configured.
    pub fn transport_for(
        config: &CampaignConfig,
        notifications: &crate::notify::NotifyConfig,
    ) -> Result<Option<Arc<dyn Transport>>, String> {
        if let Some(key) = &config.sendgrid_api_key {
            return Ok(Some(Arc::new(SendGridTransport::new(
                &config.sendgrid_api_url,
                key,
                config.timeout_secs,
            )?)));
        }
        match config.smtp_url.as_ref().or(notifications.smtp_url.as_ref()) {
            Some(url) => Ok(Some(Arc::new(SmtpTransport::new(
                url,
                config.timeout_secs,
            )?))),
            None => Ok(None),
        }
    }

    /// Makes one attempt at a claimed message and records it (in `store`, with other
    /// attempts ending at the same time: give a sender one store).
    pub async fn attempt(&self, store: &Store, m: ClaimedMessage) {
        let now = crate::unix_now_ms();
        let outcome = if m.consent != "subscribed" {
            MessageOutcome::Suppressed
        } else {
            let per_minute = self
                .config
                .domain_limits
                .get(&m.domain)
                .copied()
                .unwrap_or(self.config.per_domain_per_minute);
            let policy = crate::ratelimit::Policy {
                limit: per_minute,
                window_secs: 60,
            };
            match self
                .limits
                .hit(&format!("campaign-domain:{}", m.domain), policy, now / 1000)
                .await
            {
                crate::ratelimit::Decision::Deny { retry_after } => MessageOutcome::Retry {
                    error: format!("held back: {per_minute} messages a minute to {}", m.domain),
                    at_ms: now + retry_after as i64 * 1000,
                    counts: false,
                },
                crate::ratelimit::Decision::Allow => {
                    let outgoing = self.outgoing(&m);
                    match self.transport.send(&outgoing).await {
                        Sent::Ok(id) => MessageOutcome::Sent(id),
                        Sent::Permanent { error, bounced } => {
                            MessageOutcome::Failed { error, bounced }
                        }
                        Sent::Transient(error) => {
                            if m.attempts + 1 >= i64::from(self.config.max_attempts) {
                                MessageOutcome::Failed {
                                    error: format!(
                                        "{error} (attempt {} of {}; giving up)",
                                        m.attempts + 1,
                                        self.config.max_attempts
                                    ),
                                    bounced: false,
                                }
                            } else {
                                let wait = crate::webhooks::backoff_ms(
                                    m.attempts as u32 + 1,
                                    self.config.backoff_base_ms,
                                    self.config.backoff_max_ms,
                                    crate::webhooks::jitter(),
                                );
                                MessageOutcome::Retry {
                                    error,
                                    at_ms: crate::unix_now_ms() + wait as i64,
                                    counts: true,
                                }
                            }
                        }
                    }
                }
            }
        };
        match self
            .outcomes
            .record(store, m.clone(), outcome.clone())
            .await
        {
            Ok(true) => self.queue.settle(&m, &outcome).await,
            Ok(false) => tracing::warn!(campaign = %m.campaign_id, contact = %m.contact_id,
                "a campaign message's lease ran out before its outcome was recorded"),
            Err(e) => tracing::error!(error = %e, "recording a campaign message"),
        }
    }

    fn outgoing(&self, m: &ClaimedMessage) -> Outgoing {
        let from = self.from_for(&Branding {
            from_name: m.from_name.clone(),
            from_email: m.from_email.clone(),
            ..Branding::default()
        });
        let reply_to = m
            .reply_to
            .as_deref()
            .and_then(|r| r.parse::<lettre::Address>().ok())
            .map(|a| Mailbox::new(None, a));
        Outgoing {
            message_id: format!(
                "<{}.{}@{}>",
                m.campaign_id,
                m.contact_id,
                from.email.domain()
            ),
            from,
            reply_to,
            to: m.recipient.clone(),
            subject: m.subject.clone(),
            text: m.text.clone(),
            html: m.html.clone(),
            unsubscribe: self.tracker.unsubscribe_url(&m.campaign_id, &m.contact_id),
            campaign_id: m.campaign_id.clone(),
            contact_id: m.contact_id.clone(),
        }
    }
}

/// Queues due campaigns (scheduled, or whose queuing stopped half-way), one round.
pub async fn queue_due(store: &Store, tracker: &Tracker, queue: &Queue, stale_secs: i64) {
    let now = crate::unix_now();
    let due = match store.take_due_campaigns(now, now - stale_secs).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "finding due campaigns");
            return;
        }
    };
    for (org_id, id) in due {
        let tenant = store.tenant_by_id(&org_id);
        let campaign = match tenant.campaign(&id).await {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, campaign = %id, "reading a due campaign");
                continue;
            }
        };
        match queue_campaign(&tenant, &campaign, tracker, queue, now).await {
            Ok(q) => {
                tracing::info!(campaign = %id, matched = q.matched, added = q.added, "campaign queued")
            }
            // The campaign itself cannot be queued: say so on it, and stop.
            Err(crate::Error::Config(why)) => {
                tracing::warn!(campaign = %id, %why, "a campaign cannot be queued; it failed");
                if let Err(e) = tenant.fail_campaign(&id, &why, crate::unix_now()).await {
                    tracing::error!(error = %e, campaign = %id, "marking a campaign failed");
                }
            }
            // The store or the queue is unavailable: the campaign is taken again later.
            Err(e) => tracing::error!(error = %e, campaign = %id, "queuing a campaign"),
        }
    }
}

/// One round of the background work: queue due campaigns, send what is due, mark
/// finished campaigns sent.
pub async fn round(store: &Store, sender: Option<&Arc<Sender>>, tracker: &Tracker, queue: &Queue) {
    queue_due(store, tracker, queue, 600).await;
    if let Some(sender) = sender {
        crate::webhooks::send_due(
            "campaign messages",
            sender.config.concurrency,
            sender.config.lease_secs as i64 * 1000,
            |now, until, limit| queue.claim(store, now, until, limit),
            |m| {
                let sender = sender.clone();
                async move { sender.attempt(store, m).await }
            },
        )
        .await;
    }
    if let Err(e) = store.complete_campaigns(crate::unix_now()).await {
        tracing::error!(error = %e, "completing campaigns");
    }
}

/// How often a Redis-backed queue is checked against the store.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// The background loop: [`round`] every `poll`, and (with Redis) the queue reconciled
/// with the store at start and every minute.
pub async fn run(
    store: Store,
    sender: Option<Arc<Sender>>,
    tracker: Tracker,
    queue: Queue,
    poll: Duration,
) {
    let mut reconciled: Option<std::time::Instant> = None;
    loop {
        if reconciled.is_none_or(|at| at.elapsed() >= RECONCILE_EVERY) {
            match queue.reconcile(&store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    restored = n,
                    "campaign messages put back in the Redis queue"
                ),
                Err(e) => tracing::error!(error = %e, "reconciling the campaign queue"),
            }
            reconciled = Some(std::time::Instant::now());
        }
        round(&store, sender.as_ref(), &tracker, &queue).await;
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks_name_the_key() {
        assert!(CampaignConfig::default().validate().is_ok());
        let bad = CampaignConfig {
            smtp_url: Some("http://x".into()),
            ..CampaignConfig::default()
        };
        assert!(bad.validate().expect_err("bad").contains("smtp_url"));
        let bad = CampaignConfig {
            from: Some("not an address".into()),
            ..CampaignConfig::default()
        };
        assert!(bad.validate().expect_err("bad").contains("from"));
        let bad = CampaignConfig {
            per_domain_per_minute: 0,
            ..CampaignConfig::default()
        };
        assert!(
            bad.validate()
                .expect_err("bad")
                .contains("per_domain_per_minute")
        );
        let mut serve = crate::config::ServeConfig::default();
        serve.campaigns.queue = QueueBackend::Redis;
        let err = serve.validate().expect_err("redis queue without redis");
        assert!(err.to_string().contains("redis_url"), "{err}");
        let bad = CampaignConfig {
            sendgrid_webhook_key: Some("bm90IGEga2V5".into()),
            ..CampaignConfig::default()
        };
        assert!(
            bad.validate()
                .expect_err("bad")
                .contains("sendgrid_webhook_key")
        );
        let masked = CampaignConfig {
            sendgrid_api_key: Some("SG.secret".into()),
            ..CampaignConfig::default()
        }
        .masked();
        assert_eq!(masked.sendgrid_api_key.as_deref(), Some("********"));
    }
}
