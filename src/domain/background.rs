//! The steps of background work: following other processes' writes into the key view, and
//! writing key uses seen in memory. `crate::jobs` runs them on a schedule; they run here
//! only when called.

use std::time::Duration;

use super::Error;
use super::keyward::Keyward;
use crate::store::Change;

/// Key uses written per transaction by [`Keyward::flush_usage`], and the pause between
/// transactions: writes with room between them keep the flush out of request latency, and
/// each is one fsync (at 32 a transaction, a flush of 11,000 keys took 350 fsyncs, and on a
/// virtual machine each costs the server's core milliseconds).
const USAGE_CHUNK: usize = 256;
const USAGE_PAUSE: Duration = Duration::from_millis(2);
/// A block of credits reserved this long ago is given back by [`Keyward::return_idle_credits`].
pub const IDLE_BLOCK: Duration = Duration::from_secs(60);

impl Keyward {
    /// One step of following what other processes (the CLI, another server) write: their
    /// revocations, new keys and user changes since the last step reach the in-memory view.
    /// `crate::jobs` runs it every so often; it returns how many changes it applied.
    pub async fn apply_changes(&self) -> Result<usize, Error> {
        let _one_at_a_time = self.following().await;
        let read_at = self.now();
        let read_started = std::time::Instant::now();
        let changes = self
            .store()
            .poll_changes(read_at)
            .await
            .map_err(|e| e.into_domain("following database changes failed"))?;
        let applied = changes.len();
        let view = self.view();
        for change in changes {
            match change {
                Change::KeyActive(k) => view.insert_followed_key(k),
                Change::KeyGone(lookup) => view.remove_keys(&[lookup]),
                Change::User(user) => view.put_user(user),
                Change::SigningKeys(keys) => self.signer().learn_keys(&keys),
            }
        }
        self.mark_fresh(read_started);
        Ok(applied)
    }

    /// Waits until another process may have written something (a NOTIFY on PostgreSQL,
    /// when `notify`), or `timeout`.
    pub async fn wait_for_changes(&self, timeout: Duration, notify: bool) {
        if !notify {
            tokio::time::sleep(timeout).await;
            return;
        }
        if let Err(e) = self.store().wait_for_changes(timeout).await {
            log::warn!("waiting for the change feed failed: {e}");
            tokio::time::sleep(timeout).await;
        }
    }

    /// Writes the key uses seen since the last call: last-use times and hourly counts.
    ///
    /// In chunks of [`USAGE_CHUNK`] of each, each its own write: ten thousand keys in use
    /// would otherwise hold the writer (and, on a small box, the CPU) for tens of
    /// milliseconds at once, which shows as a latency spike for everyone; chunks let other
    /// writes in between.
    pub async fn flush_usage(&self) -> Result<(), Error> {
        let (mut uses, mut buckets) = self.view().take_usage();
        uses.sort_unstable_by_key(|(id, _)| *id);
        buckets.sort_unstable_by_key(|b| (b.key_id, b.start));
        let (mut uses, mut buckets) = (uses.as_slice(), buckets.as_slice());
        while !uses.is_empty() || !buckets.is_empty() {
            let (these_uses, more_uses) = uses.split_at(uses.len().min(USAGE_CHUNK));
            let (these_buckets, more_buckets) = buckets.split_at(buckets.len().min(USAGE_CHUNK));
            (uses, buckets) = (more_uses, more_buckets);
            let written = self
                .store()
                .record_key_usage(these_uses.to_vec(), these_buckets.to_vec())
                .await;
            if let Err(e) = written {
                // Counts not written go back, for the next flush; a last-use time is
                // queued again by the key's next use.
                self.view().put_back_usage(these_buckets.iter().chain(buckets));
                return Err(e.into_domain("recording key use failed"));
            }
            tokio::time::sleep(USAGE_PAUSE).await;
        }
        self.sweep_old_usage().await
    }

    /// Deletes usage buckets past `usage.retention`, at most once an hour (of the domain's
    /// clock).
    async fn sweep_old_usage(&self) -> Result<(), Error> {
        let now = self.now();
        if !self.usage_sweep_due(now) {
            return Ok(());
        }
        let before = now.minus(self.config().usage_retention);
        self.store()
            .sweep_usage(before)
            .await
            .map_err(|e| e.into_domain("deleting old key usage failed"))?;
        Ok(())
    }

    /// Gives the unspent part of every block of credits this node holds back to the
    /// database (at a graceful stop, once no request is served): in one transaction, each
    /// only to the credits' generation and refill period it was reserved from, so a block
    /// is never added to credits set anew since nor to a refilled balance. How many credits
    /// went back. (A crash skips this: its blocks are lost, under-serving, never over.)
    pub async fn return_held_credits(&self) -> Result<u64, Error> {
        self.return_credits(None).await
    }

    /// Gives back the blocks of credits this node has held for over a minute ([`IDLE_BLOCK`]):
    /// a key that slowed down (or stopped) after a burst does not keep a large block, which a
    /// crash would lose and other nodes could not spend. Run with the usage flush. Its next
    /// request reserves anew, a smaller block. (If the write fails, those credits are lost
    /// as in a crash: under-served, never over.)
    pub async fn return_idle_credits(&self) -> Result<u64, Error> {
        self.return_credits(Some(IDLE_BLOCK)).await
    }

    async fn return_credits(&self, held_for: Option<Duration>) -> Result<u64, Error> {
        let blocks = self.view().take_held_blocks(held_for);
        if blocks.is_empty() {
            return Ok(0);
        }
        self.store()
            .return_credits(blocks)
            .await
            .map_err(|e| e.into_domain("giving back reserved credits failed"))
    }
}
