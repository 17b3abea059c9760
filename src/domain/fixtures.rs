//! Fixtures for local development: users and keys declared in a file (read by
//! `crate::fixtures`), applied idempotently as the actor `fixtures`.
//!
//! - Users are upserted by username; one the fixtures create gets an id derived from its
//!   username, so a fresh database gets the same ids.
//! - Keys are upserted by id. A literal key is stored as an imported key (its SHA-256); a
//!   key without one is a keyward JWT signed from its id, its owner's id and the fixed
//!   [`FIXTURE_IAT`]: with the same configured secret, byte-identical on every fresh start.
//! - What an apply creates is recorded, so `prune` removes only that, and only once the file
//!   no longer lists it.

use std::collections::HashSet;

use super::caller::Caller;
use super::keyward::Keyward;
use super::users::UserUpdate;
use super::{Email, Error, KeyDigest, KeyId, KeyName, KeyRecord, Meta, Password, Role, Scopes, Secret, Timestamp};
use super::{UserId, UserRecord, Username};
use crate::model::{ActiveKeyRow, Credits, FixtureItem, LiteralKey, RateLimits};
use crate::store::{CreditsChange, KeyChanges};

/// The `iat` of every minted fixture key: 2025-01-01T00:00:00Z.
pub const FIXTURE_IAT: i64 = 1_735_689_600;

pub struct FixtureUser {
    pub username: Username,
    pub password: Password,
    pub email: Option<Email>,
    pub role: Role,
}

/// A fixture key's secret: given, or minted from its id.
pub enum FixtureSecret {
    Literal(LiteralKey),
    Minted,
}

pub struct FixtureKey {
    /// The owner's username (or email).
    pub user: String,
    pub name: KeyName,
    pub id: KeyId,
    pub secret: FixtureSecret,
    pub scopes: Option<Scopes>,
    pub meta: Option<Meta>,
    /// `None`: never.
    pub expires_at: Option<Timestamp>,
    pub ratelimits: RateLimits,
    /// `None`: unlimited.
    pub credits: Option<Credits>,
}

#[derive(Default)]
pub struct Fixtures {
    pub users: Vec<FixtureUser>,
    pub keys: Vec<FixtureKey>,
}

impl Fixtures {
    /// Whether a key is minted (and so needs a configured secret to be reproducible).
    pub fn mints_keys(&self) -> bool {
        self.keys.iter().any(|k| matches!(k.secret, FixtureSecret::Minted))
    }
}

/// The id fixtures give a user they create: derived from the username.
pub fn fixture_user_id(username: &Username) -> UserId {
    let derived = blake3::derive_key(
        "keyward fixtures user id v1",
        username.as_str().to_ascii_lowercase().as_bytes(),
    );
    UserId::from_bytes(first_12(&derived))
}

/// The id of a literal fixture key the file gives no id: derived from the key's SHA-256.
pub fn fixture_key_id(key: &LiteralKey) -> KeyId {
    let derived = blake3::derive_key("keyward fixtures key id v1", key.sha256().as_bytes());
    KeyId::from_bytes(first_12(&derived))
}

fn first_12(bytes: &[u8; 32]) -> [u8; 12] {
    let mut out = [0u8; 12];
    out.copy_from_slice(&bytes[..12]);
    out
}

impl Keyward {
    /// The actor of fixtures: an operator (admin, no user) named `fixtures` in the audit trail.
    pub fn fixtures_caller(&self) -> Caller {
        self.operator_named("fixtures")
    }

    /// The key a fixture stands for, as `keyward fixtures keys` prints it: the literal, or
    /// the JWT minted from its id for its owner (the user on file, or the id fixtures give
    /// a user they have not created yet).
    pub fn fixture_key_secret(&self, fixtures: &Fixtures, key: &FixtureKey) -> Result<Secret, Error> {
        match &key.secret {
            FixtureSecret::Literal(literal) => Ok(Secret::new(literal.reveal())),
            FixtureSecret::Minted => {
                let owner = self.fixture_owner(fixtures, &key.user)?;
                self.signer()
                    .sign_key(key.id, owner, Timestamp::from_secs(FIXTURE_IAT), key.expires_at)
            }
        }
    }

    fn fixture_owner(&self, fixtures: &Fixtures, login: &str) -> Result<UserId, Error> {
        if let Some(user) = self.view().user_by_login(login) {
            return Ok(user.id);
        }
        fixtures
            .users
            .iter()
            .find(|u| u.username.as_str().eq_ignore_ascii_case(login))
            .map(|u| fixture_user_id(&u.username))
            .ok_or_else(|| Error::invalid("user", format!("no user {login:?} on file or in the fixtures")))
    }

