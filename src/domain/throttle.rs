//! The throttle on failed passwords, and the bookkeeping of failed sign-ins with unknown
//! logins (one audit line per address and minute). Time is a parameter: the callers pass
//! the domain's clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;

use super::keyward::Keyward;
use super::{Error, Timestamp, UserId};
use crate::model::ThrottleRules;
use crate::store::StoreErrorKind;

/// Who failed passwords are counted against: an account (once the login names one, by
/// username or email alike) or, for a login that names no one, that login. A fixed 16
/// bytes whatever the login's length, so the throttle's memory does not grow with input.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AccountKey([u8; 16]);

impl AccountKey {
    /// Its 16 bytes (what the database counts failures under, on several nodes).
    pub fn bytes(&self) -> [u8; 16] {
        self.0
    }

    pub fn user(id: UserId) -> Self {
        Self::of("user", id.to_string().as_bytes())
    }

    pub fn unknown_login(login: &str) -> Self {
        Self::of("login", login.to_ascii_lowercase().as_bytes())
    }

    fn of(kind: &str, bytes: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("keyward 2026 throttle account");
        hasher.update(kind.as_bytes()).update(b"\0").update(bytes);
        let mut out = [0u8; 16];
        out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        AccountKey(out)
    }
}

/// Failed passwords, counted two ways.
///
/// - Per account and source address: after [`FREE_FAILURES`] failures in a row, each
///   further attempt from that address waits twice as long as the last, up to
///   [`MAX_BLOCK`]. Keyed by address too, so an attacker elsewhere cannot lock the owner out.
/// - Per account across all addresses: past [`ACCOUNT_FREE_FAILURES`], the account takes
///   one attempt every [`ACCOUNT_SPACING`] from anywhere, so spreading guesses over many
///   addresses gains little. Not a lock-out: the owner still gets in, after a short wait.
///
/// A success clears both for the account; [`FORGET_AFTER`] without failures forgets them.
/// Both maps are capped at [`MAX_TRACKED`] entries of fixed size: past it, forgotten
/// entries are swept, then the oldest half.
#[derive(Default)]
pub struct Throttle {
    state: Mutex<ThrottleState>,
}

#[derive(Default)]
struct ThrottleState {
    pairs: HashMap<(AccountKey, Option<IpAddr>), Failures>,
    accounts: HashMap<AccountKey, Failures>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Timestamp,
    /// No attempt before this instant.
    blocked_until: Timestamp,
}

pub const FREE_FAILURES: u32 = 5;
pub const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
pub const ACCOUNT_FREE_FAILURES: u32 = 20;
pub const ACCOUNT_SPACING: Duration = Duration::from_secs(3);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Most entries each map holds (about 100 bytes each, so a few MB at most).
pub const MAX_TRACKED: usize = 50_000;

fn retry_after(until: Timestamp, now: Timestamp) -> Error {
    let wait = u64::try_from(until.millis() - now.millis()).unwrap_or(0);
    Error::Throttled {
        retry_after: Duration::from_millis(wait).max(Duration::from_secs(1)),
    }
}

/// Makes room for one more entry: drops forgotten ones, then, if still full, the older half.
fn make_room<K: Eq + std::hash::Hash + Copy>(map: &mut HashMap<K, Failures>, now: Timestamp) {
    if map.len() < MAX_TRACKED {
        return;
    }
    map.retain(|_, f| f.last.plus(FORGET_AFTER) > now);
    if map.len() >= MAX_TRACKED {
        let mut ages: Vec<i64> = map.values().map(|f| f.last.millis()).collect();
        let middle = ages.len() / 2;
        let (_, median, _) = ages.select_nth_unstable(middle);
        let median = *median;
        map.retain(|_, f| f.last.millis() > median);
    }
}

/// Counts one more failure under `key` at `now` (a count forgotten by now starts again),
/// making room for it first.
fn count_failure<K: Eq + std::hash::Hash + Copy>(
    map: &mut HashMap<K, Failures>,
    key: K,
    now: Timestamp,
) -> &mut Failures {
    make_room(map, now);
    let failures = map.entry(key).or_insert(Failures {
        count: 0,
        last: now,
        blocked_until: now,
    });
    if failures.last.plus(FORGET_AFTER) <= now {
        failures.count = 0;
    }
    failures.count = failures.count.saturating_add(1);
    failures.last = now;
    failures
}

