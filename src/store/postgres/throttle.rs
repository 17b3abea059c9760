//! The `login_failures` table: failed password logins counted where every node sees them,
//! so spreading guesses over several nodes gains nothing. Each statement is atomic on its
//! own (an upsert, or an update that takes the account's next turn), so nodes racing on one
//! account count every failure once. Accounts are 16-byte hashes, never logins as typed.

use std::time::Duration;

use super::PgStore;
use crate::model::{ThrottleCheck, ThrottleRules, Timestamp};
use crate::store::StoreError;

/// The `source` of an account's own row (its count from every address).
const WHOLE_ACCOUNT: &str = "";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Whether `account` may try a password from `source` at `now`. Past the account's
    /// ceiling, an attempt that goes ahead takes the account's next turn.
    pub async fn check_login(
        &self,
        account: [u8; 16],
        source: String,
        now: Timestamp,
        rules: ThrottleRules,
    ) -> Result<ThrottleCheck, StoreError> {
        let row = self
            .reader()
            .await?
            .query_one(
                "WITH pair AS ( \
                     SELECT blocked_until FROM login_failures \
                     WHERE account = $1 AND source = $2 AND blocked_until > $3 AND last + $4 > $3 \
                 ), turn AS ( \
                     UPDATE login_failures SET blocked_until = $3 + $6 \
                     WHERE account = $1 AND source = $7 AND count >= $5 AND last + $4 > $3 \
                       AND blocked_until <= $3 AND NOT EXISTS (SELECT 1 FROM pair) \
                     RETURNING 1 \
                 ) \
                 SELECT (SELECT blocked_until FROM pair), \
                        (SELECT blocked_until FROM login_failures \
                         WHERE account = $1 AND source = $7 AND count >= $5 AND last + $4 > $3), \
                        EXISTS (SELECT 1 FROM turn), \
                        EXISTS (SELECT 1 FROM login_failures WHERE account = $1)",
                &[
                    &account.as_slice(),
                    &source,
                    &now.millis(),
                    &millis(rules.forget_after),
                    &i32::try_from(rules.account_free_failures).unwrap_or(i32::MAX),
                    &millis(rules.account_spacing),
                    &WHOLE_ACCOUNT,
                ],
            )
            .await?;
        let pair: Option<i64> = row.try_get(0)?;
        let account_turn: Option<i64> = row.try_get(1)?;
        let took_turn: bool = row.try_get(2)?;
        let blocked_until = match (pair, account_turn) {
            (Some(until), _) => Some(until),
            // Past the ceiling and this attempt did not get the turn: another did.
            (None, Some(until)) if !took_turn => Some(until.max(now.millis())),
            _ => None,
        };
        Ok(ThrottleCheck {
            blocked_until: blocked_until.map(Timestamp::from_millis),
            any_failures: row.try_get(3)?,
        })
    }

    /// Counts one failure of `account` from `source` at `now`, and for the account as a
    /// whole; counts older than `forget_after` start again, and are swept.
    pub async fn count_login_failure(
        &self,
        account: [u8; 16],
        source: String,
        now: Timestamp,
        rules: ThrottleRules,
    ) -> Result<(), StoreError> {
        let client = self.reader().await?;
        client
            .execute(
                "INSERT INTO login_failures AS f (account, source, count, last, blocked_until) \
                 VALUES ($1, $2, 1, $3, $3), ($1, $7, 1, $3, $3) \
                 ON CONFLICT (account, source) DO UPDATE SET \
                     count = CASE WHEN f.last + $4 <= $3 THEN 1 ELSE f.count + 1 END, \
                     last = $3, \
                     blocked_until = CASE \
                         WHEN f.source <> $7 AND (CASE WHEN f.last + $4 <= $3 THEN 1 ELSE f.count + 1 END) >= $5 \
                         THEN $3 + least($6::bigint, (1000 * 2 ^ least((CASE WHEN f.last + $4 <= $3 THEN 1 ELSE f.count + 1 END) - $5, 16)))::bigint \
                         ELSE f.blocked_until END",
                &[
                    &account.as_slice(),
                    &source,
                    &now.millis(),
                    &millis(rules.forget_after),
                    &i32::try_from(rules.free_failures).unwrap_or(i32::MAX),
                    &millis(rules.max_block),
                    &WHOLE_ACCOUNT,
                ],
            )
            .await?;
        client
            .execute(
                "DELETE FROM login_failures WHERE last <= $1::BIGINT - $2::BIGINT",
                &[&now.millis(), &millis(rules.forget_after)],
            )
            .await?;
        Ok(())
    }

    /// A success: the account's counts (this address's and the whole account's) end.
    pub async fn clear_login_failures(&self, account: [u8; 16], source: String) -> Result<(), StoreError> {
        self.reader()
            .await?
            .execute(
                "DELETE FROM login_failures WHERE account = $1 AND source IN ($2, $3)",
                &[&account.as_slice(), &source, &WHOLE_ACCOUNT],
            )
            .await?;
        Ok(())
    }
}
