//! Webhook delivery: every alert event an organization's endpoint wants is POSTed to it
//! as JSON, signed, and retried with exponential back-off and jitter until it is
//! answered with a 2xx or the attempts run out (then it is dead, listed, and replayable).
//!
//! Each request carries:
//! - `x-roi-event`: the event name; `x-roi-delivery`: the delivery id (the same on every
//!   attempt: receivers deduplicate by it);
//! - `x-roi-signature: t=UNIX_SECONDS,v1=HEX`, where HEX is HMAC-SHA256 with the
//!   endpoint's secret over `UNIX_SECONDS.BODY`. Receivers recompute it, compare in
//!   constant time, and refuse old timestamps (replays).
//!
//! The body: `{"delivery_id", "event_id", "event", "org_id", "at", "data"}`, `data` as
//! the WebSocket push sends it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::store::{AttemptOutcome, DueDelivery, Store};

/// `[serve.webhooks]`: how deliveries are attempted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// Wait before the second attempt, milliseconds; doubles each time, ±50 % jitter.
    pub backoff_base_ms: u64,
    /// Longest wait between attempts, milliseconds.
    pub backoff_max_ms: u64,
    /// Time an endpoint has to answer, seconds.
    pub timeout_secs: u64,
    /// Milliseconds between looks for due deliveries when nothing new arrived.
    pub poll_ms: u64,
    /// Deliveries sent at once.
    pub concurrency: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_attempts: 8,
            backoff_base_ms: 2_000,
            backoff_max_ms: 3_600_000,
            timeout_secs: 10,
            poll_ms: 1_000,
            concurrency: 16,
        }
    }
}

impl WebhookConfig {
    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=50).contains(&self.max_attempts) {
            return Err("webhooks.max_attempts: must be between 1 and 50".into());
        }
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            return Err(
                "webhooks.backoff_base_ms: must be at least 1 and at most backoff_max_ms".into(),
            );
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err("webhooks.timeout_secs: must be between 1 and 120".into());
        }
        if !(10..=60_000).contains(&self.poll_ms) {
            return Err("webhooks.poll_ms: must be between 10 and 60000".into());
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err("webhooks.concurrency: must be between 1 and 256".into());
        }
        Ok(())
    }
}

/// The `x-roi-signature` value of `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        crate::auth::secret::hex(tag.as_ref())
    )
}

/// Milliseconds to wait after failed attempt number `attempt` (1 = the first): the base
/// doubled per attempt, capped, times `0.5 + jitter` (`jitter` in [0, 1)).
pub fn backoff_ms(attempt: u32, base: u64, max: u64, jitter: f64) -> u64 {
    let doubled = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
    let capped = doubled.min(max) as f64;
    (capped * (0.5 + jitter.clamp(0.0, 1.0))).round() as u64
}

/// Sends what is due, in rounds of at most `concurrency` at once, until a round comes back
/// short. `take(now_ms, lease_until_ms, limit)` leases the due items (for `lease_ms`);
/// `send` makes one attempt and records it. `what` names the items in the log.
pub(crate) async fn send_due<T, E, Take, TakeFut, Send, SendFut>(
    what: &str,
    concurrency: u32,
    lease_ms: i64,
    take: Take,
    send: Send,
) where
    E: std::fmt::Display,
    Take: Fn(i64, i64, i64) -> TakeFut,
    TakeFut: std::future::Future<Output = Result<Vec<T>, E>>,
    Send: Fn(T) -> SendFut,
    SendFut: std::future::Future<Output = ()>,
{
    loop {
        let now = crate::unix_now_ms();
        let due = match take(now, now + lease_ms, i64::from(concurrency)).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "finding due {what}");
                return;
            }
        };
        let full = due.len() == concurrency as usize;
        futures_util::future::join_all(due.into_iter().map(&send)).await;
        if !full {
            return;
        }
    }
}

