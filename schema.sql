-- keyward schema, version 1. Applied by the server at start when PRAGMA user_version is 0;
-- later versions are ordered steps in src/store/migrations/ (0002_sessions.sql: web console
-- sessions; 0003_revoked_keys.sql: an index of revoked keys), applied in order by
-- src/store/migrations.rs.
-- Times are integer unix milliseconds (UTC). Ids are 24 lowercase hex chars (96 random bits).

-- People who log in. Soft-deleted rows keep their id for the audit trail; the username and
-- email become free again (the unique indexes only cover rows that are not deleted).
CREATE TABLE users (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE CHECK (length(id) = 24),
    username      TEXT    NOT NULL,
    email         TEXT,
    password_hash TEXT    NOT NULL,          -- argon2id PHC string
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- Bumped when the password changes or the account is disabled/deleted; access tokens
    -- carry the epoch they were issued under and die when it moves on.
    token_epoch   INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER
);
CREATE UNIQUE INDEX users_username_live ON users (username COLLATE NOCASE) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_email_live ON users (email COLLATE NOCASE) WHERE deleted_at IS NULL AND email IS NOT NULL;

-- API keys. Only a digest of the key is stored: blake3's extendable output to 64 bytes of
-- the exact token bytes. Its first 32 bytes are the ordinary blake3 hash, which is what
-- lookups use; the whole is seed 001's 128-hex-char `hash`.
CREATE TABLE keys (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE CHECK (length(id) = 24),
    user_id      TEXT    NOT NULL REFERENCES users (id),
    name         TEXT,
    hash         BLOB    NOT NULL UNIQUE CHECK (length(hash) = 64),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    expires_at   INTEGER,                    -- NULL: never (the token's exp is iat + 100 years)
    last_used_at INTEGER,
    revoked_at   INTEGER,                    -- kept for audit; revoked keys are hidden from lists
    disabled     INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    scopes       TEXT,                       -- JSON array of strings; NULL: acts as its user
    meta         TEXT    NOT NULL DEFAULT '{}' -- JSON object, at most 4 KiB
);
CREATE INDEX keys_by_user ON keys (user_id, seq) WHERE revoked_at IS NULL;

-- Server facts: the generated master secret (when none is configured), schema facts.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Append-only record of every key or user write, written in the same transaction. A running
-- server follows it to notice writes it did not make itself (the CLI, another process):
-- `origin` names the process that wrote the row, so each skips its own.
CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY,
    entity TEXT    NOT NULL CHECK (entity IN ('key', 'user')),
    id     TEXT    NOT NULL,
    what   TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    origin TEXT    NOT NULL
);

-- The audit trail: every key and user change and every failed login, with who, what, when
-- and from where. Never a secret: no keys, passwords or tokens, and a failed login names
-- the account only when it exists.
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_id    TEXT,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    source_ip   TEXT,
    detail      TEXT
);
