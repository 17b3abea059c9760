//! Rate limits and credits on the hot path.
//!
//! **Rate limits: GCRA** (the generic cell rate algorithm, a token bucket kept as one
//! timestamp). Each limit of a key holds its "theoretical arrival time" in one `AtomicU64`
//! inside the key's entry of the in-memory view: a request is admitted when, after adding
//! one emission interval (`duration / limit`), the TAT is no more than `duration` ahead of
//! now. So a full bucket admits `limit` at once, it refills evenly over `duration`, a steady
//! client gets `limit` per `duration`, and any window of that length admits at most
//! `2 × limit − 1`. One compare-and-swap per limit, no lock, no allocation, no timer.
//! (`governor` implements the same algorithm, but its keyed limiter applies one quota to
//! every key, and a direct limiter per key would carry its own clock and quota types for
//! what is here thirty lines over one atomic, with the domain's own clock.) Per node.
//!
//! **Credits: blocks reserved ahead.** A key's balance lives in the database. A node
//! reserves a block of it with one conditional update (`… WHERE credits_remaining >= n`)
//! and spends the block in memory; when the block runs out, one request reserves the next
//! while the others wait for it. A block is 64 credits at first, then what the key would
//! spend in 30 seconds at the pace it spent the last (`next_block_size`), at most
//! `keys.credit_block` (1024), and never more than an eighth of the balance, so blocks
//! shrink as the balance nears zero. So a busy key pays about one durable write per 30
//! seconds of its traffic (one per `credit_block` requests for a key faster than a
//! thirtieth of it a second). A block held over a minute is given back to the database every
//! 30 s (`Keyward::return_idle_credits`), so what a node holds is what it reserved in the
//! last minute and a half. A crash loses at most the unspent block of each key on that
//! node: it under-serves by at most `credit_block` credits (and an eighth of the balance),
//! and never over-serves, since nothing is spent that was not reserved durably.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::keyward::Keyward;
use super::{Error, KeyId, Timestamp, UserId, expiry};
use crate::model::{Credits, GivenDuration, Outcome, RateLimit, RateLimits, Refill, Rendered, next_block_size};
use crate::store::{CreditsChange, Payer};

/// A rate limit from the API: `duration` a string of the duration grammar or a number of
/// seconds, at least one second.
pub fn parse_rate_limit(name: String, limit: u64, duration: GivenDuration) -> Result<RateLimit, Error> {
    let seconds = match &duration {
        GivenDuration::Seconds(s) => *s,
        GivenDuration::Text(text) => expiry::Lifetime::parse(text)
            .ok()
            .and_then(expiry::Lifetime::finite)
            .map(|d| d.as_secs())
            .ok_or_else(|| {
                Error::invalid(
                    "ratelimits",
                    "each duration must be a number of seconds or a duration such as \"1s\", \"1m\", \"1h\" or \"1 day\"",
                )
            })?,
    };
    Ok(RateLimit::new(name, limit, duration, seconds)?)
}

/// An addition to credits keeps the balance within the most it may hold (`current`: the
/// balance as shown; `None`, unlimited, takes nothing from an addition).
pub fn check_credits_change(current: Option<&Credits>, change: Option<&CreditsChange>) -> Result<(), Error> {
    match (current, change) {
        (Some(c), Some(CreditsChange::Add(n))) => Ok(c.check_add(*n)?),
        _ => Ok(()),
    }
}

const NANOS: u64 = 1_000_000_000;

fn nanos(t: Timestamp) -> u64 {
    u64::try_from(t.millis()).unwrap_or(0).saturating_mul(1_000_000)
}

/// One limit's state: its theoretical arrival time, in nanoseconds since the epoch.
struct Gcra {
    name: Box<str>,
    limit: u32,
    window: u64,
    interval: u64,
    tat: AtomicU64,
}

