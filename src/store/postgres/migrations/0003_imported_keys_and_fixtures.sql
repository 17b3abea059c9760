-- keyward schema on PostgreSQL, version 3: imported keys and what fixtures made (the same
-- as SQLite's version 6; see there).
ALTER TABLE keys ADD COLUMN sha256 BYTEA CHECK (sha256 IS NULL OR length(sha256) = 32);
CREATE UNIQUE INDEX keys_by_sha256 ON keys (sha256) WHERE sha256 IS NOT NULL;

CREATE TABLE fixtures (
    kind TEXT NOT NULL CHECK (kind IN ('user', 'key')),
    id   TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
