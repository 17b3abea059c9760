//! The `users` table on PostgreSQL.

use super::PgStore;
use super::rows::{
    USER_COLUMNS, count, cursor_seq, digest, effective_states, feed, insert_audit, key_id, key_state, page,
    user_from_row,
};
use crate::model::{AuditRecord, KeyId, Role, Timestamp, UserId, UserRecord};
use crate::store::formats::{limits_assignments, limits_columns};
use crate::store::{AfterCommit, Page, StoreError, UserChanges};

impl PgStore {
    // ---- users ----------------------------------------------------------------------

    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let row = self
            .reader()
            .await?
            .query_one("SELECT count(*) FROM users", &[])
            .await?;
        Ok(count(row.try_get(0)?))
    }

    /// Every user that is not deleted.
    pub async fn load_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.reader()
            .await?
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE deleted_at IS NULL ORDER BY seq"),
                &[],
            )
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    /// A user by id, deleted or not (followers resolve feed rows with it).
    pub async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        self.reader()
            .await?
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[&id.to_string()],
            )
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// `None` when the cursor names no user.
    pub async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Option<Page<UserRecord>>, StoreError> {
        let c = self.reader().await?;
        let Some(after_seq) = cursor_seq(&**c, "users", after.map(|a| a.to_string())).await? else {
            return Ok(None);
        };
        let items = c
            .query(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE deleted_at IS NULL AND seq > $1 ORDER BY seq LIMIT $2"
                ),
                &[&after_seq, &(i64::from(limit) + 1)],
            )
            .await?
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let total: i64 = c
            .query_one("SELECT count(*) FROM users WHERE deleted_at IS NULL", &[])
            .await?
            .try_get(0)?;
        Ok(Some(page(items, total, limit)))
    }

    pub async fn insert_user(
        &self,
        user: UserRecord,
        audit: AuditRecord,
        after_commit: impl FnOnce() + Send + 'static,
    ) -> Result<(), StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        tx.execute(
                            "INSERT INTO users (id, username, email, password_hash, role, disabled, token_epoch, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, false, 0, $6, $6)",
                            &[
                                &user.id.to_string(),
                                &user.username,
                                &user.email,
                                &&*user.password_hash,
                                &user.role.as_str(),
                                &user.created_at.millis(),
                            ],
                        )
                        .await?;
                        insert_audit(tx, &audit).await?;
                        Ok(((), vec![feed("user", user.id.to_string(), "created", user.created_at)]))
                    })
                },
                move |_| after_commit(),
            )
            .await
    }

    /// Applies `changes` to a live user; `None` if there is none with that id.
    pub async fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
        now: Timestamp,
        audit: AuditRecord,
        after_commit: impl AfterCommit<Option<UserRecord>>,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let id_text = id.to_string();
                        let was_disabled: Option<bool> = tx
                            .query_opt(
                                "SELECT disabled FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
                                &[&id_text],
                            )
                            .await?
                            .map(|r| r.try_get(0))
                            .transpose()?;
                        let limits = limits_columns(changes.ratelimits.as_ref(), changes.credits, now);
                        let row = tx
                            .query_opt(
                                &format!(
                                    "UPDATE users SET \
                                       password_hash = coalesce($2, password_hash), \
                                       email = CASE WHEN $3 THEN $4 ELSE email END, \
                                       role = coalesce($5, role), \
                                       disabled = coalesce($6, disabled), \
                                       token_epoch = token_epoch + $7, \
                                       {}, \
                                       updated_at = $8 \
                                     WHERE id = $1 AND deleted_at IS NULL RETURNING {USER_COLUMNS}",
                                    limits_assignments('$', "::BIGINT", 9)
                                ),
                                &[
                                    &id_text,
                                    &changes.password_hash.as_deref(),
                                    &changes.email.is_some(),
                                    &changes.email.clone().flatten(),
                                    &changes.role.map(Role::as_str),
                                    &changes.disabled,
                                    &i64::from(changes.bump_epoch),
                                    &now.millis(),
                                    &limits.set_ratelimits,
                                    &limits.ratelimits,
                                    &limits.set_credits,
                                    &limits.remaining,
                                    &limits.add,
                                    &limits.refill,
                                    &limits.period,
                                    &limits.at_most_since,
                                ],
                            )
                            .await?;
                        let Some(row) = row else { return Ok((None, Vec::new())) };
                        let user = user_from_row(&row)?;
                        let mut rows = vec![feed("user", id_text, "updated", now)];
                        if was_disabled != Some(user.disabled) {
                            let what = if user.disabled { "user_disabled" } else { "user_enabled" };
                            rows.extend(effective_states(tx, Some(id), None, what, now).await?);
                        }
                        insert_audit(tx, &audit).await?;
                        Ok((Some(user), rows))
                    })
                },
                after_commit,
            )
            .await
    }

    /// Soft-deletes a live user and revokes all their keys in the same transaction; the
    /// lookup hashes of the revoked keys, or `None` if there is no such user.
    pub async fn delete_user(
        &self,
        id: UserId,
        now: Timestamp,
        audit: AuditRecord,
        after_commit: impl AfterCommit<Option<Vec<[u8; 32]>>>,
    ) -> Result<Option<Vec<[u8; 32]>>, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let id_text = id.to_string();
                        let n = tx
                            .execute(
                                "UPDATE users SET deleted_at = $2, updated_at = $2, disabled = true, token_epoch = token_epoch + 1 \
                                 WHERE id = $1 AND deleted_at IS NULL",
                                &[&id_text, &now.millis()],
                            )
                            .await?;
                        if n == 0 {
                            return Ok((None, Vec::new()));
                        }
                        let revoked = tx
                            .query(
                                "UPDATE keys SET revoked_at = $2, updated_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id, hash, seq",
                                &[&id_text, &now.millis()],
                            )
                            .await?;
                        let mut revoked: Vec<(i64, KeyId, [u8; 32])> = revoked
                            .iter()
                            .map(|r| Ok((r.try_get(2)?, key_id(r.try_get(0)?)?, digest(r.try_get(1)?)?.lookup())))
                            .collect::<Result<_, StoreError>>()?;
                        revoked.sort_by_key(|(seq, _, _)| *seq);
                        insert_audit(tx, &audit).await?;
                        let mut rows = vec![feed("user", id_text, "deleted", now)];
                        rows.extend(revoked.iter().map(|(_, key, _)| key_state(*key, "revoked", "revoked", None, now)));
                        Ok((Some(revoked.into_iter().map(|(_, _, l)| l).collect()), rows))
                    })
                },
                after_commit,
            )
            .await
    }
}