/// Where a limit stands after a request: as the `RateLimit` header and the verify API say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateStatus<'a> {
    pub name: &'a str,
    pub limit: u32,
    /// The window in seconds.
    pub window: u64,
    /// Requests that would be admitted now.
    pub remaining: u64,
    /// Seconds until the bucket is full again; when nothing remains, until the next request
    /// is admitted.
    pub reset: u64,
}

impl Gcra {
    fn new(limit: &RateLimit) -> Gcra {
        let window = limit.seconds().saturating_mul(NANOS);
        Gcra {
            name: Box::from(limit.name()),
            limit: limit.limit(),
            window,
            interval: (window / u64::from(limit.limit())).max(1),
            tat: AtomicU64::new(0),
        }
    }

    /// Takes one request; `Err` with the nanoseconds until one would be admitted.
    fn take(&self, now: u64) -> Result<(), u64> {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let next = tat.max(now) + self.interval;
            if next - now > self.window {
                return Err(next - now - self.window);
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }

    /// How far ahead of `now` this limit's state runs: how much of its window is spent.
    fn ahead(&self, now: u64) -> u64 {
        self.tat.load(Ordering::Acquire).saturating_sub(now).min(self.window)
    }

    /// Starts this (new) limit at least as spent as the old limits it replaces.
    ///
    /// The rule: a new limit starts as spent, as a share of its window, as the most-spent
    /// of the old limits it replaces: the old one of the same name, and every old one it is
    /// at least as tight as (no larger burst, no faster refill; an owner's change keeps each
    /// old limit only through such a tighter one, see `RateLimits::within`). Why it is
    /// sound: a limit of L per W that is a share s spent admits (1 − s)·L now and refills
    /// at L/W; a limit of L' ≤ L per W' ≥ W equally spent admits (1 − s)·L' now and refills
    /// no faster, so at no moment after the change does it admit more than the old one
    /// would have. A new limit that replaces none starts full: it only adds a constraint
    /// beside the ones that do. Why not by name alone: renaming "requests" to "requests2"
    /// would start full, a free burst. Why not the absolute state (the same time ahead): a
    /// longer window with the same time ahead is mostly unspent, a free burst again. The
    /// cost: a new long limit tighter than a spent short burst starts spent too, and
    /// under-serves until it refills; never over-serves.
    fn inherit(&self, old: &[Gcra], now: u64) {
        let replaces = |o: &&Gcra| o.name == self.name || (self.limit <= o.limit && self.window >= o.window);
        let ahead = old
            .iter()
            .filter(replaces)
            .map(|o| {
                // The same share of this window, rounded up (never less spent).
                let scaled = (u128::from(o.ahead(now)) * u128::from(self.window)).div_ceil(u128::from(o.window.max(1)));
                u64::try_from(scaled).unwrap_or(u64::MAX).min(self.window)
            })
            .max()
            .unwrap_or(0);
        if ahead > 0 {
            self.tat.store(now + ahead, Ordering::Release);
        }
    }

    /// Returns a request taken by [`Self::take`] (another limit refused it).
    fn give_back(&self) {
        self.tat.fetch_sub(self.interval, Ordering::AcqRel);
    }

    fn status(&self, now: u64) -> RateStatus<'_> {
        let ahead = self.tat.load(Ordering::Acquire).saturating_sub(now);
        let remaining = self.window.saturating_sub(ahead) / self.interval;
        let wait = if remaining == 0 {
            (ahead + self.interval).saturating_sub(self.window)
        } else {
            ahead
        };
        RateStatus {
            name: &self.name,
            limit: self.limit,
            window: self.window / NANOS,
            remaining,
            reset: wait.div_ceil(NANOS),
        }
    }
}

