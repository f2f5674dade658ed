-- Security events of each organization (logins, token reuse, role changes, invitations),
-- newest read first by admins.
CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY,
    org_id    TEXT NOT NULL REFERENCES organizations (id),
    at        BIGINT NOT NULL,
    action    TEXT NOT NULL,
    actor_id  TEXT,
    subject   TEXT,
    client    TEXT,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_events_org_at ON audit_events (org_id, at);
