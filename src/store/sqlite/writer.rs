//! The one write connection, on its own thread, with group commit.
//!
//! Callers send jobs down a channel. The thread takes what is queued, runs every job inside
//! one `BEGIN IMMEDIATE` transaction (each in its own savepoint, so one failing job does not
//! undo the others), commits once (`synchronous=FULL`: the fsync is the durability), runs each
//! job's after-commit step (the in-memory key view learns of the change here, before anyone
//! is answered), then answers. A 201 or 204 therefore means durable and already enforced.
//!
//! A failed job whose savepoint cannot be rolled back (or a done one whose savepoint cannot
//! be released) leaves the transaction in a state nobody can vouch for: then nothing of the
//! batch is committed, and every job in it is answered with the failure.

use std::thread;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, StoreErrorKind};

/// At most this many jobs share one transaction.
const MAX_BATCH: usize = 512;
/// Prepared statements the writer keeps (rusqlite keeps 16 by default; the writer runs
/// more kinds of statement than that).
const WRITER_STATEMENTS: usize = 128;

/// Runs a job's SQL (or, when no transaction could be begun, skips it with that error) and
/// returns what to do once the transaction's fate is known, and whether the transaction is
/// still sound: what it holds is exactly the jobs that succeeded.
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) -> (Finish, Sound) + Send>;
/// Told whether the commit succeeded; applies after-commit effects and answers the caller.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// `Err`: the job's own savepoint could not be undone or released; the batch must not commit.
type Sound = Result<(), StoreError>;

#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(
        conn: Connection,
        batch_sizes: Option<prometheus::Histogram>,
    ) -> Result<(Writer, thread::JoinHandle<()>), StoreError> {
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let handle = thread::Builder::new()
            .name("keyward-writer".into())
            .spawn(move || {
                // Room for every statement the writer runs, so none is parsed again.
                conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
                run(conn, rx, batch_sizes)
            })
            .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("starting the writer thread: {e}")))?;
        Ok((Writer { jobs: tx }, handle))
    }

    /// Runs `work` in the next group transaction; once committed, runs `after_commit` on the
    /// writer thread, then returns `work`'s value.
    pub(super) async fn write<R, W, A>(&self, work: W, after_commit: A) -> Result<R, StoreError>
    where
        R: Send + 'static,
        W: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        A: FnOnce(&R) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let (outcome, sound) = match conn {
                Ok(conn) => in_savepoint(conn, work),
                Err(e) => (Err(e), Ok(())),
            };
            let finish: Finish = Box::new(move |committed| {
                let result = match (outcome, committed) {
                    (Ok(value), Ok(())) => {
                        after_commit(&value);
                        Ok(value)
                    }
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                };
                // The caller may have gone away; the write stands either way.
                let _ = reply.send(result);
            });
            (finish, sound)
        });
        self.jobs.send(job).await.map_err(|_| StoreError::stopped())?;
        answer.await.map_err(|_| StoreError::stopped())?
    }
}

/// Runs one statement of the writer's own (a transaction's or a savepoint's start and end),
/// prepared once: `execute_batch` would parse it again for every job.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs `work` in a savepoint of its own: its value, and whether the transaction is sound
/// after it (a failure undone, or a success kept, as asked).
fn in_savepoint<R>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> rusqlite::Result<R>,
) -> (Result<R, StoreError>, Sound) {
    if let Err(e) = exec(conn, "SAVEPOINT job") {
        // Nothing of this job ran; the transaction is as the jobs before left it.
        return (Err(e.into()), Ok(()));
    }
    match work(conn) {
        Ok(value) => match exec(conn, "RELEASE job") {
            Ok(()) => (Ok(value), Ok(())),
            Err(e) => {
                let e = unsound("keeping a write", e);
                (Err(e.clone()), Err(e))
            }
        },
        Err(e) => {
            let undone = conn
                .execute_batch("ROLLBACK TO job; RELEASE job")
                .map_err(|undo| unsound("undoing a failed write", undo));
            (Err(e.into()), undone)
        }
    }
}

/// What every job of a batch that cannot be committed is told: nothing of it was written,
/// so asking again is safe (503).
fn unsound(doing: &str, e: rusqlite::Error) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!(
            "{doing} failed, so the batch was not committed: {}",
            StoreError::from(e).message
        ),
    )
}

