-- Text extracted from each document version, and the document's guessed type.
-- status: pending (due at due_at), running (leased to a worker until due_at), done or
-- failed (out of attempts; error says why). method: text, pdf_text, ocr or none.
CREATE TABLE document_texts (
    version_id   TEXT PRIMARY KEY REFERENCES document_versions (id),
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    document_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    method       TEXT,
    text         TEXT,
    pages        BIGINT,
    error        TEXT,
    attempts     BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX document_texts_due ON document_texts (status, due_at);
CREATE INDEX document_texts_doc ON document_texts (org_id, document_id);

-- How sure the classifier is of kind (null when a user set it).
ALTER TABLE documents ADD COLUMN kind_confidence DOUBLE PRECISION;
