-- keyward schema: each key's uses by the hour (UTC), counted in memory and written with the
-- key-use batches; kept for `usage.retention` (90 days by default). `start` is unix ms of
-- the hour's start. No foreign key: a revoked key's usage stays readable, and the retention
-- sweep removes old rows whatever became of their key.
CREATE TABLE key_usage (
    key_id         TEXT    NOT NULL,
    start          INTEGER NOT NULL,
    valid          INTEGER NOT NULL DEFAULT 0,
    rate_limited   INTEGER NOT NULL DEFAULT 0,
    usage_exceeded INTEGER NOT NULL DEFAULT 0,
    expired        INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    revoked        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, start)
) WITHOUT ROWID;
-- For the retention sweep and "uses in the last 24 hours" of every key.
CREATE INDEX key_usage_by_start ON key_usage (start);
