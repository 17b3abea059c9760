//! Importing keys keyward did not mint (`POST /v1/keys/import`, `keyward key import`,
//! fixtures with a literal key, the Better Auth import): they are held under their SHA-256,
//! the hash other systems keep, and then work exactly like minted keys.

use crate::domain::access;
use crate::domain::caller::Caller;
use crate::domain::keyward::Keyward;
use crate::domain::{Error, KeyDigest, KeyId, KeyName, KeyRecord, Meta, Scopes, Timestamp, UserId};
use crate::model::{ActiveKeyRow, RateLimits, Sha256Hash};

/// Most keys one import takes.
pub const MAX_IMPORT: usize = 1000;

/// Whose key it is: by id, or by username (or email).
#[derive(Clone, Debug)]
pub enum KeyOwner {
    Id(UserId),
    Login(String),
}

/// One key to import, its values already checked.
#[derive(Debug)]
pub struct ImportKeyRequest {
    pub owner: KeyOwner,
    pub name: KeyName,
    /// The key's SHA-256 (from a given hash, or of a given plaintext key).
    pub sha256: Sha256Hash,
    /// `None`: a new random id.
    pub id: Option<KeyId>,
    /// `None`: never expires.
    pub expires_at: Option<Timestamp>,
    pub scopes: Option<Scopes>,
    pub meta: Option<Meta>,
    pub disabled: bool,
}

impl Keyward {
    /// Admin: stores imported keys, all or none. The ids in input order. Refused: an empty
    /// or oversized batch, an unknown owner, an expiry in the past or beyond the configured
    /// maximum lifetime (400, naming the entry); an id or key already on file (409).
    pub async fn import_keys(&self, caller: &Caller, keys: Vec<ImportKeyRequest>) -> Result<Vec<KeyId>, Error> {
        caller.require_scope("keys:write")?;
        access::require_admin(caller)?;
        if keys.is_empty() || keys.len() > MAX_IMPORT {
            return Err(Error::invalid("keys", format!("must hold 1 to {MAX_IMPORT} keys")));
        }
        let now = self.now();
        let mut records = Vec::with_capacity(keys.len());
        let mut audits = Vec::with_capacity(keys.len());
        for (i, key) in keys.into_iter().enumerate() {
            let record = self
                .imported_record(caller, key, now)
                .map_err(|e| e.at_entry("keys", i))?;
            audits.push(
                caller
                    .audit("key.import", Some(("key", record.id.to_string())), now)
                    .with_detail(format!(
                        "expires_at={}",
                        record.expires_at.map_or_else(|| "never".to_owned(), Timestamp::rfc3339)
                    )),
            );
            records.push(record);
        }
        let view = self.view().clone();
        let stored = self
            .store()
            .insert_keys(records, audits, move |keys| {
                for key in keys {
                    view.insert_key(ActiveKeyRow::of(key), true);
                }
            })
            .await
            .map_err(|e| {
                e.conflict_as(
                    "a key with one of these ids or hashes is already on file",
                    "importing keys failed",
                )
            })?;
        Ok(stored.into_iter().map(|k| k.id).collect())
    }

    /// The record of one key to import, checked against the caller's rights and the
    /// configured lifetimes.
    fn imported_record(&self, caller: &Caller, key: ImportKeyRequest, now: Timestamp) -> Result<KeyRecord, Error> {
        let owner = match &key.owner {
            KeyOwner::Id(id) => self.view().user(*id).filter(|u| !u.deleted),
            KeyOwner::Login(login) => self.view().user_by_login(login),
        }
        .ok_or_else(|| Error::invalid("user", "no such user"))?;
        self.check_lifetime("expires_at", key.expires_at, now)?;
        let grants = access::grants_for(caller, key.scopes.as_ref(), None)?;
        Ok(KeyRecord {
            id: match key.id {
                Some(id) => id,
                None => KeyId::generate()?,
            },
            user_id: owner.id,
            name: Some(key.name.into_string()),
            digest: KeyDigest::imported(key.sha256),
            created_at: now,
            updated_at: now,
            expires_at: key.expires_at,
            last_used_at: None,
            disabled: key.disabled,
            scopes: key.scopes.map(Scopes::into_vec),
            meta: key.meta.map_or_else(|| serde_json::json!({}), Meta::into_value),
            grants,
            ratelimits: RateLimits::default(),
            credits: None,
            credits_period: None,
        })
    }
}
