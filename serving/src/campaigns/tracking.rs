//! Tracking links of campaign mail: every link of the HTML part through a signed click
//! redirect, an open pixel, the unsubscribe link; and the pipeline event log opens and
//! clicks are appended to (`email_opened`, `email_clicked`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::store::TrackedMessage;

/// Signs and checks tracking links. Paths: `/t/o/{campaign}/{contact}/{sig}` (open
/// pixel), `/t/c/{campaign}/{contact}/{sig}?u={url}` (click), `/u/{campaign}/{contact}/{sig}`
/// (unsubscribe page and RFC 8058 one-click POST).
#[derive(Clone)]
pub struct Tracker {
    key: ring::hmac::Key,
    base: String,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").field("base", &self.base).finish()
    }
}

/// What a tracking link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// The open pixel.
    Open,
    /// A click redirect.
    Click,
    /// The unsubscribe page and one-click POST.
    Unsubscribe,
}

impl LinkKind {
    fn tag(self) -> &'static str {
        match self {
            LinkKind::Open => "o",
            LinkKind::Click => "c",
            LinkKind::Unsubscribe => "u",
        }
    }
}

impl Tracker {
    /// A tracker signing with `secret` for a server reached at `base` (no trailing `/`).
    pub fn new(secret: &[u8], base: &str) -> Tracker {
        Tracker {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn sign(&self, kind: LinkKind, campaign: &str, contact: &str, url: &str) -> String {
        let text = format!("{}\n{campaign}\n{contact}\n{url}", kind.tag());
        let tag = ring::hmac::sign(&self.key, text.as_bytes());
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &tag.as_ref()[..18],
        )
    }

    /// Whether `sig` is this server's signature of the link (constant time).
    pub fn verify(
        &self,
        kind: LinkKind,
        campaign: &str,
        contact: &str,
        url: &str,
        sig: &str,
    ) -> bool {
        let Ok(given) =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)
        else {
            return false;
        };
        let text = format!("{}\n{campaign}\n{contact}\n{url}", kind.tag());
        let tag = ring::hmac::sign(&self.key, text.as_bytes());
        // Every byte is compared whatever the first difference (no early exit).
        given.len() == 18
            && tag.as_ref()[..18]
                .iter()
                .zip(&given)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }

    /// The open pixel's URL.
    pub fn open_url(&self, campaign: &str, contact: &str) -> String {
        format!(
            "{}/t/o/{campaign}/{contact}/{}",
            self.base,
            self.sign(LinkKind::Open, campaign, contact, "")
        )
    }

    /// A click redirect to `url`.
    pub fn click_url(&self, campaign: &str, contact: &str, url: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
        format!(
            "{}/t/c/{campaign}/{contact}/{}?u={encoded}",
            self.base,
            self.sign(LinkKind::Click, campaign, contact, url)
        )
    }

    /// The unsubscribe page (also the one-click POST target and the preferences page).
    pub fn unsubscribe_url(&self, campaign: &str, contact: &str) -> String {
        format!(
            "{}/u/{campaign}/{contact}/{}",
            self.base,
            self.sign(LinkKind::Unsubscribe, campaign, contact, "")
        )
    }
}

/// Puts every `http(s)` link of an HTML part through the click redirect (the
/// unsubscribe link excepted) and appends the open pixel.
pub fn track_html(
    html: &str,
    tracker: &Tracker,
    campaign: &str,
    contact: &str,
    unsubscribe: &str,
) -> String {
    let mut out = String::with_capacity(html.len() + 512);
    let mut rest = html;
    while let Some(at) = find_href(rest) {
        let (head, tail) = rest.split_at(at.value_start);
        out.push_str(head);
        let value = &tail[..at.value_len];
        let raw = value.replace("&amp;", "&");
        if (raw.starts_with("http://") || raw.starts_with("https://")) && raw != unsubscribe {
            out.push_str(&html_attr(&tracker.click_url(campaign, contact, &raw)));
        } else {
            out.push_str(value);
        }
        rest = &tail[at.value_len..];
    }
    out.push_str(rest);
    let pixel = format!(
        r#"<img src="{}" width="1" height="1" alt="" style="display:none">"#,
        html_attr(&tracker.open_url(campaign, contact))
    );
    match out.rfind("</body>") {
        Some(end) => out.insert_str(end, &pixel),
        None => out.push_str(&pixel),
    }
    out
}

struct Href {
    value_start: usize,
    value_len: usize,
}

/// The next `href="…"` (or `'…'`) attribute value.
fn find_href(html: &str) -> Option<Href> {
    let bytes = html.as_bytes();
    let mut from = 0;
    while let Some(i) = html[from..].find("href=") {
        let at = from + i + 5;
        let quote = *bytes.get(at)?;
        if quote == b'"' || quote == b'\'' {
            let start = at + 1;
            let len = html[start..].find(quote as char)?;
            return Some(Href {
                value_start: start,
                value_len: len,
            });
        }
        from = at;
    }
    None
}

