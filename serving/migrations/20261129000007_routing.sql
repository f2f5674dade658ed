-- Routing: each agent's territory, skills and capacity; each organization's rules and
-- the routing memory (round-robin cursors, performance weights); the alert's zip code.

ALTER TABLE alerts ADD COLUMN zip TEXT;

-- zips and skills are JSON arrays; active is 1 or 0.
CREATE TABLE agent_profiles (
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    zips        TEXT NOT NULL,
    skills      TEXT NOT NULL,
    capacity    BIGINT NOT NULL,
    active      BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

-- rules is the JSON rule list; state the JSON routing memory.
CREATE TABLE routing_configs (
    org_id      TEXT PRIMARY KEY REFERENCES organizations (id),
    rules       TEXT NOT NULL,
    state       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
