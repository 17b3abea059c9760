//! Writes on PostgreSQL: one connection of its own, group commit, and the change feed's
//! positions taken in commit order.
//!
//! As on SQLite, callers send jobs to one writer task. It takes what is queued, runs each job
//! in its own savepoint of one transaction (a failing job undoes only itself), then, if any
//! job changed something other nodes must learn of, takes that many positions from the one
//! row of `feed_head` and writes the jobs' feed rows at them, sends `NOTIFY`, and commits:
//! one commit (one WAL flush) serves many requests. Each job's after-commit step runs once
//! the commit is known, before its caller is answered.
//!
//! The `feed_head` row is locked from that update to the commit, so another node's writer
//! takes its positions only after this transaction is visible: positions become visible in
//! order, and a follower reading "position > last seen" never passes one that commits later.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Statement, Transaction};

use crate::store::StoreError;

/// At most this many jobs share one transaction.
const MAX_BATCH: usize = 256;

/// The channel NOTIFY wakes followers on.
pub(super) const CHANNEL: &str = "keyward_changes";

/// One row a job adds to the change feed; its position is given at commit.
#[derive(Clone, Debug)]
pub(crate) struct FeedRow {
    pub entity: &'static str,
    pub id: String,
    pub what: &'static str,
    pub at: i64,
    /// For the offline revocation feed: the key's state after the change, and its new end.
    pub state: Option<&'static str>,
    pub not_after: Option<i64>,
}

pub(crate) type WorkFuture<'a, R> = Pin<Box<dyn Future<Output = Result<(R, Vec<FeedRow>), StoreError>> + Send + 'a>>;

/// A job as the writer task runs it: its SQL on the transaction it is given, then (told
/// whether the commit went through) its after-commit step and its answer.
type Job = Box<dyn for<'a> FnOnce(&'a Transaction<'a>) -> JobFuture<'a> + Send>;
type JobFuture<'a> = Pin<Box<dyn Future<Output = Ran> + Send + 'a>>;
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What a job's SQL left: its feed rows (empty if it failed) and how to finish it.
struct Ran {
    feed: Vec<FeedRow>,
    ok: bool,
    finish: Finish,
}

#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `client` (a connection of its own, made again from `config`
    /// when it is lost); `origin` names this process in the feed rows it writes.
    pub(crate) fn start(
        client: Client,
        config: tokio_postgres::Config,
        origin: String,
        read_only: bool,
        batch_sizes: Option<prometheus::Histogram>,
    ) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(PREPARED.scope(
            RefCell::new(HashMap::new()),
            run(
                Connection {
                    client,
                    config,
                    read_only,
                },
                rx,
                origin,
                batch_sizes,
            ),
        ));
        Writer { jobs: tx }
    }

    /// Runs `work` in the next group transaction; once committed, runs `after_commit`, then
    /// returns `work`'s value.
    pub(crate) async fn write<R, W, A>(&self, work: W, after_commit: A) -> Result<R, StoreError>
    where
        R: Send + 'static,
        W: for<'a> FnOnce(&'a Transaction<'a>) -> WorkFuture<'a, R> + Send + 'static,
        A: FnOnce(&R) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            Box::pin(async move {
                match work(tx).await {
                    Ok((value, feed)) => Ran {
                        feed,
                        ok: true,
                        finish: Box::new(move |committed| {
                            let result = committed.map(|()| {
                                after_commit(&value);
                                value
                            });
                            let _ = reply.send(result);
                        }),
                    },
                    Err(e) => Ran {
                        feed: Vec::new(),
                        ok: false,
                        finish: Box::new(move |_| {
                            let _ = reply.send(Err(e));
                        }),
                    },
                }
            })
        });
        self.jobs.send(job).await.map_err(|_| StoreError::stopped())?;
        answer.await.map_err(|_| StoreError::stopped())?
    }
}

/// The writer's connection, and how to make it again.
struct Connection {
    client: Client,
    config: tokio_postgres::Config,
    read_only: bool,
}

impl Connection {
    /// The connection, made again if it was lost (the database restarted, the network cut).
    async fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.is_closed() {
            let client = super::connect_one(&self.config).await?;
            if self.read_only {
                client
                    .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                    .await?;
            }
            let _ = PREPARED.try_with(|cache| cache.borrow_mut().clear());
            log::info!("the database writer is connected again");
            self.client = client;
        }
        Ok(&mut self.client)
    }
}

