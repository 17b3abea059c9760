//! The PostgreSQL backend: several keyward nodes on one database.
//!
//! Reads go through a deadpool pool; writes through one writer task on a connection of its
//! own, with group commit (see [`writer`]); the change feed takes its positions in commit
//! order, so every node can follow it without ever skipping a change.

mod audit;
mod fixtures;
mod follow;
mod keys;
mod migrations;
mod rows;
mod sessions;
mod settings;
mod throttle;
mod usage;
mod users;
mod writer;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::store::{StoreError, StoreErrorKind};
pub use migrations::SCHEMA_VERSION;
pub(crate) use writer::Writer;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let kind = match e.code() {
            Some(code) if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::FOREIGN_KEY_VIOLATION => {
                StoreErrorKind::Conflict
            }
            Some(code) if *code == SqlState::DISK_FULL || *code == SqlState::PROGRAM_LIMIT_EXCEEDED => {
                StoreErrorKind::Full
            }
            Some(code) if *code == SqlState::READ_ONLY_SQL_TRANSACTION => StoreErrorKind::ReadOnly,
            // Two nodes' writes that locked rows in opposite orders: one is undone whole, and
            // asking again is safe.
            Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE => {
                StoreErrorKind::Unavailable
            }
            Some(code) if code.code().starts_with("08") || code.code().starts_with("57P") => {
                StoreErrorKind::Unavailable
            }
            Some(_) => StoreErrorKind::Other,
            // No SQLSTATE: the connection itself failed (closed, refused, timed out).
            None => StoreErrorKind::Unavailable,
        };
        StoreError::new(kind, describe(&e))
    }
}

/// The error with what PostgreSQL said (its message and hint) or the cause of a failed
/// connection: tokio-postgres's own text is only "db error" or "error connecting to server".
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::new(StoreErrorKind::Unavailable, format!("connection pool: {e}"))
    }
}

/// How to reach PostgreSQL, parsed from `database.url`.
#[derive(Clone)]
pub struct PgOptions {
    pub url: String,
    /// Connections in the read pool.
    pub pool_size: usize,
    /// Serve without writing: every write is refused.
    pub read_only: bool,
    /// Where the writer records how many writes each transaction carried.
    pub batch_sizes: Option<prometheus::Histogram>,
}

impl std::fmt::Debug for PgOptions {
    /// Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact(&self.url))
            .field("pool_size", &self.pool_size)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// `url` with any password replaced by `***`, fit for a log or an error message.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a postgres:// url)".into();
    };
    // The query first (a password there may hold an '@'), then the user info before the path.
    let (main, query) = match rest.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match main.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            let masked = if credentials.contains(':') { ":***" } else { "" };
            (format!("{user}{masked}@"), host)
        }
        None => (String::new(), main),
    };
    let query = query.map(|query| {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                // A parameter other than a few harmless ones is shown without its value
                // (`password`, however it is spelt or encoded, included).
                Some((name, value))
                    if matches!(
                        name,
                        "sslmode" | "connect_timeout" | "application_name" | "target_session_attrs" | "dbname" | "user"
                    ) =>
                {
                    format!("{name}={value}")
                }
                Some((name, _)) => format!("{name}=***"),
                None => pair.to_owned(),
            })
            .collect();
        format!("?{}", pairs.join("&"))
    });
    format!("{scheme}://{authority}{path}{}", query.unwrap_or_default())
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    writer: Writer,
    config: Arc<tokio_postgres::Config>,
    /// Names this process in the feed rows it writes.
    origin: Arc<str>,
    /// Where this process is in the change feed.
    follow: Arc<tokio::sync::Mutex<follow::FollowState>>,
}

/// Opens one connection (driving it on the runtime) for the writer or a follower.
async fn connect_one(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::warn!("a PostgreSQL connection ended: {e}");
        }
    });
    Ok(client)
}

/// The schema version of the database at `url` (0: keyward has never started there),
/// changing nothing.
pub async fn schema_version_at(url: &str) -> Result<i64, StoreError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("{}: {e}", redact(url))))?;
    let client = connect_one(&config).await?;
    migrations::version(&client).await
}

/// One connection to `url` with the schema brought up to date: for `keyward migrate`, which
/// fills the database before any node opens it.
pub(crate) async fn connect_migrated(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("{}: {e}", redact(url))))?;
    let mut client = connect_one(&config).await?;
    migrations::migrate(&mut client).await?;
    Ok(client)
}

