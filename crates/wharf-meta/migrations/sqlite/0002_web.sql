-- Web interface: browser sessions, and lookups the pages need.

-- Browser log-in sessions. Like API tokens, only the SHA-256 hex of a session value is stored.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_hash TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Log-in by e-mail address, case-insensitively.
CREATE INDEX accounts_by_email ON accounts (email COLLATE NOCASE);
