//! How the model's values are columns and rows: ids as text, digests as blobs, times as
//! unix milliseconds, lists as JSON; and the column lists the row readers expect.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::model::{
    ActiveKeyRow, Credits, KeyDigest, KeyId, KeyRecord, RateLimits, Role, Timestamp, UserId, UserRecord,
};

macro_rules! sql_id {
    ($t:ty) => {
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.to_string()))
            }
        }
        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$t>::parse(text).ok_or_else(|| FromSqlError::Other(format!("malformed id {text:?}").into()))
            }
        }
    };
}
sql_id!(UserId);
sql_id!(KeyId);

impl ToSql for KeyDigest {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_bytes().as_slice()))
    }
}

impl FromSql for KeyDigest {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let bytes = value.as_blob()?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| FromSqlError::InvalidBlobSize {
            expected_size: 64,
            blob_size: bytes.len(),
        })?;
        Ok(KeyDigest::from_bytes(bytes))
    }
}

pub(super) use crate::store::formats::json_list;
use crate::store::formats::{grants_from, scopes_from};

/// A `count(*)` column as an unsigned number.
pub(super) fn count(r: &Row<'_>) -> rusqlite::Result<u64> {
    Ok(u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0))
}

/// Insertion position of the row a cursor names: 0 for no cursor, `None` for an unknown one.
pub(super) fn cursor_seq<T: ToSql>(c: &Connection, table: &str, after: Option<T>) -> rusqlite::Result<Option<i64>> {
    match after {
        None => Ok(Some(0)),
        Some(id) => c
            .prepare_cached(&format!("SELECT seq FROM {table} WHERE id = ?1"))?
            .query_row([id], |r| r.get(0))
            .optional(),
    }
}

/// A page of `limit` from `items` read with `limit + 1`: whether more follow.
pub(super) fn page_of<T>(mut items: Vec<T>, total: u64, limit: u32) -> crate::store::Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    crate::store::Page { items, total, more }
}

pub(super) const USER_COLUMNS: &str = "id, username, email, password_hash, role, disabled, token_epoch, created_at, updated_at, deleted_at, \
     ratelimits, credits_remaining, credits_refill, credits_period, credits_generation";

pub(super) fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let role: String = r.get(4)?;
    Ok(UserRecord {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        password_hash: r.get::<_, String>(3)?.into(),
        role: if role == "admin" { Role::Admin } else { Role::User },
        disabled: r.get(5)?,
        token_epoch: r.get(6)?,
        created_at: Timestamp::from_millis(r.get(7)?),
        updated_at: Timestamp::from_millis(r.get(8)?),
        deleted: r.get::<_, Option<i64>>(9)?.is_some(),
        ratelimits: RateLimits::from_column(r.get::<_, Option<String>>(10)?.as_deref()).unwrap_or_else(|e| {
            log::error!("a user's rate limits cannot be read ({e}); none are applied until they are repaired");
            RateLimits::none()
        }),
        credits: Credits::from_columns(r.get(11)?, r.get::<_, Option<String>>(12)?.as_deref(), r.get(14)?),
        credits_period: r.get::<_, Option<i64>>(13)?.map(Timestamp::from_millis),
        rendered: Default::default(),
    })
}

macro_rules! key_columns {
    () => {
        "id, user_id, name, hash, created_at, updated_at, expires_at, last_used_at, disabled, scopes, meta, grants, \
         ratelimits, credits_remaining, credits_refill, credits_period, credits_generation"
    };
}
/// The columns [`key_from_row`] reads, in its order.
pub(super) const KEY_COLUMNS: &str = key_columns!();
/// [`KEY_COLUMNS`] and `revoked_at` of the key with a digest (the unique index answers it).
pub(super) const FIND_KEY_BY_DIGEST: &str =
    concat!("SELECT ", key_columns!(), ", revoked_at FROM keys WHERE hash = ?1");

pub(super) fn key_from_row(r: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    Ok(KeyRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        digest: r.get(3)?,
        created_at: Timestamp::from_millis(r.get(4)?),
        updated_at: Timestamp::from_millis(r.get(5)?),
        expires_at: r.get::<_, Option<i64>>(6)?.map(Timestamp::from_millis),
        last_used_at: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_millis),
        disabled: r.get(8)?,
        // Unreadable scopes: no scopes at all (never the user's full rights).
        scopes: scopes_from(r.get(9)?).unwrap_or_else(|_| Some(Vec::new())),
        meta: r
            .get::<_, String>(10)
            .ok()
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_else(|| serde_json::json!({})),
        grants: grants_from(r.get(11)?),
        // Unreadable limits show as none here; the view refuses such a key outright.
        ratelimits: RateLimits::from_column(r.get::<_, Option<String>>(12)?.as_deref()).unwrap_or_default(),
        credits: Credits::from_columns(r.get(13)?, r.get::<_, Option<String>>(14)?.as_deref(), r.get(16)?),
        credits_period: r.get::<_, Option<i64>>(15)?.map(Timestamp::from_millis),
    })
}

/// Columns of [`active_key_from_row`].
pub(super) const ACTIVE_KEY_COLUMNS: &str = "id, user_id, hash, expires_at, disabled, scopes, grants, ratelimits, credits_remaining, credits_refill, credits_generation";

/// A key row as the in-memory view needs it; `None` (logged) when its scopes cannot be
/// read: such a key is refused rather than given its user's full rights.
pub(super) fn active_key_from_row(r: &Row<'_>) -> rusqlite::Result<Option<ActiveKeyRow>> {
    let id: KeyId = r.get(0)?;
    let scopes = match scopes_from(r.get(5)?) {
        Ok(scopes) => scopes,
        Err(e) => {
            log::error!("key {id}: its scopes cannot be read ({e}); the key is refused until they are repaired");
            return Ok(None);
        }
    };
    let ratelimits = match RateLimits::from_column(r.get::<_, Option<String>>(7)?.as_deref()) {
        Ok(limits) => limits,
        Err(e) => {
            log::error!("key {id}: its rate limits cannot be read ({e}); the key is refused until they are repaired");
            return Ok(None);
        }
    };
    let digest: KeyDigest = r.get(2)?;
    Ok(Some(ActiveKeyRow {
        id,
        user_id: r.get(1)?,
        lookup: digest.lookup(),
        imported: digest.is_imported(),
        expires_at: r.get::<_, Option<i64>>(3)?.map(Timestamp::from_millis),
        disabled: r.get(4)?,
        scopes,
        grants: grants_from(r.get(6)?),
        ratelimits,
        credits: Credits::from_columns(r.get(8)?, r.get::<_, Option<String>>(9)?.as_deref(), r.get(10)?),
    }))
}
