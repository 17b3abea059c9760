//! Looking after the database and the signing keys: readiness, the schema check, backups,
//! the JWKS and signing-key rotation (the operator's CLI and the health routes).

use super::Error;
use super::keyward::{Keyward, signing_keys};
use crate::model::SigningKey;
use crate::store::StoreErrorKind;

impl Keyward {
    /// The schema version this build writes.
    pub fn schema_version(&self) -> i64 {
        self.store().schema_version()
    }

    /// Schema version and the result of `PRAGMA integrity_check`.
    pub async fn check_database(&self) -> Result<(i64, String), Error> {
        self.store()
            .check()
            .await
            .map_err(|e| e.into_domain("checking the database failed"))
    }

    /// Which storage backend serves this domain ("SQLite", "PostgreSQL").
    pub fn backend(&self) -> &'static str {
        self.store().backend()
    }

    /// An online, consistent copy of the database at `target` (see the README to restore).
    pub async fn backup(
        &self,
        target: &std::path::Path,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<(), Error> {
        self.store()
            .backup_to(target, progress)
            .await
            .map_err(|e| match e.kind {
                StoreErrorKind::Other => Error::Invalid {
                    field: "backup",
                    reason: e.message,
                },
                _ => e.into_domain("the backup failed"),
            })
    }

    /// The public keys that verify API keys (JWKS); none with HS256.
    pub fn jwks(&self) -> Vec<super::tokens::PublicKey> {
        self.signer().jwks()
    }

    /// Adds a new Ed25519 signing key: a server started from now on signs with it, and keeps
    /// accepting and publishing the earlier ones, so keys signed with them stay valid.
    pub async fn rotate_signing_key(&self) -> Result<usize, Error> {
        signing_keys(self.store()).await?;
        let all = self
            .store()
            .add_signing_key(SigningKey::generate()?)
            .await
            .map_err(|e| e.into_domain("storing a signing key failed"))?;
        Ok(all.len())
    }

    /// Whether the database answers.
    /// Whether the database answers and, with several nodes, this node's view of the others'
    /// writes is current (a stale node is not ready: it refuses credentials).
    pub async fn ready(&self) -> bool {
        self.require_fresh().is_ok() && self.store().ping().await.is_ok()
    }
}
