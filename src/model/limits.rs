//! What a key may spend: its named rate limits and its credits, as given and as stored.
//! How they are enforced (GCRA, credit blocks) is the domain's; this is their shape.

use super::{ModelError, Timestamp};

/// Most rate limits one key may carry.
pub const MAX_RATE_LIMITS: usize = 10;

/// A limit's window as it was given: a string of the duration grammar (`"1m"`) or a number
/// of seconds. Echoed back exactly so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GivenDuration {
    Text(String),
    Seconds(u64),
}

/// One named rate limit: up to `limit` requests at once, refilled evenly over `seconds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    name: String,
    limit: u32,
    given: GivenDuration,
    seconds: u64,
}

impl RateLimit {
    /// `name`: 1 to 64 of `A-Z a-z 0-9 _ . -`; `limit` 1 to 1,000,000,000; a window of at
    /// least a second (`seconds`, read from `given` by the caller's grammar).
    pub fn new(name: String, limit: u64, given: GivenDuration, seconds: u64) -> Result<Self, ModelError> {
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            return Err(ModelError::invalid(
                "ratelimits",
                "each name must be 1 to 64 letters, digits, _ . or -",
            ));
        }
        let limit = u32::try_from(limit)
            .ok()
            .filter(|l| (1..=1_000_000_000).contains(l))
            .ok_or_else(|| ModelError::invalid("ratelimits", "each limit must be 1 to 1000000000"))?;
        if !(1..=366 * 86_400).contains(&seconds) {
            return Err(ModelError::invalid(
                "ratelimits",
                "each duration must be at least 1 second and at most 366 days",
            ));
        }
        Ok(RateLimit {
            name,
            limit,
            given,
            seconds,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn seconds(&self) -> u64 {
        self.seconds
    }

    pub fn given(&self) -> &GivenDuration {
        &self.given
    }

    /// Whether this limit admits no more than `other`: no larger burst, no faster refill.
    pub fn within(&self, other: &RateLimit) -> bool {
        self.limit <= other.limit && self.seconds >= other.seconds
    }
}

/// A key's rate limits: up to [`MAX_RATE_LIMITS`], distinct names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimits(Vec<RateLimit>);

impl RateLimits {
    pub fn parse(list: Vec<RateLimit>) -> Result<Self, ModelError> {
        if list.len() > MAX_RATE_LIMITS {
            return Err(ModelError::invalid("ratelimits", "at most 10 rate limits per key"));
        }
        for (i, l) in list.iter().enumerate() {
            if list[..i].iter().any(|m| m.name == l.name) {
                return Err(ModelError::invalid("ratelimits", "names must be distinct"));
            }
        }
        Ok(RateLimits(list))
    }

    pub fn none() -> Self {
        RateLimits(Vec::new())
    }

    pub fn as_slice(&self) -> &[RateLimit] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether these limits admit no more than `other`: each of `other`'s limits is matched
    /// by one of these that is at least as tight.
    pub fn within(&self, other: &RateLimits) -> bool {
        other.0.iter().all(|o| self.0.iter().any(|s| s.within(o)))
    }

    /// As stored: a JSON list of `{name, limit, duration, seconds}`; `None` when empty.
    pub fn to_column(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let list: Vec<serde_json::Value> = self
            .0
            .iter()
            .map(|l| {
                let duration = match &l.given {
                    GivenDuration::Text(t) => serde_json::Value::from(t.as_str()),
                    GivenDuration::Seconds(s) => serde_json::Value::from(*s),
                };
                serde_json::json!({"name": l.name, "limit": l.limit, "duration": duration, "seconds": l.seconds})
            })
            .collect();
        Some(serde_json::Value::from(list).to_string())
    }

    /// From the column; `Err` when it cannot be read (callers fail closed).
    pub fn from_column(text: Option<&str>) -> Result<Self, String> {
        let Some(text) = text else {
            return Ok(RateLimits::none());
        };
        let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let one = |v: &serde_json::Value| -> Option<RateLimit> {
            let given = match v.get("duration")? {
                serde_json::Value::String(s) => GivenDuration::Text(s.clone()),
                other => GivenDuration::Seconds(other.as_u64()?),
            };
            RateLimit::new(
                v.get("name")?.as_str()?.to_owned(),
                v.get("limit")?.as_u64()?,
                given,
                v.get("seconds")?.as_u64()?,
            )
            .ok()
        };
        list.iter()
            .map(|v| one(v).ok_or_else(|| "a rate limit is malformed".to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map(RateLimits)
    }
}

/// How often credits are refilled: at the start of each UTC day or month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefillInterval {
    Daily,
    Monthly,
}

impl RefillInterval {
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        match text {
            "daily" => Ok(RefillInterval::Daily),
            "monthly" => Ok(RefillInterval::Monthly),
            _ => Err(ModelError::invalid(
                "credits",
                "refill.interval must be \"daily\" or \"monthly\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefillInterval::Daily => "daily",
            RefillInterval::Monthly => "monthly",
        }
    }

    /// The start of the interval `at` falls in (UTC midnight; the first of the month).
    pub fn period_start(self, at: Timestamp) -> Timestamp {
        let day = at.millis().div_euclid(86_400_000);
        match self {
            RefillInterval::Daily => Timestamp::from_millis(day * 86_400_000),
            RefillInterval::Monthly => {
                let date = (time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(day)).date();
                let first = date.replace_day(1).unwrap_or(date);
                // Julian day 2440588 is 1970-01-01.
                Timestamp::from_millis(i64::from(first.to_julian_day() - 2_440_588) * 86_400_000)
            }
        }
    }

    /// The start of the next interval after `at`.
    pub fn next_start(self, at: Timestamp) -> Timestamp {
        match self {
            RefillInterval::Daily => Timestamp::from_millis(self.period_start(at).millis() + 86_400_000),
            // 32 days past the first of any month is in the next month.
            RefillInterval::Monthly => {
                self.period_start(Timestamp::from_millis(self.period_start(at).millis() + 32 * 86_400_000))
            }
        }
    }

    /// Days in a shortest interval, to compare refills.
    fn days(self) -> u64 {
        match self {
            RefillInterval::Daily => 1,
            RefillInterval::Monthly => 28,
        }
    }
}

/// A refill: at each interval's start, `remaining` becomes `amount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refill {
    pub interval: RefillInterval,
    pub amount: u64,
}

/// A key's credits: what is left, and how it is refilled. A key without credits is unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credits {
    pub remaining: u64,
    pub refill: Option<Refill>,
    /// How many times the credits were set or cleared (never moved by an addition, a
    /// reservation or a refill): a block a node reserved under an older generation is void.
    /// 0 for credits as given.
    pub generation: u64,
}

/// Most credits a balance, a refill amount or an addition may be, and a balance with an
/// addition: 2^50 (1,125,899,906,842,624, about 10^15). Both backends store it exactly in
/// a 64-bit integer column, and a balance plus an addition (each at most this) cannot
/// overflow one, so the store never sees a sum it cannot hold.
pub const MAX_CREDITS: u64 = 1 << 50;

fn at_most_max(field: &'static str, n: u64) -> Result<u64, ModelError> {
    if n > MAX_CREDITS {
        return Err(ModelError::invalid(
            field,
            format!("at most {MAX_CREDITS} (2^50) credits"),
        ));
    }
    Ok(n)
}

impl Credits {
    /// `remaining` and the refill's `amount` at most [`MAX_CREDITS`].
    pub fn new(remaining: u64, refill: Option<Refill>) -> Result<Self, ModelError> {
        at_most_max("credits.remaining", remaining)?;
        if let Some(r) = refill {
            at_most_max("credits.refill.amount", r.amount)?;
        }
        Ok(Credits {
            remaining,
            refill,
            generation: 0,
        })
    }

    /// An addition to a balance: at most [`MAX_CREDITS`].
    pub fn addition(n: u64) -> Result<u64, ModelError> {
        at_most_max("credits.add", n)
    }

    /// Whether `n` more credits keep this balance within [`MAX_CREDITS`].
    pub fn check_add(&self, n: u64) -> Result<(), ModelError> {
        at_most_max("credits.add", n)?;
        if self.remaining.saturating_add(n) > MAX_CREDITS {
            return Err(ModelError::invalid(
                "credits.add",
                format!(
                    "the balance ({}) with this addition would pass the most a balance may hold, {MAX_CREDITS} (2^50)",
                    self.remaining
                ),
            ));
        }
        Ok(())
    }

    /// Whether `new` (`None`: unlimited) gives no more than `old` (`None`: unlimited).
    pub fn within(new: Option<&Credits>, old: Option<&Credits>) -> bool {
        match (new, old) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(n), Some(o)) => {
                let refill_within = match (n.refill, o.refill) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(a), Some(b)) => a.amount <= b.amount && a.interval.days() >= b.interval.days(),
                };
                n.remaining <= o.remaining && refill_within
            }
        }
    }

    /// Applies a refill due by `now` to a balance stored for the refill period that starts
    /// at `period` (which it then moves on): whether one was due.
    pub fn refill_due(&mut self, period: &mut Option<Timestamp>, now: Timestamp) -> bool {
        let Some(refill) = self.refill else { return false };
        let current = refill.interval.period_start(now);
        if period.is_some_and(|p| p >= current) {
            return false;
        }
        self.remaining = refill.amount;
        *period = Some(current);
        true
    }

    /// The refill as stored: `{"interval","amount"}`, `None` without one.
    pub fn refill_column(&self) -> Option<String> {
        self.refill
            .map(|r| serde_json::json!({"interval": r.interval.as_str(), "amount": r.amount}).to_string())
    }

    /// From the columns: `remaining` `None` is unlimited; an unreadable refill is none.
    pub fn from_columns(remaining: Option<i64>, refill: Option<&str>, generation: i64) -> Option<Credits> {
        let remaining = u64::try_from(remaining?).unwrap_or(0);
        let refill = refill
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| {
                Some(Refill {
                    interval: RefillInterval::parse(v.get("interval")?.as_str()?).ok()?,
                    amount: v.get("amount")?.as_u64()?,
                })
            });
        Some(Credits {
            remaining,
            refill,
            generation: u64::try_from(generation).unwrap_or(0),
        })
    }
}

