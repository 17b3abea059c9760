//! The `fixtures` table on PostgreSQL: which users and keys an apply of fixtures created;
//! and `fixture_credits`: the credits the file gave each key.

use super::PgStore;
use crate::model::{Credits, FixtureItem, KeyId};
use crate::store::StoreError;
use crate::store::formats::credit_column;

impl PgStore {
    pub async fn fixture_items(&self) -> Result<Vec<FixtureItem>, StoreError> {
        let rows = self
            .reader()
            .await?
            .query("SELECT kind, id FROM fixtures ORDER BY kind, id", &[])
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| FixtureItem::parse(r.get(0), r.get(1)))
            .collect())
    }

    pub async fn set_fixture_item(&self, item: FixtureItem, made: bool) -> Result<(), StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let (kind, id) = (item.kind(), item.id());
                        let sql = if made {
                            "INSERT INTO fixtures (kind, id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                        } else {
                            "DELETE FROM fixtures WHERE kind = $1 AND id = $2"
                        };
                        tx.execute(sql, &[&kind, &id]).await?;
                        Ok(((), Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }

    pub async fn fixture_credits(&self, id: KeyId) -> Result<Option<Credits>, StoreError> {
        let row = self
            .reader()
            .await?
            .query_opt(
                "SELECT remaining, refill FROM fixture_credits WHERE key_id = $1",
                &[&id.to_string()],
            )
            .await?;
        Ok(row.and_then(|r| Credits::from_columns(Some(r.get::<_, i64>(0)), r.get::<_, Option<&str>>(1), 0)))
    }

    pub async fn set_fixture_credits(&self, id: KeyId, credits: Option<Credits>) -> Result<(), StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let id = id.to_string();
                        match credits {
                            Some(c) => {
                                tx.execute(
                                    "INSERT INTO fixture_credits (key_id, remaining, refill) VALUES ($1, $2, $3) \
                                     ON CONFLICT (key_id) DO UPDATE SET remaining = excluded.remaining, refill = excluded.refill",
                                    &[&id, &credit_column(c.remaining), &c.refill_column()],
                                )
                                .await?
                            }
                            None => {
                                tx.execute("DELETE FROM fixture_credits WHERE key_id = $1", &[&id])
                                    .await?
                            }
                        };
                        Ok(((), Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }
}