/// What this node holds of a key's credits.
#[derive(Default)]
struct Purse {
    /// Reserved and not yet spent.
    block: u64,
    /// The database's balance after this node's last reservation (other nodes may have
    /// taken some since).
    stored: u64,
    /// The refill period the block belongs to (unix ms); a block of an earlier one is void.
    period: Option<i64>,
    /// Whether this node has reserved (or tried to) in this period: `stored` is known.
    reserved: bool,
    /// When a reservation last found too little to reserve (unix ms): for a second after,
    /// requests the block cannot cover are refused without asking the database again.
    dry_at: Option<i64>,
    /// The credits' generation the block was reserved under (set anew since: the block is
    /// void; see `Credits::generation`).
    generation: u64,
    /// The most this node asked for at its last reservation (`0`: none yet), and when (unix
    /// ms): the next block's size follows how fast the last was spent (`next_block_size`).
    asked: u64,
    asked_at: i64,
}

/// How long a key found out of credits is refused from memory before the database is asked
/// again (another node, or the CLI, may have added some).
const DRY_FOR_MS: i64 = 1000;

struct CreditState {
    purse: parking_lot::Mutex<Purse>,
    refill: Option<Refill>,
    /// One reservation at a time per key on this node; the others wait and spend from it.
    reserving: tokio::sync::Mutex<()>,
}

/// A key's limits and their state, in its entry of the in-memory view.
pub struct KeyLimits {
    /// Inline for up to two (most keys have one or two): the hot path reaches them in the
    /// state's own allocation.
    rates: smallvec::SmallVec<[Gcra; 2]>,
    credits: Option<CreditState>,
    /// What the state was made from: the state is kept across a change that keeps these
    /// (and the credits' generation, which the purse holds).
    made_from: (RateLimits, Option<Option<Refill>>),
    /// What the HTTP adapter renders of these rate limits, as they are and not where they
    /// stand (the `RateLimit-Policy` header's value), rendered at the first request
    /// that needs it and kept: a state's limits never change (a change makes a new state).
    rendered: Rendered,
}

/// The outcome of spending from the block in memory.
pub enum Spend {
    /// Spent; the credits left (this node's block plus the database's balance), `None`
    /// without credits.
    Spent(Option<u64>),
    /// The block cannot cover it: reserve more (`need` at least).
    Reserve { need: u64 },
    /// The block cannot cover it and the balance could not a moment ago.
    Dry,
}

impl KeyLimits {
    /// The state for a key with these limits; `None` for a key without any (it pays nothing).
    pub fn for_key(ratelimits: &RateLimits, credits: Option<&Credits>) -> Option<KeyLimits> {
        if ratelimits.is_empty() && credits.is_none() {
            return None;
        }
        Some(KeyLimits {
            rates: ratelimits.as_slice().iter().map(Gcra::new).collect(),
            credits: credits.map(|c| CreditState {
                purse: parking_lot::Mutex::new(Purse {
                    generation: c.generation,
                    ..Purse::default()
                }),
                refill: c.refill,
                reserving: tokio::sync::Mutex::new(()),
            }),
            made_from: (ratelimits.clone(), credits.map(|c| c.refill)),
            rendered: Rendered::default(),
        })
    }

    /// The state for a key's (or user's) changed limits: each rate limit starts at least as
    /// spent as the old limits it replaces (changing, renaming or adding a limit, or the
    /// credits, never hands out a fresh burst; the rule is at `Gcra::inherit`), and the
    /// credits start over (nothing held on this node).
    pub fn changed(
        old: Option<&KeyLimits>,
        ratelimits: &RateLimits,
        credits: Option<&Credits>,
        now: Timestamp,
    ) -> Option<KeyLimits> {
        let new = KeyLimits::for_key(ratelimits, credits)?;
        if let Some(old) = old {
            let now = nanos(now);
            for limit in new.rates.iter() {
                limit.inherit(&old.rates, now);
            }
        }
        Some(new)
    }

    /// Whether this state was made for these limits (so it can be kept): the same limits,
    /// the same refill, and credits not set anew since the block this node holds was
    /// reserved (a newer generation voids it: another node, or this one, set them).
    pub fn made_for(&self, ratelimits: &RateLimits, credits: Option<&Credits>) -> bool {
        let current = match (&self.credits, credits) {
            (Some(state), Some(c)) => c.generation <= state.purse.lock().generation,
            _ => true,
        };
        self.made_from.0 == *ratelimits && self.made_from.1 == credits.map(|c| c.refill) && current
    }