/// The first block a node reserves of a payer's credits, and the smallest while
/// `keys.credit_block` allows it.
pub const FIRST_CREDIT_BLOCK: u64 = 64;
/// How long (ms) a block is sized to last, at the pace the last one was spent: long enough
/// that a key used in bursts does not reserve (a durable write) in each burst, and well
/// under the minute after which a node gives an unspent block back.
const BLOCK_LASTS_MS: u64 = 30_000;

/// The most a node reserves of a payer's credits next, from the size it asked for last
/// (`0`: never) and how long ago (ms): what the payer would spend in 30 s at the pace it
/// spent that block (a block of 64 spent in 3.84 s: 500 next; a block of 512 that lasted a
/// minute: 256); never less than [`FIRST_CREDIT_BLOCK`] nor more than `most`
/// (`keys.credit_block`). So a busy key pays about one durable write per 30 seconds of
/// its traffic (one per `most` requests past `most` / 30 a second), from its second block;
/// what a crash loses of its balance (the unspent block) is never more than `most`. A block spent within the same
/// millisecond makes the next the most allowed; a clock moved back keeps the last size.
pub fn next_block_size(last: u64, since_ms: i64, most: u64) -> u64 {
    let most = most.max(1);
    let least = FIRST_CREDIT_BLOCK.min(most);
    if last == 0 {
        return least;
    }
    let next = match u64::try_from(since_ms) {
        Ok(0) => most,
        Ok(since) => {
            let paced = u128::from(last) * u128::from(BLOCK_LASTS_MS) / u128::from(since);
            u64::try_from(paced).unwrap_or(u64::MAX)
        }
        Err(_) => last,
    };
    next.clamp(least, most)
}

