//! The `audit` table: lines are written by [`super::changes::Tx::audit`] inside the write
//! they record; here, a line on its own and the reads.

use rusqlite::params;

use super::rows::{count, page_of};
use super::{SqliteStore, StoreError};
use crate::model::{AuditLine, AuditRecord, Timestamp, UserId};
use crate::store::Page;

impl SqliteStore {
    pub async fn record_audit(&self, audit: AuditRecord) -> Result<i64, StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                tx.audit(&audit)?;
                Ok(tx.last_insert_rowid())
            },
            |_| {},
        )
        .await
    }

    pub async fn set_audit_detail(&self, seq: i64, detail: String) -> Result<(), StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                tx.prepare_cached(
                    "UPDATE audit SET detail = json_object('detail', ?2, 'target_name', NULL) WHERE seq = ?1",
                )?
                .execute(params![seq, detail])?;
                Ok(())
            },
            |()| {},
        )
        .await
    }

    pub async fn list_audit(&self, before: Option<i64>, limit: u32) -> Result<Page<AuditLine>, StoreError> {
        self.read(move |c| {
            let items: Vec<AuditLine> = c
                .prepare_cached(
                    "SELECT seq, at, actor_id, actor, action, target_type, target_id, source_ip, detail FROM audit \
                     WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
                )?
                .query_map(params![before.unwrap_or(i64::MAX), limit + 1], |r| {
                    let action: String = r.get(4)?;
                    let target_type: Option<String> = r.get(5)?;
                    let (detail, target_name) = detail_from(r.get(8)?);
                    Ok(AuditLine {
                        seq: r.get(0)?,
                        record: AuditRecord {
                            at: Timestamp::from_millis(r.get(1)?),
                            actor_id: r.get(2)?,
                            actor: r.get(3)?,
                            action: AuditRecord::action_named(&action),
                            target_type: target_type.as_deref().map(AuditRecord::target_named),
                            target_id: r.get(6)?,
                            source_ip: r.get(7)?,
                            detail,
                        },
                        target_name,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let total = c.query_row("SELECT count(*) FROM audit", [], count)?;
            Ok(page_of(items, total, limit))
        })
        .await
    }

    pub async fn has_started_a_session(&self, user: UserId) -> Result<bool, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM audit WHERE action = 'session.start' AND actor_id = ?1)")?
                .query_row([user], |r| r.get(0))
        })
        .await
    }
}

/// The `detail` column: (detail, target's name) from the JSON that `Tx::audit` writes, or
/// an older line's plain text as its detail.
fn detail_from(column: Option<String>) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Stored {
        detail: Option<String>,
        target_name: Option<String>,
    }
    match column.as_deref().map(serde_json::from_str::<Stored>) {
        Some(Ok(stored)) => (stored.detail, stored.target_name),
        _ => (column, None),
    }
}
