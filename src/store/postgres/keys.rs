//! Keys on PostgreSQL: the in-memory view's load, creation, rotation, changes, revocation,
//! the lists, the revocation feed and key-use times.

use tokio_postgres::Transaction;

use super::PgStore;
use super::rows::{
    ACTIVE_KEY_COLUMNS, KEY_COLUMNS, active_key_from_row, count, cursor_seq, digest, effective_states, feed,
    insert_audit, json_list, key_from_row, key_id, key_state, page, user_id,
};
use super::writer::{FeedRow, prepared};
use crate::model::MAX_CREDITS;
use crate::model::{
    ActiveKeyRow, AuditRecord, Credits, FeedEntry, FeedState, KeyDigest, KeyId, KeyRecord, Timestamp, UserId,
    credit_block,
};
use crate::store::formats::{
    MAKER_IS_LIVE_AND_UNLIMITED_LOCKED, carried_over, credit_column, limits_assignments, limits_columns, payer_row,
};
use crate::store::{
    ACCESS_CHANGED, AccessSeen, AfterCommit, HeldBlock, KeyChanges, KeyDescription, KeyGuard, Page, Payer, Reservation,
    StoreError, StoreErrorKind, Successor,
};

/// Stores a new key (with `numbered`, a missing name becomes `key#N`, N counted in this
/// transaction: the owner's row is locked first so two creates never get the same N).
async fn insert_key_row(
    tx: &Transaction<'_>,
    mut key: KeyRecord,
    numbered: bool,
) -> Result<(KeyRecord, FeedRow), StoreError> {
    let owner = key.user_id.to_string();
    // Locks the owner's row (two creates never get the same N) and counts the key.
    let made: i64 = tx
        .query_opt(
            &prepared(
                tx,
                "UPDATE users SET keys_made = keys_made + 1 WHERE id = $1 RETURNING keys_made",
            )
            .await?,
            &[&owner],
        )
        .await?
        .ok_or_else(|| StoreError::new(StoreErrorKind::Conflict, "the key's owner does not exist"))?
        .try_get(0)?;
    let insert = prepared(
        tx,
        "INSERT INTO keys (id, user_id, name, hash, created_at, updated_at, expires_at, disabled, scopes, meta, grants, \
                           ratelimits, credits_remaining, credits_refill, credits_period, sha256) \
         VALUES ($1, $2, coalesce($3, CASE WHEN $9 THEN 'key#' || $17::BIGINT END), \
                 $4, $5, $5, $6, $16, $7, $8, $10, $11, $12, $13, $14, $15) RETURNING name",
    )
    .await?;
    let row = tx
        .query_one(
            &insert,
            &[
                &key.id.to_string(),
                &owner,
                &key.name,
                &key.digest.as_bytes().as_slice(),
                &key.created_at.millis(),
                &key.expires_at.map(Timestamp::millis),
                &key.scopes.as_deref().map(json_list),
                &key.meta.to_string(),
                &numbered,
                &(!key.grants.is_empty()).then(|| json_list(&key.grants)),
                &key.ratelimits.to_column(),
                &key.credits.map(|c| credit_column(c.remaining)),
                &key.credits.and_then(|c| c.refill_column()),
                &key.credits_period.map(Timestamp::millis),
                &key.digest.sha256().map(|h| h.as_bytes().to_vec()),
                &key.disabled,
                &made,
            ],
        )
        .await?;
    key.name = row.try_get(0)?;
    let created = feed("key", key.id.to_string(), "created", key.created_at);
    Ok((key, created))
}

/// A live key of `owner` as it is in this write (its row locked until the commit), `None` if
/// there is none; with `seen`, what a change was checked against, it must still have those
/// scopes, grants and limits, else the write fails ([`StoreErrorKind::AccessChanged`],
/// nothing written).
async fn key_as_seen(
    tx: &Transaction<'_>,
    owner: UserId,
    id: KeyId,
    seen: &AccessSeen,
) -> Result<Option<KeyRecord>, StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL FOR UPDATE"),
            &[&id.to_string(), &owner.to_string()],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let key = key_from_row(&row)?;
    if AccessSeen::of(&key) != *seen {
        return Err(StoreError::new(StoreErrorKind::AccessChanged, ACCESS_CHANGED));
    }
    Ok(Some(key))
}

