//! Where the domain gets the time. Production reads the system clock; tests may move a
//! clock forward instead of sleeping (a key's expiry, a rotation's grace, a session's end).
//!
//! A moved clock only ever runs ahead of the system clock, never behind it. That keeps every
//! expiry check sound under it: the JWT library checks a key's `exp` against the system
//! clock (on a key's first use), the domain checks the key's expiry against this clock (on
//! every use), and a key must pass both. Ahead of the system, the domain's check is the
//! stricter one, so moving the clock can make a key expire early, never late.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use super::Timestamp;

/// The domain's clock: a plain enum, so reading it on the hot path is a branch, not a call
/// through a pointer.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// The system clock moved ahead by a [`TestClock`].
    Test(TestClock),
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        let system = Timestamp::of_system_time(SystemTime::now());
        match self {
            Clock::System => system,
            Clock::Test(clock) => system.plus(clock.ahead()),
        }
    }
}

/// A clock for tests: the system's time plus however far the test has moved it on. Clones
/// share one offset, so a test keeps one and the server reads the other.
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    ahead_ms: Arc<AtomicI64>,
}

impl TestClock {
    /// Moves the clock on by `by` (never back).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        // Saturating: a clock moved absurdly far stays far, never wraps to the past.
        let _ = self.ahead_ms.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ahead| {
            Some(ahead.saturating_add(ms))
        });
    }

    /// How far ahead of the system clock it is.
    pub fn ahead(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.ahead_ms.load(Ordering::SeqCst)).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_runs_ahead_of_the_system_clock_by_what_it_was_moved() {
        let test = TestClock::default();
        let clock = Clock::Test(test.clone());
        let before = Clock::System.now();
        test.advance(Duration::from_secs(90));
        let moved = clock.now();
        assert!(moved >= before.plus(Duration::from_secs(90)));
        assert!(moved <= Clock::System.now().plus(Duration::from_secs(91)));
        assert_eq!(test.ahead(), Duration::from_secs(90));
    }
}
