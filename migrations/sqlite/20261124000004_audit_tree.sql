-- The audit log as a Merkle tree (RFC 9162) with signed checkpoints.
-- The PostgreSQL twin in ../postgres differs only in types.

-- Every perfect subtree above the leaves (2^level entries from idx * 2^level), written
-- in the transaction of the entry that completes it. Leaves are audit_entries.leaf_hash.
-- With these, a tree head or a proof reads O(log n) rows whatever the log's length.
-- `last_leaf` orders nodes as they complete, so a verifier can stream them beside
-- the entries.
CREATE TABLE audit_nodes (
    level      INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    last_leaf  INTEGER NOT NULL,
    hash       BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE INDEX audit_nodes_last_leaf ON audit_nodes (last_leaf, level);

-- Signed tree heads (C2SP signed notes). Copies are also published outside the
-- database; these rows are what the API serves and what `audit verify` checks first.
CREATE TABLE audit_checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    signed_at  INTEGER NOT NULL,
    note       TEXT NOT NULL
);

-- What compliance officers filter on.
CREATE INDEX audit_entries_at ON audit_entries (at, idx);
CREATE INDEX audit_entries_airline ON audit_entries (airline_id, idx);
CREATE INDEX audit_entries_booking ON audit_entries (booking_id, idx);
CREATE INDEX audit_entries_action ON audit_entries (action, outcome, idx);
