//! The `fixtures` table: which users and keys an apply of fixtures created; and
//! `fixture_credits`: the credits the file gave each key.

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, StoreError};
use crate::model::{Credits, FixtureItem, KeyId};
use crate::store::formats::credit_column;

impl SqliteStore {
    pub async fn fixture_items(&self) -> Result<Vec<FixtureItem>, StoreError> {
        self.read(|c| {
            let rows = c
                .prepare_cached("SELECT kind, id FROM fixtures ORDER BY kind, id")?
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .iter()
                .filter_map(|(kind, id)| FixtureItem::parse(kind, id))
                .collect())
        })
        .await
    }

    pub async fn set_fixture_item(&self, item: FixtureItem, made: bool) -> Result<(), StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                let (kind, id) = (item.kind(), item.id());
                if made {
                    tx.prepare_cached("INSERT OR IGNORE INTO fixtures (kind, id) VALUES (?1, ?2)")?
                        .execute(params![kind, id])?;
                } else {
                    tx.prepare_cached("DELETE FROM fixtures WHERE kind = ?1 AND id = ?2")?
                        .execute(params![kind, id])?;
                }
                Ok(())
            },
            |()| {},
        )
        .await
    }

    pub async fn fixture_credits(&self, id: KeyId) -> Result<Option<Credits>, StoreError> {
        self.read(move |c| {
            let row = c
                .prepare_cached("SELECT remaining, refill FROM fixture_credits WHERE key_id = ?1")?
                .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)))
                .optional()?;
            Ok(row.and_then(|(remaining, refill)| Credits::from_columns(Some(remaining), refill.as_deref(), 0)))
        })
        .await
    }

    pub async fn set_fixture_credits(&self, id: KeyId, credits: Option<Credits>) -> Result<(), StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                match credits {
                    Some(c) => tx
                        .prepare_cached(
                            "INSERT INTO fixture_credits (key_id, remaining, refill) VALUES (?1, ?2, ?3) \
                             ON CONFLICT (key_id) DO UPDATE SET remaining = excluded.remaining, refill = excluded.refill",
                        )?
                        .execute(params![id, credit_column(c.remaining), c.refill_column()])?,
                    None => tx
                        .prepare_cached("DELETE FROM fixture_credits WHERE key_id = ?1")?
                        .execute([id])?,
                };
                Ok(())
            },
            |()| {},
        )
        .await
    }
}
