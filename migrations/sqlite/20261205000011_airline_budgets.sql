-- Per-airline daily budgets against pretext harvesting (policies/tunables.toml
-- [budgets]): the flights put under the disruptions it declared, and the reveal tokens
-- it was granted, each UTC day, counted in the transaction that takes them so that
-- every broker on the database counts the same. The PostgreSQL twin in ../postgres
-- differs only in types.
CREATE TABLE airline_budgets (
    airline_id    TEXT NOT NULL REFERENCES parties (id),
    -- The UTC day, `YYYY-MM-DD`.
    day           TEXT NOT NULL,
    -- `disrupted_flights` or `reveals`.
    budget        TEXT NOT NULL CHECK (budget IN ('disrupted_flights', 'reveals')),
    used          INTEGER NOT NULL,
    -- The budget as it stood at the last charge (the disrupted flights' depends on
    -- the schedule the broker knows of).
    budget_limit  INTEGER NOT NULL,
    -- When the use passed the alert level (`alert_percent` of the budget), once a day.
    alerted_at    INTEGER,
    PRIMARY KEY (airline_id, day, budget)
);
CREATE INDEX airline_budgets_alerted ON airline_budgets (alerted_at) WHERE alerted_at IS NOT NULL;
