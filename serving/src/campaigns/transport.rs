//! Mail transports for campaigns: SMTP (lettre) and the SendGrid v3 HTTP API, behind one
//! trait.

use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One message ready for a transport.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `Message-ID` (the same on every attempt).
    pub message_id: String,
    /// Sender.
    pub from: Mailbox,
    /// Reply-To.
    pub reply_to: Option<Mailbox>,
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// The one-click unsubscribe URL (`List-Unsubscribe`).
    pub unsubscribe: String,
    /// Campaign id (for providers' event webhooks).
    pub campaign_id: String,
    /// Contact id.
    pub contact_id: String,
}

/// How a transport's attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Taken, with the provider's id when it gives one.
    Ok(Option<String>),
    /// Try again later.
    Transient(String),
    /// Never: `bounced` when the recipient's address was refused.
    Permanent {
        /// Why.
        error: String,
        /// The address was refused.
        bounced: bool,
    },
}

/// A way to send campaign mail.
pub trait Transport: Send + Sync {
    /// Makes one attempt.
    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Sent>;
}

/// SMTP through lettre.
pub struct SmtpTransport {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpTransport {
    /// A transport for `url`.
    pub fn new(url: &str, timeout_secs: u64) -> Result<SmtpTransport, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("campaign SMTP URL: {e}"))?
            .timeout(Some(Duration::from_secs(timeout_secs)))
            .build();
        Ok(SmtpTransport { transport })
    }

    async fn deliver(&self, m: &Outgoing) -> Sent {
        let to = match m.to.parse::<lettre::Address>() {
            Ok(a) => Mailbox::new(None, a),
            Err(e) => {
                return Sent::Permanent {
                    error: format!("{:?} is not an address: {e}", m.to),
                    bounced: true,
                };
            }
        };
        let mut builder = Message::builder()
            .from(m.from.clone())
            .to(to)
            .subject(&m.subject)
            .message_id(Some(m.message_id.clone()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{}>", m.unsubscribe),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
        if let Some(r) = &m.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let message = match builder.multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            m.html.clone(),
        )) {
            Ok(msg) => msg,
            Err(e) => {
                return Sent::Permanent {
                    error: format!("cannot build the message: {e}"),
                    bounced: false,
                };
            }
        };
        match self.transport.send(message).await {
            Ok(response) => Sent::Ok(response.message().next().map(str::to_owned)),
            Err(e) if e.is_permanent() => {
                let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                Sent::Permanent {
                    bounced: matches!(code.as_str(), "550" | "551" | "553"),
                    error: format!("the SMTP server refused: {e}"),
                }
            }
            Err(e) => Sent::Transient(format!("SMTP: {e}")),
        }
    }
}

impl Transport for SmtpTransport {
    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Sent> {
        Box::pin(self.deliver(m))
    }
}

/// The SendGrid v3 mail-send API (`POST {base}/v3/mail/send`, bearer key).
pub struct SendGridTransport {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl SendGridTransport {
    /// A transport for the API at `base`.
    pub fn new(base: &str, key: &str, timeout_secs: u64) -> Result<SendGridTransport, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("SendGrid client: {e}"))?;
        Ok(SendGridTransport {
            http,
            url: format!("{}/v3/mail/send", base.trim_end_matches('/')),
            key: key.to_owned(),
        })
    }

    /// The request body for one message.
    pub fn body(m: &Outgoing) -> serde_json::Value {
        let address = |b: &Mailbox| {
            let mut v = serde_json::json!({"email": b.email.to_string()});
            if let Some(name) = &b.name {
                v["name"] = serde_json::json!(name);
            }
            v
        };
        let mut body = serde_json::json!({
            "personalizations": [{"to": [{"email": m.to}]}],
            "from": address(&m.from),
            "subject": m.subject,
            "content": [
                {"type": "text/plain", "value": m.text},
                {"type": "text/html", "value": m.html},
            ],
            "headers": {
                "List-Unsubscribe": format!("<{}>", m.unsubscribe),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Message-ID": m.message_id,
            },
            "custom_args": {"campaign_id": m.campaign_id, "contact_id": m.contact_id},
        });
        if let Some(r) = &m.reply_to {
            body["reply_to"] = address(r);
        }
        body
    }

    async fn deliver(&self, m: &Outgoing) -> Sent {
        let sent = self
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&Self::body(m))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Sent::Ok(
                r.headers()
                    .get("x-message-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                Sent::Transient(format!("SendGrid answered {}", r.status()))
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                Sent::Permanent {
                    error: format!(
                        "SendGrid refused ({status}): {}",
                        text.chars().take(300).collect::<String>()
                    ),
                    bounced: false,
                }
            }
            Err(e) => Sent::Transient(format!("SendGrid: {e}")),
        }
    }
}

impl Transport for SendGridTransport {
    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Sent> {
        Box::pin(self.deliver(m))
    }
}
