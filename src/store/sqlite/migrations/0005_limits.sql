-- keyward schema, version 5: per-key rate limits and credits.

-- Named rate limits, a JSON list of {name, limit, duration (as given), seconds}; NULL: none.
ALTER TABLE keys ADD COLUMN ratelimits TEXT;
-- Credits: NULL is unlimited. Otherwise the balance no node has reserved yet: a node takes
-- blocks from it (UPDATE ... WHERE credits_remaining >= n) and spends them in memory.
ALTER TABLE keys ADD COLUMN credits_remaining INTEGER CHECK (credits_remaining >= 0);
-- The refill, JSON {"interval": "daily"|"monthly", "amount"}; NULL: none.
ALTER TABLE keys ADD COLUMN credits_refill TEXT;
-- The start (unix ms, UTC) of the refill period the balance belongs to.
ALTER TABLE keys ADD COLUMN credits_period INTEGER;
