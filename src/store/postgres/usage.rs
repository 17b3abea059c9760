//! Key uses on PostgreSQL: the last-use times and the hourly usage buckets (`key_usage`).

use super::PgStore;
use super::rows::key_id;
use crate::model::{KeyId, Timestamp, UsageBucket, UsageCounts};
use crate::store::StoreError;

/// The columns of the counts, in the order of `Outcome::ALL`.
const COUNT_COLUMNS: &str = "valid, rate_limited, usage_exceeded, expired, disabled, revoked";

impl PgStore {
    /// Counts for one (key, hour) given twice in a batch add up (one row each, summed first:
    /// an upsert may not touch a row twice).
    pub async fn record_key_usage(
        &self,
        uses: Vec<(KeyId, Timestamp)>,
        buckets: Vec<UsageBucket>,
    ) -> Result<(), StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        if !uses.is_empty() {
                            let ids: Vec<String> = uses.iter().map(|(id, _)| id.to_string()).collect();
                            let times: Vec<i64> = uses.iter().map(|(_, at)| at.millis()).collect();
                            tx.execute(
                                "UPDATE keys SET last_used_at = greatest(coalesce(last_used_at, 0), u.at) \
                                 FROM unnest($1::TEXT[], $2::BIGINT[]) AS u(id, at) WHERE keys.id = u.id",
                                &[&ids, &times],
                            )
                            .await?;
                        }
                        if !buckets.is_empty() {
                            let ids: Vec<String> = buckets.iter().map(|b| b.key_id.to_string()).collect();
                            let starts: Vec<i64> = buckets.iter().map(|b| b.start.millis()).collect();
                            let column = |i: usize| buckets.iter().map(|b| b.counts.0[i]).collect::<Vec<i64>>();
                            let (v, r, u, e, d, k) = (column(0), column(1), column(2), column(3), column(4), column(5));
                            tx.execute(
                                &format!(
                                    "INSERT INTO key_usage (key_id, start, {COUNT_COLUMNS}) \
                                     SELECT k, s, sum(v), sum(r), sum(u), sum(e), sum(d), sum(x) \
                                     FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], \
                                     $5::BIGINT[], $6::BIGINT[], $7::BIGINT[], $8::BIGINT[]) AS b(k, s, v, r, u, e, d, x) \
                                     GROUP BY k, s \
                                     ON CONFLICT (key_id, start) DO UPDATE SET \
                                     valid = key_usage.valid + excluded.valid, \
                                     rate_limited = key_usage.rate_limited + excluded.rate_limited, \
                                     usage_exceeded = key_usage.usage_exceeded + excluded.usage_exceeded, \
                                     expired = key_usage.expired + excluded.expired, \
                                     disabled = key_usage.disabled + excluded.disabled, \
                                     revoked = key_usage.revoked + excluded.revoked"
                                ),
                                &[&ids, &starts, &v, &r, &u, &e, &d, &k],
                            )
                            .await?;
                        }
                        Ok(((), Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }

    pub async fn key_usage(&self, id: KeyId, from: Timestamp, to: Timestamp) -> Result<Vec<UsageBucket>, StoreError> {
        self.reader()
            .await?
            .query(
                &format!(
                    "SELECT start, {COUNT_COLUMNS} FROM key_usage WHERE key_id = $1 AND start >= $2 AND start < $3 \
                     ORDER BY start"
                ),
                &[&id.to_string(), &from.millis(), &to.millis()],
            )
            .await?
            .iter()
            .map(|r| {
                let mut counts = UsageCounts::default();
                for (i, n) in counts.0.iter_mut().enumerate() {
                    *n = r.try_get(1 + i)?;
                }
                Ok(UsageBucket {
                    key_id: id,
                    start: Timestamp::from_millis(r.try_get(0)?),
                    counts,
                })
            })
            .collect()
    }

    pub async fn valid_uses_since(&self, since: Timestamp) -> Result<Vec<(KeyId, i64)>, StoreError> {
        self.reader()
            .await?
            .query(
                "SELECT key_id, sum(valid)::BIGINT FROM key_usage WHERE start >= $1 GROUP BY key_id",
                &[&since.millis()],
            )
            .await?
            .iter()
            .map(|r| Ok((key_id(r.try_get(0)?)?, r.try_get(1)?)))
            .collect()
    }

    pub async fn sweep_usage(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let gone = tx
                            .execute("DELETE FROM key_usage WHERE start < $1", &[&before.millis()])
                            .await?;
                        Ok((gone, Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }
}
