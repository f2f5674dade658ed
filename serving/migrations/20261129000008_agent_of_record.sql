-- The homeowner's agent of record on each alert (the pipeline's agent id), and the link
-- from the pipeline's agent ids to the store's users, for relationship routing.

ALTER TABLE alerts ADD COLUMN agent_of_record BIGINT;

CREATE TABLE lake_agents (
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    lake_agent_id  BIGINT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id),
    linked_at      BIGINT NOT NULL,
    PRIMARY KEY (org_id, lake_agent_id),
    UNIQUE (org_id, user_id)
);