    /// Forgets what this node knew of the balance (credits were added to it): the next
    /// request that the block cannot cover asks the database again. The block is kept.
    pub fn forget_balance(&self) {
        if let Some(credits) = &self.credits {
            let mut purse = credits.purse.lock();
            purse.dry_at = None;
            purse.reserved = false;
        }
    }

    /// Takes the unspent block this node holds, if it is of the refill period of `now`
    /// (a block of an earlier period belongs to a balance refilled since): what to give
    /// back to the database at a graceful stop. The block is this node's no more.
    ///
    /// `reserved_before` (unix ms): only a block reserved before then (one a key has been
    /// spending slowly, or not at all); `None`: any.
    pub fn take_held(&self, now: Timestamp, reserved_before: Option<i64>) -> Option<(u64, u64, Option<Timestamp>)> {
        let credits = self.credits.as_ref()?;
        let period = credits.refill.map(|r| r.interval.period_start(now).millis());
        let mut purse = credits.purse.lock();
        if reserved_before.is_some_and(|before| purse.asked_at >= before) {
            return None;
        }
        let unspent = std::mem::take(&mut purse.block);
        (unspent > 0 && purse.period == period)
            .then(|| (unspent, purse.generation, purse.period.map(Timestamp::from_millis)))
    }

    pub fn has_credits(&self) -> bool {
        self.credits.is_some()
    }

    /// Takes one request from every rate limit, or none: the limit that refused, with the
    /// seconds until it admits again.
    pub fn take(&self, now: Timestamp) -> Result<(), (RefusedLimit, u64)> {
        let now = nanos(now);
        for (i, limit) in self.rates.iter().enumerate() {
            if let Err(wait) = limit.take(now) {
                for taken in &self.rates[..i] {
                    taken.give_back();
                }
                return Err((RefusedLimit::of(limit.status(now)), wait.div_ceil(NANOS).max(1)));
            }
        }
        Ok(())
    }

    pub fn has_rate_limits(&self) -> bool {
        !self.rates.is_empty()
    }

    /// Gives back what [`Self::take`] took (the credits refused the request).
    pub fn give_back(&self) {
        for limit in self.rates.iter() {
            limit.give_back();
        }
    }

    /// What `render` makes of these limits, made once and then shared (see `rendered`);
    /// `None` if it was made as another type.
    pub fn rendered<T: std::any::Any + Send + Sync>(&self, render: impl FnOnce(&KeyLimits) -> T) -> Option<&T> {
        self.rendered.get_or_init(|| render(self))
    }

