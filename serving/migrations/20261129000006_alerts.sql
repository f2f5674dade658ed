-- Alerts from the streaming job, and the link between the pipeline's organization ids
-- and the store's organizations.

CREATE TABLE lake_organizations (
    lake_org_id  BIGINT PRIMARY KEY,
    org_id       TEXT NOT NULL UNIQUE REFERENCES organizations (id),
    linked_at    BIGINT NOT NULL
);

-- id is the pipeline's deterministic alert id: ingesting it again stores nothing.
-- reasons is a JSON array of strings; times are Unix seconds (raised_at in event time).
CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    contact_id     BIGINT NOT NULL,
    property_id    BIGINT,
    kind           TEXT NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    confidence     DOUBLE PRECISION NOT NULL,
    reasons        TEXT NOT NULL,
    model_version  TEXT NOT NULL,
    raised_at      BIGINT NOT NULL,
    ingested_at    BIGINT NOT NULL,
    status         TEXT NOT NULL,
    assignee_id    TEXT REFERENCES users (id),
    updated_at     BIGINT NOT NULL,
    outcome_value  DOUBLE PRECISION
);
CREATE INDEX alerts_org_raised ON alerts (org_id, raised_at, id);
CREATE INDEX alerts_org_score ON alerts (org_id, score, id);
CREATE INDEX alerts_org_assignee ON alerts (org_id, assignee_id, status);

CREATE TABLE alert_history (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    alert_id     TEXT NOT NULL REFERENCES alerts (id),
    at           BIGINT NOT NULL,
    actor_id     TEXT,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    assignee_id  TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX alert_history_alert ON alert_history (org_id, alert_id, at);