/// How many credits a node reserves at once from a balance of `remaining`, `need` at least:
/// an eighth of the balance, at most `most`, so blocks shrink as the balance nears zero and
/// the last credits are exact. 0 when the balance cannot cover `need`.
pub fn credit_block(remaining: u64, need: u64, most: u64) -> u64 {
    if remaining < need.max(1) {
        return 0;
    }
    (remaining / 8).clamp(1, most.max(1)).max(need).min(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, n: u64, secs: u64) -> RateLimit {
        RateLimit::new(name.into(), n, GivenDuration::Seconds(secs), secs).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn rate_limits_round_trip_through_their_column() {
        let limits = RateLimits::parse(vec![
            RateLimit::new("requests".into(), 100, GivenDuration::Text("1m".into()), 60)
                .unwrap_or_else(|_| unreachable!()),
            limit("burst", 10, 1),
        ])
        .unwrap_or_else(|_| unreachable!());
        let column = limits.to_column();
        assert_eq!(RateLimits::from_column(column.as_deref()), Ok(limits));
        assert_eq!(RateLimits::from_column(None), Ok(RateLimits::none()));
        assert!(RateLimits::from_column(Some("[{}]")).is_err());
    }

    #[test]
    fn bad_rate_limits_are_refused() {
        assert!(RateLimit::new("a b".into(), 1, GivenDuration::Seconds(1), 1).is_err());
        assert!(RateLimit::new("a".into(), 0, GivenDuration::Seconds(1), 1).is_err());
        assert!(RateLimit::new("a".into(), 1, GivenDuration::Seconds(0), 0).is_err());
        assert!(RateLimits::parse(vec![limit("a", 1, 1), limit("a", 2, 1)]).is_err());
        assert!(RateLimits::parse((0..11).map(|i| limit(&format!("l{i}"), 1, 1)).collect()).is_err());
    }

    #[test]
    fn tighter_limits_are_within_looser_ones() {
        let old = RateLimits::parse(vec![limit("a", 100, 60)]).unwrap_or_else(|_| unreachable!());
        let tighter = RateLimits::parse(vec![limit("b", 50, 60), limit("c", 5, 1)]).unwrap_or_else(|_| unreachable!());
        let looser = RateLimits::parse(vec![limit("a", 200, 60)]).unwrap_or_else(|_| unreachable!());
        assert!(tighter.within(&old));
        assert!(!looser.within(&old));
        assert!(!RateLimits::none().within(&old));
        assert!(old.within(&RateLimits::none()));
    }

    #[test]
    fn credits_compare_by_remaining_and_refill() {
        let c = |remaining, refill: Option<(RefillInterval, u64)>| Credits {
            remaining,
            refill: refill.map(|(interval, amount)| Refill { interval, amount }),
            generation: 0,
        };
        let old = c(100, Some((RefillInterval::Daily, 100)));
        assert!(Credits::within(Some(&c(50, None)), Some(&old)));
        assert!(Credits::within(
            Some(&c(100, Some((RefillInterval::Monthly, 100)))),
            Some(&old)
        ));
        assert!(!Credits::within(Some(&c(101, None)), Some(&old)));
        assert!(!Credits::within(
            Some(&c(10, Some((RefillInterval::Daily, 101)))),
            Some(&old)
        ));
        assert!(!Credits::within(None, Some(&old)));
        assert!(Credits::within(None, None));
    }

    #[test]
    fn refill_periods_start_at_utc_boundaries() {
        // 2026-03-15T13:00:00Z
        let t = Timestamp::from_millis(1_773_579_600_000);
        assert_eq!(RefillInterval::Daily.period_start(t).rfc3339(), "2026-03-15T00:00:00Z");
        assert_eq!(
            RefillInterval::Monthly.period_start(t).rfc3339(),
            "2026-03-01T00:00:00Z"
        );
        assert_eq!(RefillInterval::Monthly.next_start(t).rfc3339(), "2026-04-01T00:00:00Z");
        assert_eq!(RefillInterval::Daily.next_start(t).rfc3339(), "2026-03-16T00:00:00Z");
    }

    #[test]
    fn blocks_shrink_near_zero_and_never_exceed_the_balance() {
        assert_eq!(credit_block(500, 1, 64), 62);
        assert_eq!(credit_block(10_000, 1, 64), 64);
        assert_eq!(credit_block(7, 1, 64), 1);
        assert_eq!(credit_block(0, 1, 64), 0);
        assert_eq!(credit_block(5, 6, 64), 0);
        assert_eq!(credit_block(100, 30, 64), 30);
    }

    #[test]
    fn blocks_follow_the_pace_of_the_last_within_their_bounds() {
        // The first block; then what the last block's pace spends in 30 s.
        assert_eq!(next_block_size(0, 0, 1024), 64);
        assert_eq!(next_block_size(64, 3_840, 1024), 500);
        assert_eq!(next_block_size(500, 30_000, 1024), 500);
        assert_eq!(next_block_size(64, 1_280, 1024), 1024);
        assert_eq!(next_block_size(512, 4_999, 1024), 1024);
        assert_eq!(next_block_size(1024, 10, 1024), 1024);
        // A block that lasted long makes the next smaller, down to 64.
        assert_eq!(next_block_size(512, 60_000, 1024), 256);
        assert_eq!(next_block_size(512, 180_000, 1024), 85);
        assert_eq!(next_block_size(64, 3_600_000, 1024), 64);
        // A smaller `keys.credit_block` bounds every block, the first included.
        assert_eq!(next_block_size(0, 0, 10), 10);
        assert_eq!(next_block_size(10, 1, 10), 10);
        assert_eq!(next_block_size(0, 0, 0), 1);
        // Spent within the same millisecond: the most allowed. A clock moved back keeps the
        // last size, within the bounds.
        assert_eq!(next_block_size(64, 0, 1024), 1024);
        assert_eq!(next_block_size(128, -5, 1024), 128);
        assert_eq!(next_block_size(4096, -5, 1024), 1024);
        assert_eq!(next_block_size(u64::MAX, 1, u64::MAX), u64::MAX);
    }
}