    /// The status of every limit, taking nothing.
    pub fn statuses(&self, now: Timestamp) -> impl Iterator<Item = RateStatus<'_>> + Clone {
        let now = nanos(now);
        self.rates.iter().map(move |l| l.status(now))
    }

    /// Spends `cost` from the block in memory (`0`: only checks that a credit is there).
    pub fn spend(&self, cost: u64, now: Timestamp) -> Spend {
        let Some(credits) = &self.credits else {
            return Spend::Spent(None);
        };
        let period = credits.refill.map(|r| r.interval.period_start(now).millis());
        let mut purse = credits.purse.lock();
        if purse.period != period {
            // A new refill period: the block of the last one is void; the store refills.
            *purse = Purse {
                period,
                generation: purse.generation,
                asked: purse.asked,
                asked_at: purse.asked_at,
                ..Purse::default()
            };
            return Spend::Reserve { need: cost.max(1) };
        }
        let need = cost.max(1);
        if purse.block >= need {
            purse.block -= cost;
            Spend::Spent(Some(purse.block + purse.stored))
        } else if purse
            .dry_at
            .is_some_and(|at| now.millis() - at < DRY_FOR_MS && purse.block + purse.stored < need)
        {
            Spend::Dry
        } else {
            Spend::Reserve {
                need: need - purse.block,
            }
        }
    }

    /// Gives back `cost` credits spent from the block (another payer refused the request).
    pub fn refund(&self, cost: u64) {
        if let Some(credits) = &self.credits {
            credits.purse.lock().block += cost;
        }
    }

    /// Notes a reservation that found too little: the database's balance, and when.
    pub fn mark_dry(&self, stored: u64, now: Timestamp) {
        if let Some(credits) = &self.credits {
            let mut purse = credits.purse.lock();
            purse.stored = stored;
            purse.reserved = true;
            purse.dry_at = Some(now.millis());
        }
    }

    /// Adds a block just reserved (of the period and the credits' generation the store
    /// says the balance is in: a block held of another is void).
    /// `asked`: the size asked for (`next_block`), noted with the time for the next one's;
    /// a smaller grant (an eighth of a low balance) is noted as what was got, so the pace it
    /// is spent at is not overstated (only a granted block counts: refusals of an empty
    /// balance do not grow blocks).
    pub fn add_block(
        &self,
        granted: u64,
        stored: u64,
        period: Option<Timestamp>,
        generation: u64,
        asked: (u64, Timestamp),
    ) {
        if let Some(credits) = &self.credits {
            let mut purse = credits.purse.lock();
            let period = period.map(Timestamp::millis);
            if purse.period != period || purse.generation != generation {
                purse.block = 0;
                purse.period = period;
                purse.generation = generation;
            }
            purse.block += granted;
            purse.stored = stored;
            purse.reserved = true;
            purse.dry_at = None;
            (purse.asked, purse.asked_at) = (asked.0.min(granted), asked.1.millis());
        }
    }

    /// What this node holds unspent, if the block is of the current period.
    pub fn held(&self, now: Timestamp) -> u64 {
        let Some(credits) = &self.credits else { return 0 };
        let period = credits.refill.map(|r| r.interval.period_start(now).millis());
        let purse = credits.purse.lock();
        if purse.period == period { purse.block } else { 0 }
    }

    /// The credits left as this node knows them: its block and the database's balance after
    /// its last reservation (0 for a block of an earlier refill period).
    pub fn credits_left(&self, now: Timestamp) -> u64 {
        let Some(credits) = &self.credits else { return 0 };
        let period = credits.refill.map(|r| r.interval.period_start(now).millis());
        let purse = credits.purse.lock();
        if purse.period == period {
            purse.block + purse.stored
        } else {
            0
        }
    }

    /// The credits left, if this node has reserved from the balance in this period (so it
    /// knows the balance): its block and the balance after its last reservation.
    pub fn credits_known(&self, now: Timestamp) -> Option<u64> {
        let credits = self.credits.as_ref()?;
        let period = credits.refill.map(|r| r.interval.period_start(now).millis());
        let purse = credits.purse.lock();
        (purse.period == period && purse.reserved).then_some(purse.block + purse.stored)
    }

    /// How long until the credits are refilled, if they are.
    pub fn next_refill(&self, now: Timestamp) -> Option<Duration> {
        let refill = self.credits.as_ref()?.refill?;
        let next = refill.interval.next_start(now);
        Some(Duration::from_millis(
            u64::try_from(next.millis() - now.millis()).unwrap_or(0),
        ))
    }

    /// The most to reserve next, at most `most` (`keys.credit_block`): larger while blocks
    /// are spent fast, smaller when they last (see [`next_block_size`]).
    pub fn next_block(&self, now: Timestamp, most: u64) -> u64 {
        let Some(credits) = &self.credits else { return most };
        let purse = credits.purse.lock();
        next_block_size(purse.asked, now.millis() - purse.asked_at, most)
    }

    /// Waits for this key's turn to reserve credits on this node.
    pub async fn reserving(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.credits {
            Some(c) => Some(c.reserving.lock().await),
            None => None,
        }
    }
}

