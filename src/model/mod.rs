//! The model: the ids, times, digests, validated values and records that every layer
//! shares (store, domain, protocols).
//!
//! The leaf of the crate: it imports nothing of it, so any layer may use it and a second
//! storage backend needs nothing of the domain. It holds data and the rules of its shape
//! (what a key name or a username may be); who may do what, and when, is the domain's.

mod audit;
mod error;
mod feed;
mod fixtures;
mod foreign;
mod ids;
mod keys;
mod limits;
mod rendered;
mod sessions;
mod signing;
mod throttle;
mod time;
mod usage;
mod users;

pub use audit::{AuditLine, AuditRecord};
pub use error::ModelError;
pub use feed::{FeedEntry, FeedState};
pub use fixtures::FixtureItem;
pub use foreign::{ForeignKey, ForeignUser};
pub use ids::{KeyId, UserId, hex, os_random, push_hex};
pub use keys::{ActiveKeyRow, HashEncoding, KeyDigest, KeyName, KeyRecord, LiteralKey, Meta, Scopes, Sha256Hash};
pub use limits::{
    Credits, GivenDuration, MAX_CREDITS, MAX_RATE_LIMITS, RateLimit, RateLimits, Refill, RefillInterval, credit_block,
    next_block_size,
};
pub use rendered::Rendered;
pub use sessions::SessionRecord;
pub use signing::SigningKey;
pub use throttle::{ThrottleCheck, ThrottleRules};
pub use time::Timestamp;
pub use usage::{HOUR_MS, Outcome, UsageBucket, UsageCounts, hour_of};
pub use users::{Email, Role, UserRecord, Username};
