//! The wire shapes of a key's rate limits and credits (create, `PATCH`, the key object, the
//! verify API), and their reading into the model's validated values. Fixture keys
//! (`crate::fixtures`) take the same shapes, read by the same functions.

use serde::{Deserialize, Serialize};

use crate::domain::limits::{RateStatus, parse_rate_limit};
use crate::domain::{CreditsChange, Error, Timestamp};
use crate::model::{Credits, GivenDuration, RateLimits, Refill, RefillInterval};

/// A limit's window: a duration such as `"1m"` or `"1 day"`, or a number of seconds;
/// echoed back as given.
#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged, expecting = "a number of seconds or a duration such as \"1m\"")]
pub enum DurationJson {
    Seconds(u64),
    Text(String),
}

/// One named rate limit: up to `limit` requests at once, refilled evenly over `duration`.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitJson {
    /// 1 to 64 letters, digits, `_ . -`; distinct within a key.
    name: String,
    limit: u64,
    /// At least one second.
    duration: DurationJson,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefillJson {
    /// `daily` or `monthly`: at the start of each UTC day or month, `remaining` becomes `amount`.
    interval: String,
    amount: u64,
}

/// A key's credits: what is left as of now and how they are refilled.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreditsJson {
    remaining: u64,
    refill: Option<RefillJson>,
}

/// Credits on create or `PATCH`: set them (`{remaining, refill?}`) or, on `PATCH`, add to
/// them (`{add}`, an admin only).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(
    untagged,
    expecting = "{\"remaining\": n, \"refill\"?: {\"interval\": \"daily\" or \"monthly\", \"amount\": n}}, or {\"add\": n} on PATCH"
)]
pub enum CreditsRequest {
    Set(SetCredits),
    Add(AddCredits),
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCredits {
    remaining: u64,
    refill: Option<RefillJson>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCredits {
    add: u64,
}

/// Reads the rate limits of a request; `None` or `[]`: none.
pub fn parse_ratelimits(list: Option<Vec<RateLimitJson>>) -> Result<RateLimits, Error> {
    let list = list
        .unwrap_or_default()
        .into_iter()
        .map(|l| {
            let given = match l.duration {
                DurationJson::Seconds(s) => GivenDuration::Seconds(s),
                DurationJson::Text(t) => GivenDuration::Text(t),
            };
            parse_rate_limit(l.name, l.limit, given)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RateLimits::parse(list)?)
}

fn parse_set(set: SetCredits) -> Result<Credits, Error> {
    let refill = set
        .refill
        .map(|r| {
            Ok::<_, Error>(Refill {
                interval: RefillInterval::parse(&r.interval)?,
                amount: r.amount,
            })
        })
        .transpose()?;
    Ok(Credits::new(set.remaining, refill)?)
}

/// Reads the credits of a create request (`None`: unlimited); `add` is for `PATCH` only.
pub fn parse_new_credits(credits: Option<CreditsRequest>) -> Result<Option<Credits>, Error> {
    match credits {
        None => Ok(None),
        Some(CreditsRequest::Set(set)) => parse_set(set).map(Some),
        Some(CreditsRequest::Add(_)) => Err(Error::invalid(
            "credits",
            "a new key takes {\"remaining\": n, \"refill\"?: {...}}; \"add\" is for PATCH",
        )),
    }
}

/// Reads the credits of a `PATCH`: absent, `null` (unlimited), set, or add.
pub fn parse_credits_change(credits: Option<Option<CreditsRequest>>) -> Result<Option<CreditsChange>, Error> {
    match credits {
        None => Ok(None),
        Some(None) => Ok(Some(CreditsChange::Set(None))),
        Some(Some(CreditsRequest::Set(set))) => Ok(Some(CreditsChange::Set(Some(parse_set(set)?)))),
        Some(Some(CreditsRequest::Add(add))) => Ok(Some(CreditsChange::Add(Credits::addition(add.add)?))),
    }
}

pub fn ratelimits_json(limits: &RateLimits) -> Vec<RateLimitJson> {
    limits
        .as_slice()
        .iter()
        .map(|l| RateLimitJson {
            name: l.name().to_owned(),
            limit: u64::from(l.limit()),
            duration: match l.given() {
                GivenDuration::Seconds(s) => DurationJson::Seconds(*s),
                GivenDuration::Text(t) => DurationJson::Text(t.clone()),
            },
        })
        .collect()
}

pub fn credits_json(credits: Option<&Credits>) -> Option<CreditsJson> {
    credits.map(|c| CreditsJson {
        remaining: c.remaining,
        refill: c.refill.map(|r| RefillJson {
            interval: r.interval.as_str().to_owned(),
            amount: r.amount,
        }),
    })
}

/// Where one of a key's rate limits stands (the verify API).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateLimitStatusJson {
    name: String,
    limit: u32,
    remaining: u64,
    /// When the limit is whole again (RFC 3339); when nothing remains, when the next
    /// request is admitted.
    reset_at: String,
}

pub fn statuses_json<'a>(statuses: impl Iterator<Item = RateStatus<'a>>, now: Timestamp) -> Vec<RateLimitStatusJson> {
    statuses
        .map(|s| RateLimitStatusJson {
            name: s.name.to_string(),
            limit: s.limit,
            remaining: s.remaining,
            reset_at: now.plus(std::time::Duration::from_secs(s.reset)).rfc3339(),
        })
        .collect()
}

/// The credits the verify API reports: what is left.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreditsLeftJson {
    pub remaining: u64,
}
