-- Disruptions: the operational events an airline declares (a cancellation, a delay
-- with its new time…), under which alone it is granted tokens. A grant's event
-- reference is the disruption's id, so nothing distinguishes a harvest from a real
-- event only if the airline declares one, which is audited and budgeted.
-- The PostgreSQL twin in ../postgres differs only in types.
CREATE TABLE disruptions (
    id             TEXT PRIMARY KEY,
    airline_id     TEXT NOT NULL REFERENCES parties (id),
    -- `cancellation`, `delay`, … (the event categories of the API).
    category       TEXT NOT NULL,
    -- The airline's own reference: one disruption per reference.
    reference      TEXT NOT NULL,
    -- When it happened, as the airline says (Unix milliseconds, like every time here).
    occurred_at    INTEGER NOT NULL,
    -- The new departure time of a delay or schedule change, when known.
    new_departure  INTEGER,
    -- The airline's note to agencies and officers; never sent to a traveller.
    note           TEXT,
    -- `open`, `updated` (open, with a later revision) or `closed`.
    state          TEXT NOT NULL,
    -- Each declaration, update or closing is a revision, from 1.
    revision       INTEGER NOT NULL,
    declared_at    INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    closed_at      INTEGER,
    UNIQUE (airline_id, reference)
);
CREATE INDEX disruptions_airline ON disruptions (airline_id, declared_at);

-- The flights a disruption carries, in the columns of `segments` so that the
-- travellers it affects are one join away.
CREATE TABLE disruption_flights (
    disruption_id   TEXT NOT NULL REFERENCES disruptions (id),
    carrier         TEXT NOT NULL,
    flight_number   TEXT NOT NULL,
    departure_date  TEXT NOT NULL,
    PRIMARY KEY (disruption_id, carrier, flight_number, departure_date)
);
CREATE INDEX disruption_flights_flight ON disruption_flights (carrier, flight_number, departure_date);

-- The tokens granted under a disruption, which its closing revokes.
CREATE INDEX release_tokens_event ON release_tokens (event_reference);
