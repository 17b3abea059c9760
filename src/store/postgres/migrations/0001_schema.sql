-- keyward on PostgreSQL, schema version 1: what SQLite's schema.sql and its steps up to
-- version 4 make, in PostgreSQL's types, plus what several nodes on one database need: a
-- commit-ordered change feed and login failures counted in the database.
-- Times are integer unix milliseconds (UTC). Ids are 24 lowercase hex chars.

CREATE TABLE users (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE CHECK (length(id) = 24),
    username      TEXT    NOT NULL,
    email         TEXT,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    disabled      BOOLEAN NOT NULL DEFAULT false,
    token_epoch   BIGINT  NOT NULL DEFAULT 0,
    -- Keys ever made for this user: what a new unnamed key's `key#N` counts, without
    -- counting the user's keys on every create (SQLite counts them).
    keys_made     BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    deleted_at    BIGINT
);
CREATE UNIQUE INDEX users_username_live ON users (lower(username)) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_email_live ON users (lower(email)) WHERE deleted_at IS NULL AND email IS NOT NULL;

CREATE TABLE keys (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE CHECK (length(id) = 24),
    user_id      TEXT    NOT NULL REFERENCES users (id),
    name         TEXT,
    hash         BYTEA   NOT NULL UNIQUE CHECK (length(hash) = 64),
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    disabled     BOOLEAN NOT NULL DEFAULT false,
    scopes       TEXT,
    meta         TEXT    NOT NULL DEFAULT '{}',
    grants       TEXT
);
CREATE INDEX keys_by_user ON keys (user_id, seq) WHERE revoked_at IS NULL;
CREATE INDEX keys_revoked_by_user ON keys (user_id, revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The change feed. A sequence would not do: its values are taken when rows are written, not
-- when their transactions commit, so a reader that follows "position > last seen" could pass
-- a position whose transaction commits later and never see it. Positions come instead from
-- the one row of `feed_head`, updated inside each writing transaction just before it commits:
-- the row's lock makes the next writer wait for the commit, so positions become visible in
-- order and a follower never skips one.
CREATE TABLE feed_head (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    position BIGINT  NOT NULL
);
INSERT INTO feed_head (only_row, position) VALUES (true, 0);

CREATE TABLE changes (
    position  BIGINT PRIMARY KEY,
    entity    TEXT   NOT NULL CHECK (entity IN ('key', 'user', 'settings')),
    id        TEXT   NOT NULL,
    what      TEXT   NOT NULL,
    at        BIGINT NOT NULL,
    origin    TEXT   NOT NULL,
    state     TEXT   CHECK (state IN ('revoked', 'disabled', 'enabled', 'shortened')),
    not_after BIGINT
);
CREATE INDEX changes_feed ON changes (position) WHERE state IS NOT NULL;

CREATE TABLE audit (
    seq         BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor_id    TEXT,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    source_ip   TEXT,
    detail      TEXT
);

CREATE TABLE sessions (
    hash        BYTEA  PRIMARY KEY CHECK (length(hash) = 32),
    user_id     TEXT   NOT NULL REFERENCES users (id),
    token_epoch BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Failed password logins, counted here so that every node sees them: guessing through
-- several nodes gains nothing. `account` is the 16-byte hash of the account (never the
-- login as typed); `source` the client address, '' for the account as a whole.
CREATE TABLE login_failures (
    account       BYTEA  NOT NULL,
    source        TEXT   NOT NULL,
    count         INTEGER NOT NULL,
    last          BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL,
    PRIMARY KEY (account, source)
);
CREATE INDEX login_failures_by_last ON login_failures (last);
