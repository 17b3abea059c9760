//! The store: the only code that speaks SQL or imports rusqlite.
//!
//! Reads go through an r2d2 pool of query-only connections on tokio's blocking pool; writes
//! go through the one writer thread ([`writer`]) in group-committed `BEGIN IMMEDIATE`
//! transactions. Every call is async and never runs SQLite on an async worker.

mod migrations;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, params};

use crate::domain::{KeyDigest, KeyId, KeyRecord, Role, Timestamp, UserId, UserRecord};
pub use migrations::SCHEMA_VERSION;
// AuditRecord is defined below, with the SQL that writes it.
pub use watch::{Change, ChangeWatcher};
use writer::Writer;

/// How long a connection waits on a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// A unique constraint refused the write.
    Conflict,
    /// The database or its disk is full (or at `database.max_size`).
    Full,
    /// The database was opened read-only, or its file cannot be written.
    ReadOnly,
    /// The database cannot take this now: locked by another process, I/O error.
    Unavailable,
    /// The writer thread has stopped (shutdown).
    Stopped,
    Other,
}

/// A database failure. `message` is for the log only: it may hold SQL.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    fn stopped() -> Self {
        StoreError::new(StoreErrorKind::Stopped, "the database writer has stopped")
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let kind = match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => StoreErrorKind::Conflict,
            Some(ErrorCode::DiskFull) => StoreErrorKind::Full,
            Some(ErrorCode::ReadOnly) => StoreErrorKind::ReadOnly,
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen,
            ) => StoreErrorKind::Unavailable,
            _ => StoreErrorKind::Other,
        };
        StoreError::new(kind, e.to_string())
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::new(StoreErrorKind::Unavailable, format!("connection pool: {e}"))
    }
}

/// A key that can authenticate: what the in-memory view is built from at start.
pub struct ActiveKeyRow {
    pub id: KeyId,
    pub user_id: UserId,
    pub lookup: [u8; 32],
    pub expires_at: Option<Timestamp>,
    pub disabled: bool,
    pub scopes: Option<Vec<String>>,
    /// The privileged scopes an admin granted (the view honours only these of them).
    pub grants: Vec<String>,
}

impl ActiveKeyRow {
    pub fn of(key: &KeyRecord) -> ActiveKeyRow {
        ActiveKeyRow {
            id: key.id,
            user_id: key.user_id,
            lookup: key.digest.lookup(),
            expires_at: key.expires_at,
            disabled: key.disabled,
            scopes: key.scopes.clone(),
            grants: key.grants.clone(),
        }
    }
}

/// The fields of a user that an update may change. `None` leaves one as it is.
#[derive(Default)]
pub struct UserChanges {
    pub password_hash: Option<Arc<str>>,
    pub email: Option<Option<String>>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// Move the token epoch on, ending every access token of the user.
    pub bump_epoch: bool,
}

/// Changes to a live key, made together in one transaction by [`Store::update_key`];
/// `None` leaves a field as it is.
#[derive(Default)]
pub struct KeyChanges {
    pub name: Option<Option<String>>,
    pub disabled: Option<bool>,
    /// Bring the expiry forward to this instant (never later).
    pub expires_by: Option<Timestamp>,
    /// New scopes (`None` inside: acts as its user) and the privileged ones granted.
    pub scopes: Option<(Option<Vec<String>>, Vec<String>)>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.disabled.is_none() && self.expires_by.is_none() && self.scopes.is_none()
    }
}

/// One entry of the offline revocation feed: a key's state after a change.
#[derive(Clone, Debug)]
pub struct FeedEntry {
    /// Position in commit order; the cursor.
    pub seq: i64,
    pub id: KeyId,
    /// `revoked`, `disabled`, `enabled` or `shortened`.
    pub state: &'static str,
    pub at: Timestamp,
    /// The new end of a `shortened` key.
    pub not_after: Option<Timestamp>,
}

/// A web console session as stored: whose it is and until when. The token is never stored,
/// only its hash.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub user_id: UserId,
    pub token_epoch: i64,
    pub expires_at: Timestamp,
}

/// How to open the database.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Read connections in the pool.
    pub pool_size: u32,
    /// Largest the file may grow, in bytes; past it writes fail as [`StoreErrorKind::Full`].
    pub max_size: Option<u64>,
    /// Open without writing anything: for inspection, or a disk that must not change.
    pub read_only: bool,
    /// Observes how many writes each transaction commits together.
    pub batch_sizes: Option<prometheus::Histogram>,
}

