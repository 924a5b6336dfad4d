-- Consent records as a data-protection authority would read them (issue 3).
--
-- SQLite cannot change a column's checks or nullability in place, and sqlx runs this
-- file in a transaction with foreign keys on, so `consents` is rebuilt the way that
-- allows: build the new table beside it, rebuild its one child (`release_tokens`,
-- which nothing references) to point at the new table, drop the old ones, and rename
-- (SQLite rewrites the references to follow the new name). Records uploaded before
-- this migration keep their rows; they read as schema `passerelle.consent.v0`, with
-- their own id as the agency record id.
--
-- `travellers.sealed_name` stays NOT NULL: names now live in each record's sealed
-- statement, under the record's own key, and new rows hold an empty value there.

-- Consent records. Immutable facts, plus four markers set once: superseded_by (a
-- newer record for the traveller replaced it), withdrawn_at, purged_at (its record
-- key destroyed) and the re-wrapping of its key under a new master key. The state a
-- reader sees (given, refused, withdrawn, expired, superseded) is computed from them.
CREATE TABLE consents_v1 (
    id                    TEXT PRIMARY KEY,
    traveller_id          TEXT NOT NULL REFERENCES travellers (id),
    agency_id             TEXT NOT NULL REFERENCES parties (id),
    agency_record_id      TEXT NOT NULL,
    version               INTEGER NOT NULL,
    statement_sha256      BLOB NOT NULL,
    schema_version        TEXT NOT NULL,
    decision              TEXT NOT NULL CHECK (decision IN ('given', 'refused')),
    purposes              TEXT NOT NULL,
    carriers              TEXT NOT NULL,
    recipients            TEXT NOT NULL CHECK (recipients IN ('named', 'itinerary')),
    data_categories       TEXT NOT NULL,
    jurisdiction          TEXT NOT NULL,
    collected_at          INTEGER NOT NULL,
    valid_until           INTEGER,
    notice_version        TEXT NOT NULL,
    notice_language       TEXT NOT NULL,
    notice_sha256         TEXT NOT NULL,
    collection_method     TEXT NOT NULL,
    key_id                TEXT NOT NULL,
    signature             TEXT NOT NULL,
    key_master            TEXT,
    wrapped_key           BLOB,
    sealed_statement      BLOB,
    sealed_mobile         BLOB,
    sealed_email          BLOB,
    withdrawal_code_id    TEXT UNIQUE,
    withdrawal_code_hash  BLOB,
    receipt               TEXT,
    created_at            INTEGER NOT NULL,
    superseded_by         TEXT REFERENCES consents_v1 (id),
    withdrawn_at          INTEGER,
    withdrawn_by          TEXT CHECK (withdrawn_by IN ('agency', 'traveller')),
    purge_after           INTEGER NOT NULL,
    purged_at             INTEGER,
    UNIQUE (agency_id, agency_record_id, version),
    UNIQUE (agency_id, statement_sha256),
    CHECK (decision = 'given' OR (sealed_mobile IS NULL AND sealed_email IS NULL))
);
INSERT INTO consents_v1 (id, traveller_id, agency_id, agency_record_id, version, statement_sha256,
    schema_version, decision, purposes, carriers, recipients, data_categories, jurisdiction,
    collected_at, valid_until, notice_version, notice_language, notice_sha256, collection_method,
    key_id, signature, sealed_statement, sealed_mobile, sealed_email, created_at, superseded_by,
    purge_after)
SELECT id, traveller_id, agency_id, id, 1, CAST(id AS BLOB),
    'passerelle.consent.v0', 'given', purposes, carriers, 'named',
    trim((CASE WHEN sealed_mobile IS NOT NULL THEN 'mobile' ELSE '' END) ||
         (CASE WHEN sealed_mobile IS NOT NULL AND sealed_email IS NOT NULL THEN ',' ELSE '' END) ||
         (CASE WHEN sealed_email IS NOT NULL THEN 'email' ELSE '' END)),
    'ZZ', collected_at, valid_until, notice_version, 'und', '', collection_method,
    key_id, signature, sealed_statement, sealed_mobile, sealed_email, created_at, superseded_by,
    created_at + 30 * 86400000
FROM consents;
CREATE TABLE release_tokens_v1 (
    id               TEXT PRIMARY KEY,
    secret_hash      BLOB NOT NULL,
    airline_id       TEXT NOT NULL REFERENCES parties (id),
    consent_id       TEXT NOT NULL REFERENCES consents_v1 (id),
    traveller_id     TEXT NOT NULL REFERENCES travellers (id),
    booking_id       TEXT NOT NULL REFERENCES bookings (id),
    purpose          TEXT NOT NULL,
    event_category   TEXT NOT NULL,
    event_reference  TEXT NOT NULL,
    flight           TEXT NOT NULL,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER
);
INSERT INTO release_tokens_v1 SELECT id, secret_hash, airline_id, consent_id, traveller_id, booking_id,
    purpose, event_category, event_reference, flight, issued_at, expires_at, used_at FROM release_tokens;
DROP TABLE release_tokens;
DROP TABLE consents;
ALTER TABLE consents_v1 RENAME TO consents;
ALTER TABLE release_tokens_v1 RENAME TO release_tokens;
CREATE INDEX consents_current ON consents (traveller_id) WHERE superseded_by IS NULL;
CREATE INDEX consents_agency_listing ON consents (agency_id, created_at, id);
CREATE INDEX consents_purge ON consents (purge_after) WHERE purged_at IS NULL;
CREATE INDEX consents_master ON consents (key_master);

-- The first answer to a request sent with an `Idempotency-Key`, sealed (it may hold
-- withdrawal codes), replayed to retries of the same request for a day.
CREATE TABLE idempotent_requests (
    party_id         TEXT NOT NULL REFERENCES parties (id),
    idempotency_key  TEXT NOT NULL,
    request_sha256   BLOB,
    status           INTEGER,
    sealed_response  BLOB,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (party_id, idempotency_key)
);