fn run(conn: Connection, mut jobs: mpsc::Receiver<Job>, batch_sizes: Option<prometheus::Histogram>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
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
        match exec(&conn, "BEGIN IMMEDIATE") {
            Ok(()) => {
                let mut unsound: Option<StoreError> = None;
                let finishes: Vec<Finish> = batch
                    .drain(..)
                    .map(|job| match &unsound {
                        // No more SQL in a transaction that will be rolled back.
                        Some(e) => job(Err(e.clone())).0,
                        None => {
                            let (finish, sound) = job(Ok(&conn));
                            unsound = sound.err();
                            finish
                        }
                    })
                    .collect();
                let committed = match unsound {
                    None => exec(&conn, "COMMIT").map_err(StoreError::from),
                    Some(e) => Err(e),
                };
                if let Err(e) = &committed {
                    log::error!("a batch of {size} writes was not committed: {e}");
                    let _ = conn.execute_batch("ROLLBACK");
                }
                for finish in finishes {
                    finish(committed.clone());
                }
            }
            Err(e) => {
                let e = StoreError::from(e);
                log::error!("could not begin a write transaction: {e}");
                for job in batch.drain(..) {
                    // Every caller is answered with the failure; no SQL runs.
                    job(Err(e.clone())).0(Err(e.clone()));
                }
            }
        }
        log::trace!("write batch of {size} done");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome<T> = Result<T, Box<dyn std::error::Error>>;
    /// What each of a batch's three jobs was answered, and the rows committed.
    type Batch = ([Result<(), StoreError>; 3], Vec<i64>);

    /// Three jobs in one batch on a new database, the second as `second` does: what each
    /// was answered, and the rows committed.
    fn batch_of_three(second: impl FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static) -> Outcome<Batch> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path)?;
        conn.execute_batch("CREATE TABLE t (n INTEGER)")?;
        let (tx, rx) = mpsc::channel::<Job>(8);
        let writer = Writer { jobs: tx };
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let insert = |n: i64| move |c: &Connection| c.execute("INSERT INTO t VALUES (?1)", [n]).map(|_| ());
        let answers = runtime.block_on(async {
            // Queued before the writer starts, so all three share its first transaction.
            let start = async {
                thread::spawn(move || run(conn, rx, None));
            };
            let (first, second, third, ()) = tokio::join!(
                writer.write(insert(1), |_| {}),
                writer.write(second, |_| {}),
                writer.write(insert(3), |_| {}),
                start
            );
            [first, second, third]
        });
        let conn = Connection::open(&path)?;
        let mut statement = conn.prepare("SELECT n FROM t ORDER BY n")?;
        let rows = statement.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok((answers, rows))
    }

    #[test]
    fn a_failed_job_is_undone_and_the_others_commit() -> Outcome<()> {
        let (answers, rows) = batch_of_three(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            Err(rusqlite::Error::QueryReturnedNoRows)
        })?;
        assert!(answers[0].is_ok() && answers[1].is_err() && answers[2].is_ok());
        assert_eq!(rows, [1, 3]);
        Ok(())
    }

    #[test]
    fn a_failed_job_that_cannot_be_undone_fails_its_whole_batch() -> Outcome<()> {
        // It writes, releases its own savepoint (so "ROLLBACK TO job" fails), then fails.
        let (answers, rows) = batch_of_three(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            c.execute_batch("RELEASE job")?;
            Err(rusqlite::Error::QueryReturnedNoRows)
        })?;
        assert!(answers.iter().all(Result::is_err), "every job is told it failed");
        assert!(
            answers[2]
                .as_ref()
                .is_err_and(|e| e.kind == StoreErrorKind::Unavailable)
        );
        assert_eq!(rows, Vec::<i64>::new(), "nothing of the batch was committed");
        Ok(())
    }

    #[test]
    fn a_done_job_that_cannot_be_kept_fails_its_whole_batch() -> Outcome<()> {
        // It writes and releases its own savepoint, so "RELEASE job" after it fails.
        let (answers, rows) = batch_of_three(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            c.execute_batch("RELEASE job")
        })?;
        assert!(answers.iter().all(Result::is_err), "every job is told it failed");
        assert_eq!(rows, Vec::<i64>::new(), "nothing of the batch was committed");
        Ok(())
    }
}
