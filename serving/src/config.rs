//! Typed configuration of the server and the store (`[serve]` and `[database]` in
//! `roi.toml`), defaulted here and validated by [`ServeConfig::validate`].

use serde::{Deserialize, Serialize};

use crate::oidc::OidcConfig;
use crate::ratelimit::Limits;

/// `[database]`: where the relational store lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`; unset means the SQLite
    /// file `<data_dir>/roi.db`.
    pub url: Option<String>,
    /// Connections kept in the pool.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 8,
        }
    }
}

/// `[serve]`: the HTTP server and its tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on.
    pub bind: String,
    /// The `iss` of every access token.
    pub issuer: String,
    /// Lifetime of an access token, seconds. Short: a logout cannot recall one.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token, days (each use replaces it with a fresh one).
    pub refresh_token_ttl_days: u64,
    /// A new signing key is made after this many hours; old keys verify until the tokens
    /// they signed have expired.
    pub key_rotation_hours: u64,
    /// Lifetime of an invitation, hours.
    pub invitation_ttl_hours: u64,
    /// Whether anyone may create an organization with `POST /auth/signup`.
    pub open_signup: bool,
    /// The request header that carries the client's address when a trusted proxy sits
    /// in front (e.g. `x-forwarded-for`); unset means the socket's peer address.
    pub client_ip_header: Option<String>,
    /// Attempt limits (`[serve.limits]`).
    pub limits: Limits,
    /// Redis for state shared by replicas (attempt counters), e.g.
    /// `redis://127.0.0.1:6379`; unset keeps it in-process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this deployment writes.
    pub redis_namespace: String,
    /// Origins (`https://app.example.com`) whose pages may call the API from a browser,
    /// cookies included. Empty (the default) allows no cross-origin calls.
    pub cors_allowed_origins: Vec<String>,
    /// The URL browsers reach this server at (`https://roi.example.com`), for the
    /// sign-in providers' redirect URIs; unset means `http://BIND`.
    pub public_url: Option<String>,
    /// Sign-in providers (`[serve.oidc.providers.NAME]`).
    pub oidc: OidcConfig,
    /// Live push and background routing (`[serve.push]`).
    pub push: PushConfig,
    /// Webhook delivery attempts (`[serve.webhooks]`).
    pub webhooks: crate::webhooks::WebhookConfig,
    /// E-mail and SMS to users (`[serve.notifications]`).
    pub notifications: crate::notify::NotifyConfig,
    /// E-mail campaigns: transport, rate limits, retries, tracking (`[serve.campaigns]`).
    pub campaigns: crate::campaigns::CampaignConfig,
    /// Document storage and retention (`[serve.documents]`).
    pub documents: crate::documents::DocumentsConfig,
}

/// `[serve.push]`: the WebSocket push and the background router.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Seconds between heartbeat pings on each WebSocket; a client silent for two
    /// intervals is disconnected.
    pub heartbeat_secs: u64,
    /// Milliseconds between reads of the event log when nothing announced new events
    /// (events written by this process, or announced through Redis, are pushed at once).
    pub poll_ms: u64,
    /// Whether the server routes new alerts itself, with each organization's rules, as
    /// they arrive (and re-routes those not accepted in time).
    pub auto_route: bool,
    /// Seconds between background routing rounds when no new alerts arrived (for
    /// re-routing unaccepted alerts).
    pub route_interval_secs: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            heartbeat_secs: 20,
            poll_ms: 1000,
            auto_route: true,
            route_interval_secs: 15,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            bind: "127.0.0.1:8080".to_owned(),
            issuer: "roi".to_owned(),
            access_token_ttl_secs: 600,
            refresh_token_ttl_days: 30,
            key_rotation_hours: 24,
            invitation_ttl_hours: 72,
            open_signup: true,
            client_ip_header: None,
            limits: Limits::default(),
            redis_url: None,
            redis_namespace: "roi".to_owned(),
            cors_allowed_origins: Vec::new(),
            public_url: None,
            oidc: OidcConfig::default(),
            push: PushConfig::default(),
            webhooks: crate::webhooks::WebhookConfig::default(),
            notifications: crate::notify::NotifyConfig::default(),
            campaigns: crate::campaigns::CampaignConfig::default(),
            documents: crate::documents::DocumentsConfig::default(),
        }
    }
}

impl ServeConfig {
    /// The URL browsers reach this server at, without a trailing slash: `public_url`,
    /// else `http://BIND`.
    pub fn base_url(&self) -> String {
        self.public_url
            .as_deref()
            .map_or_else(|| format!("http://{}", self.bind), str::to_owned)
            .trim_end_matches('/')
            .to_owned()
    }