/// A page of rows in insertion order, with the count of all rows that match.
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub more: bool,
}

#[derive(Clone)]
pub struct Store {
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Writer,
    path: Arc<PathBuf>,
    /// Names this process in the `changes` rows it writes.
    origin: Arc<str>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
}

impl Store {
    /// Opens (creating if need be) the database at `path`, brings its schema up to date and
    /// starts the writer thread. Read-only: nothing is created or migrated, and every write
    /// fails with [`StoreErrorKind::ReadOnly`] while reads go on.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let mut conn = if options.read_only {
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?
        } else {
            // SQLite gives the -wal and -shm files the mode of the database file: create it
            // private, so all three are.
            if std::fs::symlink_metadata(path).is_err() {
                crate::files::create_new_private(path).map_err(|e| {
                    StoreError::new(StoreErrorKind::Unavailable, format!("creating the database file: {e}"))
                })?;
            }
            Connection::open(path)?
        };
        configure(&conn)?;
        if options.read_only {
            migrations::check_current(&conn)?;
        } else {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                log::warn!("the database is in journal mode {mode}, not WAL");
            }
            migrations::migrate(&mut conn)?;
        }
        if let Some(max) = options.max_size {
            let page_size: u64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(4096))?;
            let pages = max.div_ceil(page_size.max(512));
            let _: i64 = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| r.get(0))?;
        }
        let pool_size = options.pool_size;
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            configure(c)?;
            c.execute_batch("PRAGMA query_only = ON;")
        });
        let readers = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)?;
        let (writer, _thread) = Writer::start(conn, options.batch_sizes.clone())?;
        let mut origin = [0u8; 8];
        getrandom::fill(&mut origin)
            .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("OS random source failed: {e}")))?;
        Ok(Store {
            readers,
            writer,
            path: Arc::new(path.to_owned()),
            origin: crate::domain::hex(&origin).into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A watcher of what other processes write, on its own connection.
    pub fn watcher(&self) -> Result<ChangeWatcher, StoreError> {
        ChangeWatcher::open(&self.path, self.origin.to_string())
    }

    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn).map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("read task failed: {e}")))?
    }

    /// Whether the database answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    // ---- settings -------------------------------------------------------------------

    /// The value of setting `name`, if it has one.
    pub async fn setting(&self, name: &'static str) -> Result<Option<String>, StoreError> {
        self.read(move |c| {
            c.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// Sets setting `name` to `value`.
    pub async fn put_setting(&self, name: &'static str, value: String) -> Result<(), StoreError> {
        self.writer
            .write(
                move |c| {
                    c.execute("INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2", params![name, value])?;
                    Ok(())
                },
                |_| {},
            )
            .await
    }

    /// The value of setting `name`, storing `value` first if it has none (one writer, so two
    /// starts cannot both store one).
    pub async fn setting_or_insert(&self, name: &'static str, value: String) -> Result<String, StoreError> {
        self.writer
            .write(
                move |c| {
                    c.execute(
                        "INSERT OR IGNORE INTO settings (name, value) VALUES (?1, ?2)",
                        params![name, value],
                    )?;
                    c.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| r.get(0))
                },
                |_| {},
            )
            .await
    }

    // ---- users ----------------------------------------------------------------------

    pub async fn count_users(&self) -> Result<u64, StoreError> {
        self.read(|c| c.query_row("SELECT count(*) FROM users", [], count))
            .await
    }

    /// Every user that is not deleted.
    pub async fn load_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE deleted_at IS NULL ORDER BY seq"
            ))?;
            stmt.query_map([], user_from_row)?.collect()
        })
        .await
    }

    /// `None` when the cursor names no user.
    pub async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Option<Page<UserRecord>>, StoreError> {
        self.read(move |c| {
            let Some(after_seq) = cursor_seq(c, "users", after)? else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE deleted_at IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let mut items: Vec<UserRecord> = stmt
                .query_map(params![after_seq, limit + 1], user_from_row)?
                .collect::<Result<_, _>>()?;
            let total = c.query_row("SELECT count(*) FROM users WHERE deleted_at IS NULL", [], count)?;
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            Ok(Some(Page { items, total, more }))
        })
        .await
    }

    pub async fn insert_user(
        &self,
        user: UserRecord,
        audit: AuditRecord,
        after_commit: impl FnOnce() + Send + 'static,
    ) -> Result<(), StoreError> {
        let origin = Arc::clone(&self.origin);
        self.writer
            .write(
                move |c| {
                    c.prepare_cached(
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
                    record_change(c, &origin, "user", &user.id.to_string(), "created", user.created_at)?;
                    insert_audit(c, &audit)
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
        after_commit: impl FnOnce(&Option<UserRecord>) + Send + 'static,
    ) -> Result<Option<UserRecord>, StoreError> {
        let origin = Arc::clone(&self.origin);
        self.writer
            .write(
                move |c| {
                    let was_disabled: Option<bool> = c
                        .prepare_cached("SELECT disabled FROM users WHERE id = ?1 AND deleted_at IS NULL")?
                        .query_row([id], |r| r.get(0))
                        .optional()?;
                    let updated = c
                        .prepare_cached(&format!(
                            "UPDATE users SET \
                               password_hash = coalesce(?2, password_hash), \
                               email = CASE WHEN ?3 THEN ?4 ELSE email END, \
                               role = coalesce(?5, role), \
                               disabled = coalesce(?6, disabled), \
                               token_epoch = token_epoch + ?7, \
                               updated_at = ?8 \
                             WHERE id = ?1 AND deleted_at IS NULL RETURNING {USER_COLUMNS}"
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
                                now.millis()
                            ],
                            user_from_row,
                        )
                        .optional()?;
                    if let Some(user) = &updated {
                        record_change(c, &origin, "user", &id.to_string(), "updated", now)?;
                        if was_disabled != Some(user.disabled) {
                            let what = if user.disabled { "user_disabled" } else { "user_enabled" };
                            record_effective_states(c, &origin, KeysOf::User(id), what, now)?;
                        }
                        insert_audit(c, &audit)?;
                    }
                    Ok(updated)
                },
                after_commit,
            )
            .await
    }

    /// Soft-deletes a live user and revokes all their keys in the same transaction. Returns
    /// the lookup hashes of the revoked keys, or `None` if there is no such user.
    pub async fn delete_user(
        &self,
        id: UserId,
        now: Timestamp,
        audit: AuditRecord,
        after_commit: impl FnOnce(&Option<Vec<[u8; 32]>>) + Send + 'static,
    ) -> Result<Option<Vec<[u8; 32]>>, StoreError> {
        let origin = Arc::clone(&self.origin);
        self.writer
            .write(
                move |c| {
                    let n = c
                        .prepare_cached(
                            "UPDATE users SET deleted_at = ?2, updated_at = ?2, disabled = 1, token_epoch = token_epoch + 1 \
                             WHERE id = ?1 AND deleted_at IS NULL",
                        )?
                        .execute(params![id, now.millis()])?;
                    if n == 0 {
                        return Ok(None);
                    }
                    let mut stmt = c.prepare_cached(
                        "UPDATE keys SET revoked_at = ?2, updated_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL RETURNING id, hash",
                    )?;
                    let revoked: Vec<(KeyId, KeyDigest)> =
                        stmt.query_map(params![id, now.millis()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
                    record_change(c, &origin, "user", &id.to_string(), "deleted", now)?;
                    insert_audit(c, &audit)?;
                    for (key_id, _) in &revoked {
                        record_key_state(c, &origin, *key_id, "revoked", "revoked", None, now)?;
                    }
                    Ok(Some(revoked.into_iter().map(|(_, d)| d.lookup()).collect()))
                },
                after_commit,
            )
            .await
    }

    // ---- audit ----------------------------------------------------------------------

    /// Records an audit line on its own (a failed login changes nothing else).
    pub async fn record_audit(&self, audit: AuditRecord) -> Result<(), StoreError> {
        self.writer.write(move |c| insert_audit(c, &audit), |_| {}).await
    }

    /// Records an audit line on its own and returns its position.
    pub async fn record_audit_seq(&self, audit: AuditRecord) -> Result<i64, StoreError> {
        self.writer
            .write(
                move |c| {
                    insert_audit(c, &audit)?;
                    Ok(c.last_insert_rowid())
                },
                |_| {},
            )
            .await
    }

    /// Replaces the detail of audit line `seq` (an aggregate line's running count).
    pub async fn set_audit_detail(&self, seq: i64, detail: String) -> Result<(), StoreError> {
        self.writer
            .write(
                move |c| {
                    c.prepare_cached(
                        "UPDATE audit SET detail = json_object('detail', ?2, 'target_name', NULL) WHERE seq = ?1",
                    )?
                    .execute(params![seq, detail])?;
                    Ok(())
                },
                |_| {},
            )
            .await
    }

    /// A page of the audit trail, newest first; `None` when the cursor names no line.
    pub async fn list_audit(&self, before: Option<i64>, limit: u32) -> Result<Page<AuditLine>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor_id, actor, action, target_type, target_id, source_ip, detail FROM audit \
                 WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let mut items: Vec<AuditLine> = stmt
                .query_map(params![before.unwrap_or(i64::MAX), limit + 1], |r| {
                    let action: String = r.get(4)?;
                    let target_type: Option<String> = r.get(5)?;
                    let (detail, target_name) = audit_detail_from(r.get(8)?);
                    Ok(AuditLine {
                        seq: r.get(0)?,
                        record: AuditRecord {
                            at: Timestamp::from_millis(r.get(1)?),
                            actor_id: r.get(2)?,
                            actor: r.get(3)?,
                            action: audit_action(&action),
                            target_type: target_type.as_deref().map(audit_target),
                            target_id: r.get(6)?,
                            source_ip: r.get(7)?,
                            detail,
                        },
                        target_name,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let total = c.query_row("SELECT count(*) FROM audit", [], count)?;
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            Ok(Page { items, total, more })
        })
        .await
    }

    /// Whether the user has ever started a console session (an audit line says so).
    pub async fn has_started_a_session(&self, user: UserId) -> Result<bool, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM audit WHERE action = 'session.start' AND actor_id = ?1)")?
                .query_row([user], |r| r.get(0))
        })
        .await
    }

    // ---- keys -----------------------------------------------------------------------

    /// Hands every key that is not revoked and has not expired by `now` to `sink`, one row
    /// at a time (a million keys are never all in a `Vec`), after telling it how many to
    /// expect. Returns the sink.
    pub async fn load_active_keys<S>(&self, now: Timestamp, mut sink: S) -> Result<S, StoreError>
    where
        S: FnMut(ActiveKeyRow, u64) + Send + 'static,
    {
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
            Ok(sink)
        })
        .await
    }

    /// Stores a new key. With `numbered` and no name, names it `key#N`, N being how many
    /// keys its owner has ever had plus one, counted inside the writing transaction (so two
    /// concurrent creates never get the same N). Returns the key as stored.
    pub async fn insert_key(
        &self,
        key: KeyRecord,
        numbered: bool,
        audit: AuditRecord,
        after_commit: impl FnOnce(&KeyRecord) + Send + 'static,
    ) -> Result<KeyRecord, StoreError> {
        let origin = Arc::clone(&self.origin);
        self.writer
            .write(
                move |c| {
                    let key = insert_key_row(c, &origin, key, numbered)?;
                    insert_audit(c, &audit)?;
                    Ok(key)
                },
                after_commit,
            )
            .await
    }

    /// A rotation, in one transaction: brings the old key's expiry forward to `until` and
    /// stores its replacement. `None` (and nothing written) if the old key is no longer a
    /// live key of `owner`. Returns the new key and the old one as they are now.
    pub async fn rotate_key(
        &self,
        owner: UserId,
        old: KeyId,
        until: Timestamp,
        new: KeyRecord,
        audits: [AuditRecord; 2],
        after_commit: impl FnOnce(&Option<(KeyRecord, KeyRecord)>) + Send + 'static,
    ) -> Result<Option<(KeyRecord, KeyRecord)>, StoreError> {
        let origin = Arc::clone(&self.origin);
        let now = new.created_at;
        self.writer
            .write(
                move |c| {
                    let changes = KeyChanges {
                        expires_by: Some(until),
                        ..KeyChanges::default()
                    };
                    let Some(old) = update_key_row(c, &origin, owner, old, &changes, now)? else {
                        return Ok(None);
                    };
                    let new = insert_key_row(c, &origin, new, false)?;
                    for audit in &audits {
                        insert_audit(c, audit)?;
                    }
                    Ok(Some((new, old)))
                },
                after_commit,
            )
            .await
    }

    /// One live (not revoked) key of `owner`.
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

    /// A page of `owner`'s live keys (every user's for `None`), oldest first; `None` when the
    /// cursor names no key.
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
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM keys WHERE {whose} AND revoked_at IS NULL AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))?;
            let mut items: Vec<KeyRecord> = stmt
                .query_map(params![owner, after_seq, limit + 1], key_from_row)?
                .collect::<Result<_, _>>()?;
            let total = c
                .prepare_cached(&format!(
                    "SELECT count(*) FROM keys WHERE {whose} AND revoked_at IS NULL"
                ))?
                .query_row([owner], count)?;
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            Ok(Some(Page { items, total, more }))
        })
        .await
    }

    /// The `limit` newest live keys of every user, with the count of all live keys.
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

    /// What the audit page shows of the keys it names, revoked ones included: (id, owner,
    /// name now, revoked).
    pub async fn describe_keys(
        &self,
        ids: Vec<KeyId>,
    ) -> Result<Vec<(KeyId, UserId, Option<String>, bool)>, StoreError> {
        let ids = serde_json::to_string(&ids.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, user_id, name, revoked_at IS NOT NULL FROM keys WHERE id IN (SELECT value FROM json_each(?1))",
            )?
            .query_map([ids], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect()
        })
        .await
    }

    /// `owner`'s keys revoked at `since` or later, the latest first, with when: at most `limit`.
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
                Ok((key_from_row(r)?, Timestamp::from_millis(r.get(12)?)))
            })?
            .collect()
        })
        .await
    }

    /// The owner of a live key, whoever it is (for the operator's CLI).
    pub async fn find_key_owner(&self, id: KeyId) -> Result<Option<UserId>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT user_id FROM keys WHERE id = ?1 AND revoked_at IS NULL")?
                .query_row([id], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// Schema version and `PRAGMA integrity_check` (`"ok"` when sound).
    pub async fn check(&self) -> Result<(i64, String), StoreError> {
        self.read(|c| {
            let version = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let integrity: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            Ok((version, integrity))
        })
        .await
    }

    /// Copies the database to `target` with `VACUUM INTO`: one read transaction, so the copy
    /// is consistent while the server keeps serving and writing. The copy is written, 0600,
    /// in a private directory beside `target`, then moved to `target` only if nothing (no
    /// file, no symlink) is there: it never overwrites and never follows a link, and a
    /// failed backup leaves nothing behind. `progress` is told the bytes written so far
    /// (polled from the file) and the expected total, until the copy is done.
    pub async fn backup_to(
        &self,
        target: &Path,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<(), StoreError> {
        let invalid = |message: String| StoreError::new(StoreErrorKind::Other, message);
        if std::fs::symlink_metadata(target).is_ok() {
            return Err(invalid(format!(
                "{} exists already; backups never overwrite",
                target.display()
            )));
        }
        let folder = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !folder.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "cannot write {}: there is no directory {}",
                    target.display(),
                    folder.display()
                ),
            ));
        }
        let parent = folder.to_owned();
        let source = self.path.as_ref().clone();
        let target = target.to_owned();
        tokio::task::spawn_blocking(move || {
            let work = crate::files::PrivateDir::beside(&target)
                .map_err(|e| invalid(format!("cannot write in {}: {e}", parent.display())))?;
            let copy = work.path().join("backup.db");
            crate::files::create_new_private(&copy)
                .map_err(|e| invalid(format!("cannot write in {}: {e}", parent.display())))?;
            let conn = Connection::open_with_flags(
                &source,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&conn)?;
            let total: u64 = conn
                .query_row(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| u64::try_from(n).unwrap_or(0))?;
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let watch = {
                let (done, copy) = (std::sync::Arc::clone(&done), copy.clone());
                std::thread::spawn(move || {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let written = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
                        progress(written.min(total), total);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    progress(total, total);
                })
            };
            // VACUUM INTO writes into an empty file that exists, keeping its mode.
            let result = conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()]).map(|_| ());
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = watch.join();
            result?;
            crate::files::rename_no_replace(&copy, &target).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    invalid(format!("{} exists already; backups never overwrite", target.display()))
                } else {
                    invalid(format!("cannot move the backup to {}: {e}", target.display()))
                }
            })
        })
        .await
        .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("backup task failed: {e}")))?
    }

    /// Revocations since `since`, oldest first (for services that verify keys offline).
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

    /// Changes a live key of `owner` (with its change, feed and audit rows) in one
    /// transaction; the key as it is now, `None` if there is no such key.
    pub async fn update_key(
        &self,
        owner: UserId,
        id: KeyId,
        changes: KeyChanges,
        now: Timestamp,
        audits: Vec<AuditRecord>,
        after_commit: impl FnOnce(&Option<KeyRecord>) + Send + 'static,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let origin = Arc::clone(&self.origin);
        self.writer
            .write(
                move |c| {
                    let key = update_key_row(c, &origin, owner, id, &changes, now)?;
                    if key.is_some() {
                        for audit in &audits {
                            insert_audit(c, audit)?;
                        }
                    }
                    Ok(key)
                },
                after_commit,
            )
            .await
    }

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
                        state: feed_state(&state),
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

    /// A key by its digest, revoked or not (the verify API tells revoked from unknown). An
    /// equality on the whole digest: the unique index answers it.
    pub async fn find_key_by_digest(&self, digest: KeyDigest) -> Result<Option<(KeyRecord, bool)>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(FIND_KEY_BY_DIGEST)?
                .query_row([digest], |r| {
                    Ok((key_from_row(r)?, r.get::<_, Option<i64>>(12)?.is_some()))
                })
                .optional()
        })
        .await
    }

    /// Revokes a live key of `owner`; returns its lookup hash, `None` if there is none.
    pub async fn revoke_key(
        &self,
        owner: UserId,
        id: KeyId,
        now: Timestamp,
        audit: AuditRecord,
        after_commit: impl FnOnce(&Option<[u8; 32]>) + Send + 'static,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let origin = Arc::clone(&self.origin);
        self.writer
            .write(
                move |c| {
                    let digest: Option<KeyDigest> = c
                        .prepare_cached(
                            "UPDATE keys SET revoked_at = ?3, updated_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL \
                             RETURNING hash",
                        )?
                        .query_row(params![id, owner, now.millis()], |r| r.get(0))
                        .optional()?;
                    if digest.is_some() {
                        record_key_state(c, &origin, id, "revoked", "revoked", None, now)?;
                        insert_audit(c, &audit)?;
                    }
                    Ok(digest.map(|d| d.lookup()))
                },
                after_commit,
            )
            .await
    }

    // ---- web console sessions ---------------------------------------------------------

    /// Stores a new session (and its sign-in audit line), dropping every expired one.
    pub async fn insert_session(
        &self,
        hash: [u8; 32],
        session: SessionRow,
        now: Timestamp,
        audit: AuditRecord,
    ) -> Result<(), StoreError> {
        self.writer
            .write(
                move |c| {
                    c.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
                        .execute([now.millis()])?;
                    c.prepare_cached(
                        "INSERT INTO sessions (hash, user_id, token_epoch, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        hash,
                        session.user_id,
                        session.token_epoch,
                        now.millis(),
                        session.expires_at.millis()
                    ])?;
                    insert_audit(c, &audit)
                },
                |_| {},
            )
            .await
    }

    /// The session whose token hashes to `hash`, expired or not.
    pub async fn find_session(&self, hash: [u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT user_id, token_epoch, expires_at FROM sessions WHERE hash = ?1")?
                .query_row([hash], |r| {
                    Ok(SessionRow {
                        user_id: r.get(0)?,
                        token_epoch: r.get(1)?,
                        expires_at: Timestamp::from_millis(r.get(2)?),
                    })
                })
                .optional()
        })
        .await
    }

    /// Ends a session; `false` if there was none.
    pub async fn delete_session(&self, hash: [u8; 32], audit: AuditRecord) -> Result<bool, StoreError> {
        self.writer
            .write(
                move |c| {
                    let gone = c
                        .prepare_cached("DELETE FROM sessions WHERE hash = ?1")?
                        .execute([hash])?
                        > 0;
                    if gone {
                        insert_audit(c, &audit)?;
                    }
                    Ok(gone)
                },
                |_| {},
            )
            .await
    }

    /// Writes a batch of "key used at" times; a time never moves backwards.
    pub async fn record_key_usage(&self, uses: Vec<(KeyId, Timestamp)>) -> Result<(), StoreError> {
        self.writer
            .write(
                move |c| {
                    let mut stmt = c.prepare_cached(
                        "UPDATE keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
                    )?;
                    for (id, at) in &uses {
                        stmt.execute(params![id, at.millis()])?;
                    }
                    Ok(())
                },
                |_| {},
            )
            .await
    }
}