    /// Applies fixtures: creates what is missing, brings what differs in line, and with
    /// `prune` removes what an earlier apply created that the file no longer lists. One
    /// line per change (empty: nothing changed).
    pub async fn apply_fixtures(&self, fixtures: &Fixtures, prune: bool) -> Result<Vec<String>, Error> {
        let caller = self.fixtures_caller();
        let mut changes = Vec::new();
        let made: HashSet<FixtureItem> = self
            .store()
            .fixture_items()
            .await
            .map_err(|e| e.into_domain("reading the fixtures on file failed"))?
            .into_iter()
            .collect();
        let mut listed = HashSet::new();
        for user in &fixtures.users {
            let id = self.apply_fixture_user(&caller, user, &mut changes).await?;
            listed.insert(FixtureItem::User(id));
        }
        for key in &fixtures.keys {
            self.apply_fixture_key(&caller, fixtures, key, &mut changes).await?;
            listed.insert(FixtureItem::Key(key.id));
        }
        if prune {
            // Keys first: removing a user revokes their keys, which would then not be named.
            let mut gone: Vec<FixtureItem> = made.difference(&listed).copied().collect();
            gone.sort_by_key(|item| matches!(item, FixtureItem::User(_)));
            for item in gone {
                self.prune_fixture(&caller, item, &mut changes).await?;
            }
        }
        Ok(changes)
    }

    async fn apply_fixture_user(
        &self,
        caller: &Caller,
        user: &FixtureUser,
        changes: &mut Vec<String>,
    ) -> Result<UserId, Error> {
        let name = user.username.as_str();
        let Some(existing) = self
            .view()
            .user_by_login(name)
            .filter(|u| u.username.eq_ignore_ascii_case(name))
        else {
            let mut id = fixture_user_id(&user.username);
            if self.view().user(id).is_some() {
                // The derived id belongs to a user deleted since: a fresh one.
                id = UserId::generate()?;
            }
            let request = super::NewUserRequest {
                username: user.username.clone(),
                password: Password::parse(user.password.secret().clone())?,
                email: user.email.clone(),
                role: user.role,
            };
            self.insert_user_with_id(caller, request, id).await?;
            self.record_fixture(FixtureItem::User(id), true).await?;
            changes.push(format!("created user {name}"));
            return Ok(id);
        };
        let mut update = UserUpdate::default();
        let mut what = Vec::new();
        if existing.email.as_deref() != user.email.as_ref().map(Email::as_str) {
            update.email = Some(user.email.clone());
            what.push("email");
        }
        if existing.role != user.role {
            update.role = Some(user.role);
            what.push("role");
        }
        let same_password = self
            .passwords()
            .verify(user.password.secret(), Some(&existing.password_hash))
            .await?;
        if !same_password {
            update.password = Some(Password::parse(user.password.secret().clone())?);
            what.push("password");
        }
        if !what.is_empty() {
            self.update_user(caller, existing.id, update).await?;
            changes.push(format!("updated user {name} ({})", what.join(", ")));
        }
        Ok(existing.id)
    }

    async fn apply_fixture_key(
        &self,
        caller: &Caller,
        fixtures: &Fixtures,
        key: &FixtureKey,
        changes: &mut Vec<String>,
    ) -> Result<(), Error> {
        let name = key.name.as_str();
        let owner = self
            .view()
            .user_by_login(&key.user)
            .ok_or_else(|| Error::invalid("user", format!("key {name}: no user {:?}", key.user)))?;
        let digest = match &key.secret {
            FixtureSecret::Literal(literal) => KeyDigest::imported(literal.sha256()),
            FixtureSecret::Minted => KeyDigest::of(self.fixture_key_secret(fixtures, key)?.reveal()),
        };
        let on_file = match self
            .store()
            .find_key_owner(key.id)
            .await
            .map_err(|e| e.into_domain("reading the key failed"))?
        {
            Some(holder) => self
                .store()
                .find_key(holder, key.id)
                .await
                .map_err(|e| e.into_domain("reading the key failed"))?,
            None => None,
        };
        let Some(existing) = on_file else {
            return self.insert_fixture_key(caller, key, &owner, digest, changes).await;
        };
        if existing.user_id != owner.id || existing.digest != digest {
            changes.push(format!(
                "key {name} ({}) is on file with another owner or key (a minted key's owner and expiry are part of it): \
                 left as it is (revoke it and give the fixture another id)",
                key.id
            ));
            return Ok(());
        }
        let scopes = key.scopes.clone().map(Scopes::into_vec);
        let meta = key.meta.clone().map_or_else(|| serde_json::json!({}), Meta::into_value);
        let mut patch = KeyChanges::default();
        let mut what = Vec::new();
        if existing.name.as_deref() != Some(name) {
            patch.name = Some(Some(name.to_owned()));
            what.push("name");
        }
        if existing.scopes != scopes {
            let grants = super::access::grants_for(caller, key.scopes.as_ref(), None)?;
            patch.scopes = Some((scopes, grants));
            what.push("scopes");
        }
        // Only a literal key gets here with another expiry (a minted key's is in its JWT).
        if existing.expires_at != key.expires_at {
            match key.expires_at {
                Some(at) if existing.expires_at.is_none_or(|e| at < e) => {
                    patch.expires_by = Some(at);
                    what.push("expires");
                }
                _ => changes.push(format!(
                    "key {name} ({}): the file gives it a later expiry, left as it is (a key's expiry only moves \
                     earlier: revoke it and give the fixture another id)",
                    key.id
                )),
            }
        }
        if existing.meta != meta {
            patch.meta = Some(meta);
            what.push("meta");
        }
        if existing.ratelimits != key.ratelimits {
            patch.ratelimits = Some(key.ratelimits.clone());
            what.push("ratelimits");
        }
        // Credits are spent: they are set only when the file's value changed since the
        // apply that last set them, so an unchanged file never resets a spent balance.
        let credits_changed = self
            .store()
            .fixture_credits(key.id)
            .await
            .map_err(|e| e.into_domain("reading the fixture's credits failed"))?
            != key.credits;
        if credits_changed {
            patch.credits = Some(CreditsChange::Set(key.credits));
            what.push("credits");
        }
        if !patch.is_empty() {
            self.change_fixture_key(caller, &existing, patch, &what).await?;
            changes.push(format!("updated key {name} ({})", what.join(", ")));
        }
        if credits_changed {
            self.remember_fixture_credits(key).await?;
        }
        Ok(())
    }

