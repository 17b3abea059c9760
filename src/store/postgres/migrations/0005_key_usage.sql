-- keyward schema on PostgreSQL: each key's uses by the hour (the same as SQLite's
-- `key_usage`; see there).
CREATE TABLE key_usage (
    key_id         TEXT   NOT NULL,
    start          BIGINT NOT NULL,
    valid          BIGINT NOT NULL DEFAULT 0,
    rate_limited   BIGINT NOT NULL DEFAULT 0,
    usage_exceeded BIGINT NOT NULL DEFAULT 0,
    expired        BIGINT NOT NULL DEFAULT 0,
    disabled       BIGINT NOT NULL DEFAULT 0,
    revoked        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, start)
);
CREATE INDEX key_usage_by_start ON key_usage (start);