fn insert_key_row(c: &Connection, origin: &str, mut key: KeyRecord, numbered: bool) -> rusqlite::Result<KeyRecord> {
    let json = |list: &[String]| serde_json::to_string(list).unwrap_or_default();
    key.name = c
        .prepare_cached(
            "INSERT INTO keys (id, user_id, name, hash, created_at, updated_at, expires_at, disabled, scopes, meta, grants) \
             VALUES (?1, ?2, coalesce(?3, CASE WHEN ?9 THEN 'key#' || ((SELECT count(*) FROM keys WHERE user_id = ?2) + 1) END), \
                     ?4, ?5, ?5, ?6, 0, ?7, ?8, ?10) RETURNING name",
        )?
        .query_row(
            params![
                key.id,
                key.user_id,
                key.name,
                &key.digest,
                key.created_at.millis(),
                key.expires_at.map(Timestamp::millis),
                key.scopes.as_deref().map(json),
                key.meta.to_string(),
                numbered,
                (!key.grants.is_empty()).then(|| json(&key.grants)),
            ],
            |r| r.get(0),
        )?;
    record_change(c, origin, "key", &key.id.to_string(), "created", key.created_at)?;
    Ok(key)
}

/// Applies `changes` to a live key of `owner` with its change and feed rows; the key as it
/// is now, `None` if there is none.
fn update_key_row(
    c: &Connection,
    origin: &str,
    owner: UserId,
    id: KeyId,
    changes: &KeyChanges,
    now: Timestamp,
) -> rusqlite::Result<Option<KeyRecord>> {
    let json = |list: &[String]| serde_json::to_string(list).unwrap_or_default();
    let (set_scopes, scopes, grants) = match &changes.scopes {
        Some((scopes, grants)) => (
            true,
            scopes.as_deref().map(json),
            (!grants.is_empty()).then(|| json(grants)),
        ),
        None => (false, None, None),
    };
    let key = c
        .prepare_cached(&format!(
            "UPDATE keys SET \
               name = CASE WHEN ?3 THEN ?4 ELSE name END, \
               disabled = coalesce(?5, disabled), \
               expires_at = CASE WHEN ?6 IS NULL THEN expires_at ELSE min(coalesce(expires_at, ?6), ?6) END, \
               scopes = CASE WHEN ?7 THEN ?8 ELSE scopes END, \
               grants = CASE WHEN ?7 THEN ?9 ELSE grants END, \
               updated_at = ?10 \
             WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL RETURNING {KEY_COLUMNS}"
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
                now.millis()
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
        _ => "renamed",
    };
    record_change(c, origin, "key", &id.to_string(), what, now)?;
    if changes.disabled.is_some() {
        record_effective_states(c, origin, KeysOf::Key(id), what, now)?;
    }
    if changes.expires_by.is_some() {
        record_key_state(c, origin, id, "expiry", "shortened", key.expires_at, now)?;
    }
    Ok(Some(key))
}

/// The feed's states are a closed set; stored text maps back to them.
fn feed_state(text: &str) -> &'static str {
    ["revoked", "disabled", "enabled", "shortened"]
        .into_iter()
        .find(|s| *s == text)
        .unwrap_or("revoked")
}

