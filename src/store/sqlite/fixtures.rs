//! The `fixtures` table: which users and keys an apply of fixtures created.

use rusqlite::params;

use super::{SqliteStore, StoreError};
use crate::model::FixtureItem;

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
}
