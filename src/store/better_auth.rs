//! Reading a Better Auth (1.x) SQLite database, read-only, for `keyward import
//! better-auth`: its `user`, `account` (email-and-password credentials) and `apikey` tables,
//! as the model's foreign users and keys. Not a backend: the only foreign SQL, kept in
//! `store/` with the rest of the SQL.
//!
//! What Better Auth stores (better-auth/better-auth at 451aa4b):
//! - `user` (`packages/core/src/db/get-tables.ts`): `id`, `name`, `email`, ...
//! - `account`: `userId`, `providerId` (`"credential"` for email and password), `password`:
//!   `salt:key` in hex, scrypt N=16384 r=16 p=1 dkLen=64 of the NFKC password with the salt's
//!   hex text as salt (`packages/better-auth/src/crypto/password.ts` before the move to
//!   `@better-auth/utils/password`).
//! - `apikey` (`packages/api-key/src/schema.ts`): `key` is the base64url SHA-256 of the key
//!   without padding (`defaultKeyHasher` in `packages/api-key/src/index.ts`); the owner is
//!   `referenceId` in `@better-auth/api-key`, `userId` in older releases; `enabled` 0/1,
//!   `expiresAt` an ISO 8601 text on SQLite (the adapter stores dates as `toISOString()`),
//!   `metadata` JSON text.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{StoreError, StoreErrorKind};
use crate::model::{ForeignKey, ForeignUser, HashEncoding, LiteralKey, Sha256Hash, Timestamp};

/// The stored form keyward gives a Better Auth password hash (see `domain::passwords`).
const SCRYPT_PREFIX: &str = "$better-auth-scrypt$";

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(StoreErrorKind::Other, format!("reading the Better Auth database: {e}"))
}

/// What a Better Auth database holds, as keyward reads it.
pub struct BetterAuthData {
    pub users: Vec<ForeignUser>,
    pub keys: Vec<ForeignKey>,
    /// A note for each key left out (an unreadable hash).
    pub notes: Vec<String>,
}

/// The users and keys of the Better Auth database at `path`. Blocking: call it off the
/// async workers.
pub fn read(path: &Path) -> Result<BetterAuthData, StoreError> {
    if !path.is_file() {
        return Err(failed(format!("{} is not a file", path.display())));
    }
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(failed)?;
    let users = read_users(&c).map_err(failed)?;
    let (keys, notes) = if has_table(&c, "apikey").map_err(failed)? {
        read_keys(&c).map_err(failed)?
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(BetterAuthData { users, keys, notes })
}

fn has_table(c: &Connection, name: &str) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

fn columns(c: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    c.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |r| r.get(0))?
        .collect()
}

fn read_users(c: &Connection) -> rusqlite::Result<Vec<ForeignUser>> {
    let credentials = has_table(c, "account")?;
    let password = if credentials {
        "(SELECT a.password FROM account a WHERE a.userId = u.id AND a.providerId = 'credential' \
          AND a.password IS NOT NULL LIMIT 1)"
    } else {
        "NULL"
    };
    c.prepare(&format!(
        "SELECT u.id, u.name, u.email, {password} FROM user u ORDER BY u.createdAt, u.id"
    ))?
    .query_map([], |r| {
        Ok(ForeignUser {
            id: r.get(0)?,
            name: r.get(1)?,
            email: r.get(2)?,
            password_hash: r
                .get::<_, Option<String>>(3)?
                .filter(|h| h.contains(':'))
                .map(|h| format!("{SCRYPT_PREFIX}{h}")),
        })
    })?
    .collect()
}

fn read_keys(c: &Connection) -> rusqlite::Result<(Vec<ForeignKey>, Vec<String>)> {
    let cols = columns(c, "apikey")?;
    let owner = if cols.iter().any(|c| c == "referenceId") {
        "referenceId"
    } else {
        "userId"
    };
    let has = |name: &str| cols.iter().any(|c| c == name);
    let enabled = if has("enabled") { "enabled" } else { "1" };
    let expires = if has("expiresAt") { "expiresAt" } else { "NULL" };
    let metadata = if has("metadata") { "metadata" } else { "NULL" };
    let mut notes = Vec::new();
    let rows = c
        .prepare(&format!(
            "SELECT id, {owner}, name, key, {enabled}, {expires}, {metadata} FROM apikey ORDER BY createdAt, id"
        ))?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<bool>>(4)?,
                r.get::<_, rusqlite::types::Value>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut keys = Vec::new();
    for (id, owner, name, key, enabled, expires, metadata) in rows {
        // The default hasher's base64url SHA-256; with `disableKeyHashing` the key itself.
        let sha256 = match Sha256Hash::parse(HashEncoding::Base64Url, &key) {
            Ok(sha) => sha,
            Err(_) => match LiteralKey::parse(&key) {
                Ok(literal) => literal.sha256(),
                Err(_) => {
                    notes.push(format!("key {id}: its stored hash is not a SHA-256; left out"));
                    continue;
                }
            },
        };
        keys.push(ForeignKey {
            owner,
            name,
            sha256,
            enabled: enabled.unwrap_or(true),
            expires_at: timestamp(&expires),
            meta: metadata.and_then(|m| meta(&m)),
        });
    }
    Ok((keys, notes))
}

/// A date as the Better Auth adapters leave it in SQLite: ISO 8601 text, or unix
/// milliseconds (or seconds).
fn timestamp(value: &rusqlite::types::Value) -> Option<Timestamp> {
    match value {
        rusqlite::types::Value::Text(t) => {
            Timestamp::parse_rfc3339(t).or_else(|| Timestamp::parse_rfc3339(&t.replacen(' ', "T", 1)))
        }
        rusqlite::types::Value::Integer(n) if *n > 100_000_000_000 => Some(Timestamp::from_millis(*n)),
        rusqlite::types::Value::Integer(n) => Some(Timestamp::from_secs(*n)),
        _ => None,
    }
}

/// Metadata: a JSON object, perhaps encoded twice (a JSON string holding one).
fn meta(text: &str) -> Option<serde_json::Value> {
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        object @ serde_json::Value::Object(_) => Some(object),
        serde_json::Value::String(inner) => serde_json::from_str::<serde_json::Value>(&inner)
            .ok()
            .filter(|v| v.is_object()),
        _ => None,
    }
}