/// Insertion position of the row a cursor names: 0 for no cursor, `None` for an unknown one.
fn cursor_seq<T: ToSql>(c: &Connection, table: &str, after: Option<T>) -> rusqlite::Result<Option<i64>> {
    match after {
        None => Ok(Some(0)),
        Some(id) => c
            .prepare_cached(&format!("SELECT seq FROM {table} WHERE id = ?1"))?
            .query_row([id], |r| r.get(0))
            .optional(),
    }
}

/// One line of the audit trail: who did what to which record, from where. Never a secret.
///
/// Stored with the target's name as it is when the line is written (the key's name, the
/// user's username, read in the same transaction): the `detail` column holds
/// `{"detail": …, "target_name": …}`. Lines written before that hold the detail text alone.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    pub at: Timestamp,
    pub actor_id: Option<UserId>,
    /// The actor's username, `operator` for the CLI, or `anonymous`.
    pub actor: String,
    /// `key.create`, `key.rename`, `key.revoke`, `user.create`, `user.update`,
    /// `user.delete`, `user.password`, `login.failed`, `session.start`, `session.end`.
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub source_ip: Option<String>,
    /// What changed: field names, and values that are no secret (`role=admin`).
    pub detail: Option<String>,
}

impl AuditRecord {
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// An audit line as read back: its position, the record, and its target's name as it was.
#[derive(Clone, Debug)]
pub struct AuditLine {
    pub seq: i64,
    pub record: AuditRecord,
    pub target_name: Option<String>,
}

fn insert_audit(c: &Connection, a: &AuditRecord) -> rusqlite::Result<()> {
    c.prepare_cached(
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

/// The `detail` column: (detail, target's name) from the JSON of [`insert_audit`], or an
/// older line's plain text as its detail.
fn audit_detail_from(column: Option<String>) -> (Option<String>, Option<String>) {
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

/// The audit actions and target kinds are a closed set; stored text maps back to them.
fn audit_action(text: &str) -> &'static str {
    const ACTIONS: [&str; 14] = [
        "key.create",
        "key.update",
        "key.rotate",
        "key.rename",
        "key.revoke",
        "key.disable",
        "key.enable",
        "user.create",
        "user.update",
        "user.delete",
        "user.password",
        "login.failed",
        "session.start",
        "session.end",
    ];
    ACTIONS.iter().find(|a| **a == text).copied().unwrap_or("other")
}

fn audit_target(text: &str) -> &'static str {
    if text == "key" { "key" } else { "user" }
}

/// The `scopes` column: NULL means none (the key acts as its user); a cell that cannot be
/// read is an error, and every caller fails closed on it.
fn scopes_from(text: Option<String>) -> Result<Option<Vec<String>>, String> {
    match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| e.to_string()),
    }
}