async fn run(
    mut connection: Connection,
    mut jobs: mpsc::Receiver<Job>,
    origin: String,
    batch_sizes: Option<prometheus::Histogram>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        if let Some(h) = &batch_sizes {
            h.observe(size as f64);
        }
        let mut ran: Vec<(Finish, bool)> = Vec::with_capacity(size);
        let result = match connection.client().await {
            Ok(client) => run_batch(client, &mut batch, &origin, &mut ran).await,
            Err(e) => Err(e),
        };
        // Jobs a failure left unrun are dropped: their callers learn the writer could not
        // take them (503), and nothing of theirs was written.
        batch.clear();
        match result {
            Ok(()) => {
                for (finish, ok) in ran {
                    // A failed job answers with its own error whatever it is told.
                    finish(if ok { Ok(()) } else { Err(StoreError::stopped()) });
                }
            }
            Err(e) => {
                log::error!("a write transaction of {size} jobs failed: {e}");
                for (finish, _) in ran {
                    finish(Err(e.clone()));
                }
            }
        }
    }
}

tokio::task_local! {
    /// The statements the writer's connection has prepared, by their SQL: a hot write
    /// (a key's insert, its audit line, the feed) is parsed and planned once per connection
    /// rather than once per write. Emptied when the connection is made again.
    static PREPARED: RefCell<HashMap<&'static str, Statement>>;
}

/// `sql` prepared on the writer's connection (once: later calls reuse it). Outside the
/// writer task, prepared anew each time.
pub(crate) async fn prepared(tx: &Transaction<'_>, sql: &'static str) -> Result<Statement, StoreError> {
    if let Ok(Some(statement)) = PREPARED.try_with(|cache| cache.borrow().get(sql).cloned()) {
        return Ok(statement);
    }
    let statement = tx.prepare(sql).await?;
    let _ = PREPARED.try_with(|cache| cache.borrow_mut().insert(sql, statement.clone()));
    Ok(statement)
}

/// Runs the jobs of `batch` in one transaction, each in a savepoint, writes their feed rows
/// and commits; `ran` receives each job's finish as it runs (whether its SQL succeeded).
async fn run_batch(
    client: &mut Client,
    batch: &mut Vec<Job>,
    origin: &str,
    ran: &mut Vec<(Finish, bool)>,
) -> Result<(), StoreError> {
    let mut tx = client.transaction().await?;
    let mut feed: Vec<FeedRow> = Vec::new();
    for job in batch.drain(..) {
        let savepoint = tx.savepoint("job").await?;
        let outcome = job(&savepoint).await;
        let ended = if outcome.ok {
            savepoint.commit().await
        } else {
            savepoint.rollback().await
        };
        if outcome.ok {
            feed.extend(outcome.feed);
        }
        ran.push((outcome.finish, outcome.ok));
        ended?;
    }
    write_feed(&tx, &feed, origin).await?;
    tx.commit().await?;
    Ok(())
}

/// Gives `feed` its positions from `feed_head` (locking the row until commit), writes it, and
/// wakes the followers when the transaction commits.
async fn write_feed(tx: &Transaction<'_>, feed: &[FeedRow], origin: &str) -> Result<(), StoreError> {
    if feed.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(feed.len()).unwrap_or(i64::MAX);
    let last: i64 = tx
        .query_one(
            &prepared(tx, "UPDATE feed_head SET position = position + $1 RETURNING position").await?,
            &[&count],
        )
        .await?
        .get(0);
    let first = last - count + 1;
    let insert = prepared(
        tx,
        "INSERT INTO changes (position, entity, id, what, at, origin, state, not_after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .await?;
    for (position, row) in (first..).zip(feed) {
        tx.execute(
            &insert,
            &[
                &position,
                &row.entity,
                &row.id,
                &row.what,
                &row.at,
                &origin,
                &row.state,
                &row.not_after,
            ],
        )
        .await?;
    }
    tx.batch_execute(&format!("NOTIFY {CHANNEL}, '{last}'")).await?;
    Ok(())
}
