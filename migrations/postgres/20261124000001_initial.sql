-- Passerelle's first schema (PostgreSQL). The SQLite twin in ../sqlite must stay
-- equivalent: the same tables, columns, keys and checks, differing only in types.
-- Times are Unix milliseconds (BIGINT): comparable and portable across both engines.
-- Personal data (names, contacts, the signed statement) is stored sealed (BYTEA); no
-- column holds a contact or a name in clear.

-- Agencies, airlines and compliance officers. `code` is the IATA agency number or the
-- airline designator; officers have none.
CREATE TABLE parties (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('agency', 'airline', 'officer')),
    code        TEXT,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CHECK ((kind = 'officer') = (code IS NULL))
);
CREATE UNIQUE INDEX parties_kind_code ON parties (kind, code) WHERE code IS NOT NULL;

-- API keys: only the SHA-256 of the secret part; `id` is the public lookup id.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    party_id     TEXT NOT NULL REFERENCES parties (id),
    secret_hash  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

-- Agencies' Ed25519 public keys, by key id (unique per agency).
CREATE TABLE agency_keys (
    party_id    TEXT NOT NULL REFERENCES parties (id),
    kid         TEXT NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (party_id, kid)
);

-- A booking belongs to the agency that uploaded it; locators are unique per agency
-- only, since two GDSs may hand out the same one.
CREATE TABLE bookings (
    id              TEXT PRIMARY KEY,
    agency_id       TEXT NOT NULL REFERENCES parties (id),
    record_locator  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (agency_id, record_locator)
);
CREATE INDEX bookings_locator ON bookings (record_locator);

-- Flight segments of a booking: the union of what its uploads listed.
CREATE TABLE segments (
    booking_id      TEXT NOT NULL REFERENCES bookings (id),
    carrier         TEXT NOT NULL,
    flight_number   TEXT NOT NULL,
    departure_date  TEXT NOT NULL,
    PRIMARY KEY (booking_id, carrier, flight_number, departure_date)
);
CREATE INDEX segments_flight ON segments (carrier, flight_number, departure_date);

-- A traveller of a booking. `name_index` is an HMAC of the PNR form of the name
-- (a blind index), so airlines can name a traveller without the name being stored
-- in clear; `sealed_name` is the name itself, sealed.
CREATE TABLE travellers (
    id           TEXT PRIMARY KEY,
    booking_id   TEXT NOT NULL REFERENCES bookings (id),
    name_index   BYTEA NOT NULL,
    sealed_name  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (booking_id, name_index)
);

-- Consent records, immutable but for their state: a new upload for the same traveller
-- supersedes the previous one. The signed statement is kept (sealed) with its detached
-- JWS and key id, as the proof of consent.
CREATE TABLE consents (
    id                 TEXT PRIMARY KEY,
    traveller_id       TEXT NOT NULL REFERENCES travellers (id),
    agency_id          TEXT NOT NULL REFERENCES parties (id),
    state              TEXT NOT NULL CHECK (state IN ('given', 'superseded')),
    purposes           TEXT NOT NULL,
    carriers           TEXT NOT NULL,
    collected_at       BIGINT NOT NULL,
    valid_until        BIGINT,
    notice_version     TEXT NOT NULL,
    collection_method  TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    signature          TEXT NOT NULL,
    sealed_statement   BYTEA NOT NULL,
    sealed_mobile      BYTEA,
    sealed_email       BYTEA,
    created_at         BIGINT NOT NULL,
    superseded_by      TEXT REFERENCES consents (id),
    CHECK (sealed_mobile IS NOT NULL OR sealed_email IS NOT NULL)
);
CREATE INDEX consents_traveller ON consents (traveller_id, state);

-- Release tokens: only the SHA-256 of the secret part. Single use: `used_at` is set
-- by a conditional UPDATE, so two redemptions cannot both succeed.
CREATE TABLE release_tokens (
    id               TEXT PRIMARY KEY,
    secret_hash      BYTEA NOT NULL,
    airline_id       TEXT NOT NULL REFERENCES parties (id),
    consent_id       TEXT NOT NULL REFERENCES consents (id),
    traveller_id     TEXT NOT NULL REFERENCES travellers (id),
    booking_id       TEXT NOT NULL REFERENCES bookings (id),
    purpose          TEXT NOT NULL,
    event_category   TEXT NOT NULL,
    event_reference  TEXT NOT NULL,
    flight           TEXT NOT NULL,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT
);

-- The audit log: one row per decision, dense 0-based index. The next index comes from
-- `audit_head`, updated in the same transaction as the entry, so an aborted transaction
-- leaves no gap and concurrent writers are serialised on that one row.
-- No column holds a contact value, a name or a token: pseudonymous ids only.
CREATE TABLE audit_entries (
    idx              BIGINT PRIMARY KEY,
    at               BIGINT NOT NULL,
    request_id       TEXT NOT NULL,
    actor_kind       TEXT NOT NULL,
    actor_id         TEXT NOT NULL,
    action           TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    reason           TEXT,
    agency_id        TEXT,
    airline_id       TEXT,
    booking_id       TEXT,
    traveller_id     TEXT,
    consent_id       TEXT,
    token_id         TEXT,
    purpose          TEXT,
    event_category   TEXT,
    event_reference  TEXT,
    flight           TEXT,
    leaf_hash        BYTEA NOT NULL
);

CREATE TABLE audit_head (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    size  BIGINT NOT NULL
);
INSERT INTO audit_head (id, size) VALUES (1, 0);