/// A uniform draw from [0, 1) for back-off jitter.
pub(crate) fn jitter() -> f64 {
    let [a, b] = crate::auth::secret::random_bytes::<2>();
    f64::from(u16::from_le_bytes([a, b])) / 65_536.0
}

/// The request body of a delivery.
pub fn body(d: &DueDelivery) -> String {
    format!(
        r#"{{"delivery_id":{},"event_id":{},"event":{},"org_id":{},"at":{},"data":{}}}"#,
        serde_json::json!(d.delivery.id),
        d.event.id,
        serde_json::json!(d.event.event),
        serde_json::json!(d.event.org_id),
        d.event.at,
        d.event.data
    )
}

async fn attempt(client: &reqwest::Client, store: &Store, config: &WebhookConfig, d: DueDelivery) {
    let body = body(&d);
    let timestamp = crate::unix_now();
    let sent = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("x-roi-event", &d.event.event)
        .header("x-roi-delivery", &d.delivery.id)
        .header("x-roi-signature", signature(&d.secret, timestamp, &body))
        .body(body)
        .send()
        .await;
    let attempts = u32::try_from(d.delivery.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let retry_at = || {
        (attempts < config.max_attempts).then(|| {
            crate::unix_now_ms()
                + backoff_ms(
                    attempts,
                    config.backoff_base_ms,
                    config.backoff_max_ms,
                    jitter(),
                ) as i64
        })
    };
    let outcome = match sent {
        Ok(r) if r.status().is_success() => {
            AttemptOutcome::Delivered(i64::from(r.status().as_u16()))
        }
        Ok(r) => AttemptOutcome::Failed {
            status: Some(i64::from(r.status().as_u16())),
            error: format!("the endpoint answered {}", r.status()),
            retry_at_ms: retry_at(),
        },
        Err(e) => AttemptOutcome::Failed {
            status: None,
            error: if e.is_timeout() {
                format!("no answer within {} s", config.timeout_secs)
            } else if e.is_connect() {
                "cannot connect to the endpoint".to_owned()
            } else {
                format!("request failed: {e}")
            },
            retry_at_ms: retry_at(),
        },
    };
    if let AttemptOutcome::Failed {
        retry_at_ms: None,
        error,
        ..
    } = &outcome
    {
        tracing::warn!(delivery = %d.delivery.id, error, "webhook delivery is dead after {attempts} attempts");
    }
    if let Err(e) = store
        .finish_attempt(&d.delivery.id, &outcome, crate::unix_now())
        .await
    {
        tracing::error!(error = %e, "recording a webhook attempt");
    }
}

/// Queues deliveries from the event log and sends the due ones, when `wake` is notified
/// (events were appended) and every `poll_ms`. Runs until the task is dropped.
pub async fn run(store: Store, config: WebhookConfig, wake: Arc<Notify>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("roi-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook HTTP client; webhooks are not sent");
            return;
        }
    };
    let lease_ms = (config.timeout_secs as i64 + 5) * 1000;
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(config.poll_ms)) => {}
        }
        loop {
            match store
                .queue_webhook_deliveries(500, crate::unix_now_ms())
                .await
            {
                Ok((0, _)) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "queueing webhook deliveries");
                    break;
                }
            }
        }
        send_due(
            "webhook deliveries",
            config.concurrency,
            lease_ms,
            |now, until, limit| store.take_due_deliveries(now, until, limit),
            |d| attempt(&client, &store, &config, d),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_half() {
        assert_eq!(backoff_ms(1, 1000, 60_000, 0.5), 1000);
        assert_eq!(backoff_ms(2, 1000, 60_000, 0.5), 2000);
        assert_eq!(backoff_ms(4, 1000, 60_000, 0.5), 8000);
        assert_eq!(backoff_ms(30, 1000, 60_000, 0.5), 60_000);
        assert_eq!(backoff_ms(3, 1000, 60_000, 0.0), 2000);
        assert_eq!(backoff_ms(3, 1000, 60_000, 1.0), 6000);
        assert!(jitter() < 1.0);
    }

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: printf '1700000000.{"a":1}' |
        //   openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
