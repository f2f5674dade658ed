//! Live push: alert events to connected clients (the WebSocket endpoint, `/ws`).
//!
//! The store's event log is the source of truth ([`crate::store::AlertEvent`]). Each
//! server process runs one *tailer* that reads the log in id order and hands every event
//! to the connections it concerns, through the [`Hub`]:
//! - a connection subscribed to `org` (managers and above) gets all of its
//!   organization's events, and a `stats.updated` summary after each burst of them;
//! - a connection subscribed to `me` gets the events of alerts assigned to its user, or
//!   just taken from them.
//!
//! The tailer wakes when this process commits events, when another process announces
//! some through Redis pub/sub (`serve.redis_url`: replicas, and `roi alerts ingest`),
//! and otherwise polls every `serve.push.poll_ms`. A connection that falls too far behind
//! is closed rather than allowed to hold memory; like any client that reconnects, it
//! resumes after the last event id it saw and misses nothing.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{Notify, mpsc, watch};

use crate::store::{AlertEvent, Store, Tenant};

/// Frames waiting for one slow connection before it is closed.
pub const CONNECTION_BUFFER: usize = 4096;
/// Events read from the log at a time.
const TAIL_BATCH: i64 = 1000;
/// Least time between two `stats.updated` frames of one organization.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// A frame for connections: an event's id (0 for frames that are not in the log) and its
/// JSON text, serialised once for every receiver.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The event's id in the log; 0 for `stats.updated`.
    pub id: i64,
    /// The JSON text sent (shared, not copied, between receivers).
    pub text: Utf8Bytes,
}

/// What a connection wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Topics {
    /// Every event of the organization, and its statistics.
    pub org: bool,
    /// Events of alerts assigned to the user (or just taken from them).
    pub me: bool,
}

impl Topics {
    /// Whether an event of the connection's organization concerns it.
    pub fn wants(&self, user_id: &str, e: &AlertEvent) -> bool {
        self.org
            || (self.me
                && (e.assignee_id.as_deref() == Some(user_id)
                    || e.previous_assignee_id.as_deref() == Some(user_id)))
    }
}

struct Conn {
    user_id: String,
    topics: Topics,
    tx: mpsc::Sender<Frame>,
}

#[derive(Default)]
struct Registry {
    /// Organization → its connections.
    orgs: HashMap<String, OrgConns>,
}

/// One organization's connections, indexed so that an event touches only the
/// connections it concerns (not every agent's).
#[derive(Default)]
struct OrgConns {
    /// Connection id → connection.
    conns: HashMap<u64, Conn>,
    /// User id → their connections.
    by_user: HashMap<String, Vec<u64>>,
    /// Connections following the whole organization.
    watchers: HashSet<u64>,
}

impl OrgConns {
    fn insert(&mut self, id: u64, conn: Conn) {
        self.by_user
            .entry(conn.user_id.clone())
            .or_default()
            .push(id);
        if conn.topics.org {
            self.watchers.insert(id);
        }
        self.conns.insert(id, conn);
    }

