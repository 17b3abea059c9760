//! Following writes made by other processes (the CLI, a second server) through the
//! `changes` table: a cheap `PRAGMA data_version` poll, then the new rows, resolved into what
//! the in-memory view needs.

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{
    ACTIVE_KEY_COLUMNS, ActiveKeyRow, StoreError, USER_COLUMNS, active_key_from_row, configure, user_from_row,
};
use crate::domain::{KeyDigest, KeyId, Timestamp, UserId, UserRecord};

/// What another process changed, ready for the view.
pub enum Change {
    /// A key that can authenticate (created or re-enabled elsewhere).
    KeyActive(ActiveKeyRow),
    /// A key that must fail from now on (revoked, expired, gone), by lookup hash.
    KeyGone([u8; 32]),
    /// A user's current record (deleted ones included, so their tokens die).
    User(UserRecord),
}

/// Owns its own connection: `data_version` only means something on one connection.
pub struct ChangeWatcher {
    conn: Connection,
    origin: String,
    data_version: i64,
    last_seq: i64,
}

impl ChangeWatcher {
    pub(super) fn open(path: &std::path::Path, origin: String) -> Result<ChangeWatcher, StoreError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        configure(&conn)?;
        let data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let last_seq = conn.query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |r| r.get(0))?;
        Ok(ChangeWatcher {
            conn,
            origin,
            data_version,
            last_seq,
        })
    }

    /// The changes other processes committed since the last call; empty when nothing did.
    pub fn poll(&mut self, now: Timestamp) -> Result<Vec<Change>, StoreError> {
        let version: i64 = self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if version == self.data_version {
            return Ok(Vec::new());
        }
        self.data_version = version;
        let tx = self.conn.unchecked_transaction()?;
        let rows: Vec<(i64, String, String, String)> = tx
            .prepare_cached("SELECT seq, entity, id, origin FROM changes WHERE seq > ?1 ORDER BY seq")?
            .query_map([self.last_seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let mut changes = Vec::new();
        for (seq, entity, id, origin) in rows {
            self.last_seq = seq;
            if origin == self.origin {
                continue;
            }
            match entity.as_str() {
                "key" => {
                    let Some(id) = KeyId::parse(&id) else { continue };
                    let key = tx
                        .prepare_cached(&format!(
                            "SELECT {ACTIVE_KEY_COLUMNS}, revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2) FROM keys WHERE id = ?1"
                        ))?
                        .query_row(params![id, now.millis()], |r| {
                            Ok((active_key_from_row(r)?, r.get::<_, bool>(7)?, r.get::<_, KeyDigest>(2)?))
                        })
                        .optional()?;
                    if let Some((row, live, digest)) = key {
                        changes.push(match row {
                            Some(row) if live => Change::KeyActive(row),
                            // Revoked, expired, or unreadable (refused): out of the view.
                            _ => Change::KeyGone(digest.lookup()),
                        });
                    }
                }
                _ => {
                    let Some(id) = UserId::parse(&id) else { continue };
                    let user = tx
                        .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                        .query_row(params![id], user_from_row)
                        .optional()?;
                    if let Some(user) = user {
                        changes.push(Change::User(user));
                    }
                }
            }
        }
        tx.commit()?;
        Ok(changes)
    }
}