/// The limit that refused a request, as the refusal says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedLimit {
    pub name: String,
    pub limit: u32,
    pub window: u64,
    pub remaining: u64,
    pub reset: u64,
}

impl RefusedLimit {
    fn of(s: RateStatus<'_>) -> Self {
        RefusedLimit {
            name: s.name.to_owned(),
            limit: s.limit,
            window: s.window,
            remaining: s.remaining,
            reset: s.reset,
        }
    }

    pub fn status(&self) -> RateStatus<'_> {
        RateStatus {
            name: &self.name,
            limit: self.limit,
            window: self.window,
            remaining: self.remaining,
            reset: self.reset,
        }
    }
}

/// Who pays for a request: the key's own limits, its user's (shared by all their keys), or
/// both. Both must admit it.
#[derive(Clone)]
pub struct Charges {
    /// The key the request was made with (whoever pays): its uses are counted.
    used: KeyId,
    key: Option<(KeyId, Arc<KeyLimits>)>,
    user: Option<(UserId, Arc<KeyLimits>)>,
}

impl Charges {
    /// `None` when neither the key nor its user has limits: the request pays nothing.
    pub fn of(key: (KeyId, Option<Arc<KeyLimits>>), user: (UserId, Option<Arc<KeyLimits>>)) -> Option<Charges> {
        let charges = Charges {
            used: key.0,
            key: key.1.map(|l| (key.0, l)),
            user: user.1.map(|l| (user.0, l)),
        };
        (charges.key.is_some() || charges.user.is_some()).then_some(charges)
    }

    /// Each payer, the key first.
    fn each(&self) -> impl Iterator<Item = (Payer, &KeyLimits)> + Clone {
        let key = self.key.iter().map(|(id, l)| (Payer::Key(*id), &**l));
        let user = self.user.iter().map(|(id, l)| (Payer::User(*id), &**l));
        key.chain(user)
    }

    /// Whether any payer has rate limits.
    pub fn has_rate_limits(&self) -> bool {
        self.each().any(|(_, l)| l.has_rate_limits())
    }

    /// The credits left, as far as this node knows: the least of the payers'.
    fn credits_left(&self, now: Timestamp) -> Option<u64> {
        self.each()
            .filter(|(_, l)| l.has_credits())
            .map(|(_, l)| l.credits_left(now))
            .min()
    }

    /// Gives every payer's request back to its rate limits, and `cost` credits to the
    /// first `spent` payers.
    fn undo(&self, spent: usize, cost: u64) {
        for (i, (_, limits)) in self.each().enumerate() {
            limits.give_back();
            if i < spent {
                limits.refund(cost);
            }
        }
    }
}

/// What a limited key's request was admitted with: for the `RateLimit` header and the
/// verify API (where the limits stand is read from them when it is shown, so the hot path
/// allocates nothing for it).
#[derive(Clone)]
pub struct Admitted {
    pub charges: Charges,
    /// When the request was admitted.
    pub at: Timestamp,
    /// Credits left after the request (the least of the key's and its user's); `None`
    /// when neither has credits.
    pub credits: Option<u64>,
}

impl Admitted {
    /// Where each rate limit stands (as of the admission): the key's, then its user's.
    pub fn rates(&self) -> impl Iterator<Item = RateStatus<'_>> + Clone {
        self.charges.each().flat_map(move |(_, l)| l.statuses(self.at))
    }

    /// The payers with rate limits, the key first.
    pub fn rated(&self) -> impl Iterator<Item = &KeyLimits> {
        self.charges.each().map(|(_, l)| l).filter(|l| l.has_rate_limits())
    }
}

/// A request admitted by the rate limits that waits to spend credits: a payer's block on
/// this node ran out, and the next must be reserved from the database first.
pub struct PendingSpend {
    charges: Charges,
    /// Payers before this one have paid already.
    paid: usize,
    at: Timestamp,
    cost: u64,
}

