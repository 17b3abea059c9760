//! The `changes` table: the change feed every key or user write appends to in its own
//! transaction (through [`Tx`]), the offline revocation feed read from it, and the
//! follower of what other processes write ([`ChangeWatcher`]).

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::rows::{ACTIVE_KEY_COLUMNS, USER_COLUMNS, active_key_from_row, user_from_row};
use super::{SqliteStore, StoreError, configure};
use crate::model::{AuditRecord, FeedEntry, FeedState, KeyDigest, KeyId, Timestamp, UserId};
use crate::store::Change;

/// A write in progress: its connection (inside the group transaction's savepoint), and what
/// it records besides its own rows: change-feed rows, revocation-feed rows, audit lines.
pub(super) struct Tx<'c> {
    conn: &'c Connection,
    /// Names this process in the rows it writes, so its own follower skips them.
    origin: &'c str,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Whose keys [`Tx::effective_states`] writes feed rows for.
pub(super) enum KeysOf {
    User(UserId),
    Key(KeyId),
}

impl<'c> Tx<'c> {
    pub(super) fn new(conn: &'c Connection, origin: &'c str) -> Self {
        Tx { conn, origin }
    }

    /// One change-feed row: `what` happened to the `entity` (`key` or `user`) `id`.
    pub(super) fn change(&self, entity: &str, id: &str, what: &str, at: Timestamp) -> rusqlite::Result<()> {
        self.prepare_cached("INSERT INTO changes (entity, id, what, at, origin) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![entity, id, what, at.millis(), self.origin])?;
        Ok(())
    }

    /// A key change that an offline verifier must learn of: one feed row with the key's state.
    pub(super) fn key_state(
        &self,
        id: KeyId,
        what: &str,
        state: FeedState,
        not_after: Option<Timestamp>,
        at: Timestamp,
    ) -> rusqlite::Result<()> {
        self.prepare_cached(
            "INSERT INTO changes (entity, id, what, at, origin, state, not_after) VALUES ('key', ?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            id,
            what,
            at.millis(),
            self.origin,
            state.as_str(),
            not_after.map(Timestamp::millis)
        ])?;
        Ok(())
    }

    /// One feed row for each live key of a user (or for one key) with its effective state
    /// now: `disabled` when the key or its user is, else `enabled`.
    pub(super) fn effective_states(&self, keys: KeysOf, what: &str, at: Timestamp) -> rusqlite::Result<()> {
        const INSERT: &str = "INSERT INTO changes (entity, id, what, at, origin, state) \
             SELECT 'key', k.id, ?2, ?3, ?4, CASE WHEN k.disabled = 1 OR u.disabled = 1 THEN 'disabled' ELSE 'enabled' END \
             FROM keys k JOIN users u ON u.id = k.user_id \
             WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?3) AND ";
        let (sql, id) = match keys {
            KeysOf::User(user) => (format!("{INSERT} k.user_id = ?1 ORDER BY k.seq"), user.to_string()),
            KeysOf::Key(key) => (format!("{INSERT} k.id = ?1"), key.to_string()),
        };
        self.prepare_cached(&sql)?
            .execute(params![id, what, at.millis(), self.origin])?;
        Ok(())
    }

    /// One audit line. The target's name as it is now (in this transaction) is kept with
    /// it: the `detail` column holds `{"detail": …, "target_name": …}`.
    pub(super) fn audit(&self, a: &AuditRecord) -> rusqlite::Result<()> {
        self.prepare_cached(
            "INSERT INTO audit (at, actor_id, actor, action, target_type, target_id, source_ip, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, json_object('detail', ?8, 'target_name', \
               CASE ?5 WHEN 'key' THEN (SELECT name FROM keys WHERE id = ?6) \
                       WHEN 'user' THEN (SELECT username FROM users WHERE id = ?6) END))",
        )?
        .execute(params![
            a.at.millis(),
            a.actor_id,
            a.actor,
            a.action,
            a.target_type,
            a.target_id,
            a.source_ip,
            a.detail
        ])?;
        Ok(())
    }
}

impl SqliteStore {
    /// The offline revocation feed after position `after`, oldest first: at most `limit`
    /// entries, and whether more follow.
    pub async fn revocation_feed(&self, after: i64, limit: u32) -> Result<(Vec<FeedEntry>, bool), StoreError> {
        self.read(move |c| {
            let mut entries: Vec<FeedEntry> = c
                .prepare_cached(
                    "SELECT seq, id, state, at, not_after FROM changes WHERE state IS NOT NULL AND seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![after, limit + 1], |r| {
                    let state: String = r.get(2)?;
                    Ok(FeedEntry {
                        seq: r.get(0)?,
                        id: r.get(1)?,
                        state: FeedState::named(&state),
                        at: Timestamp::from_millis(r.get(3)?),
                        not_after: r.get::<_, Option<i64>>(4)?.map(Timestamp::from_millis),
                    })
                })?
                .collect::<Result<_, _>>()?;
            let more = entries.len() > limit as usize;
            entries.truncate(limit as usize);
            Ok((entries, more))
        })
        .await
    }

    /// The changes other processes committed since the last call, on the watcher's own
    /// connection (on the blocking pool).
    pub async fn poll_changes(&self, now: Timestamp) -> Result<Vec<Change>, StoreError> {
        let watcher = std::sync::Arc::clone(&self.watcher);
        super::blocking(move || watcher.lock().poll(now)).await
    }
}

/// Follows writes made by other processes (the CLI, a second server) through the `changes`
/// table: a cheap `PRAGMA data_version` poll, then the new rows, resolved into what the
/// in-memory view needs. Owns its own connection: `data_version` only means something on
/// one connection.
pub(super) struct ChangeWatcher {
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
    fn poll(&mut self, now: Timestamp) -> Result<Vec<Change>, StoreError> {
        let version: i64 = self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if version == self.data_version {
            return Ok(Vec::new());
        }
        // Both marks move only once the read went through: a failed read is read again.
        let mut last_seq = self.last_seq;
        let tx = self.conn.unchecked_transaction()?;
        let rows: Vec<(i64, String, String, String)> = tx
            .prepare_cached("SELECT seq, entity, id, origin FROM changes WHERE seq > ?1 ORDER BY seq")?
            .query_map([self.last_seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let mut changes = Vec::new();
        for (seq, entity, id, origin) in rows {
            last_seq = seq;
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
                            Ok((active_key_from_row(r)?, r.get::<_, bool>(11)?, r.get::<_, KeyDigest>(2)?))
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
        self.last_seq = last_seq;
        self.data_version = version;
        Ok(changes)
    }
}
