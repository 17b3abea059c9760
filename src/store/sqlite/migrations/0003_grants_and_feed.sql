-- keyward schema, version 3: recorded grants of privileged scopes, and the offline
-- revocation feed.

-- The privileged scopes (keys:verify, users:admin, metrics:read) of a key that an admin
-- granted, as a JSON array. A key holding one of them is honoured for it only if it is
-- here: keys made before this version hold none, so such scopes stop working until an
-- admin grants them again.
ALTER TABLE keys ADD COLUMN grants TEXT;

-- What a change means to a service verifying keys offline: the key's state after it
-- ('revoked', 'disabled', 'enabled', or 'shortened' with the new end in not_after). Rows
-- with a state are the feed GET /v1/revocations serves, in commit order (seq); a change to
-- a user writes one row for each of their keys.
ALTER TABLE changes ADD COLUMN state TEXT CHECK (state IN ('revoked', 'disabled', 'enabled', 'shortened'));
ALTER TABLE changes ADD COLUMN not_after INTEGER;
CREATE INDEX changes_feed ON changes (seq) WHERE state IS NOT NULL;

-- The feed from what version 2 recorded.
UPDATE changes SET state = 'revoked' WHERE entity = 'key' AND what = 'revoked';
UPDATE changes SET state = what WHERE entity = 'key' AND what IN ('disabled', 'enabled');
UPDATE changes
   SET state = 'shortened', not_after = (SELECT expires_at FROM keys WHERE keys.id = changes.id)
 WHERE entity = 'key' AND what = 'expiry';
-- Version 2 recorded a user's disabling only for the user: one row for each of the live
-- keys of every user disabled now.
INSERT INTO changes (entity, id, what, at, origin, state)
SELECT 'key', k.id, 'user_disabled', u.updated_at, 'migration', 'disabled'
  FROM keys k JOIN users u ON u.id = k.user_id
 WHERE u.disabled = 1 AND u.deleted_at IS NULL AND k.revoked_at IS NULL
 ORDER BY k.seq;
