//! Users and keys read from another system's database (`keyward import better-auth`), as
//! that system kept them, before the domain brings them in.

use super::{Sha256Hash, Timestamp};

/// A user of the other system.
#[derive(Clone, Debug)]
pub struct ForeignUser {
    /// Its id there (the keys name their owner by it).
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Its password hash in keyward's stored form (e.g. `passwords::IMPORTED_SCRYPT` and
    /// the hash), `None` when it has no password there (OAuth only).
    pub password_hash: Option<String>,
}

/// An API key of the other system, by the SHA-256 it kept.
#[derive(Clone, Debug)]
pub struct ForeignKey {
    /// The id there of its owner.
    pub owner: String,
    pub name: Option<String>,
    pub sha256: Sha256Hash,
    pub enabled: bool,
    pub expires_at: Option<Timestamp>,
    /// A JSON object, if it had one.
    pub meta: Option<serde_json::Value>,
}