impl Throttle {
    /// `Throttled` while this account is blocked for this source, or the account as a whole
    /// is past its ceiling and its next attempt is not due yet (an attempt that passes takes
    /// that turn).
    pub fn check(&self, account: AccountKey, source: Option<IpAddr>, now: Timestamp) -> Result<(), Error> {
        let mut state = self.state.lock();
        if let Some(f) = state.pairs.get(&(account, source))
            && f.blocked_until > now
            && f.last.plus(FORGET_AFTER) > now
        {
            return Err(retry_after(f.blocked_until, now));
        }
        if let Some(f) = state.accounts.get_mut(&account)
            && f.count >= ACCOUNT_FREE_FAILURES
            && f.last.plus(FORGET_AFTER) > now
        {
            if f.blocked_until > now {
                return Err(retry_after(f.blocked_until, now));
            }
            f.blocked_until = now.plus(ACCOUNT_SPACING);
        }
        Ok(())
    }

    pub fn failed(&self, account: AccountKey, source: Option<IpAddr>, now: Timestamp) {
        let mut state = self.state.lock();
        let pair = count_failure(&mut state.pairs, (account, source), now);
        if pair.count >= FREE_FAILURES {
            let exp = (pair.count - FREE_FAILURES).min(16);
            pair.blocked_until = now.plus(Duration::from_secs(1u64 << exp).min(MAX_BLOCK));
        }
        count_failure(&mut state.accounts, account, now);
    }

    pub fn succeeded(&self, account: AccountKey, source: Option<IpAddr>) {
        let mut state = self.state.lock();
        state.pairs.remove(&(account, source));
        state.accounts.remove(&account);
    }

    /// How many entries the throttle holds, and the bytes each takes (fixed: no entry
    /// owns anything on the heap).
    pub fn footprint(&self) -> (usize, usize) {
        let state = self.state.lock();
        let pair = std::mem::size_of::<((AccountKey, Option<IpAddr>), Failures)>();
        let account = std::mem::size_of::<(AccountKey, Failures)>();
        (state.pairs.len() + state.accounts.len(), pair.max(account))
    }
}

/// The rules above, for a database that counts failures for several nodes.
pub const RULES: ThrottleRules = ThrottleRules {
    free_failures: FREE_FAILURES,
    max_block: MAX_BLOCK,
    account_free_failures: ACCOUNT_FREE_FAILURES,
    account_spacing: ACCOUNT_SPACING,
    forget_after: FORGET_AFTER,
};

/// An address as the shared count names it ("-": none known).
fn source_name(source: Option<IpAddr>) -> String {
    source.map_or_else(|| "-".to_owned(), |s| s.to_string())
}

impl Keyward {
    /// Whether `account` may try a password from `source` now; `Ok(true)` when failures are
    /// counted for it (a success then clears them). On several nodes the count is the
    /// database's, so guesses spread over nodes add up; a count that cannot be read refuses
    /// the attempt (503) rather than let it pass unthrottled.
    pub(super) async fn login_allowed(
        &self,
        account: AccountKey,
        source: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<bool, Error> {
        if !self.store().shared_by_nodes() {
            self.throttle().check(account, source, now)?;
            return Ok(true);
        }
        let check = match self
            .store()
            .check_login(account.bytes(), source_name(source), now, RULES)
            .await
        {
            Ok(check) => check,
            // A read-only database (a replica) cannot count: this node counts in memory.
            Err(e) if e.kind == StoreErrorKind::ReadOnly => {
                self.throttle().check(account, source, now)?;
                return Ok(true);
            }
            Err(e) => return Err(e.into_domain("reading failed logins")),
        };
        match check.blocked_until {
            Some(until) => Err(retry_after(until, now)),
            None => Ok(check.any_failures),
        }
    }

    pub(super) async fn login_failed(&self, account: AccountKey, source: Option<IpAddr>, now: Timestamp) {
        if !self.store().shared_by_nodes() {
            self.throttle().failed(account, source, now);
            return;
        }
        match self
            .store()
            .count_login_failure(account.bytes(), source_name(source), now, RULES)
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind == StoreErrorKind::ReadOnly => self.throttle().failed(account, source, now),
            Err(e) => log::warn!("counting a failed login: {e}"),
        }
    }

    /// A success ends the counts (only when there were any: a success costs nothing more).
    pub(super) async fn login_succeeded(&self, account: AccountKey, source: Option<IpAddr>, counted: bool) {
        if !self.store().shared_by_nodes() {
            self.throttle().succeeded(account, source);
            return;
        }
        self.throttle().succeeded(account, source);
        if counted
            && let Err(e) = self
                .store()
                .clear_login_failures(account.bytes(), source_name(source))
                .await
        {
            log::warn!("clearing failed logins: {e}");
        }
    }
}

