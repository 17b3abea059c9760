-- keyward schema, version 4: an index for each user's recently revoked keys (the console
-- lists the last 30 days under the live ones); `keys_by_user` covers only live keys.
CREATE INDEX keys_revoked_by_user ON keys (user_id, revoked_at) WHERE revoked_at IS NOT NULL;