/// Applies `changes` to a live key of `owner`; the key as it is now and its feed rows, or
/// `None` if there is none.
async fn update_key_row(
    tx: &Transaction<'_>,
    owner: UserId,
    id: KeyId,
    changes: &KeyChanges,
    now: Timestamp,
) -> Result<Option<(KeyRecord, Vec<FeedRow>)>, StoreError> {
    if let Some(seen) = &changes.access_seen
        && key_as_seen(tx, owner, id, seen).await?.is_none()
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
    let row = tx
        .query_opt(
            &format!(
                "UPDATE keys SET \
                   name = CASE WHEN $3 THEN $4 ELSE name END, \
                   disabled = coalesce($5, disabled), \
                   expires_at = CASE WHEN $6::BIGINT IS NULL THEN expires_at ELSE least(coalesce(expires_at, $6), $6) END, \
                   scopes = CASE WHEN $7 THEN $8 ELSE scopes END, \
                   grants = CASE WHEN $7 THEN $9 ELSE grants END, \
                   {}, \
                   meta = coalesce($19, meta), \
               updated_at = $10 \
                 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING {KEY_COLUMNS}",
                limits_assignments('$', "::BIGINT", 11)
            ),
            &[
                &id.to_string(),
                &owner.to_string(),
                &changes.name.is_some(),
                &changes.name.clone().flatten(),
                &changes.disabled,
                &changes.expires_by.map(Timestamp::millis),
                &set_scopes,
                &scopes,
                &grants,
                &now.millis(),
                &limits.set_ratelimits,
                &limits.ratelimits,
                &limits.set_credits,
                &limits.remaining,
                &limits.add,
                &limits.refill,
                &limits.period,
                &limits.at_most_since,
                &changes.meta.as_ref().map(serde_json::Value::to_string),
            ],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let key = key_from_row(&row)?;
    let what = match (&changes.name, changes.disabled, changes.expires_by, &changes.scopes) {
        (_, Some(true), ..) => "disabled",
        (_, Some(false), ..) => "enabled",
        (_, _, Some(_), _) => "expiry",
        (_, _, _, Some(_)) => "scopes",
        _ if changes.ratelimits.is_some() || changes.credits.is_some() => "limits",
        _ if changes.name.is_none() && changes.meta.is_some() => "meta",
        _ => "renamed",
    };
    let mut rows = vec![feed("key", id.to_string(), what, now)];
    if changes.disabled.is_some() {
        rows.extend(effective_states(tx, None, Some(id), what, now).await?);
    }
    if changes.expires_by.is_some() {
        rows.push(key_state(id, "expiry", "shortened", key.expires_at, now));
    }
    Ok(Some((key, rows)))
}

impl PgStore {
    /// Hands every key that is not revoked and has not expired by `now` to `sink`, telling it
    /// how many to expect. Rows are fetched in pages, so a million keys are never all held.
    pub async fn load_active_keys(
        &self,
        now: Timestamp,
        mut sink: impl FnMut(ActiveKeyRow, u64) + Send + 'static,
    ) -> Result<(), StoreError> {
        const PAGE: i64 = 10_000;
        let c = self.reader().await?;
        let live = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)";
        let expected = count(
            c.query_one(&format!("SELECT count(*) FROM keys WHERE {live}"), &[&now.millis()])
                .await?
                .try_get(0)?,
        );
        let mut after = 0i64;
        loop {
            let rows = c
                .query(
                    &format!(
                        "SELECT {ACTIVE_KEY_COLUMNS}, seq FROM keys WHERE {live} AND seq > $2 ORDER BY seq LIMIT $3"
                    ),
                    &[&now.millis(), &after, &PAGE],
                )
                .await?;
            for r in &rows {
                after = r.try_get(11)?;
                if let Some(row) = active_key_from_row(r)? {
                    sink(row, expected);
                }
            }
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }

    /// A key as the view needs it, whether it can authenticate now (followers resolve feed
    /// rows with it), by id.
    pub async fn find_active_key(
        &self,
        id: KeyId,
        now: Timestamp,
    ) -> Result<Option<(Option<ActiveKeyRow>, bool, [u8; 32])>, StoreError> {
        let row = self
            .reader()
            .await?
            .query_opt(
                &format!("SELECT {ACTIVE_KEY_COLUMNS}, revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) FROM keys WHERE id = $1"),
                &[&id.to_string(), &now.millis()],
            )
            .await?;
        row.map(|r| {
            Ok((
                active_key_from_row(&r)?,
                r.try_get(11)?,
                digest(r.try_get(2)?)?.lookup(),
            ))
        })
        .transpose()
    }

    pub async fn insert_key(
        &self,
        key: KeyRecord,
        numbered: bool,
        audit: AuditRecord,
        after_commit: impl AfterCommit<KeyRecord>,
    ) -> Result<KeyRecord, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let (key, created) = insert_key_row(tx, key, numbered).await?;
                        insert_audit(tx, &audit).await?;
                        Ok((key, vec![created]))
                    })
                },
                after_commit,
            )
            .await
    }

    /// Stores a key made with another key while `guard` holds (see `Store::insert_key_guarded`).
    pub async fn insert_key_guarded(
        &self,
        key: KeyRecord,
        numbered: bool,
        guard: KeyGuard,
        audit: AuditRecord,
        after_commit: impl AfterCommit<Option<KeyRecord>>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let holds = match guard {
                            KeyGuard::MakerUnlimited(maker, expires_at) => tx
                                .query_opt(
                                    &prepared(tx, MAKER_IS_LIVE_AND_UNLIMITED_LOCKED).await?,
                                    &[
                                        &maker.to_string(),
                                        &key.user_id.to_string(),
                                        &key.created_at.millis(),
                                        &expires_at.map(Timestamp::millis),
                                    ],
                                )
                                .await?
                                .is_some(),
                            KeyGuard::MadeBy(maker, seen) => key_as_seen(tx, key.user_id, maker, &seen)
                                .await?
                                .is_some_and(|m| m.usable_at(key.created_at)),
                            KeyGuard::CarvedFrom(parent, seen) => {
                                let n = credit_column(key.credits.map_or(0, |c| c.remaining));
                                key_as_seen(tx, key.user_id, parent, &seen)
                                    .await?
                                    .is_some_and(|p| p.usable_at(key.created_at))
                                    && tx
                                        .execute(
                                            "UPDATE keys SET credits_remaining = credits_remaining - $2 \
                                     WHERE id = $1 AND revoked_at IS NULL AND credits_remaining >= $2",
                                            &[&parent.to_string(), &n],
                                        )
                                        .await?
                                        > 0
                            }
                        };
                        if !holds {
                            return Ok((None, Vec::new()));
                        }
                        let (key, created) = insert_key_row(tx, key, numbered).await?;
                        insert_audit(tx, &audit).await?;
                        Ok((Some(key), vec![created]))
                    })
                },
                after_commit,
            )
            .await
    }

    /// Stores keys all together or none of them (imports).
    pub async fn insert_keys(
        &self,
        keys: Vec<KeyRecord>,
        audits: Vec<AuditRecord>,
        after_commit: impl AfterCommit<Vec<KeyRecord>>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let mut stored = Vec::with_capacity(keys.len());
                        let mut created = Vec::with_capacity(keys.len());
                        for key in keys {
                            let (key, row) = insert_key_row(tx, key, false).await?;
                            stored.push(key);
                            created.push(row);
                        }
                        for audit in &audits {
                            insert_audit(tx, audit).await?;
                        }
                        Ok((stored, created))
                    })
                },
                after_commit,
            )
            .await
    }

    /// A rotation in one transaction; `None` (nothing written) if the old key is gone.
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
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let changes = KeyChanges {
                            expires_by: Some(until),
                            ..KeyChanges::default()
                        };
                        // The new key is made from the old one as the rotation was checked with
                        // it (the row locked: changed since, nothing is written), with its
                        // balance as it is at this write: credits are never doubled.
                        if let Some((presenter, id, presenting)) = &presenting {
                            let still = key_as_seen(tx, *presenter, *id, presenting).await?;
                            if !still.is_some_and(|k| k.usable_at(now)) {
                                return Err(StoreError::new(StoreErrorKind::AccessChanged, ACCESS_CHANGED));
                            }
                        }
                        let Some(current) = key_as_seen(tx, owner, old, &seen).await? else {
                            return Ok((None, Vec::new()));
                        };
                        let new = carried_over(new, &current);
                        if current.credits.is_some() {
                            // The old key keeps none, and no refill (it stays live through the
                            // grace, where a refill would be new credits twice over); set anew
                            // (a new generation): blocks held of it are void.
                            tx.execute(
                                "UPDATE keys SET credits_remaining = 0, credits_refill = NULL, credits_period = NULL, \
                                 credits_generation = credits_generation + 1 WHERE id = $1",
                                &[&old.to_string()],
                            )
                            .await?;
                        }
                        let Some((old, mut rows)) = update_key_row(tx, owner, old, &changes, now).await? else {
                            return Ok((None, Vec::new()));
                        };
                        let (new, created) = insert_key_row(tx, new, false).await?;
                        rows.push(created);
                        for audit in &audits {
                            insert_audit(tx, audit).await?;
                        }
                        Ok((Some((new, old)), rows))
                    })
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
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let Some((key, rows)) = update_key_row(tx, owner, id, &changes, now).await? else {
                            return Ok((None, Vec::new()));
                        };
                        for audit in &audits {
                            insert_audit(tx, audit).await?;
                        }
                        Ok((Some(key), rows))
                    })
                },
                after_commit,
            )
            .await
    }

    /// Revokes a live key of `owner`; its lookup hash, `None` if there is none.
    pub async fn revoke_key(
        &self,
        owner: UserId,
        id: KeyId,
        now: Timestamp,
        audit: AuditRecord,
        after_commit: impl AfterCommit<Option<[u8; 32]>>,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let row = tx
                            .query_opt(
                                "UPDATE keys SET revoked_at = $3, updated_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING hash",
                                &[&id.to_string(), &owner.to_string(), &now.millis()],
                            )
                            .await?;
                        let Some(row) = row else { return Ok((None, Vec::new())) };
                        insert_audit(tx, &audit).await?;
                        Ok((Some(digest(row.try_get(0)?)?.lookup()), vec![key_state(id, "revoked", "revoked", None, now)]))
                    })
                },
                after_commit,
            )
            .await
    }

    /// One live key of `owner`.
    pub async fn find_key(&self, owner: UserId, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.reader()
            .await?
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"),
                &[&id.to_string(), &owner.to_string()],
            )
            .await?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    /// A page of `owner`'s live keys (every user's for `None`), oldest first.
    pub async fn list_keys(
        &self,
        owner: Option<UserId>,
        after: Option<KeyId>,
        limit: u32,
    ) -> Result<Option<Page<KeyRecord>>, StoreError> {
        let c = self.reader().await?;
        let Some(after_seq) = cursor_seq(&**c, "keys", after.map(|a| a.to_string())).await? else {
            return Ok(None);
        };
        let owner = owner.map(|o| o.to_string());
        let items = c
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM keys WHERE ($1::TEXT IS NULL OR user_id = $1) AND revoked_at IS NULL AND seq > $2 ORDER BY seq LIMIT $3"),
                &[&owner, &after_seq, &(i64::from(limit) + 1)],
            )
            .await?
            .iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let total: i64 = c
            .query_one(
                "SELECT count(*) FROM keys WHERE ($1::TEXT IS NULL OR user_id = $1) AND revoked_at IS NULL",
                &[&owner],
            )
            .await?
            .try_get(0)?;
        Ok(Some(page(items, total, limit)))
    }

    /// The `limit` newest live keys of every user, with the count of all live keys.
    pub async fn newest_keys(&self, limit: u32) -> Result<Page<KeyRecord>, StoreError> {
        let c = self.reader().await?;
        let items = c
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM keys WHERE revoked_at IS NULL ORDER BY seq DESC LIMIT $1"),
                &[&i64::from(limit)],
            )
            .await?
            .iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let total = count(
            c.query_one("SELECT count(*) FROM keys WHERE revoked_at IS NULL", &[])
                .await?
                .try_get(0)?,
        );
        let more = total > items.len() as u64;
        Ok(Page { items, total, more })
    }

    /// (id, owner, name now, revoked) of the keys named.
    pub async fn describe_keys(&self, ids: Vec<KeyId>) -> Result<Vec<KeyDescription>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.reader()
            .await?
            .query(
                "SELECT id, user_id, name, revoked_at IS NOT NULL FROM keys WHERE id = ANY($1)",
                &[&ids],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(KeyDescription {
                    id: key_id(r.try_get(0)?)?,
                    owner: user_id(r.try_get(1)?)?,
                    name: r.try_get(2)?,
                    revoked: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// `owner`'s keys revoked at `since` or later, the latest first, with when.
    pub async fn revoked_keys(
        &self,
        owner: UserId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<(KeyRecord, Timestamp)>, StoreError> {
        self.reader()
            .await?
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS}, revoked_at FROM keys WHERE user_id = $1 AND revoked_at >= $2 \
                     ORDER BY revoked_at DESC, seq DESC LIMIT $3"
                ),
                &[&owner.to_string(), &since.millis(), &i64::from(limit)],
            )
            .await?
            .iter()
            .map(|r| Ok((key_from_row(r)?, Timestamp::from_millis(r.try_get(17)?))))
            .collect()
    }

    /// The owner of a live key, whoever it is (for the operator's CLI).
    pub async fn find_key_owner(&self, id: KeyId) -> Result<Option<UserId>, StoreError> {
        self.reader()
            .await?
            .query_opt(
                "SELECT user_id FROM keys WHERE id = $1 AND revoked_at IS NULL",
                &[&id.to_string()],
            )
            .await?
            .map(|r| user_id(r.try_get(0)?))
            .transpose()
    }

    /// A key by its digest, revoked or not.
    pub async fn find_key_by_digest(&self, digest: KeyDigest) -> Result<Option<(KeyRecord, bool)>, StoreError> {
        self.reader()
            .await?
            .query_opt(
                &format!("SELECT {KEY_COLUMNS}, revoked_at FROM keys WHERE hash = $1"),
                &[&digest.as_bytes().as_slice()],
            )
            .await?
            .map(|r| Ok((key_from_row(&r)?, r.try_get::<_, Option<i64>>(17)?.is_some())))
            .transpose()
    }

    /// Revocations since `since`, oldest first (the older feed).
    pub async fn revocations_since(&self, since: Timestamp, limit: u32) -> Result<Vec<(KeyId, Timestamp)>, StoreError> {
        self.reader()
            .await?
            .query(
                "SELECT id, revoked_at FROM keys WHERE revoked_at >= $1 ORDER BY revoked_at, seq LIMIT $2",
                &[&since.millis(), &i64::from(limit)],
            )
            .await?
            .iter()
            .map(|r| Ok((key_id(r.try_get(0)?)?, Timestamp::from_millis(r.try_get(1)?))))
            .collect()
    }

    /// The offline revocation feed after position `after`, oldest first.
    pub async fn revocation_feed(&self, after: i64, limit: u32) -> Result<(Vec<FeedEntry>, bool), StoreError> {
        let rows = self
            .reader()
            .await?
            .query(
                "SELECT position, id, state, at, not_after FROM changes WHERE state IS NOT NULL AND position > $1 ORDER BY position LIMIT $2",
                &[&after, &(i64::from(limit) + 1)],
            )
            .await?;
        let mut entries = rows
            .iter()
            .map(|r| {
                let state: String = r.try_get(2)?;
                Ok(FeedEntry {
                    seq: r.try_get(0)?,
                    id: key_id(r.try_get(1)?)?,
                    state: FeedState::named(&state),
                    at: Timestamp::from_millis(r.try_get(3)?),
                    not_after: r.try_get::<_, Option<i64>>(4)?.map(Timestamp::from_millis),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        Ok((entries, more))
    }

    /// Writes a batch of "key used at" times; the newest wins, whichever node saw it.
    /// Reserves a block of a key's credits for this node (see `Store::reserve_credits`). The
    /// row is locked first, so nodes reserving at once take their turns on the balance.
    pub async fn reserve_credits(
        &self,
        payer: Payer,
        need: u64,
        most: u64,
        now: Timestamp,
    ) -> Result<Option<Reservation>, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let (table, live, id) = payer_row(payer);
                        let row = tx
                            .query_opt(
                                &format!(
                                    "SELECT credits_remaining, credits_refill, credits_period, credits_generation FROM {table} \
                                     WHERE id = $1 AND {live} AND credits_remaining IS NOT NULL FOR UPDATE"
                                ),
                                &[&id],
                            )
                            .await?;
                        let Some(row) = row else { return Ok((None, Vec::new())) };
                        let remaining: i64 = row.try_get(0)?;
                        let refill: Option<String> = row.try_get(1)?;
                        let mut period = row.try_get::<_, Option<i64>>(2)?.map(Timestamp::from_millis);
                        let Some(mut credits) =
                            Credits::from_columns(Some(remaining), refill.as_deref(), row.try_get(3)?)
                        else {
                            return Ok((None, Vec::new()));
                        };
                        if credits.refill_due(&mut period, now) {
                            tx.execute(
                                &format!(
                                    "UPDATE {table} SET credits_remaining = $2, credits_period = $3 WHERE id = $1"
                                ),
                                &[&id, &credit_column(credits.remaining), &period.map(Timestamp::millis)],
                            )
                            .await?;
                        }
                        let balance = credits.remaining;
                        let granted = credit_block(balance, need, most);
                        let left = if granted == 0 {
                            balance
                        } else {
                            let row = tx
                                .query_one(
                                    &format!(
                                        "UPDATE {table} SET credits_remaining = credits_remaining - $2 \
                                         WHERE id = $1 AND credits_remaining >= $2 RETURNING credits_remaining"
                                    ),
                                    &[&id, &credit_column(granted)],
                                )
                                .await?;
                            u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0)
                        };
                        let reservation = Reservation {
                            granted,
                            left,
                            period,
                            generation: credits.generation,
                        };
                        Ok((Some(reservation), Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }

    /// Gives unspent blocks back (see `Store::return_credits`).
    pub async fn return_credits(&self, blocks: Vec<HeldBlock>) -> Result<u64, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        let mut returned = 0;
                        for block in &blocks {
                            let (table, live, id) = payer_row(block.payer);
                            let changed = tx
                                .execute(
                                    &format!(
                                        "UPDATE {table} SET credits_remaining = least(credits_remaining + $2, {MAX_CREDITS}) \
                                         WHERE id = $1 AND {live} AND credits_remaining IS NOT NULL \
                                           AND credits_generation = $3 AND credits_period IS NOT DISTINCT FROM $4::BIGINT"
                                    ),
                                    &[
                                        &id,
                                        &credit_column(block.unspent),
                                        &credit_column(block.generation),
                                        &block.period.map(Timestamp::millis),
                                    ],
                                )
                                .await?;
                            if changed > 0 {
                                returned += block.unspent;
                            }
                        }
                        Ok((returned, Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }
}
