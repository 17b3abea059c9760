//! Counting key uses by the hour in memory, for the key view: never a write per request.
//!
//! A valid use is counted in the key's view entry by one atomic add ([`HourCounter`]); a
//! refusal goes to [`Outcomes`], a small locked map (a limited key's refusal also takes its
//! use back from valid there). Both are emptied by the usage flush into hourly buckets of the
//! database, with the key-use times.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::model::{HOUR_MS, KeyId, Outcome, Timestamp, UsageBucket, UsageCounts};

/// The hour `t` falls in, as hours since the epoch (what the counters hold).
pub fn hour_index(t: Timestamp) -> u32 {
    u32::try_from(t.millis().div_euclid(HOUR_MS)).unwrap_or(0)
}

/// The start of an hour index.
pub fn hour_start(hour: u32) -> Timestamp {
    Timestamp::from_millis(i64::from(hour) * HOUR_MS)
}

const COUNT_BITS: u32 = 32;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// Valid uses of one key in one hour, packed in one word: the hour index above, the count
/// below. A use in the hour held is one relaxed add; a use in another hour swaps in a new
/// hour and hands back what the old one held. (The count cannot reach 2³² between two
/// flushes: that would be 140 million uses a second.)
#[derive(Default)]
pub struct HourCounter(AtomicU64);

fn unpack(word: u64) -> (u32, u32) {
    // Both halves fit by construction: the shift and the mask leave 32 bits each.
    (
        u32::try_from(word >> COUNT_BITS).unwrap_or(u32::MAX),
        u32::try_from(word & COUNT_MASK).unwrap_or(u32::MAX),
    )
}

fn pack(hour: u32, count: u32) -> u64 {
    (u64::from(hour) << COUNT_BITS) | u64::from(count)
}

impl HourCounter {
    /// Counts one use in `hour`; the (hour, count) of the earlier hour it closed, if that
    /// held any uses not yet taken.
    #[inline]
    pub fn count(&self, hour: u32) -> Option<(u32, u32)> {
        let word = self.0.load(Ordering::Relaxed);
        if unpack(word).0 == hour {
            self.0.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.roll(hour)
    }

    #[cold]
    fn roll(&self, hour: u32) -> Option<(u32, u32)> {
        let mut word = self.0.load(Ordering::Relaxed);
        loop {
            let (held, count) = unpack(word);
            if held == hour {
                self.0.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            match self
                .0
                .compare_exchange_weak(word, pack(hour, 1), Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return (count > 0).then_some((held, count)),
                Err(now) => word = now,
            }
        }
    }

    /// Takes the uses counted so far: (hour, count), leaving none (in the same hour).
    pub fn take(&self) -> Option<(u32, u32)> {
        let mut word = self.0.load(Ordering::Relaxed);
        loop {
            let (hour, count) = unpack(word);
            if count == 0 {
                return None;
            }
            match self
                .0
                .compare_exchange_weak(word, pack(hour, 0), Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some((hour, count)),
                Err(now) => word = now,
            }
        }
    }

    /// The uses counted and not yet taken: (hour, count).
    pub fn peek(&self) -> Option<(u32, u32)> {
        let (hour, count) = unpack(self.0.load(Ordering::Relaxed));
        (count > 0).then_some((hour, count))
    }

    /// Carries another entry's untaken count over (an entry replaced by a newer read of the
    /// same key).
    pub fn carry(&mut self, from: &HourCounter) {
        *self.0.get_mut() = from.0.load(Ordering::Relaxed);
    }
}

const OUTCOME_SHARDS: usize = 16;

type Counted = HashMap<(KeyId, u32), UsageCounts>;

/// Uses counted outside the view entries (refusals, limited keys, closed hours), by key and
/// hour, split over a few locks.
pub struct Outcomes {
    shards: Box<[Mutex<Counted>]>,
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes {
            shards: (0..OUTCOME_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Outcomes {
    fn shard(&self, id: KeyId) -> &Mutex<Counted> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
        &self.shards[usize::try_from(hash % OUTCOME_SHARDS as u64).unwrap_or(0)]
    }

    pub fn record(&self, id: KeyId, hour: u32, outcome: Outcome, n: u32) {
        if n == 0 {
            return;
        }
        let counts = UsageCounts::one(outcome, i64::from(n));
        self.shard(id).lock().entry((id, hour)).or_default().add(&counts);
    }

    /// Moves one use of `id` in `hour` from valid to `outcome`.
    pub fn refuse(&self, id: KeyId, hour: u32, outcome: Outcome) {
        let mut counts = UsageCounts::one(outcome, 1);
        counts.add(&UsageCounts::one(Outcome::Valid, -1));
        self.shard(id).lock().entry((id, hour)).or_default().add(&counts);
    }

    /// Adds a bucket's counts back (taken, but not written).
    pub fn put_back(&self, bucket: &UsageBucket) {
        let hour = hour_index(bucket.start);
        self.shard(bucket.key_id)
            .lock()
            .entry((bucket.key_id, hour))
            .or_default()
            .add(&bucket.counts);
    }

    /// Takes everything recorded so far.
    pub fn take(&self) -> Vec<UsageBucket> {
        let mut buckets = Vec::new();
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *shard.lock());
            buckets.extend(taken.into_iter().map(|((key_id, hour), counts)| UsageBucket {
                key_id,
                start: hour_start(hour),
                counts,
            }));
        }
        buckets
    }

    /// What is recorded and not yet taken for one key: (hour, counts).
    pub fn pending(&self, id: KeyId) -> Vec<(u32, UsageCounts)> {
        self.shard(id)
            .lock()
            .iter()
            .filter(|((key, _), _)| *key == id)
            .map(|((_, hour), counts)| (*hour, *counts))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_counts_in_its_hour_and_hands_back_the_hour_it_closes() {
        let c = HourCounter::default();
        assert_eq!(c.count(10), None, "the first use closes the empty hour 0");
        assert_eq!((c.count(10), c.count(10)), (None, None));
        assert_eq!(c.peek(), Some((10, 3)));
        assert_eq!(c.count(11), Some((10, 3)), "a use in the next hour closes the last one");
        assert_eq!(c.take(), Some((11, 1)));
        assert_eq!((c.take(), c.peek()), (None, None));
        assert_eq!(c.count(11), None, "counting goes on in the same hour after a take");
        assert_eq!(c.take(), Some((11, 1)));
        assert_eq!(c.count(12), None, "an hour whose uses were all taken closes empty");
    }

    #[test]
    fn outcomes_add_up_by_key_and_hour_until_taken() {
        let o = Outcomes::default();
        let (a, b) = (KeyId::from_bytes([1; 12]), KeyId::from_bytes([2; 12]));
        o.record(a, 5, Outcome::RateLimited, 2);
        o.record(a, 5, Outcome::RateLimited, 1);
        o.record(a, 6, Outcome::Valid, 4);
        o.record(b, 5, Outcome::Revoked, 1);
        o.record(b, 5, Outcome::Revoked, 0);
        let mut pending = o.pending(a);
        pending.sort_by_key(|(h, _)| *h);
        assert_eq!(
            pending,
            vec![
                (5, UsageCounts::one(Outcome::RateLimited, 3)),
                (6, UsageCounts::one(Outcome::Valid, 4))
            ]
        );
        assert_eq!(o.take().len(), 3);
        assert!(o.take().is_empty() && o.pending(a).is_empty());
    }
}