/// The open audit lines of unknown-login failures: (address, minute) -> (line, count).
/// Only the current and the previous minute are kept, so it stays small.
#[derive(Default)]
pub struct UnknownLogins(HashMap<(Option<IpAddr>, i64), (i64, u32)>);

impl UnknownLogins {
    /// Counts one more failure in an open line: the line and the new count; `None` when
    /// this address has no line for this minute yet.
    pub(super) fn count(&mut self, source: Option<IpAddr>, minute: i64) -> Option<(i64, u32)> {
        let (seq, count) = self.0.get_mut(&(source, minute))?;
        *count = count.saturating_add(1);
        Some((*seq, *count))
    }

    pub(super) fn started(&mut self, source: Option<IpAddr>, minute: i64, seq: i64) {
        self.0.retain(|(_, m), _| *m >= minute - 1);
        if self.0.len() < MAX_TRACKED {
            self.0.entry((source, minute)).or_insert((seq, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_blocks_after_free_failures_and_per_source() {
        let t = Throttle::default();
        let now = Timestamp::from_secs(1_000_000);
        let a: Option<IpAddr> = "10.0.0.1".parse().ok();
        let b: Option<IpAddr> = "10.0.0.2".parse().ok();
        let ada = AccountKey::unknown_login("ada");
        for _ in 0..FREE_FAILURES {
            assert!(t.check(ada, a, now).is_ok());
            t.failed(AccountKey::unknown_login("Ada"), a, now);
        }
        assert!(matches!(
            t.check(AccountKey::unknown_login("ADA"), a, now),
            Err(Error::Throttled { .. })
        ));
        assert!(t.check(ada, b, now).is_ok(), "another source is not blocked");
        assert!(
            t.check(ada, a, now.plus(Duration::from_secs(2))).is_ok(),
            "the block ends"
        );
    }

    #[test]
    fn failures_from_many_addresses_slow_the_account_to_one_attempt_every_few_seconds() {
        let t = Throttle::default();
        let mut now = Timestamp::from_secs(1_000_000);
        let account = AccountKey::unknown_login("ada");
        let from = |n: u32| Some(IpAddr::from([10, 0, (n >> 8) as u8, n as u8]));
        for n in 0..ACCOUNT_FREE_FAILURES {
            assert!(t.check(account, from(n), now).is_ok());
            t.failed(account, from(n), now);
        }
        // Past the ceiling: one attempt passes, the next from anywhere waits its turn.
        assert!(t.check(account, from(1000), now).is_ok());
        let Err(Error::Throttled { retry_after }) = t.check(account, from(1001), now) else {
            panic!("the account is not slowed down");
        };
        assert!(retry_after <= ACCOUNT_SPACING);
        assert!(
            t.check(AccountKey::unknown_login("bob"), from(1001), now).is_ok(),
            "others are not slowed"
        );
        now = now.plus(ACCOUNT_SPACING);
        assert!(t.check(account, from(1002), now).is_ok(), "the next turn comes");
        // The owner's success clears it.
        t.succeeded(account, from(1002));
        assert!(t.check(account, from(1003), now).is_ok());
        assert!(t.check(account, from(1004), now).is_ok());
    }

    #[test]
    fn the_throttle_holds_bounded_fixed_size_entries_whatever_the_logins() {
        let t = Throttle::default();
        let now = Timestamp::from_secs(1_000_000);
        // 2,000 failures with 60 KB usernames (as in the review) from 2,000 addresses.
        for n in 0..2_000u32 {
            let login = format!("{n:05}{}", "x".repeat(60 * 1024));
            let source = Some(IpAddr::from(n.to_be_bytes()));
            t.failed(AccountKey::unknown_login(&login), source, now);
        }
        let (entries, bytes_each) = t.footprint();
        assert_eq!(entries, 4_000, "a pair and an account entry each");
        assert!(bytes_each <= 96, "{bytes_each} bytes an entry");
        assert!(entries * bytes_each < 400 * 1024, "was 169 MB");
        // However many different logins fail, each map stays within its cap.
        for n in 0..(MAX_TRACKED as u32 + 5_000) {
            t.failed(
                AccountKey::unknown_login(&n.to_string()),
                None,
                now.plus(Duration::from_millis(u64::from(n))),
            );
        }
        let (entries, _) = t.footprint();
        assert!(entries <= 2 * MAX_TRACKED, "{entries}");
    }
}
