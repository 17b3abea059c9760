//! The `fixtures` table on PostgreSQL: which users and keys an apply of fixtures created.

use super::PgStore;
use crate::model::FixtureItem;
use crate::store::StoreError;

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
}
