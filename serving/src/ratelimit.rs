//! Attempt limits on the endpoints an attacker would hammer: login and the second factor
//! (per client address and per account), refresh, invitation acceptance and password
//! reset (per client address).
//!
//! The limiter counts hits per key in fixed windows. In-process by default (each replica
//! keeps its own counts, so `n` replicas would give an attacker `n` times the budget);
//! with `serve.redis_url` every replica counts in the same Redis keys. If Redis stops
//! answering, requests are let through and the error is logged: an outage of the counter
//! store does not lock everyone out. The decision is a pure function of the count
//! ([`decide`]), tested without a clock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::problem::Problem;

/// A limit: at most `limit` hits per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Hits allowed per window.
    pub limit: u32,
    /// Window length, seconds.
    pub window_secs: u64,
}

/// The limits in force (`[serve.limits]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Login attempts per client address.
    pub login_per_ip: Policy,
    /// Failed logins per account before it is locked for the rest of the window.
    pub login_failures_per_account: Policy,
    /// Refreshes per client address.
    pub refresh_per_ip: Policy,
    /// Invitation acceptances per client address.
    pub accept_per_ip: Policy,
    /// Second-factor attempts per client address.
    pub mfa_per_ip: Policy,
    /// Wrong second-factor codes per account before it is locked for the rest of the
    /// window (each login challenge also dies after 5 wrong codes).
    pub mfa_failures_per_account: Policy,
    /// Password resets per client address.
    pub reset_per_ip: Policy,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_per_ip: Policy {
                limit: 30,
                window_secs: 60,
            },
            login_failures_per_account: Policy {
                limit: 5,
                window_secs: 900,
            },
            refresh_per_ip: Policy {
                limit: 120,
                window_secs: 60,
            },
            accept_per_ip: Policy {
                limit: 20,
                window_secs: 60,
            },
            mfa_per_ip: Policy {
                limit: 30,
                window_secs: 60,
            },
            mfa_failures_per_account: Policy {
                limit: 10,
                window_secs: 900,
            },
            reset_per_ip: Policy {
                limit: 20,
                window_secs: 60,
            },
        }
    }
}

/// What the limiter says about one more hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse; the window reopens in this many seconds.
    Deny {
        /// Seconds until the window resets.
        retry_after: u64,
    },
}

/// The decision for a key that has `count` hits in the window that started at
/// `window_start`, at `now`.
pub fn decide(count: u32, window_start: i64, policy: Policy, now: i64) -> Decision {
    if count < policy.limit {
        Decision::Allow
    } else {
        let reset = window_start + policy.window_secs as i64;
        Decision::Deny {
            retry_after: (reset - now).max(1) as u64,
        }
    }
}

/// Where the counters live.
#[derive(Debug)]
pub enum Limiter {
    /// In this process.
    Memory(MemoryLimiter),
    /// In Redis, shared by every replica.
    Redis(RedisLimiter),
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::Memory(MemoryLimiter::default())
    }
}

impl Limiter {
    /// Connects to Redis at `url`; keys are prefixed with `namespace:limit:`.
    pub async fn redis(url: &str, namespace: &str) -> crate::Result<Limiter> {
        let masked = crate::store::mask_password(url);
        let client = redis::Client::open(url)
            .map_err(|e| crate::Error::Config(format!("serve.redis_url {masked:?}: {e}")))?;
        // Short timeouts and few retries: a limiter that waits on a dead Redis would hold
        // every login; past these the request is let through (see the module docs).
        let settings = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(std::time::Duration::from_secs(2))
            .set_response_timeout(std::time::Duration::from_secs(2))
            .set_number_of_retries(2)
            .set_max_delay(1000);
        let connection = client
            .get_connection_manager_with_config(settings)
            .await
            .map_err(|e| {
                crate::Error::Config(format!("serve.redis_url {masked:?}: cannot connect: {e}"))
            })?;
        Ok(Limiter::Redis(RedisLimiter {
            connection,
            prefix: format!("{namespace}:limit:"),
        }))
    }

    /// Counts a hit on `key` and says whether it may proceed.
    pub async fn hit(&self, key: &str, policy: Policy, now: i64) -> Decision {
        match self {
            Limiter::Memory(m) => m.hit(key, policy, now),
            Limiter::Redis(r) => r.hit(key, policy).await.unwrap_or_else(fail_open),
        }
    }

    /// Says whether a hit would be allowed, without counting one.
    pub async fn peek(&self, key: &str, policy: Policy, now: i64) -> Decision {
        match self {
            Limiter::Memory(m) => m.peek(key, policy, now),
            Limiter::Redis(r) => r.peek(key, policy).await.unwrap_or_else(fail_open),
        }
    }

    /// Forgets a key (a successful login clears its account's failures).
    pub async fn clear(&self, key: &str) {
        match self {
            Limiter::Memory(m) => m.clear(key),
            Limiter::Redis(r) => {
                if let Err(e) = r.clear(key).await {
                    tracing::error!(error = %e, "clearing a rate-limit counter in Redis");
                }
            }
        }
    }

