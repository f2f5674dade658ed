-- The documents' change log, which every serving process's search index follows to keep
-- up with the store. seq comes from the one row of document_change_counter, written
-- inside the changing transaction: the row lock makes those transactions commit in seq
-- order, so an index that has applied seq N has seen every change up to N. Old entries
-- are pruned; an index left behind the oldest kept one rebuilds from the documents.
CREATE TABLE document_change_counter (
    id     BIGINT PRIMARY KEY,
    value  BIGINT NOT NULL
);

CREATE TABLE document_changes (
    seq          BIGINT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    document_id  TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX document_changes_org ON document_changes (org_id, seq);

-- Documents stored before the log began: one change each.
INSERT INTO document_changes (seq, org_id, document_id, at)
    SELECT ROW_NUMBER() OVER (ORDER BY id), org_id, id, updated_at FROM documents;
INSERT INTO document_change_counter (id, value) SELECT 1, COUNT(*) FROM documents;
