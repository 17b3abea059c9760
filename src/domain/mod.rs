//! The domain: users, keys, credentials and expiry. It knows nothing of HTTP and holds no
//! SQL; it reaches the database only through the store's seam (`crate::store::Store`) and
//! never names a backend.
//!
//! [`Keyward`] is the one entry point every protocol (native API, dialects, CLI) calls;
//! `access.rs` holds every rule of who may do what, `clock.rs` the one source of "now".
//! The values and records it speaks in are the model's (`crate::model`), re-exported here
//! so the protocols name them as the domain's.

pub mod access;
mod background;
mod caller;
mod clock;
pub mod credentials;
mod error;
mod expiry;
pub mod fixtures;
mod keys;
mod keyward;
pub mod limits;
mod maintenance;
pub mod moving_in;
mod paging;
mod passwords;
mod secret;
pub mod sessions;
mod throttle;
mod tokens;
mod usage;
mod users;
mod view;

pub use crate::model::{
    AuditLine, AuditRecord, Email, FeedEntry, FeedState, HashEncoding, KeyDigest, KeyId, KeyName, KeyRecord,
    LiteralKey, Meta, ModelError, Outcome, Role, Scopes, Sha256Hash, Timestamp, UsageCounts, UserId, UserRecord,
    Username, hex,
};
pub use access::{PRIVILEGED_SCOPES, is_privileged};
pub use caller::{Caller, Via};
pub use clock::{Clock, TestClock};
pub use error::Error;
pub use expiry::{EXPIRES_ACCEPTS, Expiry, Lifetime, byte_size_text, duration_text, parse_byte_size, parse_grace};
pub use keys::{
    CreditsChange, Granularity, ImportKeyRequest, KeyOwner, KeyPage, KeyPatch, KeyUsage, MAX_IMPORT, MintedKey,
    NewKeyRequest, RevocationFeed, Verification, VerifyCode,
};
pub use keyward::{DomainConfig, Keyward};
pub use passwords::Password;
pub use secret::Secret;
pub use users::{AuditPage, KeyTarget, NewUserRequest, UserPage, UserUpdate};
pub use view::KeyCheck;
