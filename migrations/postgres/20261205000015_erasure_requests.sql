-- Erasure pushed to every recipient (GDPR art. 17 and 19). When a traveller withdraws,
-- a record is superseded with a changed contact, or a record is purged, each airline
-- that was shown the contact (a reveal token used) is asked to erase it: one request
-- per token, pushed to the airline's webhook as `contact.erasure_required` and
-- acknowledged by the airline. A request names the token and the traveller's
-- pseudonymous id, never the contact. The twin in ../sqlite differs only in types.
CREATE TABLE erasure_requests (
    id               TEXT PRIMARY KEY,
    airline_id       TEXT NOT NULL REFERENCES parties (id),
    agency_id        TEXT NOT NULL,
    token_id         TEXT NOT NULL UNIQUE REFERENCES release_tokens (id),
    traveller_id     TEXT NOT NULL,
    consent_id       TEXT NOT NULL,
    reason           TEXT NOT NULL CHECK (reason IN ('consent_withdrawn', 'contact_changed', 'record_purged')),
    requested_at     BIGINT NOT NULL,
    deadline_at      BIGINT NOT NULL,
    acknowledged_at  BIGINT,
    audit_index      BIGINT NOT NULL
);
CREATE INDEX erasure_requests_airline ON erasure_requests (airline_id, requested_at);
CREATE INDEX erasure_requests_agency ON erasure_requests (agency_id, requested_at);
CREATE INDEX erasure_requests_open ON erasure_requests (deadline_at) WHERE acknowledged_at IS NULL;
