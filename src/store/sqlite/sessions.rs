//! The `sessions` table: web console sessions, by the hash of their token.

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, StoreError};
use crate::model::{AuditRecord, SessionRecord, Timestamp};

impl SqliteStore {
    pub async fn insert_session(
        &self,
        hash: [u8; 32],
        session: SessionRecord,
        now: Timestamp,
        audit: AuditRecord,
    ) -> Result<(), StoreError> {
        self.write(
            vec![audit],
            move |tx| {
                tx.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
                    .execute([now.millis()])?;
                tx.prepare_cached(
                    "INSERT INTO sessions (hash, user_id, token_epoch, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    hash,
                    session.user_id,
                    session.token_epoch,
                    now.millis(),
                    session.expires_at.millis()
                ])?;
                Ok(())
            },
            |()| {},
        )
        .await
    }

    pub async fn find_session(&self, hash: [u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT user_id, token_epoch, expires_at FROM sessions WHERE hash = ?1")?
                .query_row([hash], |r| {
                    Ok(SessionRecord {
                        user_id: r.get(0)?,
                        token_epoch: r.get(1)?,
                        expires_at: Timestamp::from_millis(r.get(2)?),
                    })
                })
                .optional()
        })
        .await
    }

    pub async fn delete_session(&self, hash: [u8; 32], audit: AuditRecord) -> Result<bool, StoreError> {
        self.write(
            vec![audit],
            move |tx| {
                Ok(tx
                    .prepare_cached("DELETE FROM sessions WHERE hash = ?1")?
                    .execute([hash])?
                    > 0)
            },
            |_| {},
        )
        .await
    }
}