impl PgStore {
    /// Connects, brings the schema up to date (unless read-only) and starts the writer.
    pub async fn open(options: &PgOptions, origin: String) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("database.url: {e}")))?;
        let mut setup = connect_one(&config).await?;
        if options.read_only {
            let version = migrations::version(&setup).await?;
            if version != SCHEMA_VERSION {
                return Err(StoreError::new(
                    StoreErrorKind::Other,
                    format!(
                        "the database has schema version {version}, this keyward needs {SCHEMA_VERSION}; a read-only start cannot migrate it"
                    ),
                ));
            }
        } else {
            migrations::migrate(&mut setup).await?;
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .build()
            .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("connection pool: {e}")))?;
        let writer_connection = connect_one(&config).await?;
        if options.read_only {
            writer_connection
                .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                .await?;
        }
        let writer = Writer::start(
            writer_connection,
            config.clone(),
            origin.clone(),
            options.read_only,
            options.batch_sizes.clone(),
        );
        // Followed from here: whatever commits after this (before the domain has loaded its
        // view, or later) is read by the first poll.
        let position = follow::feed_end(&setup).await?;
        Ok(PgStore {
            pool,
            writer,
            config: Arc::new(config),
            origin: origin.into(),
            follow: Arc::new(tokio::sync::Mutex::new(follow::FollowState::at(position))),
        })
    }

    /// A pooled connection for reads.
    async fn reader(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Whether the database answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.reader().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    /// The schema version, and "ok" once the database answered (for `keyward check`).
    pub async fn check(&self) -> Result<(i64, String), StoreError> {
        let client = self.reader().await?;
        Ok((migrations::version(&client).await?, "ok".into()))
    }

    /// PostgreSQL has its own tools for this: the error says which, and how.
    pub async fn backup_to(
        &self,
        _target: &std::path::Path,
        _progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<(), StoreError> {
        Err(StoreError::new(
            StoreErrorKind::Other,
            format!(
                "keyward backup copies a SQLite database; on PostgreSQL ({}) use pg_dump, which is consistent while keyward runs: \
                 (umask 077; pg_dump --format=custom --file=keyward.dump \"$KEYWARD__DATABASE__URL\") \
                 (restore into an empty database with pg_restore --dbname=<url> keyward.dump; the dump holds the master secret)",
                redact(&self.url())
            ),
        ))
    }

    fn url(&self) -> String {
        let host = self.config.get_hosts().first().map_or_else(String::new, |h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        });
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{}@{host}:{port}/{}",
            self.config.get_user().unwrap_or(""),
            self.config.get_dbname().unwrap_or("")
        )
    }

    /// The feed's rows after `after` (position, entity, id, origin), oldest first.
    pub async fn changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(
                "SELECT position, entity, id, origin FROM changes WHERE position > $1 ORDER BY position LIMIT $2",
                &[&after, &limit],
            )
            .await?
            .into_iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect())
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn connection_config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A database of its own for each test, on the server `KEYWARD_TEST_POSTGRES` names.

    use tokio_postgres::NoTls;

    /// The url of the server tests may make databases on; `None` (with a line saying so)
    /// when there is none. Under `CI=true` a missing server fails the test instead.
    pub fn server() -> Option<String> {
        match std::env::var("KEYWARD_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "KEYWARD_TEST_POSTGRES is not set: CI starts PostgreSQL (.ci/postgres.sh)"
                );
                eprintln!("SKIPPED: no PostgreSQL (set KEYWARD_TEST_POSTGRES, see .ci/postgres.sh)");
                None
            }
        }
    }

    /// A fresh database, dropped (with every connection to it) when this is dropped.
    pub struct TestDatabase {
        server: String,
        pub name: String,
        pub url: String,
    }

    impl TestDatabase {
        pub async fn create(server: &str) -> TestDatabase {
            let mut random = [0u8; 6];
            getrandom::fill(&mut random).unwrap_or_default();
            let name = format!("keyward_test_{}", crate::domain::hex(&random));
            let (client, connection) = tokio_postgres::connect(server, NoTls)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let url = match server.rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => panic!("KEYWARD_TEST_POSTGRES must end in /<database>"),
            };
            TestDatabase {
                server: server.to_owned(),
                name,
                url,
            }
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            let (server, name) = (self.server.clone(), self.name.clone());
            // Drop runs outside any runtime we may use: a thread with a runtime of its own.
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                runtime.block_on(async move {
                    if let Ok((client, connection)) = tokio_postgres::connect(&server, NoTls).await {
                        tokio::spawn(connection);
                        let _ = client
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TestDatabase, server};
    use super::*;

    async fn store(db: &TestDatabase) -> PgStore {
        let options = PgOptions {
            url: db.url.clone(),
            pool_size: 4,
            read_only: false,
            batch_sizes: None,
        };
        PgStore::open(&options, "test".into())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_commit_in_feed_order_and_settings_round_trip() -> Result<(), StoreError> {
        let Some(server) = server() else { return Ok(()) };
        let db = TestDatabase::create(&server).await;
        let store = store(&db).await;
        assert_eq!(store.setting("x").await?, None);
        assert_eq!(store.setting_or_insert("x", "1".into()).await?, "1");
        assert_eq!(store.setting_or_insert("x", "2".into()).await?, "1");
        // Two stores (two "nodes") writing at once, and a reader following the feed: every
        // position it passes is there, in order, none skipped.
        let other = store_again(&db).await;
        let mut writers = Vec::new();
        for n in 0..40 {
            let s = if n % 2 == 0 { store.clone() } else { other.clone() };
            writers.push(tokio::spawn(async move { s.put_setting("y", n.to_string()).await }));
        }
        let mut seen = Vec::new();
        let mut after = 0;
        while seen.len() < 40 {
            for (position, _, _, _) in store.changes_after(after, 1000).await? {
                assert_eq!(position, after + 1, "the feed skipped a position");
                after = position;
                seen.push(position);
            }
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await
                .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))??;
        }
        assert!(store.setting("y").await?.is_some());
        Ok(())
    }

    #[tokio::test]
    async fn failed_logins_count_for_every_node_with_the_domains_rules() -> Result<(), StoreError> {
        use crate::model::{ThrottleRules, Timestamp};
        use std::time::Duration;
        let Some(server) = server() else { return Ok(()) };
        let db = TestDatabase::create(&server).await;
        let (a, b) = (store(&db).await, store_again(&db).await);
        let rules = ThrottleRules {
            free_failures: 5,
            max_block: Duration::from_secs(900),
            account_free_failures: 20,
            account_spacing: Duration::from_secs(3),
            forget_after: Duration::from_secs(3600),
        };
        let ada = [1u8; 16];
        let now = Timestamp::from_secs(1_000_000);
        let fresh = a.check_login(ada, "10.0.0.1".into(), now, rules).await?;
        assert_eq!(fresh.blocked_until, None);
        assert!(!fresh.any_failures);
        // Five from one address, through two nodes: that address waits 1 s; others do not.
        for n in 0..5 {
            let node = if n % 2 == 0 { &a } else { &b };
            node.count_login_failure(ada, "10.0.0.1".into(), now, rules).await?;
        }
        let blocked = b.check_login(ada, "10.0.0.1".into(), now, rules).await?;
        assert_eq!(blocked.blocked_until, Some(now.plus(Duration::from_secs(1))));
        assert!(
            a.check_login(ada, "10.0.0.2".into(), now, rules)
                .await?
                .blocked_until
                .is_none()
        );
        // The sixth doubles it.
        a.count_login_failure(ada, "10.0.0.1".into(), now, rules).await?;
        let blocked = b.check_login(ada, "10.0.0.1".into(), now, rules).await?;
        assert_eq!(blocked.blocked_until, Some(now.plus(Duration::from_secs(2))));
        // Twenty from anywhere: one attempt per spacing for the whole account.
        for n in 0..14 {
            b.count_login_failure(ada, format!("10.1.0.{n}"), now, rules).await?;
        }
        assert!(
            a.check_login(ada, "10.2.0.1".into(), now, rules)
                .await?
                .blocked_until
                .is_none(),
            "takes the turn"
        );
        let waiting = b.check_login(ada, "10.2.0.2".into(), now, rules).await?;
        assert_eq!(waiting.blocked_until, Some(now.plus(Duration::from_secs(3))));
        let later = now.plus(Duration::from_secs(3));
        assert!(
            b.check_login(ada, "10.2.0.3".into(), later, rules)
                .await?
                .blocked_until
                .is_none(),
            "the next turn"
        );
        // Another account is untouched; a success clears; an hour forgets.
        assert!(
            a.check_login([2u8; 16], "10.0.0.1".into(), now, rules)
                .await?
                .blocked_until
                .is_none()
        );
        a.clear_login_failures(ada, "10.2.0.3".into()).await?;
        let cleared = a.check_login(ada, "10.2.0.4".into(), later, rules).await?;
        assert_eq!(cleared.blocked_until, None);
        let hour_later = now.plus(Duration::from_secs(3600));
        assert!(
            b.check_login(ada, "10.0.0.1".into(), hour_later, rules)
                .await?
                .blocked_until
                .is_none()
        );
        a.count_login_failure([3u8; 16], "10.0.0.9".into(), hour_later, rules)
            .await?;
        assert!(
            !a.check_login(ada, "10.0.0.1".into(), hour_later, rules)
                .await?
                .any_failures,
            "swept"
        );
        Ok(())
    }

    async fn store_again(db: &TestDatabase) -> PgStore {
        store(db).await
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://u@h/db?sslmode=disable&password=secret"),
            "postgres://u@h/db?sslmode=disable&password=***"
        );
        assert_eq!(redact("postgresql://u:p@ss@h/db"), "postgresql://u:***@h/db");
        assert_eq!(
            redact("postgres://u@h/db?password=p@ss"),
            "postgres://u@h/db?password=***"
        );
        assert_eq!(
            redact("postgres://h/db?pass%77ord=s&sslmode=disable"),
            "postgres://h/db?pass%77ord=***&sslmode=disable"
        );
        assert!(
            !format!(
                "{:?}",
                PgOptions {
                    url: "postgres://u:secret@h/db".into(),
                    pool_size: 1,
                    read_only: false,
                    batch_sizes: None,
                }
            )
            .contains("secret")
        );
    }
}
