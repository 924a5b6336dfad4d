-- A record's documents (the agency's detached signature, the sealed statement and the
-- countersigned receipt) move to a table of their own. They are read only when
-- someone opens the record, yet they are most of its bytes (the receipt alone about
-- 3 KB): kept in the record's row, they pushed the columns every release reads (its
-- state, its sealed contacts) onto overflow pages, so each check of a record cost
-- three page reads instead of one, twice per release.
CREATE TABLE consent_documents (
    consent_id        TEXT PRIMARY KEY REFERENCES consents (id),
    signature         TEXT NOT NULL,
    sealed_statement  BLOB,
    receipt           TEXT
);
INSERT INTO consent_documents (consent_id, signature, sealed_statement, receipt)
    SELECT id, signature, sealed_statement, receipt FROM consents;
ALTER TABLE consents DROP COLUMN signature;
ALTER TABLE consents DROP COLUMN sealed_statement;
ALTER TABLE consents DROP COLUMN receipt;
