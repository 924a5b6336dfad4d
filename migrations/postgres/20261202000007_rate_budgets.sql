-- The airlines' rate-limit budgets, shared by every broker on this database, so that
-- two brokers behind a load balancer give an airline the limit once, not twice.
-- PostgreSQL only: an embedded SQLite broker is the one broker on its file and keeps
-- its budgets in memory.
--
-- UNLOGGED: no request waits on this table's WAL, and a crash that forgets a budget
-- only gives it back full, which is what an unused budget is anyway.
CREATE UNLOGGED TABLE rate_budgets (
    party_id  TEXT NOT NULL,
    -- `asks` or `refused_uses`.
    budget    TEXT NOT NULL,
    -- Tokens left at `at_ms` (may be below zero after a flight larger than the burst).
    level     DOUBLE PRECISION NOT NULL,
    -- The database's own clock, in Unix milliseconds, so brokers' clocks never disagree.
    at_ms     BIGINT NOT NULL,
    PRIMARY KEY (party_id, budget)
);
