//! # roi-serving: the HTTP layer
//!
//! An axum application over a SQL store (SQLite by default, PostgreSQL by configuration).
//! This part holds the foundation every product endpoint stands on:
//!
//! - [`store`]: the one data-access layer. Migrations run on start; every query about a
//!   tenant's data goes through a [`store::Tenant`], which can only be made from a verified
//!   identity, so one organization's requests cannot reach another's rows.
//! - [`auth`]: argon2id passwords, short-lived EdDSA access tokens signed with rotating keys
//!   (published as a JWKS), opaque refresh tokens rotated on every use with reuse detection.
//! - [`audit`]: the security events each organization's admins can read.
//! - [`role`]: the role hierarchy owner > admin > manager > agent > homeowner.
//! - [`ratelimit`]: attempt limits on login, refresh and invitation acceptance.
//! - [`app`]: the router, its OpenAPI 3.1 document, request ids, tracing spans, metrics
//!   and RFC 7807 problem responses ([`problem`]).
//! - [`routing`] and [`autoroute`]: the six routing strategies, and the runs that give
//!   new alerts to agents (on demand, and in the background as alerts arrive).
//! - [`push`]: the alert event log pushed live to WebSocket clients (`/ws`), across
//!   replicas through Redis pub/sub.
//! - [`server`]: binding, background work (push, routing, key rotation) and graceful
//!   shutdown.
//!
//! ```no_run
//! # async fn example() -> Result<(), roi_serving::Error> {
//! use roi_serving::config::{DatabaseConfig, ServeConfig};
//! let database = DatabaseConfig { url: Some("sqlite://./data/roi.db".into()), ..Default::default() };
//! roi_serving::server::run(&ServeConfig::default(), &database, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```

pub mod alerts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod autoroute;
pub mod campaigns;
pub mod config;
pub mod contacts;
pub mod documents;
pub mod extract;
pub mod merge;
pub mod metrics;
pub mod notify;
pub mod oidc;
pub mod problem;
pub mod push;
pub mod ratelimit;
pub mod role;
mod routes;
pub mod routing;
pub mod search;
pub mod segment;
pub mod server;
pub mod store;
pub mod webhooks;

pub use store::StoreError;

/// Errors of the serving crate outside a request (start-up, configuration, the store).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration asks for something impossible; the message names the key.
    #[error("configuration: {0}")]
    Config(String),
    /// The store could not be reached, migrated or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listening socket could not be bound or served.
    #[error("serving on {addr}: {source}")]
    Io {
        /// The bind address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A service the server relies on (Redis) did not answer; worth trying again.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A signing key in the store cannot be used.
    #[error("signing key {kid}: {detail}")]
    Key {
        /// The key id.
        kid: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Seconds since the Unix epoch, the store's unit of time.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
