-- Every change of an alert, as an event for live clients (WebSocket), written in the same
-- transaction as the change (an outbox). Ids come from one counter row, taken with an
-- UPDATE inside that transaction: the row lock makes writers commit in id order, so a
-- reader that has seen id N has seen every event below N, and a client resuming after N
-- misses nothing.
CREATE TABLE event_counter (
    id     BIGINT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO event_counter (id, value) VALUES (1, 0);

-- event: alert.new, alert.assigned, alert.updated, alert.converted; assignee_id is the
-- owner after the change, previous_assignee_id the owner before it; data is JSON.
CREATE TABLE alert_events (
    id           BIGINT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    event        TEXT NOT NULL,
    alert_id     TEXT NOT NULL,
    assignee_id  TEXT,
    previous_assignee_id  TEXT,
    at           BIGINT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX alert_events_org ON alert_events (org_id, id);

-- When the assigned agent accepted the alert (NULL: not yet; routing may move it on).
ALTER TABLE alerts ADD COLUMN accepted_at BIGINT;
-- Seconds an assigned agent has to accept before the alert is routed to someone else
-- (NULL: never re-route).
ALTER TABLE routing_configs ADD COLUMN accept_within_secs BIGINT;
