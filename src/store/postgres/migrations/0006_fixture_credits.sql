-- keyward schema on PostgreSQL: what a fixtures file said of a key's credits (the same as
-- SQLite's 0009; see there).
CREATE TABLE fixture_credits (
    key_id    TEXT   NOT NULL PRIMARY KEY,
    remaining BIGINT NOT NULL,
    refill    TEXT
);
