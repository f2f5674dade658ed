-- Campaign audiences: the organization's contacts (homeowners) with their e-mail consent
-- and its history, the numbers segments read about each (features and model scores from
-- the lake), saved segments, and the organization's branding for mail.

-- A contact: linked to the pipeline's homeowner when lake_contact_id is set (synced from
-- the lake), or imported from CSV. Numbers are DOUBLE PRECISION and may be null (not
-- known); closed_on_day, valued_on_day and market_month_day are days since 1970-01-01.
-- equity_pct and ltv are percent (0-100). consent is subscribed, unsubscribed, bounced
-- or complained; every change of it is a row of consent_changes.
CREATE TABLE contacts (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id),
    lake_contact_id     BIGINT,
    email               TEXT NOT NULL,
    first_name          TEXT NOT NULL,
    last_name           TEXT NOT NULL,
    consent             TEXT NOT NULL,
    consent_at          BIGINT NOT NULL,
    address             TEXT,
    city                TEXT,
    state               TEXT,
    zip                 TEXT,
    property_type       TEXT,
    beds                DOUBLE PRECISION,
    baths               DOUBLE PRECISION,
    sqft                DOUBLE PRECISION,
    year_built          DOUBLE PRECISION,
    closed_on_day       BIGINT,
    value               DOUBLE PRECISION,
    value_low           DOUBLE PRECISION,
    value_high          DOUBLE PRECISION,
    valued_on_day       BIGINT,
    value_change_pct    DOUBLE PRECISION,
    equity              DOUBLE PRECISION,
    equity_pct          DOUBLE PRECISION,
    ltv                 DOUBLE PRECISION,
    loan_balance        DOUBLE PRECISION,
    loan_rate_pct       DOUBLE PRECISION,
    market_rate_pct     DOUBLE PRECISION,
    refinance_saving    DOUBLE PRECISION,
    cash_out            DOUBLE PRECISION,
    market_month_day    BIGINT,
    market_median_price DOUBLE PRECISION,
    market_median_ppsf  DOUBLE PRECISION,
    market_yoy_pct      DOUBLE PRECISION,
    market_sales        DOUBLE PRECISION,
    agent_name          TEXT,
    agent_email         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (org_id, email),
    UNIQUE (org_id, lake_contact_id)
);
CREATE INDEX contacts_org_consent ON contacts (org_id, consent, id);
CREATE INDEX contacts_org_zip ON contacts (org_id, zip);

-- Per-contact numbers by qualified name: feature.<catalog name> and score.<alert kind>.
CREATE TABLE contact_values (
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    contact_id  TEXT NOT NULL REFERENCES contacts (id),
    name        TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (contact_id, name)
);
CREATE INDEX contact_values_name ON contact_values (org_id, name, value);

-- Which qualified names an organization's contacts have, with what they mean.
CREATE TABLE contact_value_names (
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);

-- Every change of a contact's consent: source is sync, import, api, unsubscribe,
-- bounce or complaint; actor_id is the user who made it, if one did.
CREATE TABLE consent_changes (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    contact_id  TEXT NOT NULL REFERENCES contacts (id),
    at          BIGINT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    source      TEXT NOT NULL,
    actor_id    TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX consent_changes_contact ON consent_changes (org_id, contact_id, at);

-- A saved segment: a rule of the segment language (see the serving crate's `segment`).
CREATE TABLE segments (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    name        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    created_by  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

-- How the organization's mail looks and who it comes from.
CREATE TABLE branding (
    org_id          TEXT PRIMARY KEY REFERENCES organizations (id),
    from_name       TEXT,
    from_email      TEXT,
    reply_to        TEXT,
    logo_url        TEXT,
    website         TEXT,
    postal_address  TEXT,
    primary_color   TEXT,
    support_email   TEXT,
    updated_at      BIGINT NOT NULL
);