    /// Checks the values that serde cannot.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |key: &str, why: &str| Err(crate::Error::Config(format!("serve.{key}: {why}")));
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad(
                "bind",
                &format!("{:?} is not HOST:PORT (e.g. 127.0.0.1:8080)", self.bind),
            );
        }
        if !(30..=86_400).contains(&self.access_token_ttl_secs) {
            return bad("access_token_ttl_secs", "must be between 30 and 86400");
        }
        if !(1..=365).contains(&self.refresh_token_ttl_days) {
            return bad("refresh_token_ttl_days", "must be between 1 and 365");
        }
        if self.key_rotation_hours == 0 {
            return bad("key_rotation_hours", "must be at least 1");
        }
        if self.invitation_ttl_hours == 0 {
            return bad("invitation_ttl_hours", "must be at least 1");
        }
        for (key, p) in [
            ("login_per_ip", self.limits.login_per_ip),
            (
                "login_failures_per_account",
                self.limits.login_failures_per_account,
            ),
            ("refresh_per_ip", self.limits.refresh_per_ip),
            ("accept_per_ip", self.limits.accept_per_ip),
            ("mfa_per_ip", self.limits.mfa_per_ip),
            (
                "mfa_failures_per_account",
                self.limits.mfa_failures_per_account,
            ),
            ("reset_per_ip", self.limits.reset_per_ip),
        ] {
            if p.limit == 0 || p.window_secs == 0 {
                return bad(
                    &format!("limits.{key}"),
                    "limit and window_secs must be at least 1",
                );
            }
        }
        if !(1..=3600).contains(&self.push.heartbeat_secs) {
            return bad("push.heartbeat_secs", "must be between 1 and 3600");
        }
        if !(10..=60_000).contains(&self.push.poll_ms) {
            return bad("push.poll_ms", "must be between 10 and 60000");
        }
        if !(1..=86_400).contains(&self.push.route_interval_secs) {
            return bad("push.route_interval_secs", "must be between 1 and 86400");
        }
        if let Err(why) = self.webhooks.validate() {
            return Err(crate::Error::Config(format!("serve.{why}")));
        }
        if let Err(why) = self.notifications.validate() {
            return Err(crate::Error::Config(format!("serve.{why}")));
        }
        if let Err(why) = self.campaigns.validate() {
            return Err(crate::Error::Config(why));
        }
        self.documents.validate().map_err(crate::Error::Config)?;
        if self.campaigns.queue == crate::campaigns::QueueBackend::Redis && self.redis_url.is_none()
        {
            return Err(crate::Error::Config(
                "serve.campaigns.queue = \"redis\" needs serve.redis_url".to_owned(),
            ));
        }
        if self.issuer.is_empty() {
            return bad("issuer", "must not be empty");
        }
        if let Some(url) = &self.public_url
            && check_origin(url).is_err()
        {
            return bad(
                "public_url",
                &format!("{url:?} must be scheme://host[:port], e.g. https://roi.example.com"),
            );
        }
        self.oidc.validate().map_err(crate::Error::Config)?;
        for origin in &self.cors_allowed_origins {
            if let Err(why) = check_origin(origin) {
                return bad("cors_allowed_origins", &format!("{origin:?}: {why}"));
            }
        }
        Ok(())
    }
}

/// An origin is `scheme://host[:port]`, nothing more: no path, no wildcard (credentials
/// are allowed, so every origin must be named).
fn check_origin(origin: &str) -> Result<(), &'static str> {
    if origin == "*" {
        return Err("a wildcard cannot be used with cookies; list each origin");
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err("must be scheme://host[:port], e.g. https://app.example.com");
    };
    if scheme != "https" && scheme != "http" {
        return Err("the scheme must be http or https");
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
        return Err("must be scheme://host[:port] with no path, e.g. https://app.example.com");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        ServeConfig::default().validate().expect("defaults");
        let c = ServeConfig {
            bind: "localhost".into(),
            ..ServeConfig::default()
        };
        let e = c.validate().expect_err("bad bind").to_string();
        assert!(e.contains("serve.bind") && e.contains("localhost"), "{e}");
        let c = ServeConfig {
            access_token_ttl_secs: 5,
            ..ServeConfig::default()
        };
        assert!(
            c.validate()
                .expect_err("ttl")
                .to_string()
                .contains("access_token_ttl_secs")
        );
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/",
            "ftp://x",
        ] {
            let c = ServeConfig {
                cors_allowed_origins: vec![bad.to_owned()],
                ..ServeConfig::default()
            };
            let e = c.validate().expect_err(bad).to_string();
            assert!(e.contains("cors_allowed_origins"), "{e}");
        }
        let c = ServeConfig {
            cors_allowed_origins: vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into(),
            ],
            ..ServeConfig::default()
        };
        c.validate().expect("good origins");
    }
}
