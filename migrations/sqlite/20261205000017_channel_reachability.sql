-- Whether a traveller's channel reaches them, as the broker last learnt: a gateway's
-- undeliverable receipt (or, later, an email's hard bounce) marks it unreachable, a
-- delivery marks it reachable again. It is about one contact (its keyed digest, as in
-- consents.mobile_digest and email_digest): a new version of the record with another
-- contact leaves it behind, and the agency's list of contacts to fix drops it. The
-- contact itself is kept: the agency decides. The twin in ../postgres differs only in types.
CREATE TABLE channel_reachability (
    traveller_id  TEXT NOT NULL,
    channel       TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    agency_id     TEXT NOT NULL,
    digest        BLOB NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('reachable', 'unreachable')),
    reason        TEXT,
    message_id    TEXT,
    changed_at    INTEGER NOT NULL,
    delivered_at  INTEGER,
    PRIMARY KEY (traveller_id, channel)
);
CREATE INDEX channel_reachability_agency ON channel_reachability (agency_id, state);
