//! The SQLite backend: the only code that speaks SQLite or imports rusqlite.
//!
//! Reads go through an r2d2 pool of query-only connections on tokio's blocking pool; writes
//! go through the one writer thread ([`writer`]) in group-committed `BEGIN IMMEDIATE`
//! transactions (`synchronous=FULL`, WAL). Every write takes the one path
//! [`SqliteStore::write`]: its SQL, its change-feed rows and its audit lines in one
//! savepoint of the group transaction, then its after-commit step. Split by table:
//! `users`, `keys`, `audit`, `sessions`, `settings`, and `changes` (the change feed, the
//! revocation feed and the follower of other processes' writes).

mod audit;
mod backup;
mod changes;
mod fixtures;
mod keys;
mod migrations;
mod rows;
mod sessions;
mod settings;
mod usage;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{StoreError, StoreErrorKind, StoreOptions};
use crate::model::AuditRecord;
use changes::{ChangeWatcher, Tx};
pub use migrations::SCHEMA_VERSION;
use writer::Writer;

/// How long a connection waits on a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // The one failure a write makes itself (see `limits_changed`).
        if let rusqlite::Error::SqliteFailure(_, Some(message)) = &e
            && message == crate::store::ACCESS_CHANGED
        {
            return StoreError::new(StoreErrorKind::AccessChanged, message.clone());
        }
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

#[derive(Clone)]
pub struct SqliteStore {
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Writer,
    path: Arc<PathBuf>,
    /// Names this process in the `changes` rows it writes.
    origin: Arc<str>,
    /// Follows what other processes write; opened with the store, so nothing committed
    /// after the store opened is missed.
    watcher: Arc<Mutex<ChangeWatcher>>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
}

/// Whether a write changed something: its audit lines are written only then.
pub(super) trait Outcome {
    fn changed(&self) -> bool;
}

impl<T> Outcome for Option<T> {
    fn changed(&self) -> bool {
        self.is_some()
    }
}

impl Outcome for bool {
    fn changed(&self) -> bool {
        *self
    }
}

/// Writes that always change something (or write no audit line).
macro_rules! always_changed {
    ($($t:ty),*) => {
        $(impl Outcome for $t {
            fn changed(&self) -> bool {
                true
            }
        })*
    };
}
always_changed!(
    (),
    i64,
    u64,
    String,
    crate::model::KeyRecord,
    Vec<crate::model::KeyRecord>,
    Vec<crate::model::SigningKey>
);

impl SqliteStore {
    /// Opens (creating if need be, 0600) the database at `path`, brings its schema up to
    /// date and starts the writer thread. Read-only: nothing is created or migrated, and
    /// every write fails with [`StoreErrorKind::ReadOnly`] while reads go on.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<SqliteStore, StoreError> {
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
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            configure(c)?;
            c.execute_batch("PRAGMA query_only = ON;")
        });
        let readers = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)?;
        let mut origin = [0u8; 8];
        getrandom::fill(&mut origin)
            .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("OS random source failed: {e}")))?;
        let origin: Arc<str> = crate::model::hex(&origin).into();
        let watcher = ChangeWatcher::open(path, origin.to_string())?;
        let (writer, _thread) = Writer::start(conn, options.batch_sizes.clone())?;
        Ok(SqliteStore {
            readers,
            writer,
            path: Arc::new(path.to_owned()),
            origin,
            watcher: Arc::new(Mutex::new(watcher)),
        })
    }

    /// Runs `f` on a pooled read connection on the blocking pool.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let pool = self.readers.clone();
        blocking(move || {
            let conn = pool.get()?;
            f(&conn).map_err(StoreError::from)
        })
        .await
    }

    /// The one write path. Runs `work` in the next group transaction, in its own savepoint,
    /// with a [`Tx`] that records change-feed rows; when `work` changed something, writes
    /// `audits` in the same savepoint. Once committed, runs `after_commit` on the writer
    /// thread (in commit order, before anyone is answered), then returns `work`'s value.
    async fn write<R, W, A>(&self, audits: Vec<AuditRecord>, work: W, after_commit: A) -> Result<R, StoreError>
    where
        R: Outcome + Send + 'static,
        W: FnOnce(&Tx<'_>) -> rusqlite::Result<R> + Send + 'static,
        A: FnOnce(&R) + Send + 'static,
    {
        let origin = Arc::clone(&self.origin);
        self.writer
            .write(
                move |conn| {
                    let tx = Tx::new(conn, &origin);
                    let value = work(&tx)?;
                    if value.changed() {
                        for audit in &audits {
                            tx.audit(audit)?;
                        }
                    }
                    Ok(value)
                },
                after_commit,
            )
            .await
    }

    /// Whether the database answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
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
}

/// Runs blocking database work on tokio's blocking pool.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("database task failed: {e}")))?
}
