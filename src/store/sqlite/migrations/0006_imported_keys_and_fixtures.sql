-- keyward schema, version 6: imported keys (keys keyward did not mint), and what fixtures made.

-- The SHA-256 of an imported key, as the system it came from kept it (NULL for keys keyward
-- minted). Its `hash` is that SHA-256 followed by 32 zero bytes (a blake3 digest never ends
-- so): every reader of `hash` (the key view, revocation, the change feed, other nodes) takes
-- its first 32 bytes as the lookup, so imported keys travel every path minted ones do.
ALTER TABLE keys ADD COLUMN sha256 BLOB CHECK (sha256 IS NULL OR length(sha256) = 32);
CREATE UNIQUE INDEX keys_by_sha256 ON keys (sha256) WHERE sha256 IS NOT NULL;

-- The users and keys an apply of fixtures (`keyward fixtures apply`, `serve --fixtures`)
-- created: `--prune` removes only these, and only when the file no longer lists them.
CREATE TABLE fixtures (
    kind TEXT NOT NULL CHECK (kind IN ('user', 'key')),
    id   TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
