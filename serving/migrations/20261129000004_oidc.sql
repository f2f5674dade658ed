-- OpenID Connect sign-in: the state of each authorization request in flight (single use,
-- short-lived) and the provider identities linked to users.

CREATE TABLE oidc_states (
    state_hash     TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    provider       TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    session_kind   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

-- A provider's subject identifies one user of one organization.
CREATE TABLE oidc_identities (
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    email       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, provider, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (org_id, user_id);
