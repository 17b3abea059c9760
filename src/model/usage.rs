//! Per-key usage by the hour: how often a key was used successfully and why it was refused.

use super::{KeyId, Timestamp};

/// Milliseconds in an hour: usage is kept in buckets of one hour, starting on the hour (UTC).
pub const HOUR_MS: i64 = 3_600_000;

/// How a use of a key ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Valid,
    RateLimited,
    UsageExceeded,
    Expired,
    Disabled,
    Revoked,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Valid,
        Outcome::RateLimited,
        Outcome::UsageExceeded,
        Outcome::Expired,
        Outcome::Disabled,
        Outcome::Revoked,
    ];

    /// Its name in the API and its column in the database.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::RateLimited => "rate_limited",
            Outcome::UsageExceeded => "usage_exceeded",
            Outcome::Expired => "expired",
            Outcome::Disabled => "disabled",
            Outcome::Revoked => "revoked",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Counts of uses by outcome, in the order of [`Outcome::ALL`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts(pub [i64; 6]);

impl UsageCounts {
    pub fn one(outcome: Outcome, n: i64) -> Self {
        let mut counts = UsageCounts::default();
        counts.0[outcome.index()] = n;
        counts
    }

    pub fn get(&self, outcome: Outcome) -> i64 {
        self.0[outcome.index()]
    }

    pub fn add(&mut self, other: &UsageCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|n| *n == 0)
    }
}

/// One key's uses in one hour (`start`, on the hour).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageBucket {
    pub key_id: KeyId,
    pub start: Timestamp,
    pub counts: UsageCounts,
}

/// The start of the hour `t` falls in, in UTC.
pub fn hour_of(t: Timestamp) -> Timestamp {
    Timestamp::from_millis(t.millis().div_euclid(HOUR_MS) * HOUR_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_falls_in_the_hour_that_starts_on_the_hour() {
        assert_eq!(hour_of(Timestamp::from_millis(7_199_999)).millis(), HOUR_MS);
        assert_eq!(hour_of(Timestamp::from_millis(7_200_000)).millis(), 2 * HOUR_MS);
        assert_eq!(hour_of(Timestamp::from_millis(-1)).millis(), -HOUR_MS);
    }

    #[test]
    fn counts_add_by_outcome() {
        let mut c = UsageCounts::one(Outcome::Valid, 3);
        c.add(&UsageCounts::one(Outcome::Revoked, 2));
        c.add(&UsageCounts::one(Outcome::Valid, 1));
        assert_eq!(
            (c.get(Outcome::Valid), c.get(Outcome::Revoked), c.get(Outcome::Expired)),
            (4, 2, 0)
        );
        assert!(!c.is_zero());
        assert!(UsageCounts::default().is_zero());
    }
}