    async fn insert_fixture_key(
        &self,
        caller: &Caller,
        key: &FixtureKey,
        owner: &UserRecord,
        digest: KeyDigest,
        changes: &mut Vec<String>,
    ) -> Result<(), Error> {
        let now = self.now();
        let record = KeyRecord {
            id: key.id,
            user_id: owner.id,
            name: Some(key.name.as_str().to_owned()),
            digest,
            created_at: now,
            updated_at: now,
            expires_at: key.expires_at,
            last_used_at: None,
            disabled: false,
            scopes: key.scopes.clone().map(Scopes::into_vec),
            meta: key.meta.clone().map_or_else(|| serde_json::json!({}), Meta::into_value),
            grants: super::access::grants_for(caller, key.scopes.as_ref(), None)?,
            ratelimits: key.ratelimits.clone(),
            credits: key.credits,
            credits_period: key.credits.and_then(|c| c.refill).map(|r| r.interval.period_start(now)),
        };
        let audit = caller
            .audit("key.create", Some(("key", key.id.to_string())), now)
            .with_detail(format!("fixture, {}", super::keys::create_detail(&record)));
        let view = self.view().clone();
        self.store()
            .insert_key(record, false, audit, move |k| {
                view.insert_key(ActiveKeyRow::of(k), true)
            })
            .await
            .map_err(|e| {
                e.conflict_as(
                    &format!(
                        "key {}: its id (or key) was used by a key since revoked; give the fixture another id",
                        key.name.as_str()
                    ),
                    "storing the key failed",
                )
            })?;
        self.record_fixture(FixtureItem::Key(key.id), true).await?;
        if key.credits.is_some() {
            self.remember_fixture_credits(key).await?;
        }
        changes.push(format!("created key {} ({})", key.name.as_str(), key.id));
        Ok(())
    }

    /// Remembers the credits the file gives a key, to tell at the next apply whether they
    /// changed.
    async fn remember_fixture_credits(&self, key: &FixtureKey) -> Result<(), Error> {
        self.store()
            .set_fixture_credits(key.id, key.credits)
            .await
            .map_err(|e| e.into_domain("recording the fixture's credits failed"))
    }

    /// Brings a key in line with its fixture: one write, one audit line naming what changed
    /// (`what`, with the limits as given).
    async fn change_fixture_key(
        &self,
        caller: &Caller,
        key: &KeyRecord,
        patch: KeyChanges,
        what: &[&str],
    ) -> Result<(), Error> {
        let now = self.now();
        let mut detail = vec![format!("fixture: {}", what.join(" "))];
        detail.extend(super::keys::limits_detail(
            patch.ratelimits.as_ref().unwrap_or(&RateLimits::none()),
            patch.credits.as_ref(),
        ));
        let audit = caller
            .audit("key.update", Some(("key", key.id.to_string())), now)
            .with_detail(detail.join(", "));
        let view = self.view().clone();
        // Credits set anew: what this node held of the old balance starts over.
        let credits_set = patch.credits.is_some();
        self.store()
            .update_key(key.user_id, key.id, patch, now, vec![audit], move |k| {
                if let Some(k) = k {
                    view.update_key(k, credits_set);
                }
            })
            .await
            .map_err(|e| e.into_domain("changing the key failed"))?;
        Ok(())
    }

    async fn prune_fixture(&self, caller: &Caller, item: FixtureItem, changes: &mut Vec<String>) -> Result<(), Error> {
        let gone = match item {
            FixtureItem::Key(id) => {
                self.store()
                    .set_fixture_credits(id, None)
                    .await
                    .map_err(|e| e.into_domain("forgetting the fixture's credits failed"))?;
                self.revoke_any_key(caller, id).await
            }
            FixtureItem::User(id) => self.delete_user(caller, id).await,
        };
        match gone {
            Ok(()) => changes.push(format!("removed {} {}", item.kind(), item.id())),
            // Removed by hand since: nothing left to prune.
            Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
        self.record_fixture(item, false).await
    }

    async fn record_fixture(&self, item: FixtureItem, made: bool) -> Result<(), Error> {
        self.store()
            .set_fixture_item(item, made)
            .await
            .map_err(|e| e.into_domain("recording the fixture failed"))
    }
}
