//! How the model's values are PostgreSQL columns and rows (ids as text, digests as bytea,
//! times as unix milliseconds, lists as JSON text), and the helpers every table shares.

use tokio_postgres::{GenericClient, Row, Transaction};

use super::writer::FeedRow;
use crate::model::{
    ActiveKeyRow, AuditRecord, Credits, KeyDigest, KeyId, KeyRecord, RateLimits, Role, Timestamp, UserId, UserRecord,
};
use crate::store::formats::{grants_from, meta_from, scopes_from};
use crate::store::{Page, StoreError, StoreErrorKind};

pub(super) fn bad(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Other, format!("unreadable {what} in the database"))
}

pub(super) fn user_id(text: &str) -> Result<UserId, StoreError> {
    UserId::parse(text).ok_or_else(|| bad("user id"))
}

pub(super) fn key_id(text: &str) -> Result<KeyId, StoreError> {
    KeyId::parse(text).ok_or_else(|| bad("key id"))
}

pub(super) fn millis(t: Option<i64>) -> Option<Timestamp> {
    t.map(Timestamp::from_millis)
}

pub(super) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) fn user_from_row(r: &Row) -> Result<UserRecord, StoreError> {
    let role: String = r.try_get(4)?;
    Ok(UserRecord {
        id: user_id(r.try_get(0)?)?,
        username: r.try_get(1)?,
        email: r.try_get(2)?,
        password_hash: r.try_get::<_, String>(3)?.into(),
        role: if role == "admin" { Role::Admin } else { Role::User },
        disabled: r.try_get(5)?,
        token_epoch: r.try_get(6)?,
        created_at: Timestamp::from_millis(r.try_get(7)?),
        updated_at: Timestamp::from_millis(r.try_get(8)?),
        deleted: r.try_get::<_, Option<i64>>(9)?.is_some(),
        ratelimits: RateLimits::from_column(r.try_get::<_, Option<String>>(10)?.as_deref()).unwrap_or_else(|e| {
            log::error!("a user's rate limits cannot be read ({e}); none are applied until they are repaired");
            RateLimits::none()
        }),
        credits: Credits::from_columns(
            r.try_get(11)?,
            r.try_get::<_, Option<String>>(12)?.as_deref(),
            r.try_get(14)?,
        ),
        credits_period: millis(r.try_get(13)?),
        rendered: Default::default(),
    })
}

pub(super) fn digest(bytes: &[u8]) -> Result<KeyDigest, StoreError> {
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| bad("key digest"))?;
    Ok(KeyDigest::from_bytes(bytes))
}

pub(super) fn key_from_row(r: &Row) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: key_id(r.try_get(0)?)?,
        user_id: user_id(r.try_get(1)?)?,
        name: r.try_get(2)?,
        digest: digest(r.try_get(3)?)?,
        created_at: Timestamp::from_millis(r.try_get(4)?),
        updated_at: Timestamp::from_millis(r.try_get(5)?),
        expires_at: millis(r.try_get(6)?),
        last_used_at: millis(r.try_get(7)?),
        disabled: r.try_get(8)?,
        // Unreadable scopes: no scopes at all (never the user's full rights).
        scopes: scopes_from(r.try_get(9)?).unwrap_or_else(|_| Some(Vec::new())),
        meta: meta_from(&r.try_get::<_, String>(10)?),
        grants: grants_from(r.try_get(11)?),
        // Unreadable limits show as none here; the view refuses such a key outright.
        ratelimits: RateLimits::from_column(r.try_get::<_, Option<String>>(12)?.as_deref()).unwrap_or_default(),
        credits: Credits::from_columns(
            r.try_get(13)?,
            r.try_get::<_, Option<String>>(14)?.as_deref(),
            r.try_get(16)?,
        ),
        credits_period: millis(r.try_get(15)?),
    })
}

