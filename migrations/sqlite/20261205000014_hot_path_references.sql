-- The PostgreSQL twin in ../postgres drops the foreign keys of the hot-path rows
-- that restate another (a token's airline, traveller and booking; a message's
-- airline, agency, consent and traveller; a consent's agency), because there each
-- check locks the parent row. SQLite keeps them: its check is a read in the writer's
-- own transaction, with no lock to take. Nothing changes here; the number is kept
-- so that both engines' migrations advance together.
SELECT 1;
