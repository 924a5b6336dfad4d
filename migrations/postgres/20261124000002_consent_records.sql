-- Consent records as a data-protection authority would read them (issue 3). The
-- SQLite twin rebuilds its tables; PostgreSQL alters them in place. Records uploaded
-- before this migration read as schema `passerelle.consent.v0`, with their own id as
-- the agency record id.

-- `travellers.sealed_name` stays NOT NULL: names now live in each record's sealed
-- statement, under the record's own key, and new rows hold an empty value there.

ALTER TABLE consents DROP CONSTRAINT consents_state_check;
ALTER TABLE consents DROP CONSTRAINT consents_check;
ALTER TABLE consents
    ADD COLUMN agency_record_id      TEXT,
    ADD COLUMN version               BIGINT,
    ADD COLUMN statement_sha256      BYTEA,
    ADD COLUMN schema_version        TEXT,
    ADD COLUMN decision              TEXT CHECK (decision IN ('given', 'refused')),
    ADD COLUMN recipients            TEXT CHECK (recipients IN ('named', 'itinerary')),
    ADD COLUMN data_categories       TEXT,
    ADD COLUMN jurisdiction          TEXT,
    ADD COLUMN notice_language       TEXT,
    ADD COLUMN notice_sha256         TEXT,
    ADD COLUMN key_master            TEXT,
    ADD COLUMN wrapped_key           BYTEA,
    ADD COLUMN withdrawal_code_id    TEXT UNIQUE,
    ADD COLUMN withdrawal_code_hash  BYTEA,
    ADD COLUMN receipt               TEXT,
    ADD COLUMN withdrawn_at          BIGINT,
    ADD COLUMN withdrawn_by          TEXT CHECK (withdrawn_by IN ('agency', 'traveller')),
    ADD COLUMN purge_after           BIGINT,
    ADD COLUMN purged_at             BIGINT;
UPDATE consents SET
    agency_record_id = id,
    version = 1,
    statement_sha256 = convert_to(id, 'UTF8'),
    schema_version = 'passerelle.consent.v0',
    decision = 'given',
    recipients = 'named',
    data_categories = concat_ws(',',
        CASE WHEN sealed_mobile IS NOT NULL THEN 'mobile' END,
        CASE WHEN sealed_email IS NOT NULL THEN 'email' END),
    jurisdiction = 'ZZ',
    notice_language = 'und',
    notice_sha256 = '',
    purge_after = created_at + 30::BIGINT * 86400000;
ALTER TABLE consents
    ALTER COLUMN agency_record_id SET NOT NULL,
    ALTER COLUMN version SET NOT NULL,
    ALTER COLUMN statement_sha256 SET NOT NULL,
    ALTER COLUMN schema_version SET NOT NULL,
    ALTER COLUMN decision SET NOT NULL,
    ALTER COLUMN recipients SET NOT NULL,
    ALTER COLUMN data_categories SET NOT NULL,
    ALTER COLUMN jurisdiction SET NOT NULL,
    ALTER COLUMN notice_language SET NOT NULL,
    ALTER COLUMN notice_sha256 SET NOT NULL,
    ALTER COLUMN purge_after SET NOT NULL,
    ALTER COLUMN sealed_statement DROP NOT NULL,
    DROP COLUMN state,
    ADD UNIQUE (agency_id, agency_record_id, version),
    ADD UNIQUE (agency_id, statement_sha256),
    ADD CHECK (decision = 'given' OR (sealed_mobile IS NULL AND sealed_email IS NULL));
DROP INDEX IF EXISTS consents_traveller;
CREATE INDEX consents_current ON consents (traveller_id) WHERE superseded_by IS NULL;
CREATE INDEX consents_agency_listing ON consents (agency_id, created_at, id);
CREATE INDEX consents_purge ON consents (purge_after) WHERE purged_at IS NULL;
CREATE INDEX consents_master ON consents (key_master);

CREATE TABLE idempotent_requests (
    party_id         TEXT NOT NULL REFERENCES parties (id),
    idempotency_key  TEXT NOT NULL,
    request_sha256   BYTEA,
    status           BIGINT,
    sealed_response  BYTEA,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (party_id, idempotency_key)
);
