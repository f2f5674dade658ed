-- E-mail campaigns: templates, campaigns, the durable send queue (one row per campaign
-- and contact), engagement (opens, clicks, unsubscribes, bounces, complaints) and the
-- server's own secrets (the key that signs tracking links).

CREATE TABLE templates (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    name        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    html        TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_by  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

-- status: draft, scheduled (send at scheduled_at), queuing (messages being rendered into
-- the queue), sending, sent, cancelled. rule is the segment's rule as it was when the
-- campaign was queued; subject/html/text are the template as it was then. lake_id is the
-- campaign's number in pipeline events (campaign_id).
CREATE TABLE campaigns (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    lake_id       BIGINT NOT NULL,
    name          TEXT NOT NULL,
    template_id   TEXT NOT NULL REFERENCES templates (id),
    segment_id    TEXT REFERENCES segments (id),
    rule          TEXT NOT NULL,
    subject       TEXT,
    html          TEXT,
    text          TEXT,
    status        TEXT NOT NULL,
    scheduled_at  BIGINT,
    queued_at     BIGINT,
    finished_at   BIGINT,
    created_by    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX campaigns_org ON campaigns (org_id, created_at);
CREATE INDEX campaigns_due ON campaigns (status, scheduled_at);

-- One message per (campaign, contact): the primary key is the idempotency key, so a
-- campaign queued twice (or by two replicas) still holds one message per contact.
-- status: queued (due at next_attempt_ms), sending (claimed until lease_until_ms by a
-- sender), sent, failed (permanently, or out of attempts), suppressed (the contact left
-- the list before it went).
CREATE TABLE campaign_messages (
    campaign_id      TEXT NOT NULL REFERENCES campaigns (id),
    contact_id       TEXT NOT NULL REFERENCES contacts (id),
    org_id           TEXT NOT NULL REFERENCES organizations (id),
    recipient        TEXT NOT NULL,
    domain           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body_html        TEXT NOT NULL,
    body_text        TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_ms  BIGINT NOT NULL,
    lease_until_ms   BIGINT NOT NULL,
    last_error       TEXT,
    provider_id      TEXT,
    sent_at          BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_messages_due ON campaign_messages (status, next_attempt_ms);
CREATE INDEX campaign_messages_lease ON campaign_messages (status, lease_until_ms);

-- What recipients did: kind is opened, clicked, unsubscribed, bounced or complained.
CREATE TABLE campaign_engagements (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    campaign_id  TEXT NOT NULL REFERENCES campaigns (id),
    contact_id   TEXT NOT NULL REFERENCES contacts (id),
    kind         TEXT NOT NULL,
    url          TEXT,
    at           BIGINT NOT NULL
);
CREATE INDEX campaign_engagements_campaign ON campaign_engagements (org_id, campaign_id, kind);

CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