    /// Checks that the counter store answers (readiness).
    pub async fn ping(&self) -> Result<(), String> {
        match self {
            Limiter::Memory(_) => Ok(()),
            Limiter::Redis(r) => {
                let mut c = r.connection.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Refuses with a 429 problem while `key` has used up `policy` (an account locked
    /// after failures), without counting a hit; `what` says what failed too often.
    pub async fn refuse_if_locked(
        &self,
        key: &str,
        policy: Policy,
        now: i64,
        what: &str,
    ) -> Result<(), Problem> {
        match self.peek(key, policy, now).await {
            Decision::Allow => Ok(()),
            Decision::Deny { retry_after } => Err(Problem::too_many_requests(
                format!("too many {what}; try again in {retry_after} s"),
                retry_after,
            )),
        }
    }

    /// Counts a hit and turns a denial into a 429 problem that says what was limited.
    pub async fn check(
        &self,
        key: &str,
        policy: Policy,
        now: i64,
        what: &str,
    ) -> Result<(), Problem> {
        match self.hit(key, policy, now).await {
            Decision::Allow => Ok(()),
            Decision::Deny { retry_after } => Err(Problem::too_many_requests(
                format!("too many {what}; try again in {retry_after} s"),
                retry_after,
            )),
        }
    }
}

fn fail_open(e: redis::RedisError) -> Decision {
    tracing::error!(error = %e, "rate-limit counters in Redis are unavailable; allowing the request");
    Decision::Allow
}

/// Fixed-window counters in Redis: `INCR`, `EXPIRE … NX` and `TTL` in one atomic
/// round trip, so the window starts at its first hit and is never extended.
#[derive(Clone)]
pub struct RedisLimiter {
    connection: redis::aio::ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    async fn hit(&self, key: &str, policy: Policy) -> redis::RedisResult<Decision> {
        let key = format!("{}{key}", self.prefix);
        let mut c = self.connection.clone();
        let (count, ttl): (i64, i64) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(policy.window_secs)
            .arg("NX")
            .ignore()
            .cmd("TTL")
            .arg(&key)
            .query_async(&mut c)
            .await?;
        Ok(if count <= i64::from(policy.limit) {
            Decision::Allow
        } else {
            Decision::Deny {
                retry_after: ttl.max(1) as u64,
            }
        })
    }

    async fn peek(&self, key: &str, policy: Policy) -> redis::RedisResult<Decision> {
        let key = format!("{}{key}", self.prefix);
        let mut c = self.connection.clone();
        let (count, ttl): (Option<i64>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("TTL")
            .arg(&key)
            .query_async(&mut c)
            .await?;
        Ok(if count.unwrap_or(0) < i64::from(policy.limit) {
            Decision::Allow
        } else {
            Decision::Deny {
                retry_after: ttl.max(1) as u64,
            }
        })
    }

    async fn clear(&self, key: &str) -> redis::RedisResult<()> {
        let mut c = self.connection.clone();
        redis::cmd("DEL")
            .arg(format!("{}{key}", self.prefix))
            .query_async::<()>(&mut c)
            .await
    }
}

/// In-process fixed-window counters.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl MemoryLimiter {
    /// Counts a hit on `key` and says whether it may proceed. A denied hit is not
    /// counted, so a client that backs off is let in when the window reopens.
    pub fn hit(&self, key: &str, policy: Policy, now: i64) -> Decision {
        self.update(key, policy, now, true)
    }

    /// Says whether a hit would be allowed, without counting one.
    pub fn peek(&self, key: &str, policy: Policy, now: i64) -> Decision {
        self.update(key, policy, now, false)
    }

    fn update(&self, key: &str, policy: Policy, now: i64, count_it: bool) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now < *start + 3600);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + policy.window_secs as i64 {
            *entry = (now, 0);
        }
        let decision = decide(entry.1, entry.0, policy, now);
        if count_it && decision == Decision::Allow {
            entry.1 += 1;
        }
        decision
    }

    /// Forgets a key (a successful login clears its account's failures).
    pub fn clear(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// The client's address: the configured proxy header's first entry, else the socket's
/// peer, else `unknown` (in-process calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .config
            .client_ip_header
            .as_deref()
            .and_then(|h| parts.headers.get(h))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        };
        Ok(ClientAddr(
            forwarded
                .or_else(peer)
                .unwrap_or_else(|| "unknown".to_owned()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        limit: 3,
        window_secs: 60,
    };

    #[test]
    fn decisions_follow_the_count_and_the_window() {
        assert_eq!(decide(2, 0, P, 10), Decision::Allow);
        assert_eq!(decide(3, 0, P, 10), Decision::Deny { retry_after: 50 });
        assert_eq!(decide(3, 0, P, 60), Decision::Deny { retry_after: 1 });
    }

    #[test]
    fn limiter_counts_allowed_hits_and_reopens() {
        let l = MemoryLimiter::default();
        for _ in 0..3 {
            assert_eq!(l.hit("k", P, 100), Decision::Allow);
        }
        assert_eq!(l.hit("k", P, 110), Decision::Deny { retry_after: 50 });
        assert_eq!(l.peek("other", P, 110), Decision::Allow);
        assert_eq!(l.hit("k", P, 160), Decision::Allow, "a new window");
        l.clear("k");
        assert_eq!(l.peek("k", P, 161), Decision::Allow);
    }
}
