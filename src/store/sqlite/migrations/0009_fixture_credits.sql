-- keyward schema: what a fixtures file said of a key's credits.

-- The credits of a fixture key as the file gave them at the apply that last set them (no
-- row: the file gave none). An apply sets the key's credits only when the file's value
-- differs from this, so re-applying an unchanged file never resets a balance spent since.
CREATE TABLE fixture_credits (
    key_id    TEXT    NOT NULL PRIMARY KEY,
    remaining INTEGER NOT NULL,
    refill    TEXT
) WITHOUT ROWID;
