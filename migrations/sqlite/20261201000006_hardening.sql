-- Holding against a hostile tenant: keys an operator can expire, checks that the
-- broker runs with the keys its data was sealed under, the broker's signing keys
-- over time, and the domains an airline's relayed messages may link to.
-- The PostgreSQL twin in ../postgres differs only in types.

-- An API key may expire (`party add … --expires-in-days`, `party api-key rotate
-- --grace-minutes`): after `expires_at` it opens nothing, like a revoked one.
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
CREATE INDEX api_keys_party ON api_keys (party_id);

-- A check value per data key (the root key as `root`, each master key by its id): an
-- HMAC of a fixed label under the key, never the key. A broker started or reloaded
-- with another key of the same id refuses it instead of failing later on every read.
CREATE TABLE key_checks (
    kid          TEXT PRIMARY KEY,
    check_value  BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Every Ed25519 key the broker has signed receipts and checkpoints with, public half
-- only, so that `/.well-known/jwks.json` still verifies old receipts after a change.
-- A key id names one key for ever.
CREATE TABLE broker_keys (
    kid         TEXT PRIMARY KEY,
    public_jwk  TEXT NOT NULL,
    first_used  INTEGER NOT NULL
);

-- The domains an airline's relayed messages may link to (space-separated); none
-- when NULL, so a message with a link is refused until the airline registers them.
ALTER TABLE parties ADD COLUMN link_domains TEXT;