    fn remove(&mut self, id: u64) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        self.watchers.remove(&id);
        if let Some(ids) = self.by_user.get_mut(&conn.user_id) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                self.by_user.remove(&conn.user_id);
            }
        }
    }

    fn set_topics(&mut self, id: u64, topics: Topics) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.topics = topics;
            if topics.org {
                self.watchers.insert(id);
            } else {
                self.watchers.remove(&id);
            }
        }
    }

    /// The connections an event may concern: the organization's watchers and the
    /// connections of the alert's owner, before and after.
    fn concerned(&self, event: &AlertEvent) -> Vec<u64> {
        let mut ids: Vec<u64> = self.watchers.iter().copied().collect();
        for user in [&event.assignee_id, &event.previous_assignee_id]
            .into_iter()
            .flatten()
        {
            if let Some(theirs) = self.by_user.get(user) {
                ids.extend(theirs.iter().filter(|c| !self.watchers.contains(c)));
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// The process's live connections, by organization.
pub struct Hub {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    /// Wakes the tailer.
    tail_wake: Notify,
    /// Rung when new alerts arrived (the background router waits on it).
    new_alerts: Arc<Notify>,
    /// Rung when any events were appended (webhook delivery waits on it).
    appended: Arc<Notify>,
    /// Rung when any events were appended (notifications wait on it).
    appended_notify: Arc<Notify>,
    /// Set when the server shuts down: every socket closes with 1001.
    closing: watch::Sender<bool>,
    /// WebSockets open now (from upgrade to the end of the closing handshake).
    open_sockets: AtomicUsize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            registry: Mutex::new(Registry::default()),
            next_id: AtomicU64::new(1),
            tail_wake: Notify::new(),
            new_alerts: Arc::new(Notify::new()),
            appended: Arc::new(Notify::new()),
            appended_notify: Arc::new(Notify::new()),
            closing: watch::Sender::new(false),
            open_sockets: AtomicUsize::new(0),
        }
    }
}

/// A connection's place in the hub; dropping it leaves.
pub struct Membership {
    hub: Arc<Hub>,
    org_id: String,
    id: u64,
}

impl Membership {
    /// Changes what the connection receives.
    pub fn set_topics(&self, topics: Topics) {
        let mut registry = self.hub.lock();
        if let Some(org) = registry.orgs.get_mut(&self.org_id) {
            org.set_topics(self.id, topics);
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut registry = self.hub.lock();
        if let Some(org) = registry.orgs.get_mut(&self.org_id) {
            org.remove(self.id);
            if org.conns.is_empty() {
                registry.orgs.remove(&self.org_id);
            }
        }
    }
}

/// A WebSocket counted as open until this drops.
pub struct OpenSocket(Arc<Hub>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.open_sockets.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    /// Counts a socket as open until the guard drops.
    pub fn socket_opened(self: &Arc<Self>) -> OpenSocket {
        self.open_sockets.fetch_add(1, Ordering::AcqRel);
        OpenSocket(self.clone())
    }

    /// WebSockets open now.
    pub fn open_sockets(&self) -> usize {
        self.open_sockets.load(Ordering::Acquire)
    }

    /// Completes once the server is shutting down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Tells every socket, open or opening, to close with 1001 (going away).
    pub fn begin_closing(&self) {
        self.closing.send_replace(true);
    }

    /// Waits until every socket has closed, at most `within`; returns how many are
    /// still open.
    pub async fn drained(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        while self.open_sockets() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.open_sockets()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Nothing that changes the maps can panic half-way (inserts, removes and
        // lookups only), so a poisoned lock still guards consistent maps.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a connection of `user_id` in `org_id`; frames for it arrive on the receiver.
    pub fn join(
        self: &Arc<Self>,
        org_id: &str,
        user_id: &str,
        topics: Topics,
    ) -> (Membership, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(CONNECTION_BUFFER);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .orgs
            .entry(org_id.to_owned())
            .or_default()
            .insert(
                id,
                Conn {
                    user_id: user_id.to_owned(),
                    topics,
                    tx,
                },
            );
        let membership = Membership {
            hub: self.clone(),
            org_id: org_id.to_owned(),
            id,
        };
        (membership, rx)
    }

    /// Wakes the tailer (events were written).
    pub fn wake(&self) {
        self.tail_wake.notify_one();
    }

    /// Rung when new alerts reached the log.
    pub fn new_alerts(&self) -> Arc<Notify> {
        self.new_alerts.clone()
    }

    /// Rung when any events reached the log (for webhook delivery).
    pub fn appended(&self) -> Arc<Notify> {
        self.appended.clone()
    }

    /// Rung when any events reached the log (for notifications: each waiter has its
    /// own, since a ring wakes one waiter).
    pub fn appended_for_notifications(&self) -> Arc<Notify> {
        self.appended_notify.clone()
    }

    /// Wakes webhook delivery (a delivery was replayed).
    pub fn wake_webhooks(&self) {
        self.appended.notify_one();
    }

    /// Hands one event to the connections it concerns. A connection whose buffer is full
    /// is dropped from the hub (its socket then closes, and the client resumes).
    pub fn deliver(&self, event: &AlertEvent) {
        let mut registry = self.lock();
        let Some(org) = registry.orgs.get_mut(&event.org_id) else {
            return;
        };
        let concerned = org.concerned(event);
        if concerned.is_empty() {
            return;
        }
        let frame = Frame {
            id: event.id,
            text: Utf8Bytes::from(event_frame(event)),
        };
        let mut lagging = Vec::new();
        for id in concerned {
            let Some(conn) = org.conns.get(&id) else {
                continue;
            };
            if !conn.topics.wants(&conn.user_id, event) {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(frame.clone()) {
                lagging.push(id);
            }
        }
        for id in lagging {
            org.remove(id);
        }
    }

    /// Whether anyone in `org_id` follows the whole organization.
    fn has_org_watchers(&self, org_id: &str) -> bool {
        self.lock()
            .orgs
            .get(org_id)
            .is_some_and(|org| !org.watchers.is_empty())
    }

    /// Sends a frame that is not in the log to the organization's `org` subscribers.
    fn broadcast_org(&self, org_id: &str, text: Utf8Bytes) {
        let registry = self.lock();
        let Some(org) = registry.orgs.get(org_id) else {
            return;
        };
        for conn in org.watchers.iter().filter_map(|id| org.conns.get(id)) {
            // A full buffer here is left to the next event to notice.
            let _ = conn.tx.try_send(Frame {
                id: 0,
                text: text.clone(),
            });
        }
    }

    /// Reads the event log from its current end and delivers what is appended, until the
    /// task is dropped.
    pub async fn tail(self: Arc<Self>, store: Store, poll: Duration) {
        let mut cursor = loop {
            match store.latest_event_id().await {
                Ok(id) => break id,
                Err(e) => {
                    tracing::error!(error = %e, "reading the alert event log; retrying");
                    tokio::time::sleep(poll).await;
                }
            }
        };
        let mut stats_sent: HashMap<String, Instant> = HashMap::new();
        let mut stats_due: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                () = self.tail_wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
            let mut any_new = false;
            let mut any = false;
            loop {
                let batch = match store.events_after(cursor, TAIL_BATCH).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::error!(error = %e, "reading alert events");
                        break;
                    }
                };
                any |= !batch.is_empty();
                for event in &batch {
                    self.deliver(event);
                    cursor = event.id;
                    any_new |= event.event == "alert.new";
                    stats_due.insert(event.org_id.clone());
                }
                if (batch.len() as i64) < TAIL_BATCH {
                    break;
                }
            }
            if any_new {
                self.new_alerts.notify_one();
            }
            if any {
                self.appended.notify_one();
                self.appended_notify.notify_one();
            }
            self.send_stats(&store, &mut stats_due, &mut stats_sent)
                .await;
        }
    }

    /// `stats.updated` for organizations whose alerts changed, at most once a second
    /// each (the rest stay due for a later round).
    async fn send_stats(
        &self,
        store: &Store,
        due: &mut HashSet<String>,
        sent: &mut HashMap<String, Instant>,
    ) {
        let now = Instant::now();
        let ready: Vec<String> = due
            .iter()
            .filter(|org| sent.get(*org).is_none_or(|at| now - *at >= STATS_EVERY))
            .cloned()
            .collect();
        for org in ready {
            due.remove(&org);
            if !self.has_org_watchers(&org) {
                continue;
            }
            let counts = match Tenant::new(store, org.clone()).alert_counts().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "counting alerts for stats.updated");
                    continue;
                }
            };
            let mut by_status: std::collections::BTreeMap<&str, i64> = Default::default();
            for (_, status, _, n) in &counts.by_kind_status_assignee {
                *by_status.entry(status.as_str()).or_default() += n;
            }
            let text = json!({
                "type": "event",
                "event": "stats.updated",
                "at": crate::unix_now(),
                "data": { "by_status": by_status, "converted_value": counts.converted_value },
            })
            .to_string();
            self.broadcast_org(&org, Utf8Bytes::from(text));
            sent.insert(org, now);
        }
    }
}

