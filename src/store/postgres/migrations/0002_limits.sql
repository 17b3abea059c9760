-- keyward on PostgreSQL, schema version 2: rate limits and credits of keys and of users
-- (SQLite's 5).

-- Named rate limits, a JSON list of {name, limit, duration (as given), seconds}; NULL: none.
ALTER TABLE keys ADD COLUMN ratelimits TEXT;
-- Credits: NULL is unlimited. Otherwise the balance no node has reserved yet: each node
-- takes blocks from it (UPDATE ... WHERE credits_remaining >= n) and spends them in memory.
ALTER TABLE keys ADD COLUMN credits_remaining BIGINT CHECK (credits_remaining >= 0);
-- The refill, JSON {"interval": "daily"|"monthly", "amount"}; NULL: none.
ALTER TABLE keys ADD COLUMN credits_refill TEXT;
-- The start (unix ms, UTC) of the refill period the balance belongs to.
ALTER TABLE keys ADD COLUMN credits_period BIGINT;

-- The same on a user: shared by all of the user's keys (so more keys buy no more quota).
ALTER TABLE users ADD COLUMN ratelimits TEXT;
ALTER TABLE users ADD COLUMN credits_remaining BIGINT CHECK (credits_remaining >= 0);
ALTER TABLE users ADD COLUMN credits_refill TEXT;
ALTER TABLE users ADD COLUMN credits_period BIGINT;
