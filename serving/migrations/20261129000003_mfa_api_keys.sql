-- Two-factor authentication (TOTP factors, one-time recovery codes, login challenges),
-- each organization's MFA policy, and API keys for machine clients.

-- 'optional' or 'required' (every user must enrol a second factor).
ALTER TABLE organizations ADD COLUMN mfa_policy TEXT NOT NULL DEFAULT 'optional';

-- One TOTP factor per user. Unconfirmed until the user proves the app works; last_step
-- is the highest time step accepted, so a code (and any earlier one) works only once.
CREATE TABLE totp_factors (
    user_id       TEXT PRIMARY KEY REFERENCES users (id),
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    secret        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT NOT NULL
);
CREATE INDEX totp_factors_org ON totp_factors (org_id, user_id);

CREATE TABLE recovery_codes (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    code_hash   TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (org_id, user_id);

-- A password that was right, waiting for its second factor.
CREATE TABLE mfa_challenges (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    failures    BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX mfa_challenges_org ON mfa_challenges (org_id, user_id);

-- Keys act for the user who made them, with at most that user's role and only within
-- their scopes (space-separated, e.g. 'users:read audit:read').
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_by    TEXT NOT NULL REFERENCES users (id),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);
