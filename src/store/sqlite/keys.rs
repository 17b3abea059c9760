//! The `keys` table.

use rusqlite::{OptionalExtension, params};

use super::changes::{KeysOf, Tx};
use super::rows::{
    ACTIVE_KEY_COLUMNS, FIND_KEY_BY_DIGEST, KEY_COLUMNS, active_key_from_row, count, cursor_seq, json_list,
    key_from_row, page_of,
};
use super::{SqliteStore, StoreError, StoreErrorKind};
use crate::model::MAX_CREDITS;
use crate::model::{
    ActiveKeyRow, AuditRecord, Credits, FeedState, KeyDigest, KeyId, KeyRecord, Timestamp, UserId, credit_block,
};
use crate::store::formats::{
    MAKER_IS_LIVE_AND_UNLIMITED, carried_over, credit_column, limits_assignments, limits_columns, payer_row,
};
use crate::store::{
    ACCESS_CHANGED, AccessSeen, AfterCommit, HeldBlock, KeyChanges, KeyDescription, KeyGuard, Page, Payer, Reservation,
    Successor,
};

impl SqliteStore {
    pub async fn load_active_keys(
        &self,
        now: Timestamp,
        mut sink: impl FnMut(ActiveKeyRow, u64) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.read(move |c| {
            let live = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)";
            let expected = c.query_row(
                &format!("SELECT count(*) FROM keys WHERE {live}"),
                [now.millis()],
                count,
            )?;
            let mut stmt = c.prepare(&format!("SELECT {ACTIVE_KEY_COLUMNS} FROM keys WHERE {live}"))?;
            let mut rows = stmt.query([now.millis()])?;
            while let Some(r) = rows.next()? {
                if let Some(row) = active_key_from_row(r)? {
                    sink(row, expected);
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn insert_key(
        &self,
        key: KeyRecord,
        numbered: bool,
        audit: AuditRecord,
        after_commit: impl AfterCommit<KeyRecord>,
    ) -> Result<KeyRecord, StoreError> {
        self.write(vec![audit], move |tx| insert_key_row(tx, key, numbered), after_commit)
            .await
    }

    pub async fn insert_keys(
        &self,
        keys: Vec<KeyRecord>,
        audits: Vec<AuditRecord>,
        after_commit: impl AfterCommit<Vec<KeyRecord>>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.write(
            audits,
            move |tx| {
                keys.into_iter()
                    .map(|key| insert_key_row(tx, key, false))
                    .collect::<rusqlite::Result<Vec<_>>>()
            },
            after_commit,
        )
        .await
    }

    pub async fn insert_key_guarded(
        &self,
        key: KeyRecord,
        numbered: bool,
        guard: KeyGuard,
        audit: AuditRecord,
        after_commit: impl AfterCommit<Option<KeyRecord>>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.write(
            vec![audit],
            move |tx| {
                let holds = match guard {
                    KeyGuard::MakerUnlimited(maker, expires_at) => {
                        tx.prepare_cached(MAKER_IS_LIVE_AND_UNLIMITED)?.exists(params![
                            maker,
                            key.user_id,
                            key.created_at.millis(),
                            expires_at.map(Timestamp::millis)
                        ])?
                    }
                    KeyGuard::MadeBy(maker, seen) => {
                        key_as_seen(tx, key.user_id, maker, &seen)?.is_some_and(|m| m.usable_at(key.created_at))
                    }
                    KeyGuard::CarvedFrom(parent, seen) => {
                        let n = credit_column(key.credits.map_or(0, |c| c.remaining));
                        key_as_seen(tx, key.user_id, parent, &seen)?.is_some_and(|p| p.usable_at(key.created_at))
                            && tx
                                .prepare_cached(
                                    "UPDATE keys SET credits_remaining = credits_remaining - ?2 \
                                     WHERE id = ?1 AND revoked_at IS NULL AND credits_remaining >= ?2",
                                )?
                                .execute(params![parent, n])?
                                > 0
                    }
                };
                if !holds {
                    return Ok(None);
                }
                insert_key_row(tx, key, numbered).map(Some)
            },
            after_commit,
        )
        .await
    }

    pub async fn rotate_key(
        &self,
        owner: UserId,
        old: KeyId,
        until: Timestamp,
        successor: Successor,
        audits: [AuditRecord; 2],
        after_commit: impl AfterCommit<Option<(KeyRecord, KeyRecord)>>,
    ) -> Result<Option<(KeyRecord, KeyRecord)>, StoreError> {
        let Successor {
            key: new,
            made_from: seen,
            presenting,
        } = successor;
        let now = new.created_at;
        let changes = KeyChanges {
            expires_by: Some(until),
            ..KeyChanges::default()
        };
        self.write(
            audits.into(),
            move |tx| {
                // The new key is made from the old one as the rotation was checked with it (the
                // writer holds the write lock: changed since, nothing is written), with its
                // balance as it is at this write: credits are never doubled.
                if let Some((presenter, id, presenting)) = &presenting {
                    still_as_seen(tx, *presenter, *id, presenting, now)?;
                }
                let Some(current) = key_as_seen(tx, owner, old, &seen)? else {
                    return Ok(None);
                };
                let new = carried_over(new, &current);
                if current.credits.is_some() {
                    // The old key keeps none, and no refill (it stays live through the grace,
                    // where a refill would be new credits twice over); set anew (a new
                    // generation): blocks held of it are void.
                    tx.prepare_cached(
                        "UPDATE keys SET credits_remaining = 0, credits_refill = NULL, credits_period = NULL, \
                         credits_generation = credits_generation + 1 WHERE id = ?1",
                    )?
                    .execute([old])?;
                }
                let Some(old) = update_key_row(tx, owner, old, &changes, now)? else {
                    return Ok(None);
                };
                let new = insert_key_row(tx, new, false)?;
                Ok(Some((new, old)))
            },
            after_commit,
        )
        .await
    }

    pub async fn update_key(
        &self,
        owner: UserId,
        id: KeyId,
        changes: KeyChanges,
        now: Timestamp,
        audits: Vec<AuditRecord>,
        after_commit: impl AfterCommit<Option<KeyRecord>>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.write(
            audits,
            move |tx| update_key_row(tx, owner, id, &changes, now),
            after_commit,
        )
        .await
    }

    pub async fn revoke_key(
        &self,
        owner: UserId,
        id: KeyId,
        now: Timestamp,
        audit: AuditRecord,
        after_commit: impl AfterCommit<Option<[u8; 32]>>,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        self.write(
            vec![audit],
            move |tx| {
                let digest: Option<KeyDigest> = tx
                    .prepare_cached(
                        "UPDATE keys SET revoked_at = ?3, updated_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL \
                         RETURNING hash",
                    )?
                    .query_row(params![id, owner, now.millis()], |r| r.get(0))
                    .optional()?;
                if digest.is_some() {
                    tx.key_state(id, "revoked", FeedState::Revoked, None, now)?;
                }
                Ok(digest.map(|d| d.lookup()))
            },
            after_commit,
        )
        .await
    }

    pub async fn reserve_credits(
        &self,
        payer: Payer,
        need: u64,
        most: u64,
        now: Timestamp,
    ) -> Result<Option<Reservation>, StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                let (table, live, id) = payer_row(payer);
                // The writer's transaction holds the database's write lock: what is read here
                // is what the update below changes.
                let row = tx
                    .prepare_cached(&format!(
                        "SELECT credits_remaining, credits_refill, credits_period, credits_generation FROM {table} \
                         WHERE id = ?1 AND {live} AND credits_remaining IS NOT NULL"
                    ))?
                    .query_row([&id], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .optional()?;
                let Some((remaining, refill, period, generation)) = row else {
                    return Ok(None);
                };
                let mut period = period.map(Timestamp::from_millis);
                let Some(mut credits) = Credits::from_columns(Some(remaining), refill.as_deref(), generation) else {
                    return Ok(None);
                };
                if credits.refill_due(&mut period, now) {
                    tx.prepare_cached(&format!(
                        "UPDATE {table} SET credits_remaining = ?2, credits_period = ?3 WHERE id = ?1"
                    ))?
                    .execute(params![
                        id,
                        credit_column(credits.remaining),
                        period.map(Timestamp::millis)
                    ])?;
                }
                let balance = credits.remaining;
                let granted = credit_block(balance, need, most);
                let left = if granted == 0 {
                    balance
                } else {
                    let left: i64 = tx
                        .prepare_cached(&format!(
                            "UPDATE {table} SET credits_remaining = credits_remaining - ?2 \
                             WHERE id = ?1 AND credits_remaining >= ?2 RETURNING credits_remaining"
                        ))?
                        .query_row(params![id, credit_column(granted)], |r| r.get(0))?;
                    u64::try_from(left).unwrap_or(0)
                };
                Ok(Some(Reservation {
                    granted,
                    left,
                    period,
                    generation: credits.generation,
                }))
            },
            |_| {},
        )
        .await
    }

    pub async fn return_credits(&self, blocks: Vec<HeldBlock>) -> Result<u64, StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                let mut returned = 0;
                for block in &blocks {
                    let (table, live, id) = payer_row(block.payer);
                    let n = credit_column(block.unspent);
                    let changed = tx
                        .prepare_cached(&format!(
                            "UPDATE {table} SET credits_remaining = min(credits_remaining + ?2, {MAX_CREDITS}) \
                             WHERE id = ?1 AND {live} AND credits_remaining IS NOT NULL \
                               AND credits_generation = ?3 AND credits_period IS ?4"
                        ))?
                        .execute(params![
                            id,
                            n,
                            credit_column(block.generation),
                            block.period.map(Timestamp::millis)
                        ])?;
                    if changed > 0 {
                        returned += block.unspent;
                    }
                }
                Ok(returned)
            },
            |_| {},
        )
        .await
    }

    pub async fn find_key(&self, owner: UserId, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM keys WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL"
            ))?
            .query_row(params![id, owner], key_from_row)
            .optional()
        })
        .await
    }

    pub async fn find_key_owner(&self, id: KeyId) -> Result<Option<UserId>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT user_id FROM keys WHERE id = ?1 AND revoked_at IS NULL")?
                .query_row([id], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// An equality on the whole digest: the unique index answers it.
    pub async fn find_key_by_digest(&self, digest: KeyDigest) -> Result<Option<(KeyRecord, bool)>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(FIND_KEY_BY_DIGEST)?
                .query_row([digest], |r| {
                    Ok((key_from_row(r)?, r.get::<_, Option<i64>>(17)?.is_some()))
                })
                .optional()
        })
        .await
    }

    pub async fn list_keys(
        &self,
        owner: Option<UserId>,
        after: Option<KeyId>,
        limit: u32,
    ) -> Result<Option<Page<KeyRecord>>, StoreError> {
        // One statement per case, so a user's list keeps using the `keys_by_user` index.
        let whose = if owner.is_some() { "user_id = ?1" } else { "?1 IS NULL" };
        self.read(move |c| {
            let Some(after_seq) = cursor_seq(c, "keys", after)? else {
                return Ok(None);
            };
            let items: Vec<KeyRecord> = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM keys WHERE {whose} AND revoked_at IS NULL AND seq > ?2 ORDER BY seq LIMIT ?3"
                ))?
                .query_map(params![owner, after_seq, limit + 1], key_from_row)?
                .collect::<Result<_, _>>()?;
            let total = c
                .prepare_cached(&format!(
                    "SELECT count(*) FROM keys WHERE {whose} AND revoked_at IS NULL"
                ))?
                .query_row([owner], count)?;
            Ok(Some(page_of(items, total, limit)))
        })
        .await
    }

    pub async fn newest_keys(&self, limit: u32) -> Result<Page<KeyRecord>, StoreError> {
        self.read(move |c| {
            let items: Vec<KeyRecord> = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM keys WHERE revoked_at IS NULL ORDER BY seq DESC LIMIT ?1"
                ))?
                .query_map([limit], key_from_row)?
                .collect::<Result<_, _>>()?;
            let total = c.query_row("SELECT count(*) FROM keys WHERE revoked_at IS NULL", [], count)?;
            let more = total > items.len() as u64;
            Ok(Page { items, total, more })
        })
        .await
    }

    pub async fn revoked_keys(
        &self,
        owner: UserId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<(KeyRecord, Timestamp)>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS}, revoked_at FROM keys WHERE user_id = ?1 AND revoked_at >= ?2 \
                 ORDER BY revoked_at DESC, seq DESC LIMIT ?3"
            ))?
            .query_map(params![owner, since.millis(), limit], |r| {
                Ok((key_from_row(r)?, Timestamp::from_millis(r.get(17)?)))
            })?
            .collect()
        })
        .await
    }

    pub async fn describe_keys(&self, ids: Vec<KeyId>) -> Result<Vec<KeyDescription>, StoreError> {
        let ids = serde_json::to_string(&ids.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, user_id, name, revoked_at IS NOT NULL FROM keys WHERE id IN (SELECT value FROM json_each(?1))",
            )?
            .query_map([ids], |r| {
                Ok(KeyDescription {
                    id: r.get(0)?,
                    owner: r.get(1)?,
                    name: r.get(2)?,
                    revoked: r.get(3)?,
                })
            })?
            .collect()
        })
        .await
    }

    pub async fn revocations_since(&self, since: Timestamp, limit: u32) -> Result<Vec<(KeyId, Timestamp)>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, revoked_at FROM keys WHERE revoked_at >= ?1 ORDER BY revoked_at, seq LIMIT ?2",
            )?
            .query_map(params![since.millis(), limit], |r| {
                Ok((r.get(0)?, Timestamp::from_millis(r.get(1)?)))
            })?
            .collect()
        })
        .await
    }
}

