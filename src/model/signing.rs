//! The Ed25519 keys that sign API keys when keys are signed with EdDSA (published in the
//! JWKS). Kept in the database, so every server on it signs and checks the same keys.

use std::fmt;

use super::{ModelError, os_random};

/// An Ed25519 signing key: its 32-byte seed. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> Result<Self, ModelError> {
        let mut seed = [0u8; 32];
        os_random(&mut seed)?;
        Ok(SigningKey(seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        SigningKey(seed)
    }

    pub fn seed(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}