/// Columns of [`active_key_from_row`].
const ACTIVE_KEY_COLUMNS: &str = "id, user_id, hash, expires_at, disabled, scopes, grants";

/// A key row as the in-memory view needs it; `None` (logged) when its scopes cannot be
/// read: such a key is refused rather than given its user's full rights.
fn active_key_from_row(r: &Row<'_>) -> rusqlite::Result<Option<ActiveKeyRow>> {
    let id: KeyId = r.get(0)?;
    let scopes = match scopes_from(r.get(5)?) {
        Ok(scopes) => scopes,
        Err(e) => {
            log::error!("key {id}: its scopes cannot be read ({e}); the key is refused until they are repaired");
            return Ok(None);
        }
    };
    Ok(Some(ActiveKeyRow {
        id,
        user_id: r.get(1)?,
        lookup: r.get::<_, KeyDigest>(2)?.lookup(),
        expires_at: r.get::<_, Option<i64>>(3)?.map(Timestamp::from_millis),
        disabled: r.get(4)?,
        scopes,
        grants: grants_from(r.get(6)?),
    }))
}

/// A `count(*)` column as an unsigned number.
fn count(r: &Row<'_>) -> rusqlite::Result<u64> {
    Ok(u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0))
}

fn record_change(
    c: &Connection,
    origin: &str,
    entity: &str,
    id: &str,
    what: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO changes (entity, id, what, at, origin) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![entity, id, what, at.millis(), origin])?;
    Ok(())
}