/// What [`Keyward::admit_now`] decided without waiting.
pub enum Admission {
    Admitted(Admitted),
    Pending(PendingSpend),
}

/// Why a limited key's request was refused, as the metrics count it.
#[derive(Clone, Copy)]
pub enum Refusal {
    RateLimited = 0,
    UsageExceeded = 1,
}

impl Keyward {
    /// Admits a request made with a limited key (or a key of a limited user): one from each
    /// rate limit of each payer (all or none), then `cost` credits from each payer's block on
    /// this node. Refused: `RateLimited`; a block that cannot cover the cost: `Pending`, for
    /// [`Self::finish_spend`].
    pub fn admit_now(&self, charges: Charges, cost: u64, now: Timestamp) -> Result<Admission, Error> {
        for (taken, (_, limits)) in charges.each().enumerate() {
            if let Err((limit, wait)) = limits.take(now) {
                for (_, prior) in charges.each().take(taken) {
                    prior.give_back();
                }
                self.metrics().count_refusal(Refusal::RateLimited as usize);
                self.view().record_refusal(charges.used, now, Outcome::RateLimited);
                return Err(Error::RateLimited {
                    limit,
                    retry_after: Duration::from_secs(wait),
                });
            }
        }
        // Where the spending stopped: a block to refill (`Ok`), or a balance found dry.
        let mut stopped = None;
        // The least of the payers' credits left, as their spending found them.
        let mut credits: Option<u64> = None;
        for (paid, (_, limits)) in charges.each().enumerate() {
            match limits.spend(cost, now) {
                Spend::Spent(left) => credits = credits.into_iter().chain(left).min(),
                Spend::Reserve { .. } => stopped = Some(Ok(paid)),
                Spend::Dry => stopped = Some(Err((paid, limits.next_refill(now)))),
            }
            if stopped.is_some() {
                break;
            }
        }
        match stopped {
            None => {}
            Some(Ok(paid)) => {
                return Ok(Admission::Pending(PendingSpend {
                    charges,
                    paid,
                    at: now,
                    cost,
                }));
            }
            Some(Err((paid, retry_after))) => {
                charges.undo(paid, cost);
                self.metrics().count_refusal(Refusal::UsageExceeded as usize);
                self.view().record_refusal(charges.used, now, Outcome::UsageExceeded);
                return Err(Error::UsageExceeded { retry_after });
            }
        }
        Ok(Admission::Admitted(Admitted {
            credits,
            charges,
            at: now,
        }))
    }

    /// Reserves credits for a pending request and spends them, payer by payer; one
    /// reservation at a time per payer on this node, the others waiting for it. Refused
    /// (`UsageExceeded`) when a balance cannot cover the cost; then the payers get back what
    /// the request took.
    pub async fn finish_spend(&self, pending: PendingSpend) -> Result<Admitted, Error> {
        let PendingSpend {
            charges,
            paid,
            at,
            cost,
        } = pending;
        let payers: Vec<(Payer, &KeyLimits)> = charges.each().collect();
        for (i, (payer, limits)) in payers.iter().enumerate().skip(paid) {
            if let Err(refused) = self.reserve_and_spend(*payer, limits, cost).await {
                charges.undo(i, cost);
                // A database that fails to answer refused nothing: not counted.
                if matches!(refused, Error::UsageExceeded { .. }) {
                    self.view().record_refusal(charges.used, at, Outcome::UsageExceeded);
                }
                return Err(refused);
            }
        }
        drop(payers);
        Ok(Admitted {
            credits: charges.credits_left(self.now()),
            charges,
            at,
        })
    }

