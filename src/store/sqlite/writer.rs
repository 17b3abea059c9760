//! The one write connection, on its own thread, with group commit.
//!
//! Callers send jobs down a channel. The thread takes what is queued, runs every job inside
//! one `BEGIN IMMEDIATE` transaction (each in its own savepoint, so one failing job does not
//! undo the others), commits once (`synchronous=FULL`: the fsync is the durability), runs each
//! job's after-commit step (the in-memory key view learns of the change here, before anyone
//! is answered), then answers. A 201 or 204 therefore means durable and already enforced.

use std::thread;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, StoreErrorKind};

/// At most this many jobs share one transaction.
const MAX_BATCH: usize = 512;

/// Runs a job's SQL (or, when no transaction could be begun, skips it with that error) and
/// returns what to do once the transaction's fate is known.
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) -> Finish + Send>;
/// Told whether the commit succeeded; applies after-commit effects and answers the caller.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

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
            .spawn(move || run(conn, rx, batch_sizes))
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
            let outcome = conn.and_then(|conn| in_savepoint(conn, work));
            Box::new(move |committed| {
                let result = match (outcome, committed) {
                    (Ok(value), Ok(())) => {
                        after_commit(&value);
                        Ok(value)
                    }
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                };
                // The caller may have gone away; the write stands either way.
                let _ = reply.send(result);
            })
        });
        self.jobs.send(job).await.map_err(|_| StoreError::stopped())?;
        answer.await.map_err(|_| StoreError::stopped())?
    }
}

fn in_savepoint<R>(conn: &Connection, work: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, StoreError> {
    conn.execute_batch("SAVEPOINT job")?;
    match work(conn) {
        Ok(value) => {
            conn.execute_batch("RELEASE job")?;
            Ok(value)
        }
        Err(e) => {
            // If even the rollback fails the whole transaction is rolled back below.
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e.into())
        }
    }
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
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                let finishes: Vec<Finish> = batch.drain(..).map(|job| job(Ok(&conn))).collect();
                let committed = conn.execute_batch("COMMIT").map_err(StoreError::from);
                if let Err(e) = &committed {
                    log::error!("commit of {size} writes failed: {e}");
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
                    job(Err(e.clone()))(Err(e.clone()));
                }
            }
        }
        log::trace!("write batch of {size} done");
    }
}
