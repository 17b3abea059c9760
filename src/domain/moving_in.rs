//! Moving in from another system (`keyward import better-auth`): its users, their password
//! hashes (verified as they are at the next sign-in, then replaced by argon2id) and their
//! API keys (held under the SHA-256 the other system kept), as the actor `import`.
//! Idempotent: a user already here (same email) and a key already here (same hash) are
//! left as they are, so a second run brings in nothing twice.

use std::collections::HashMap;

use super::keyward::Keyward;
use super::passwords::NO_PASSWORD;
use super::{Email, Error, ImportKeyRequest, KeyDigest, KeyName, KeyOwner, MAX_IMPORT, Meta, UserId, Username};
use crate::model::{ForeignKey, ForeignUser};

/// What a move-in did.
#[derive(Debug, Default)]
pub struct MoveInReport {
    pub users_added: usize,
    pub users_present: usize,
    /// Users added without a password (they signed in by other means): an admin sets one.
    pub users_without_password: Vec<String>,
    pub keys_added: usize,
    pub keys_present: usize,
    /// Why each record left out was left out.
    pub notes: Vec<String>,
}

impl Keyward {
    /// Brings in `users` and `keys` read from another system.
    pub async fn move_in(&self, users: Vec<ForeignUser>, keys: Vec<ForeignKey>) -> Result<MoveInReport, Error> {
        let caller = self.operator_named("import");
        let mut report = MoveInReport::default();
        let mut ids: HashMap<String, UserId> = HashMap::new();
        for user in users {
            let email = user.email.as_deref().and_then(|e| Email::parse(e).ok());
            if let Some(existing) = email.as_ref().and_then(|e| self.view().user_by_login(e.as_str())) {
                ids.insert(user.id, existing.id);
                report.users_present += 1;
                continue;
            }
            let Some(username) = self.free_username(&user) else {
                report.notes.push(format!(
                    "user {}: no username could be made for them; left out",
                    user.id
                ));
                continue;
            };
            let hash = match user.password_hash {
                Some(hash) => hash,
                None => {
                    report.users_without_password.push(username.as_str().to_owned());
                    NO_PASSWORD.to_owned()
                }
            };
            let made = self.import_user(&caller, username, email, hash).await?;
            ids.insert(user.id, made.id);
            report.users_added += 1;
        }
        let now = self.now();
        let mut requests = Vec::new();
        for key in keys {
            let Some(&owner) = ids.get(&key.owner) else {
                report
                    .notes
                    .push(format!("a key of {}: no such user imported; left out", key.owner));
                continue;
            };
            if key.expires_at.is_some_and(|t| t <= now) {
                report.notes.push(format!("a key of {}: expired; left out", key.owner));
                continue;
            }
            let on_file = self
                .store()
                .find_key_by_digest(KeyDigest::imported(key.sha256))
                .await
                .map_err(|e| e.into_domain("reading the key failed"))?;
            if on_file.is_some() {
                report.keys_present += 1;
                continue;
            }
            let name = key.name.as_deref().and_then(|n| KeyName::parse(n).ok());
            requests.push(ImportKeyRequest {
                owner: KeyOwner::Id(owner),
                name: match name {
                    Some(name) => name,
                    None => KeyName::parse("better-auth key")?,
                },
                sha256: key.sha256,
                id: None,
                expires_at: key.expires_at,
                scopes: None,
                meta: key.meta.and_then(|m| Meta::parse(m).ok()),
                disabled: !key.enabled,
            });
        }
        while !requests.is_empty() {
            let rest = requests.split_off(requests.len().min(MAX_IMPORT));
            let batch = std::mem::replace(&mut requests, rest);
            report.keys_added += self.import_keys(&caller, batch).await?.len();
        }
        Ok(report)
    }

    /// A username for a user of another system that no one here has: their name if it is
    /// one, else the local part of their email, else `user`; with `-2`, `-3`, … if taken.
    fn free_username(&self, user: &ForeignUser) -> Option<Username> {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '-'
                    }
                })
                .take(56)
                .collect::<String>()
                .trim_matches('-')
                .to_owned()
        };
        let base = user
            .name
            .as_deref()
            .and_then(|n| Username::parse(n).ok())
            .map(|u| u.as_str().to_owned())
            .or_else(|| user.email.as_deref().and_then(|e| e.split('@').next()).map(clean))
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "user".to_owned());
        (1..1000)
            .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
            .filter_map(|candidate| Username::parse(&candidate).ok())
            .find(|candidate| self.view().user_by_login(candidate.as_str()).is_none())
    }
}
