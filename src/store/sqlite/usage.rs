//! Key uses: the last-use times and the hourly usage buckets (`key_usage`).

use rusqlite::params;

use super::{SqliteStore, StoreError};
use crate::model::{KeyId, Timestamp, UsageBucket, UsageCounts};

/// The columns of the counts, in the order of `Outcome::ALL`.
const COUNT_COLUMNS: &str = "valid, rate_limited, usage_exceeded, expired, disabled, revoked";

fn counts_from_row(r: &rusqlite::Row, first: usize) -> rusqlite::Result<UsageCounts> {
    let mut counts = UsageCounts::default();
    for (i, n) in counts.0.iter_mut().enumerate() {
        *n = r.get(first + i)?;
    }
    Ok(counts)
}

impl SqliteStore {
    pub async fn record_key_usage(
        &self,
        uses: Vec<(KeyId, Timestamp)>,
        buckets: Vec<UsageBucket>,
    ) -> Result<(), StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                let mut stmt = tx.prepare_cached(
                    "UPDATE keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
                )?;
                for (id, at) in &uses {
                    stmt.execute(params![id, at.millis()])?;
                }
                let mut add = tx.prepare_cached(&format!(
                    "INSERT INTO key_usage (key_id, start, {COUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (key_id, start) DO UPDATE SET valid = valid + excluded.valid, \
                     rate_limited = rate_limited + excluded.rate_limited, \
                     usage_exceeded = usage_exceeded + excluded.usage_exceeded, \
                     expired = expired + excluded.expired, disabled = disabled + excluded.disabled, \
                     revoked = revoked + excluded.revoked"
                ))?;
                for b in &buckets {
                    let [v, r, u, e, d, k] = b.counts.0;
                    add.execute(params![b.key_id, b.start.millis(), v, r, u, e, d, k])?;
                }
                Ok(())
            },
            |()| {},
        )
        .await
    }

    pub async fn key_usage(&self, id: KeyId, from: Timestamp, to: Timestamp) -> Result<Vec<UsageBucket>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT start, {COUNT_COLUMNS} FROM key_usage WHERE key_id = ?1 AND start >= ?2 AND start < ?3 \
                 ORDER BY start"
            ))?
            .query_map(params![id, from.millis(), to.millis()], |r| {
                Ok(UsageBucket {
                    key_id: id,
                    start: Timestamp::from_millis(r.get(0)?),
                    counts: counts_from_row(r, 1)?,
                })
            })?
            .collect()
        })
        .await
    }

    pub async fn valid_uses_since(&self, since: Timestamp) -> Result<Vec<(KeyId, i64)>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT key_id, sum(valid) FROM key_usage WHERE start >= ?1 GROUP BY key_id")?
                .query_map([since.millis()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .await
    }

    pub async fn sweep_usage(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                let gone = tx.execute("DELETE FROM key_usage WHERE start < ?1", [before.millis()])?;
                Ok(u64::try_from(gone).unwrap_or(0))
            },
            |_| {},
        )
        .await
    }
}
