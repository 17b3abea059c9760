//! The `audit` table on PostgreSQL: lines are written inside the writes they record (see
//! `rows::insert_audit`); here, a line on its own and the reads.

use super::PgStore;
use super::rows::{insert_audit, page};
use crate::model::{AuditLine, AuditRecord, Timestamp, UserId};
use crate::store::formats::audit_detail_from;
use crate::store::{Page, StoreError};

impl PgStore {
    // ---- audit ----------------------------------------------------------------------

    pub async fn record_audit(&self, audit: AuditRecord) -> Result<i64, StoreError> {
        self.writer
            .write(
                move |tx| Box::pin(async move { Ok((insert_audit(tx, &audit).await?, Vec::new())) }),
                |_| {},
            )
            .await
    }

    pub async fn set_audit_detail(&self, seq: i64, detail: String) -> Result<(), StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        tx.execute(
                            "UPDATE audit SET detail = json_build_object('detail', $2::TEXT, 'target_name', NULL)::TEXT WHERE seq = $1",
                            &[&seq, &detail],
                        )
                        .await?;
                        Ok(((), Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }

    /// A page of the audit trail, newest first.
    pub async fn list_audit(&self, before: Option<i64>, limit: u32) -> Result<Page<AuditLine>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT seq, at, actor_id, actor, action, target_type, target_id, source_ip, detail FROM audit \
                 WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                &[&before.unwrap_or(i64::MAX), &(i64::from(limit) + 1)],
            )
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                let action: String = r.try_get(4)?;
                let target_type: Option<String> = r.try_get(5)?;
                let (detail, target_name) = audit_detail_from(r.try_get(8)?);
                Ok(AuditLine {
                    seq: r.try_get(0)?,
                    record: AuditRecord {
                        at: Timestamp::from_millis(r.try_get(1)?),
                        actor_id: r.try_get::<_, Option<&str>>(2)?.and_then(UserId::parse),
                        actor: r.try_get(3)?,
                        action: AuditRecord::action_named(&action),
                        target_type: target_type.as_deref().map(AuditRecord::target_named),
                        target_id: r.try_get(6)?,
                        source_ip: r.try_get(7)?,
                        detail,
                    },
                    target_name,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let total: i64 = c.query_one("SELECT count(*) FROM audit", &[]).await?.try_get(0)?;
        Ok(page(items, total, limit))
    }

    pub async fn has_started_a_session(&self, user: UserId) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .await?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM audit WHERE action = 'session.start' AND actor_id = $1)",
                &[&user.to_string()],
            )
            .await?
            .try_get(0)?)
    }
}
