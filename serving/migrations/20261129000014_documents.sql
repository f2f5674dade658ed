-- Documents: a document (an organization's, optionally a homeowner's own and about one
-- contact) has immutable versions whose bytes live in the object store under keys the
-- server makes; every view, download and share is kept in document_access.

-- kind: closing_disclosure, deed, title_policy, inspection_report, appraisal, hoa,
-- insurance, tax_statement or other; kind_source says who set it (user or classifier).
-- tags is a JSON array of strings. owner_user_id is the homeowner user whose document
-- it is (null: the organization's own). deleted_at marks a soft delete; the bytes and
-- rows go when an admin purges after purge_after.
CREATE TABLE documents (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    owner_user_id   TEXT REFERENCES users (id),
    contact_id      TEXT REFERENCES contacts (id),
    property_ref    TEXT,
    kind            TEXT NOT NULL,
    kind_source     TEXT NOT NULL,
    title           TEXT NOT NULL,
    tags            TEXT NOT NULL,
    version_count   BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    deleted_by      TEXT,
    purge_after     BIGINT
);
CREATE INDEX documents_org ON documents (org_id, id);
CREATE INDEX documents_owner ON documents (org_id, owner_user_id, id);
CREATE INDEX documents_contact ON documents (org_id, contact_id);
CREATE INDEX documents_purge ON documents (purge_after);

-- number counts from 1 within the document; the newest is the current one. A restore
-- makes a new version over the same object (restored_from names the version it copies),
-- so versions never change and an object may back several versions of one document.
-- content_type is sniffed from the bytes; claimed_type is what the client said.
CREATE TABLE document_versions (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    document_id     TEXT NOT NULL REFERENCES documents (id),
    number          BIGINT NOT NULL,
    object_key      TEXT NOT NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    claimed_type    TEXT,
    filename        TEXT NOT NULL,
    restored_from   BIGINT,
    uploaded_by     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (document_id, number)
);
CREATE INDEX document_versions_org ON document_versions (org_id, document_id);

-- A share link: signed (the server's key signs its id), expiring, revocable, optionally
-- password-protected (argon2id) and limited to max_downloads. version_number null means
-- whichever version is current when the link is used. shared_with_user_id is a user of
-- the organization who was told about it.
CREATE TABLE document_shares (
    id                   TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES organizations (id),
    document_id          TEXT NOT NULL REFERENCES documents (id),
    version_number       BIGINT,
    created_by           TEXT NOT NULL,
    shared_with_user_id  TEXT REFERENCES users (id),
    password_hash        TEXT,
    max_downloads        BIGINT,
    downloads            BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    revoked_at           BIGINT,
    created_at           BIGINT NOT NULL
);
CREATE INDEX document_shares_doc ON document_shares (org_id, document_id, created_at);

-- action: viewed, downloaded, uploaded, restored, deleted, undeleted, shared, revoked.
-- actor_id is the user (null for a share link's visitor, with share_id set).
CREATE TABLE document_access (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    document_id     TEXT NOT NULL,
    version_number  BIGINT,
    action          TEXT NOT NULL,
    actor_id        TEXT,
    share_id        TEXT,
    ip              TEXT NOT NULL,
    user_agent      TEXT NOT NULL,
    at_ms           BIGINT NOT NULL
);
CREATE INDEX document_access_doc ON document_access (org_id, document_id, at_ms);
