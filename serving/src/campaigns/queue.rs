//! Which messages are due, and who sends each: the store by itself, or Redis in front of
//! it.
//!
//! Either way the store holds every message and decides: a message is claimed only by a
//! conditional update of its row (queued and due, or sending with a lapsed lease), and an
//! outcome is recorded only under the claim's lease. With Redis (`[serve.campaigns]
//! queue = "redis"`), a sorted set of message keys scored by due time (milliseconds) does
//! the scheduling: a Lua script pops the due keys and re-scores them at the lease's end in
//! one atomic step, so replicas never contend on the same rows and the store is asked
//! only about messages that are due. Redis may lose its set (it is a cache of the store's
//! schedule); [`Queue::reconcile`] puts back what the store says is waiting.

use crate::store::{ClaimedMessage, MessageOutcome, Store};

/// Pops up to ARGV[3] members scored at most ARGV[1] and re-scores them ARGV[2] (the
/// lease's end), atomically.
const CLAIM: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
";

/// Where due messages are found.
#[derive(Clone)]
pub enum Queue {
    /// The store's own index (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    Store,
    /// A Redis sorted set in front of the store.
    Redis {
        /// The connection.
        connection: redis::aio::ConnectionManager,
        /// The set's key.
        key: String,
    },
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Queue::Store => f.write_str("Queue::Store"),
            Queue::Redis { key, .. } => f.debug_struct("Queue::Redis").field("key", key).finish(),
        }
    }
}

fn member(campaign_id: &str, contact_id: &str) -> String {
    format!("{campaign_id} {contact_id}")
}

impl Queue {
    /// A Redis-backed queue at `url`, its set under `namespace`.
    pub async fn redis(url: &str, namespace: &str) -> Result<Queue, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("campaign queue: Redis {url}: {e}"))?;
        let connection = client
            .get_connection_manager()
            .await
            .map_err(|e| format!("campaign queue: Redis: {e}"))?;
        Ok(Queue::Redis {
            connection,
            key: format!("{namespace}:campaigns:due"),
        })
    }

    /// Claims up to `limit` due messages until `lease_until_ms`.
    pub async fn claim(
        &self,
        store: &Store,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, String> {
        match self {
            Queue::Store => store
                .claim_messages(now_ms, lease_until_ms, limit)
                .await
                .map_err(|e| e.to_string()),
            Queue::Redis { connection, key } => {
                let mut c = connection.clone();
                let due: Vec<String> = redis::cmd("EVAL")
                    .arg(CLAIM)
                    .arg(1)
                    .arg(key)
                    .arg(now_ms)
                    .arg(lease_until_ms)
                    .arg(limit)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| format!("claiming from Redis: {e}"))?;
                let keys: Vec<(String, String)> = due
                    .iter()
                    .filter_map(|m| m.split_once(' '))
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .collect();
                let claimed = store
                    .claim_keys(&keys, now_ms, lease_until_ms)
                    .await
                    .map_err(|e| e.to_string())?;
                // Keys the store would not give (sent, failed, suppressed, or not due
                // there) leave the set; the store's schedule comes back by reconcile.
                let stale: Vec<String> = keys
                    .iter()
                    .filter(|(a, b)| {
                        !claimed
                            .iter()
                            .any(|m| &m.campaign_id == a && &m.contact_id == b)
                    })
                    .map(|(a, b)| member(a, b))
                    .collect();
                if !stale.is_empty() {
                    let _: Result<(), _> = redis::cmd("ZREM")
                        .arg(key)
                        .arg(&stale)
                        .query_async(&mut c)
                        .await;
                }
                Ok(claimed)
            }
        }
    }

    /// Tells the queue how an attempt ended (after the store recorded it).
    pub async fn settle(&self, m: &ClaimedMessage, outcome: &MessageOutcome) {
        let Queue::Redis { connection, key } = self else {
            return;
        };
        let mut c = connection.clone();
        let id = member(&m.campaign_id, &m.contact_id);
        let done: redis::RedisResult<()> = match outcome {
            MessageOutcome::Retry { at_ms, .. } => {
                redis::cmd("ZADD")
                    .arg(key)
                    .arg(*at_ms)
                    .arg(&id)
                    .query_async(&mut c)
                    .await
            }
            _ => {
                redis::cmd("ZREM")
                    .arg(key)
                    .arg(&id)
                    .query_async(&mut c)
                    .await
            }
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "updating the Redis campaign queue (reconcile will mend it)");
        }
    }

    /// Schedules messages just queued in the store (due at `at_ms`).
    pub async fn added(
        &self,
        campaign_id: &str,
        contact_ids: &[String],
        at_ms: i64,
    ) -> Result<(), String> {
        let Queue::Redis { connection, key } = self else {
            return Ok(());
        };
        let mut c = connection.clone();
        for chunk in contact_ids.chunks(1000) {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(key).arg("NX");
            for contact in chunk {
                cmd.arg(at_ms).arg(member(campaign_id, contact));
            }
            cmd.query_async::<()>(&mut c)
                .await
                .map_err(|e| format!("scheduling in Redis: {e}"))?;
        }
        Ok(())
    }

    /// Puts back every message the store says is waiting (queued, or sending with a
    /// lapsed lease) that the set lacks.
    pub async fn reconcile(&self, store: &Store) -> Result<u64, String> {
        let Queue::Redis { connection, key } = self else {
            return Ok(0);
        };
        let waiting = store.waiting_messages().await.map_err(|e| e.to_string())?;
        let mut c = connection.clone();
        let mut added = 0;
        for chunk in waiting.chunks(1000) {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(key).arg("NX");
            for (campaign, contact, due) in chunk {
                cmd.arg(*due).arg(member(campaign, contact));
            }
            added += cmd
                .query_async::<u64>(&mut c)
                .await
                .map_err(|e| format!("reconciling the Redis queue: {e}"))?;
        }
        Ok(added)
    }
}
