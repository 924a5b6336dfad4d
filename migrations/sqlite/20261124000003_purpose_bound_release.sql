-- Purpose-bound release (issue 4): delivery choice, tokens with channels, uses and
-- revocation, the relay outbox, agency webhooks, and the policies that decided each
-- audit entry. The PostgreSQL twin in ../postgres differs only in types.

-- How an agency's clients are reached: 'reveal' gives the airline the contact,
-- 'relay' has the broker deliver the airline's message itself. A traveller's own
-- setting (chosen by the agency for that record) wins over the agency's.
ALTER TABLE parties ADD COLUMN delivery TEXT NOT NULL DEFAULT 'reveal'
    CHECK (delivery IN ('reveal', 'relay'));
ALTER TABLE travellers ADD COLUMN delivery TEXT CHECK (delivery IN ('reveal', 'relay'));

-- An agency's webhook: where each use of its clients' data is pushed, and the HMAC key
-- that signs the pushes, sealed (the broker needs it back to sign).
ALTER TABLE parties ADD COLUMN webhook_url TEXT;
ALTER TABLE parties ADD COLUMN sealed_webhook_secret BLOB;

-- Tokens: the channels they cover, uses left, how they deliver, and revocation.
ALTER TABLE release_tokens ADD COLUMN channels TEXT NOT NULL DEFAULT 'sms,email';
ALTER TABLE release_tokens ADD COLUMN uses_left INTEGER NOT NULL DEFAULT 1;
ALTER TABLE release_tokens ADD COLUMN delivery TEXT NOT NULL DEFAULT 'reveal'
    CHECK (delivery IN ('reveal', 'relay'));
ALTER TABLE release_tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE release_tokens ADD COLUMN revoked_reason TEXT;
UPDATE release_tokens SET uses_left = 0 WHERE used_at IS NOT NULL;
CREATE INDEX release_tokens_traveller ON release_tokens (traveller_id);

-- Which policies decided an entry (their @ids) and which version of the policy files
-- was in force (SHA-256); the relayed message and its channel.
ALTER TABLE audit_entries ADD COLUMN policies TEXT;
ALTER TABLE audit_entries ADD COLUMN policy_digest TEXT;
ALTER TABLE audit_entries ADD COLUMN message_id TEXT;
ALTER TABLE audit_entries ADD COLUMN channel TEXT;
CREATE INDEX audit_entries_agency ON audit_entries (agency_id, idx);
CREATE INDEX audit_entries_traveller ON audit_entries (traveller_id, idx);

-- The relay outbox: a message is stored in the same transaction as the token use and
-- its audit entry, then delivered by the worker with retries. Its subject and text are
-- sealed; the recipient is not stored here at all but opened from the consent record
-- at delivery time, so a withdrawal before delivery cancels the message.
CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    token_id         TEXT NOT NULL REFERENCES release_tokens (id),
    airline_id       TEXT NOT NULL REFERENCES parties (id),
    agency_id        TEXT NOT NULL REFERENCES parties (id),
    consent_id       TEXT NOT NULL REFERENCES consents (id),
    traveller_id     TEXT NOT NULL REFERENCES travellers (id),
    channel          TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    category         TEXT NOT NULL,
    sealed_body      BLOB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'delivered', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX messages_due ON messages (status, next_attempt_at);

-- Pushes to agency webhooks, one per use of a client's data. The payload is the
-- receipt (ids, purpose, event; never a contact value).
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    agency_id        TEXT NOT NULL REFERENCES parties (id),
    audit_index      INTEGER NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
