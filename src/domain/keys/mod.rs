//! API keys: what the protocols ask of the domain and get back. The operations are
//! `operations.rs` (make, list, read, change, rotate, revoke) and `verification.rs` (the
//! verify API and the revocation feeds); who may do which is `access.rs`.

mod import;
mod operations;

mod usage;
pub(super) use operations::{create_detail, limits_detail};
mod verification;

use super::access::Held;
use super::{Expiry, FeedEntry, KeyId, KeyName, KeyRecord, Meta, Scopes, Secret};
use crate::model::{Credits, RateLimits};
pub use crate::store::CreditsChange;
pub use import::{ImportKeyRequest, KeyOwner, MAX_IMPORT};
pub use usage::{Granularity, KeyUsage};

#[derive(Default)]
pub struct NewKeyRequest {
    pub name: Option<KeyName>,
    /// Without a name, name the key `key#N` (seed 002), N counted when it is stored.
    pub numbered: bool,
    /// `None`: the configured default lifetime.
    pub expires: Option<Expiry>,
    /// `None`: the key acts as its user.
    pub scopes: Option<Scopes>,
    pub meta: Option<Meta>,
    /// Named rate limits (none when empty).
    pub ratelimits: RateLimits,
    /// `None`: unlimited.
    pub credits: Option<Credits>,
    /// The key this one replaces (rotation): its privileged scopes may be carried over,
    /// granted only as they were.
    pub replaces: Option<Held>,
}

/// What `PATCH` changes about a key; `None` leaves a field as it is.
#[derive(Default)]
pub struct KeyPatch {
    /// `Some(None)` clears the name.
    pub name: Option<Option<KeyName>>,
    pub disabled: Option<bool>,
    /// `Some(None)`: the key acts as its user again.
    pub scopes: Option<Option<Scopes>>,
    /// Replaces the rate limits (empty: none).
    pub ratelimits: Option<RateLimits>,
    pub credits: Option<CreditsChange>,
}

/// A key just made: its record and the key itself, which is shown this once.
pub struct MintedKey {
    pub record: KeyRecord,
    pub secret: Secret,
}

pub struct KeyPage {
    pub keys: Vec<KeyRecord>,
    pub total: u64,
    pub next_cursor: Option<KeyId>,
}

/// Largest (and default) page of the revocation feed.
pub const FEED_PAGE: u32 = 1000;

/// A page of the offline revocation feed.
pub struct RevocationFeed {
    pub entries: Vec<FeedEntry>,
    /// The cursor to ask with next time.
    pub next: String,
    pub more: bool,
}

/// The verify API's verdict codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyCode {
    Valid,
    NotFound,
    Expired,
    Revoked,
    Disabled,
    InsufficientScope,
    /// One of the key's rate limits refuses it now.
    RateLimited,
    /// The key has no credits left (for this cost).
    UsageExceeded,
}

impl VerifyCode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyCode::Valid => "VALID",
            VerifyCode::NotFound => "NOT_FOUND",
            VerifyCode::Expired => "EXPIRED",
            VerifyCode::Revoked => "REVOKED",
            VerifyCode::Disabled => "DISABLED",
            VerifyCode::InsufficientScope => "INSUFFICIENT_SCOPE",
            VerifyCode::RateLimited => "RATE_LIMITED",
            VerifyCode::UsageExceeded => "USAGE_EXCEEDED",
        }
    }
}

/// What `verify_key` found.
pub struct Verification {
    pub code: VerifyCode,
    /// The key's record, when it is one of ours and not revoked.
    pub key: Option<KeyRecord>,
    pub username: Option<String>,
    /// For a key with rate limits or credits: where they stand after this check.
    pub limits: Option<super::limits::Admitted>,
}