/// Inserts a key row (naming it `key#N` when `numbered` and unnamed) and its change row.
fn insert_key_row(tx: &Tx<'_>, mut key: KeyRecord, numbered: bool) -> rusqlite::Result<KeyRecord> {
    key.name = tx
        .prepare_cached(
            "INSERT INTO keys (id, user_id, name, hash, created_at, updated_at, expires_at, disabled, scopes, meta, grants, \
                               ratelimits, credits_remaining, credits_refill, credits_period, sha256) \
             VALUES (?1, ?2, coalesce(?3, CASE WHEN ?9 THEN 'key#' || ((SELECT count(*) FROM keys WHERE user_id = ?2) + 1) END), \
                     ?4, ?5, ?5, ?6, ?16, ?7, ?8, ?10, ?11, ?12, ?13, ?14, ?15) RETURNING name",
        )?
        .query_row(
            params![
                key.id,
                key.user_id,
                key.name,
                &key.digest,
                key.created_at.millis(),
                key.expires_at.map(Timestamp::millis),
                key.scopes.as_deref().map(json_list),
                key.meta.to_string(),
                numbered,
                (!key.grants.is_empty()).then(|| json_list(&key.grants)),
                key.ratelimits.to_column(),
                key.credits.map(|c| credit_column(c.remaining)),
                key.credits.and_then(|c| c.refill_column()),
                key.credits_period.map(Timestamp::millis),
                key.digest.sha256().map(|h| h.as_bytes().to_vec()),
                key.disabled,
            ],
            |r| r.get(0),
        )?;
    tx.change("key", &key.id.to_string(), "created", key.created_at)?;
    Ok(key)
}