/// A key row as the view needs it; `None` (logged) when its scopes cannot be read.
pub(super) fn active_key_from_row(r: &Row) -> Result<Option<ActiveKeyRow>, StoreError> {
    let id = key_id(r.try_get(0)?)?;
    let scopes = match scopes_from(r.try_get(5)?) {
        Ok(scopes) => scopes,
        Err(e) => {
            log::error!("key {id}: its scopes cannot be read ({e}); the key is refused until they are repaired");
            return Ok(None);
        }
    };
    let ratelimits = match RateLimits::from_column(r.try_get::<_, Option<String>>(7)?.as_deref()) {
        Ok(limits) => limits,
        Err(e) => {
            log::error!("key {id}: its rate limits cannot be read ({e}); the key is refused until they are repaired");
            return Ok(None);
        }
    };
    let digest = digest(r.try_get(2)?)?;
    Ok(Some(ActiveKeyRow {
        id,
        user_id: user_id(r.try_get(1)?)?,
        lookup: digest.lookup(),
        imported: digest.is_imported(),
        expires_at: millis(r.try_get(3)?),
        disabled: r.try_get(4)?,
        scopes,
        grants: grants_from(r.try_get(6)?),
        ratelimits,
        credits: Credits::from_columns(
            r.try_get(8)?,
            r.try_get::<_, Option<String>>(9)?.as_deref(),
            r.try_get(10)?,
        ),
    }))
}

pub(super) fn feed(entity: &'static str, id: String, what: &'static str, at: Timestamp) -> FeedRow {
    FeedRow {
        entity,
        id,
        what,
        at: at.millis(),
        state: None,
        not_after: None,
    }
}

pub(super) fn key_state(
    id: KeyId,
    what: &'static str,
    state: &'static str,
    not_after: Option<Timestamp>,
    at: Timestamp,
) -> FeedRow {
    FeedRow {
        entity: "key",
        id: id.to_string(),
        what,
        at: at.millis(),
        state: Some(state),
        not_after: not_after.map(Timestamp::millis),
    }
}

/// A feed row for each live key of a user (or one key) with its effective state now.
pub(super) async fn effective_states(
    tx: &Transaction<'_>,
    user: Option<UserId>,
    key: Option<KeyId>,
    what: &'static str,
    at: Timestamp,
) -> Result<Vec<FeedRow>, StoreError> {
    let rows = tx
        .query(
            "SELECT k.id, (k.disabled OR u.disabled) FROM keys k JOIN users u ON u.id = k.user_id \
             WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $1) \
               AND ($2::TEXT IS NULL OR k.user_id = $2) AND ($3::TEXT IS NULL OR k.id = $3) ORDER BY k.seq",
            &[&at.millis(), &user.map(|u| u.to_string()), &key.map(|k| k.to_string())],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let disabled: bool = r.try_get(1)?;
            Ok(FeedRow {
                entity: "key",
                id: r.try_get(0)?,
                what,
                at: at.millis(),
                state: Some(if disabled { "disabled" } else { "enabled" }),
                not_after: None,
            })
        })
        .collect()
}

pub(super) async fn insert_audit(tx: &Transaction<'_>, a: &AuditRecord) -> Result<i64, StoreError> {
    let insert = super::writer::prepared(
        tx,
        "INSERT INTO audit (at, actor_id, actor, action, target_type, target_id, source_ip, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, json_build_object('detail', $8::TEXT, 'target_name', \
           CASE $5::TEXT WHEN 'key' THEN (SELECT name FROM keys WHERE id = $6) \
                         WHEN 'user' THEN (SELECT username FROM users WHERE id = $6) END)::TEXT) RETURNING seq",
    )
    .await?;
    let row = tx
        .query_one(
            &insert,
            &[
                &a.at.millis(),
                &a.actor_id.map(|id| id.to_string()),
                &a.actor,
                &a.action,
                &a.target_type,
                &a.target_id,
                &a.source_ip,
                &a.detail,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// A page: `limit` items after `after_seq` and the count of all that match.
pub(super) fn page<T>(mut items: Vec<T>, total: i64, limit: u32) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Page {
        items,
        total: count(total),
        more,
    }
}

/// Insertion position of the row a cursor names: 0 for none, `None` for an unknown one.
pub(super) async fn cursor_seq(
    c: &impl GenericClient,
    table: &str,
    after: Option<String>,
) -> Result<Option<i64>, StoreError> {
    match after {
        None => Ok(Some(0)),
        Some(id) => Ok(c
            .query_opt(&format!("SELECT seq FROM {table} WHERE id = $1"), &[&id])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?),
    }
}

pub(super) use crate::store::formats::{ACTIVE_KEY_COLUMNS, KEY_COLUMNS, USER_COLUMNS, json_list};
