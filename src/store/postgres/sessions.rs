//! The `sessions` table on PostgreSQL: web console sessions, by the hash of their token.

use super::PgStore;
use super::rows::{insert_audit, user_id};
use crate::model::{AuditRecord, SessionRecord, Timestamp};
use crate::store::StoreError;

impl PgStore {
    // ---- sessions -------------------------------------------------------------------

    pub async fn insert_session(
        &self,
        hash: [u8; 32],
        session: SessionRecord,
        now: Timestamp,
        audit: AuditRecord,
    ) -> Result<(), StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        tx.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now.millis()])
                            .await?;
                        tx.execute(
                            "INSERT INTO sessions (hash, user_id, token_epoch, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                            &[
                                &hash.as_slice(),
                                &session.user_id.to_string(),
                                &session.token_epoch,
                                &now.millis(),
                                &session.expires_at.millis(),
                            ],
                        )
                        .await?;
                        insert_audit(tx, &audit).await?;
                        Ok(((), Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }

    pub async fn find_session(&self, hash: [u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        self.reader()
            .await?
            .query_opt(
                "SELECT user_id, token_epoch, expires_at FROM sessions WHERE hash = $1",
                &[&hash.as_slice()],
            )
            .await?
            .map(|r| {
                Ok(SessionRecord {
                    user_id: user_id(r.try_get(0)?)?,
                    token_epoch: r.try_get(1)?,
                    expires_at: Timestamp::from_millis(r.try_get(2)?),
                })
            })
            .transpose()
    }

    pub async fn delete_session(&self, hash: [u8; 32], audit: AuditRecord) -> Result<bool, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let gone = tx
                            .execute("DELETE FROM sessions WHERE hash = $1", &[&hash.as_slice()])
                            .await?
                            > 0;
                        if gone {
                            insert_audit(tx, &audit).await?;
                        }
                        Ok((gone, Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }
}
