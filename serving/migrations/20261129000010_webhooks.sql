-- Webhooks: each organization's endpoints that receive its alert events, signed with
-- the endpoint's secret (kept as given: it signs, so it cannot be hashed), and every
-- delivery with its attempts: pending (due at next_attempt_ms, Unix milliseconds),
-- delivered, or dead (given up after the last attempt; replayable).

-- events is a JSON array of event names; after_event is the last event id of the log
-- when the webhook was made (it receives only later events); active is 1 or 0.
CREATE TABLE webhooks (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    events       TEXT NOT NULL,
    after_event  BIGINT NOT NULL,
    active       BIGINT NOT NULL,
    created_by   TEXT NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations (id),
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id),
    event_id         BIGINT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_ms  BIGINT NOT NULL,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (org_id, webhook_id, id);

-- How far through the event log each background consumer has gone (starting at its
-- end: webhooks receive only events after they were made).
CREATE TABLE event_cursors (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO event_cursors (name, value) SELECT 'webhooks', value FROM event_counter WHERE id = 1;
