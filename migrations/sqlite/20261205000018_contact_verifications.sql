-- Verified contacts, on request. An agency asks the broker to check that a record's
-- contact reaches the traveller: the broker sends a code by SMS, or a link by email,
-- through its relay (this table is also that message's queue, leased like `messages`),
-- and the traveller's answer sets `verified_at` on the channel. Nothing is sent unless
-- the agency asks. The row holds the contact's keyed digest (the contact it checks,
-- never the contact) and the code sealed under the root key, so the worker can send it
-- and the broker compare it; both end with the record. The twin in ../postgres differs
-- only in types.
CREATE TABLE contact_verifications (
    id               TEXT PRIMARY KEY,
    agency_id        TEXT NOT NULL,
    consent_id       TEXT NOT NULL REFERENCES consents (id),
    traveller_id     TEXT NOT NULL,
    channel          TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    digest           BLOB NOT NULL,
    language         TEXT NOT NULL,
    sealed_secret    BLOB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'delivered', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    expires_at       INTEGER NOT NULL,
    wrong_codes      INTEGER NOT NULL DEFAULT 0,
    confirmed_at     INTEGER,
    -- What the SMS gateway or a bounce said of it, as for a relayed message.
    receipt_status   TEXT,
    receipt_reason   TEXT,
    receipt_at       INTEGER
);
CREATE INDEX contact_verifications_due ON contact_verifications (next_attempt_at) WHERE status = 'queued';
CREATE INDEX contact_verifications_consent ON contact_verifications (consent_id, channel, created_at);

-- When the traveller last confirmed that the channel's contact reaches them.
ALTER TABLE channel_reachability ADD COLUMN verified_at INTEGER;
