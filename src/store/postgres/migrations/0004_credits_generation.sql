-- keyward on PostgreSQL, schema version 4: the generation of a key's (and a user's) credits
-- (SQLite's 7).

-- Moves on with every set or clear of the credits (never with an addition, a reservation or
-- a refill). A node holds blocks reserved under one generation; a block of an older one is
-- void (the credits were set anew since), so it is neither spent once the change is known
-- nor given back at shutdown.
ALTER TABLE keys ADD COLUMN credits_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN credits_generation BIGINT NOT NULL DEFAULT 0;
