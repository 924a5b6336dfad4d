-- Pages for people: sign-in sessions of the console and the agency view, and the
-- outcome of each verification of the audit log run from the console.
-- The PostgreSQL twin in ../postgres differs only in types.

-- A session holds no secret in clear: the cookie carries the session secret, the row
-- its SHA-256. The CSRF token is per session and compared in constant time. A session
-- lives only as long as the API key it was opened with: revoking the key ends it.
CREATE TABLE web_sessions (
    id_sha256   BLOB PRIMARY KEY,
    api_key_id  TEXT NOT NULL REFERENCES api_keys (id),
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- Each verification run from the console: who asked, over how many entries, and the
-- first finding (none when the log was intact).
CREATE TABLE audit_verifications (
    id           TEXT PRIMARY KEY,
    officer_id   TEXT NOT NULL REFERENCES parties (id),
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    entries      INTEGER NOT NULL,
    checkpoints  INTEGER NOT NULL,
    root         BLOB NOT NULL,
    finding_index INTEGER,
    finding      TEXT
);
CREATE INDEX audit_verifications_finished ON audit_verifications (finished_at);