fn html_attr(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;")
}

/// Appends events (campaign engagement, document activity) to the pipeline's NDJSON
/// event log.
#[derive(Debug, Clone)]
pub struct EventLog {
    path: Option<PathBuf>,
    lock: Arc<Mutex<()>>,
}

impl EventLog {
    /// A log at `path` (none: events are not written).
    pub fn new(path: Option<PathBuf>) -> EventLog {
        EventLog {
            path,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// A new event id: random, in a range of its own (from 2^60) so it never meets the
    /// ids other producers number from 1.
    pub fn new_event_id() -> i64 {
        (1i64 << 60) | crate::store::lake_id_of(&crate::auth::secret::new_id("ev"))
    }

    /// The event line for an engagement, in the pipeline's `events` format; None when the
    /// contact or organization is not one of the pipeline's.
    pub fn line(m: &TrackedMessage, event_type: &str, event_id: i64, at_ms: i64) -> Option<String> {
        let ts = chrono::DateTime::from_timestamp_millis(at_ms)?
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let value = serde_json::json!({
            "event_id": event_id,
            "org_id": m.lake_org_id?,
            "contact_id": m.lake_contact_id?,
            "event_type": event_type,
            "ts": ts,
            "campaign_id": m.campaign_lake_id,
        });
        Some(value.to_string())
    }

    /// Appends one event (`email_opened` or `email_clicked`).
    pub fn append(&self, m: &TrackedMessage, event_type: &str, event_id: i64, at_ms: i64) {
        if let Some(line) = Self::line(m, event_type, event_id, at_ms) {
            self.append_line(&line);
        }
    }

    /// Appends one event line (a JSON object in the pipeline's `events` format).
    pub fn append_line(&self, line: &str) {
        let Some(path) = &self.path else {
            return;
        };
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            file.write_all(format!("{line}\n").as_bytes())
        })();
        if let Err(e) = written {
            tracing::error!(path = %path.display(), error = %e, "appending an event to the event log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_signed_and_checked() {
        let t = Tracker::new(b"secret", "https://roi.test/");
        let click = t.click_url("cmp_1", "ct_2", "https://acme.test/a?b=1&c=2");
        assert!(
            click.starts_with("https://roi.test/t/c/cmp_1/ct_2/"),
            "{click}"
        );
        let sig = click
            .split('/')
            .nth(7)
            .and_then(|s| s.split('?').next())
            .expect("sig");
        assert!(t.verify(
            LinkKind::Click,
            "cmp_1",
            "ct_2",
            "https://acme.test/a?b=1&c=2",
            sig
        ));
        assert!(!t.verify(LinkKind::Click, "cmp_1", "ct_2", "https://evil.test/", sig));
        assert!(!t.verify(
            LinkKind::Click,
            "cmp_1",
            "ct_3",
            "https://acme.test/a?b=1&c=2",
            sig
        ));
        assert!(!t.verify(
            LinkKind::Open,
            "cmp_1",
            "ct_2",
            "https://acme.test/a?b=1&c=2",
            sig
        ));
        assert!(!t.verify(
            LinkKind::Click,
            "cmp_1",
            "ct_2",
            "https://acme.test/a?b=1&c=2",
            "AAAA"
        ));
        let other = Tracker::new(b"other", "https://roi.test");
        assert!(!other.verify(
            LinkKind::Click,
            "cmp_1",
            "ct_2",
            "https://acme.test/a?b=1&c=2",
            sig
        ));
    }

    #[test]
    fn html_links_go_through_the_redirect_and_the_pixel_is_added() {
        let t = Tracker::new(b"k", "https://roi.test");
        let unsub = t.unsubscribe_url("c", "p");
        let html = format!(
            r#"<body><a href="https://acme.test/x?a=1&amp;b=2">x</a> <a href='mailto:a@b.test'>m</a> <a href="{unsub}">u</a></body>"#
        );
        let out = track_html(&html, &t, "c", "p", &unsub);
        assert!(out.contains("https://roi.test/t/c/c/p/"), "{out}");
        assert!(
            out.contains("u=https%3A%2F%2Facme.test%2Fx%3Fa%3D1%26b%3D2"),
            "{out}"
        );
        assert!(out.contains("href='mailto:a@b.test'"), "{out}");
        assert!(out.contains(&format!("href=\"{unsub}\"")), "{out}");
        assert!(
            out.contains("/t/o/c/p/") && out.ends_with("</body>"),
            "{out}"
        );
    }
}
