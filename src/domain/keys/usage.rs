//! A key's usage over time: hourly buckets from the database, with what this node has
//! counted in memory and not yet written added on top (a use shows at once).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::domain::access;
use crate::domain::caller::Caller;
use crate::domain::keyward::Keyward;
use crate::domain::usage::hour_start;
use crate::domain::{Error, KeyId, KeyRecord, Timestamp, UserId};
use crate::model::{HOUR_MS, KeyDigest, Outcome, UsageCounts};

/// How finely usage is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn parse(text: &str) -> Option<Granularity> {
        match text {
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    const fn millis(self) -> i64 {
        match self {
            Granularity::Hour => HOUR_MS,
            Granularity::Day => 24 * HOUR_MS,
        }
    }

    /// The start of the bucket `t` falls in (UTC).
    pub fn floor(self, t: Timestamp) -> Timestamp {
        Timestamp::from_millis(t.millis().div_euclid(self.millis()) * self.millis())
    }

    /// The start of the first bucket that starts at `t` or later.
    fn ceil(self, t: Timestamp) -> Timestamp {
        self.floor(Timestamp::from_millis(t.millis().saturating_add(self.millis() - 1)))
    }
}

/// The window asked for when none is given: the last 30 days.
pub const DEFAULT_USAGE_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// Most buckets one answer holds (over a year of days, or 15 weeks of hours).
pub const MAX_USAGE_BUCKETS: i64 = 2_500;

/// A key's usage: one bucket per hour or day of the window, empty ones included.
pub struct KeyUsage {
    pub key_id: KeyId,
    pub granularity: Granularity,
    pub buckets: Vec<(Timestamp, UsageCounts)>,
}

impl Keyward {
    /// `GET /v1/keys/{id}/usage`: the key's uses and refusals by hour or day in `[from, to)`
    /// (default: the last 30 days up to now), widened to whole buckets. The owner or an
    /// admin may ask, as for the key itself; a revoked key's usage stays readable.
    pub async fn key_usage(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        id: KeyId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        granularity: Granularity,
    ) -> Result<KeyUsage, Error> {
        caller.require_scope("keys:read")?;
        let owner = self.owner_for(caller, owner)?;
        let digest = self.usage_subject(owner, id).await?;
        let now = self.now();
        let to = to.unwrap_or(now);
        let from = from.unwrap_or_else(|| to.minus(DEFAULT_USAGE_WINDOW));
        if from >= to {
            return Err(Error::invalid(
                "from",
                "must be before `to` (which is now when not given)",
            ));
        }
        let first = granularity.floor(from);
        let end = granularity.ceil(to);
        let count = (end.millis() - first.millis()) / granularity.millis();
        if count > MAX_USAGE_BUCKETS {
            let hint = match granularity {
                Granularity::Hour => "use `granularity=day`, or a shorter window",
                Granularity::Day => "ask for a shorter window",
            };
            return Err(Error::invalid(
                "from",
                format!("the window holds {count} buckets; at most {MAX_USAGE_BUCKETS} ({hint})"),
            ));
        }
        let stored = self
            .store()
            .key_usage(id, first, end)
            .await
            .map_err(|e| e.into_domain("reading the key's usage failed"))?;
        let mut sums: BTreeMap<i64, UsageCounts> = BTreeMap::new();
        let mut add = |start: Timestamp, counts: &UsageCounts| {
            if start >= first && start < end {
                sums.entry(granularity.floor(start).millis()).or_default().add(counts);
            }
        };
        for bucket in &stored {
            add(bucket.start, &bucket.counts);
        }
        for (hour, counts) in self.view().pending_usage(id, digest.as_ref()) {
            add(hour_start(hour), &counts);
        }
        let buckets = (0..count)
            .map(|i| {
                let start = first.millis() + i * granularity.millis();
                (
                    Timestamp::from_millis(start),
                    sums.get(&start).copied().unwrap_or_default(),
                )
            })
            .collect();
        Ok(KeyUsage {
            key_id: id,
            granularity,
            buckets,
        })
    }

    /// Each of `keys`' valid uses in the last 24 hours (by whole hours: the current one and
    /// the 23 before it), written or only counted in memory so far. Admins only (the
    /// all-keys page sorts by it).
    pub async fn uses_in_last_day(&self, caller: &Caller, keys: &[KeyRecord]) -> Result<HashMap<KeyId, i64>, Error> {
        caller.require_scope("keys:read")?;
        access::require_admin(caller)?;
        let since = Granularity::Hour
            .floor(self.now())
            .minus(Duration::from_secs(23 * 3600));
        let mut uses: HashMap<KeyId, i64> = self
            .store()
            .valid_uses_since(since)
            .await
            .map_err(|e| e.into_domain("reading key usage failed"))?
            .into_iter()
            .collect();
        for key in keys {
            let pending: i64 = self
                .view()
                .pending_usage(key.id, Some(&key.digest))
                .iter()
                .filter(|(hour, _)| hour_start(*hour) >= since)
                .map(|(_, counts)| counts.get(Outcome::Valid))
                .sum();
            *uses.entry(key.id).or_default() += pending;
        }
        let shown: std::collections::HashSet<KeyId> = keys.iter().map(|k| k.id).collect();
        uses.retain(|id, _| shown.contains(id));
        Ok(uses)
    }

    /// Whether `owner` has (or had: revoked) key `id`, and its digest while it is live.
    async fn usage_subject(&self, owner: UserId, id: KeyId) -> Result<Option<KeyDigest>, Error> {
        let live = self
            .store()
            .find_key(owner, id)
            .await
            .map_err(|e| e.into_domain("reading the key failed"))?;
        if let Some(key) = live {
            return Ok(Some(key.digest));
        }
        let described = self
            .store()
            .describe_keys(vec![id])
            .await
            .map_err(|e| e.into_domain("reading the key failed"))?;
        match described.first() {
            Some(d) if d.owner == owner => Ok(None),
            _ => Err(Error::NotFound),
        }
    }
}
