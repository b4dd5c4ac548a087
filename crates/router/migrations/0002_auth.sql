-- Users, sessions, API keys and router settings (issue: security).
-- Secrets are never stored: passwords as argon2 hashes, session tokens and API keys as SHA-256.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL, -- argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY, -- hex SHA-256 of the session token
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE, -- hex SHA-256 of the key
    prefix       TEXT NOT NULL,        -- first characters of the key, to recognise it
    models       TEXT,                 -- JSON array of allowed models; NULL = every model
    created_by   TEXT,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER,
    revoked_ms   INTEGER,
    last_used_ms INTEGER
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
