-- keyward schema, version 2: web console sessions.
-- The session cookie holds 32 random bytes; only their blake3 hash is stored, so a copy of
-- the database signs no one in. A session ends at sign-out (the row is deleted), at
-- expires_at, or when its user's token_epoch moves on (password change, disable, delete).
CREATE TABLE sessions (
    hash        BLOB    PRIMARY KEY CHECK (length(hash) = 32),
    user_id     TEXT    NOT NULL REFERENCES users (id),
    token_epoch INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
