//! The domain: users, keys, credentials and expiry. It knows nothing of HTTP and holds no
//! SQL; it reaches the database only through `crate::store`.
//!
//! [`Keyward`] is the one entry point every protocol (native API, dialects, CLI) calls.

pub mod access;
mod error;
mod expiry;
mod ids;
mod keys;
mod passwords;
mod secret;
mod service;
pub mod sessions;
mod time;
mod tokens;
mod users;
mod view;

pub mod credentials;

pub use error::Error;
pub use expiry::{EXPIRES_ACCEPTS, Expiry, Lifetime, byte_size_text, duration_text, parse_byte_size, parse_grace};
pub(crate) use ids::hex;
pub use ids::{KeyId, UserId};
pub use keys::{
    KeyDigest, KeyName, KeyPage, KeyPatch, KeyRecord, Meta, MintedKey, NewKeyRequest, PRIVILEGED_SCOPES,
    RevocationFeed, Scopes, Verification, VerifyCode, is_privileged,
};
pub use passwords::Password;
pub use secret::Secret;
pub use service::{Caller, DomainConfig, Keyward, Via};
pub use time::Timestamp;
pub use users::{AuditPage, Email, KeyTarget, NewUserRequest, Role, UserPage, UserRecord, UserUpdate, Username};
pub use view::KeyCheck;