/// A key change that an offline verifier must learn of: one feed row with the key's state.
fn record_key_state(
    c: &Connection,
    origin: &str,
    id: KeyId,
    what: &str,
    state: &str,
    not_after: Option<Timestamp>,
    at: Timestamp,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO changes (entity, id, what, at, origin, state, not_after) VALUES ('key', ?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        id,
        what,
        at.millis(),
        origin,
        state,
        not_after.map(Timestamp::millis)
    ])?;
    Ok(())
}

/// Whose keys [`record_effective_states`] writes feed rows for.
enum KeysOf {
    User(UserId),
    Key(KeyId),
}

/// One feed row for each live key of a user (or for one key) with its effective state
/// now: `disabled` when the key or its user is, else `enabled`.
fn record_effective_states(
    c: &Connection,
    origin: &str,
    keys: KeysOf,
    what: &str,
    at: Timestamp,
) -> rusqlite::Result<()> {
    const INSERT: &str = "INSERT INTO changes (entity, id, what, at, origin, state) \
         SELECT 'key', k.id, ?2, ?3, ?4, CASE WHEN k.disabled = 1 OR u.disabled = 1 THEN 'disabled' ELSE 'enabled' END \
         FROM keys k JOIN users u ON u.id = k.user_id \
         WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?3) AND ";
    let (sql, id) = match keys {
        KeysOf::User(user) => (format!("{INSERT} k.user_id = ?1 ORDER BY k.seq"), user.to_string()),
        KeysOf::Key(key) => (format!("{INSERT} k.id = ?1"), key.to_string()),
    };
    c.prepare_cached(&sql)?
        .execute(params![id, what, at.millis(), origin])?;
    Ok(())
}

const USER_COLUMNS: &str =
    "id, username, email, password_hash, role, disabled, token_epoch, created_at, updated_at, deleted_at";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
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
    })
}

macro_rules! key_columns {
    () => {
        "id, user_id, name, hash, created_at, updated_at, expires_at, last_used_at, disabled, scopes, meta, grants"
    };
}
/// The columns [`key_from_row`] reads, in its order.
const KEY_COLUMNS: &str = key_columns!();
const FIND_KEY_BY_DIGEST: &str = concat!("SELECT ", key_columns!(), ", revoked_at FROM keys WHERE hash = ?1");

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<KeyRecord> {
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
    })
}

/// The `grants` column: NULL or unreadable means none (so nothing privileged is honoured).
fn grants_from(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verify_lookup_uses_the_unique_index() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrations::migrate(&mut conn)?;
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