/// A live key of `owner` as it is in this write (the writer's transaction holds the
/// database's write lock: what is read here is what the write changes), `None` if there is
/// none; with `seen`, what a change was checked against, it must still have those scopes,
/// grants and limits, else the write fails ([`StoreErrorKind::AccessChanged`], nothing
/// written).
fn key_as_seen(tx: &Tx<'_>, owner: UserId, id: KeyId, seen: &AccessSeen) -> rusqlite::Result<Option<KeyRecord>> {
    let key = tx
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL"
        ))?
        .query_row(params![id, owner], key_from_row)
        .optional()?;
    match key {
        Some(key) if AccessSeen::of(&key) != *seen => Err(access_changed()),
        key => Ok(key),
    }
}

/// A key a request was made with is live, enabled, unexpired at `now` (the write's time) and
/// as `seen`; else the write fails
/// ([`StoreErrorKind::AccessChanged`](crate::store::StoreErrorKind), nothing written).
fn still_as_seen(tx: &Tx<'_>, owner: UserId, id: KeyId, seen: &AccessSeen, now: Timestamp) -> rusqlite::Result<()> {
    match key_as_seen(tx, owner, id, seen)? {
        Some(key) if key.usable_at(now) => Ok(()),
        _ => Err(access_changed()),
    }
}