    async fn reserve_and_spend(&self, payer: Payer, limits: &KeyLimits, cost: u64) -> Result<Option<u64>, Error> {
        let _turn = limits.reserving().await;
        // Sized once per turn; another request may have reserved while this one waited (then
        // nothing is asked).
        let mut most = None;
        // A few rounds at most (each block covers the need it was reserved for).
        for _ in 0..4 {
            let now = self.now();
            let need = match limits.spend(cost, now) {
                Spend::Spent(left) => return Ok(left),
                Spend::Reserve { need } => need,
                Spend::Dry => break,
            };
            let most = *most.get_or_insert_with(|| limits.next_block(now, self.config().credit_block));
            let reserved = self
                .store()
                .reserve_credits(payer, need, most, now)
                .await
                .map_err(|e| e.into_domain("reserving credits failed"))?;
            match reserved {
                Some(r) if r.granted > 0 => limits.add_block(r.granted, r.left, r.period, r.generation, (most, now)),
                Some(r) => {
                    limits.mark_dry(r.left, now);
                    break;
                }
                None => break,
            }
        }
        self.metrics().count_refusal(Refusal::UsageExceeded as usize);
        Err(Error::UsageExceeded {
            retry_after: limits.next_refill(self.now()),
        })
    }

    /// Admits a limited key's request, waiting for a reservation if need be.
    pub async fn admit(&self, charges: Charges, cost: u64) -> Result<Admitted, Error> {
        match self.admit_now(charges, cost, self.now())? {
            Admission::Admitted(admitted) => Ok(admitted),
            Admission::Pending(pending) => self.finish_spend(pending).await,
        }
    }

    /// Where a key's (and its user's) limits stand, charging nothing.
    pub fn limits_now(&self, charges: Charges, now: Timestamp) -> Admitted {
        Admitted {
            credits: charges.credits_left(now),
            charges,
            at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(list: &[(&str, u64, u64)]) -> RateLimits {
        let list = list
            .iter()
            .map(|(name, n, secs)| {
                RateLimit::new((*name).into(), *n, GivenDuration::Seconds(*secs), *secs)
                    .unwrap_or_else(|_| unreachable!())
            })
            .collect();
        RateLimits::parse(list).unwrap_or_else(|_| unreachable!())
    }

    fn state(ratelimits: &RateLimits) -> KeyLimits {
        KeyLimits::for_key(ratelimits, None).unwrap_or_else(|| unreachable!())
    }

    /// How many requests the limits admit at `now`, taking them.
    fn drain(limits: &KeyLimits, now: Timestamp) -> usize {
        (0..10_000).take_while(|_| limits.take(now).is_ok()).count()
    }

    #[test]
    fn a_changed_limit_starts_at_least_as_spent_as_the_limits_it_replaces() {
        let now = Timestamp::from_secs(1_800_000_000);
        let old_limits = limits(&[("requests", 10, 60)]);
        let old = state(&old_limits);
        assert_eq!(drain(&old, now), 10);
        for (new, admitted) in [
            // Renamed: no fresh burst.
            (limits(&[("requests2", 10, 60)]), 0),
            // Tighter under another name, or a longer window: still spent.
            (limits(&[("slow", 5, 3600)]), 0),
            (limits(&[("requests", 10, 3600)]), 0),
            // An unrelated extra limit beside a renamed one adds a constraint only.
            (limits(&[("renamed", 10, 60), ("daily", 1000, 86_400)]), 0),
        ] {
            let changed = KeyLimits::changed(Some(&old), &new, None, now).unwrap_or_else(|| unreachable!());
            assert_eq!(drain(&changed, now), admitted, "{new:?}");
        }
        // Half spent: a renamed limit of twice the window is half spent too.
        let half = state(&old_limits);
        assert_eq!((0..5).filter(|_| half.take(now).is_ok()).count(), 5);
        let longer = KeyLimits::changed(Some(&half), &limits(&[("other", 10, 120)]), None, now)
            .unwrap_or_else(|| unreachable!());
        assert_eq!(drain(&longer, now), 5);
        // A limit nothing replaces starts full.
        let fresh =
            KeyLimits::changed(Some(&old), &limits(&[("big", 100, 1)]), None, now).unwrap_or_else(|| unreachable!());
        assert_eq!(drain(&fresh, now), 100);
    }
}