/// The frame of a logged event: `{"type":"event","id":…,"event":…,"at":…,"data":{…}}`
/// (data is stored as JSON text and spliced in as it is).
pub fn event_frame(e: &AlertEvent) -> String {
    format!(
        r#"{{"type":"event","id":{},"event":{},"at":{},"data":{}}}"#,
        e.id,
        json!(e.event),
        e.at,
        e.data
    )
}

/// The Redis channel replicas announce new events on.
pub fn channel(namespace: &str) -> String {
    format!("{namespace}:alert-events")
}

/// Passes this process's commits of events on: wakes the local tailer and, with Redis,
/// announces them to the other processes. Runs until the task is dropped.
pub async fn relay(written: Arc<Notify>, hub: Arc<Hub>, redis: Option<(String, String)>) {
    let mut publisher = None;
    if let Some((url, namespace)) = &redis {
        match redis::Client::open(url.as_str()) {
            Ok(client) => match client.get_connection_manager().await {
                Ok(conn) => publisher = Some((conn, channel(namespace))),
                Err(e) => tracing::error!(error = %e, "Redis for event announcements"),
            },
            Err(e) => tracing::error!(error = %e, "Redis for event announcements"),
        }
    }
    loop {
        written.notified().await;
        hub.wake();
        if let Some((conn, channel)) = &mut publisher {
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(channel.as_str())
                .arg("events")
                .query_async(conn)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "announcing alert events through Redis");
            }
        }
    }
}