/// The error that makes the writer refuse a change checked against what changed since.
fn access_changed() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
        Some(ACCESS_CHANGED.into()),
    )
}

/// Applies `changes` to a live key of `owner` with its change and feed rows; the key as it
/// is now, `None` if there is none.
fn update_key_row(
    tx: &Tx<'_>,
    owner: UserId,
    id: KeyId,
    changes: &KeyChanges,
    now: Timestamp,
) -> rusqlite::Result<Option<KeyRecord>> {
    if let Some(seen) = &changes.access_seen
        && key_as_seen(tx, owner, id, seen)?.is_none()
    {
        return Ok(None);
    }
    let (set_scopes, scopes, grants) = match &changes.scopes {
        Some((scopes, grants)) => (
            true,
            scopes.as_deref().map(json_list),
            (!grants.is_empty()).then(|| json_list(grants)),
        ),
        None => (false, None, None),
    };
    let limits = limits_columns(changes.ratelimits.as_ref(), changes.credits, now);
    let key = tx
        .prepare_cached(&format!(
            "UPDATE keys SET \
               name = CASE WHEN ?3 THEN ?4 ELSE name END, \
               disabled = coalesce(?5, disabled), \
               expires_at = CASE WHEN ?6 IS NULL THEN expires_at ELSE min(coalesce(expires_at, ?6), ?6) END, \
               scopes = CASE WHEN ?7 THEN ?8 ELSE scopes END, \
               grants = CASE WHEN ?7 THEN ?9 ELSE grants END, \
               {}, \
               meta = coalesce(?19, meta), \
               updated_at = ?10 \
             WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL RETURNING {KEY_COLUMNS}",
            limits_assignments('?', "", 11)
        ))?
        .query_row(
            params![
                id,
                owner,
                changes.name.is_some(),
                changes.name.clone().flatten(),
                changes.disabled,
                changes.expires_by.map(Timestamp::millis),
                set_scopes,
                scopes,
                grants,
                now.millis(),
                limits.set_ratelimits,
                limits.ratelimits,
                limits.set_credits,
                limits.remaining,
                limits.add,
                limits.refill,
                limits.period,
                limits.at_most_since,
                changes.meta.as_ref().map(serde_json::Value::to_string),
            ],
            key_from_row,
        )
        .optional()?;
    let Some(key) = key else { return Ok(None) };
    let what = match (&changes.name, changes.disabled, changes.expires_by, &changes.scopes) {
        (_, Some(true), ..) => "disabled",
        (_, Some(false), ..) => "enabled",
        (_, _, Some(_), _) => "expiry",
        (_, _, _, Some(_)) => "scopes",
        _ if changes.ratelimits.is_some() || changes.credits.is_some() => "limits",
        _ if changes.name.is_none() && changes.meta.is_some() => "meta",
        _ => "renamed",
    };
    tx.change("key", &id.to_string(), what, now)?;
    if changes.disabled.is_some() {
        tx.effective_states(KeysOf::Key(id), what, now)?;
    }
    if changes.expires_by.is_some() {
        tx.key_state(id, "expiry", FeedState::Shortened, key.expires_at, now)?;
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[test]
    fn the_verify_lookup_uses_the_unique_index() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory()?;
        super::super::migrations::migrate(&mut conn)?;
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FIND_KEY_BY_DIGEST}"))?
            .query_map([[0u8; 64].as_slice()], |r| r.get(3))?
            .collect::<Result<_, _>>()?;
        assert!(
            plan.iter().any(|step| step.contains("USING INDEX")) && !plan.iter().any(|step| step.starts_with("SCAN")),
            "{plan:?}"
        );
        Ok(())
    }
}
