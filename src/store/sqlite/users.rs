//! The `users` table.

use rusqlite::{OptionalExtension, params};

use super::changes::KeysOf;
use super::rows::{USER_COLUMNS, count, cursor_seq, page_of, user_from_row};
use super::{SqliteStore, StoreError};
use crate::model::{AuditRecord, FeedState, KeyDigest, KeyId, Role, Timestamp, UserId, UserRecord};
use crate::store::formats::{limits_assignments, limits_columns};
use crate::store::{AfterCommit, Page, UserChanges};

impl SqliteStore {
    pub async fn count_users(&self) -> Result<u64, StoreError> {
        self.read(|c| c.query_row("SELECT count(*) FROM users", [], count))
            .await
    }

    pub async fn load_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE deleted_at IS NULL ORDER BY seq"
            ))?;
            stmt.query_map([], user_from_row)?.collect()
        })
        .await
    }

    pub async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Option<Page<UserRecord>>, StoreError> {
        self.read(move |c| {
            let Some(after_seq) = cursor_seq(c, "users", after)? else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE deleted_at IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let items: Vec<UserRecord> = stmt
                .query_map(params![after_seq, limit + 1], user_from_row)?
                .collect::<Result<_, _>>()?;
            let total = c.query_row("SELECT count(*) FROM users WHERE deleted_at IS NULL", [], count)?;
            Ok(Some(page_of(items, total, limit)))
        })
        .await
    }

    pub async fn insert_user(
        &self,
        user: UserRecord,
        audit: AuditRecord,
        after_commit: impl FnOnce() + Send + 'static,
    ) -> Result<(), StoreError> {
        self.write(
            vec![audit],
            move |tx| {
                tx.prepare_cached(
                    "INSERT INTO users (id, username, email, password_hash, role, disabled, token_epoch, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6, ?6)",
                )?
                .execute(params![
                    user.id,
                    user.username,
                    user.email,
                    &*user.password_hash,
                    user.role.as_str(),
                    user.created_at.millis()
                ])?;
                tx.change("user", &user.id.to_string(), "created", user.created_at)
            },
            move |()| after_commit(),
        )
        .await
    }

    pub async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
        now: Timestamp,
        audit: AuditRecord,
        after_commit: impl AfterCommit<Option<UserRecord>>,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.write(
            vec![audit],
            move |tx| {
                let was_disabled: Option<bool> = tx
                    .prepare_cached("SELECT disabled FROM users WHERE id = ?1 AND deleted_at IS NULL")?
                    .query_row([id], |r| r.get(0))
                    .optional()?;
                let limits = limits_columns(changes.ratelimits.as_ref(), changes.credits, now);
                let updated = tx
                    .prepare_cached(&format!(
                        "UPDATE users SET \
                           password_hash = coalesce(?2, password_hash), \
                           email = CASE WHEN ?3 THEN ?4 ELSE email END, \
                           role = coalesce(?5, role), \
                           disabled = coalesce(?6, disabled), \
                           token_epoch = token_epoch + ?7, \
                           {}, \
                           updated_at = ?8 \
                         WHERE id = ?1 AND deleted_at IS NULL RETURNING {USER_COLUMNS}",
                        limits_assignments('?', "", 9)
                    ))?
                    .query_row(
                        params![
                            id,
                            changes.password_hash.as_deref(),
                            changes.email.is_some(),
                            changes.email.clone().flatten(),
                            changes.role.map(Role::as_str),
                            changes.disabled,
                            i64::from(changes.bump_epoch),
                            now.millis(),
                            limits.set_ratelimits,
                            limits.ratelimits,
                            limits.set_credits,
                            limits.remaining,
                            limits.add,
                            limits.refill,
                            limits.period,
                            limits.at_most_since,
                        ],
                        user_from_row,
                    )
                    .optional()?;
                if let Some(user) = &updated {
                    tx.change("user", &id.to_string(), "updated", now)?;
                    if was_disabled != Some(user.disabled) {
                        let what = if user.disabled { "user_disabled" } else { "user_enabled" };
                        tx.effective_states(KeysOf::User(id), what, now)?;
                    }
                }
                Ok(updated)
            },
            after_commit,
        )
        .await
    }

    pub async fn delete_user(
        &self,
        id: UserId,
        now: Timestamp,
        audit: AuditRecord,
        after_commit: impl AfterCommit<Option<Vec<[u8; 32]>>>,
    ) -> Result<Option<Vec<[u8; 32]>>, StoreError> {
        self.write(
            vec![audit],
            move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE users SET deleted_at = ?2, updated_at = ?2, disabled = 1, token_epoch = token_epoch + 1 \
                         WHERE id = ?1 AND deleted_at IS NULL",
                    )?
                    .execute(params![id, now.millis()])?;
                if n == 0 {
                    return Ok(None);
                }
                let revoked: Vec<(KeyId, KeyDigest)> = tx
                    .prepare_cached(
                        "UPDATE keys SET revoked_at = ?2, updated_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL RETURNING id, hash",
                    )?
                    .query_map(params![id, now.millis()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                tx.change("user", &id.to_string(), "deleted", now)?;
                for (key_id, _) in &revoked {
                    tx.key_state(*key_id, "revoked", FeedState::Revoked, None, now)?;
                }
                Ok(Some(revoked.into_iter().map(|(_, d)| d.lookup()).collect()))
            },
            after_commit,
        )
        .await
    }
}