/// Wakes the tailer whenever another process announces events through Redis. Reconnects
/// after a lost connection; runs until the task is dropped.
pub async fn listen(url: String, namespace: String, hub: Arc<Hub>) {
    let channel = channel(&namespace);
    loop {
        let subscribed = async {
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel.as_str()).await?;
            redis::RedisResult::Ok(pubsub)
        }
        .await;
        match subscribed {
            Ok(pubsub) => {
                // Anything may have been missed while not subscribed.
                hub.wake();
                let mut messages = pubsub.into_on_message();
                while messages.next().await.is_some() {
                    hub.wake();
                }
                tracing::warn!("the Redis subscription for alert events ended; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "subscribing to alert events in Redis"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Announces through Redis that events were written (for processes that write to the
/// store without serving, such as `roi alerts ingest`).
pub async fn announce(url: &str, namespace: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("PUBLISH")
        .arg(channel(namespace))
        .arg("events")
        .query_async::<i64>(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(to: Option<&str>, from: Option<&str>) -> AlertEvent {
        AlertEvent {
            id: 1,
            org_id: "org".into(),
            event: "alert.assigned".into(),
            alert_id: "al-1".into(),
            assignee_id: to.map(str::to_owned),
            previous_assignee_id: from.map(str::to_owned),
            at: 0,
            data: "{}".into(),
        }
    }

    #[test]
    fn events_reach_the_watchers_and_the_owners_connections_only() {
        let hub = Arc::new(Hub::default());
        let me = Topics {
            org: false,
            me: true,
        };
        let org = Topics {
            org: true,
            me: false,
        };
        let (ann1, mut ann1_rx) = hub.join("org", "ann", me);
        let (_ann2, mut ann2_rx) = hub.join("org", "ann", me);
        let (bob, mut bob_rx) = hub.join("org", "bob", me);
        let (boss, mut boss_rx) = hub.join("org", "boss", org);
        let (_other, mut other_rx) = hub.join("elsewhere", "ann", org);
        hub.deliver(&event(Some("ann"), Some("bob")));
        for rx in [&mut ann1_rx, &mut ann2_rx, &mut bob_rx, &mut boss_rx] {
            assert_eq!(rx.try_recv().expect("a frame").id, 1);
        }
        assert!(other_rx.try_recv().is_err(), "another tenant hears nothing");
        // Bob now follows the organization; Ann's first socket is gone.
        bob.set_topics(org);
        drop(ann1);
        hub.deliver(&event(Some("cy"), None));
        assert!(bob_rx.try_recv().is_ok() && boss_rx.try_recv().is_ok());
        assert!(ann2_rx.try_recv().is_err(), "not Ann's alert");
        assert!(hub.has_org_watchers("org"));
        drop(bob);
        drop(boss);
        assert!(!hub.has_org_watchers("org"));
        hub.deliver(&event(Some("ann"), None));
        assert!(ann2_rx.try_recv().is_ok());
        assert!(
            ann1_rx.try_recv().is_err(),
            "a closed socket's buffer gets nothing"
        );
    }
}
