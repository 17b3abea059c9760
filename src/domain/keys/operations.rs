//! Making, listing, reading, changing, rotating and revoking keys. Ownership is decided
//! once, by `access::owner_for`: a key that is not the caller's (or, for an admin, not the
//! named user's) is `NotFound`, exactly like one that does not exist.

use super::{CreditsChange, KeyPage, KeyPatch, MintedKey, NewKeyRequest};
use crate::domain::access::{self, Held};
use crate::domain::caller::{Caller, Via};
use crate::domain::keyward::Keyward;
use crate::domain::limits::check_credits_change;
use crate::domain::paging;
use crate::domain::{
    Error, Expiry, KeyDigest, KeyId, KeyName, KeyRecord, Lifetime, Meta, Scopes, Secret, Timestamp, UserId,
};
use crate::model::{ActiveKeyRow, Credits, RateLimits};
use crate::store::{AccessSeen, KeyChanges, KeyGuard, Successor};

/// The audit detail of a key's scopes: which it has and which privileged ones were granted.
fn scopes_detail(key: &KeyRecord) -> Vec<String> {
    let mut detail: Vec<String> = key.scopes.iter().map(|s| format!("scopes={}", s.join(" "))).collect();
    if !key.grants.is_empty() {
        detail.push(format!("granted={}", key.grants.join(" ")));
    }
    detail
}

/// The audit detail of a new key: what it was given (never the key).
pub(in crate::domain) fn create_detail(key: &KeyRecord) -> String {
    let mut detail = vec![format!(
        "expires_at={}",
        key.expires_at.map_or_else(|| "never".to_owned(), Timestamp::rfc3339)
    )];
    detail.extend(scopes_detail(key));
    if key.meta.as_object().is_some_and(|m| !m.is_empty()) {
        detail.push("meta".to_owned());
    }
    detail.extend(limits_detail(
        &key.ratelimits,
        key.credits.map(|c| CreditsChange::Set(Some(c))).as_ref(),
    ));
    detail.join(", ")
}

/// The audit detail of limits given or changed: `ratelimits=requests:100/60s`,
/// `credits=500 (refill monthly 500)`, `credits+=500`, `credits=unlimited`.
pub(in crate::domain) fn limits_detail(ratelimits: &RateLimits, credits: Option<&CreditsChange>) -> Vec<String> {
    let mut detail = Vec::new();
    if !ratelimits.is_empty() {
        let list: Vec<String> = ratelimits
            .as_slice()
            .iter()
            .map(|l| format!("{}:{}/{}s", l.name(), l.limit(), l.seconds()))
            .collect();
        detail.push(format!("ratelimits={}", list.join(" ")));
    }
    match credits {
        None => {}
        Some(CreditsChange::Set(None)) => detail.push("credits=unlimited".to_owned()),
        Some(CreditsChange::Set(Some(c)) | CreditsChange::SetAtMost { credits: c, .. }) => {
            detail.push(match c.refill {
                None => format!("credits={}", c.remaining),
                Some(r) => format!("credits={} (refill {} {})", c.remaining, r.interval.as_str(), r.amount),
            })
        }
        Some(CreditsChange::Add(n)) => detail.push(format!("credits+={n}")),
    }
    detail
}

impl Keyward {
    /// Brings keys read from the database up to what this node knows: uses not yet written,
    /// and credits as of now (refills due, the block this node holds).
    fn overlay_usage(&self, keys: &mut [KeyRecord]) {
        self.view().overlay_last_used(keys);
        self.view().overlay_credits(keys, self.now());
    }

    /// Makes a key for `owner` (the caller when `None`).
    ///
    /// Refused (400): an expiry in the past, one beyond the configured maximum, and, when the
    /// caller presented a key, one that would outlive that key.
    pub async fn mint_key(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        request: NewKeyRequest,
    ) -> Result<MintedKey, Error> {
        let now = self.now();
        let numbered = request.numbered;
        let (record, secret) = self.prepare_key(caller, owner, request, now)?;
        let view = self.view().clone();
        let audit = caller
            .audit("key.create", Some(("key", record.id.to_string())), now)
            .with_detail(create_detail(&record));
        let after_commit = move |key: &KeyRecord| view.insert_key(ActiveKeyRow::of(key), true);
        // Made with a key that has no limits and no scopes of its own (as the view saw it):
        // one write that stores the new key only if that key is still live, unlimited and
        // unscoped, instead of a read before it. If it is not (an admin's change since
        // included), the slow path below says why (or carves, or stores as checked then).
        if let Via::ApiKey {
            key_id: maker,
            limited: false,
            scopes: None,
            expires_at,
        } = caller.via
        {
            let made = self
                .store()
                .insert_key_guarded(
                    record.clone(),
                    numbered,
                    KeyGuard::MakerUnlimited(maker, expires_at),
                    audit.clone(),
                    {
                        let after_commit = after_commit.clone();
                        move |key: &Option<KeyRecord>| {
                            if let Some(key) = key {
                                after_commit(key);
                            }
                        }
                    },
                )
                .await
                .map_err(|e| e.into_domain("the key could not be stored"))?;
            if let Some(record) = made {
                return Ok(MintedKey { record, secret });
            }
        }
        let presenting = self.require_limited_like_presenting_key(caller, &record, None).await?;
        let record = match presenting {
            None => self
                .store()
                .insert_key(record, numbered, audit, after_commit)
                .await
                .map_err(|e| e.into_domain("the key could not be stored"))?,
            // Stored only while the presenting key is as it was checked against (an admin's
            // change since refuses it). A key with credits makes keys whose credits are carved
            // out of its own balance, in the write that stores the new key: minting keys never
            // multiplies its quota.
            Some(maker) => {
                let seen = AccessSeen::of(&maker);
                let (guard, refused) = if maker.credits.is_some() {
                    access::may_carve_credits(&maker, &record)?;
                    (
                        KeyGuard::CarvedFrom(maker.id, seen),
                        Error::Conflict(
                            "the presenting key has fewer credits left than the new key's credits; a key's credits are carved out of the key that makes it".into(),
                        ),
                    )
                } else {
                    // Revoked or disabled since it was read: it makes nothing.
                    (
                        KeyGuard::MadeBy(maker.id, seen),
                        Error::Unauthenticated { presented: true },
                    )
                };
                self.store()
                    .insert_key_guarded(record, numbered, guard, audit, move |key| {
                        if let Some(key) = key {
                            after_commit(key);
                        }
                    })
                    .await
                    .map_err(|e| e.into_domain("the key could not be stored"))?
                    .ok_or(refused)?
            }
        };
        Ok(MintedKey { record, secret })
    }

    /// A request made with a key makes only keys at least as limited as that key: that key
    /// as stored (`None` for a request made otherwise). A key rotating itself (`rotating` is
    /// its id) is not compared with its successor, which gets its very limits and the
    /// balance it has at the write (the successor's as read here counts this node's held
    /// block and a refill due, which the stored balance does not yet).
    async fn require_limited_like_presenting_key(
        &self,
        caller: &Caller,
        new: &KeyRecord,
        rotating: Option<KeyId>,
    ) -> Result<Option<KeyRecord>, Error> {
        let Some(presenting) = caller.via.key_id() else {
            return Ok(None);
        };
        let own = self
            .store()
            .find_key(caller.user.id, presenting)
            .await
            .map_err(|e| e.into_domain("reading the presenting key failed"))?
            // Revoked since this node's view let it in (another node, a moment ago): it
            // makes nothing.
            .filter(|k| !k.disabled)
            .ok_or(Error::Unauthenticated { presented: true })?;
        // The new key's scopes and expiry were checked against the presenting key's as this
        // node's view had them; the write is guarded from this read on (`AccessSeen`).
        // Narrowed in between (an admin's change, a rotation, or a change this node has not
        // followed yet): nothing is made, rather than a key with rights taken away. (Widened:
        // what was checked holds all the more.)
        let honoured = own
            .scopes
            .clone()
            .map(|scopes| access::honoured_scopes(scopes, &own.grants));
        if let Via::ApiKey { scopes, expires_at, .. } = &caller.via
            && access::narrowed_since((scopes.as_deref(), *expires_at), (honoured.as_deref(), own.expires_at))
        {
            return Err(Error::Conflict(crate::store::ACCESS_CHANGED.into()));
        }
        if rotating != Some(own.id) {
            access::may_make_key_limited(Some(access::Limits::of(&own)), access::Limits::of(new))?;
        }
        Ok(Some(own))
    }

    /// Checks a request for a new key against the caller's rights and the configured
    /// lifetimes, and signs the key: its record (not yet stored) and the key itself.
    fn prepare_key(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        request: NewKeyRequest,
        now: Timestamp,
    ) -> Result<(KeyRecord, Secret), Error> {
        caller.require_scope("keys:write")?;
        let owner = self.owner_for(caller, owner)?;
        let expiry = request.expires.unwrap_or_else(|| self.config().default_lifetime.into());
        // Whole seconds, so `expires_at` and the token's `exp` say the same.
        let expires_at = expiry.resolve(now).map(|t| Timestamp::from_secs(t.secs()));
        self.check_lifetime("expires", expires_at, now)?;
        access::may_make_key_until(caller, expires_at)?;

        let grants = access::grants_for(caller, request.scopes.as_ref(), request.replaces.as_ref())?;

        let id = KeyId::generate()?;
        let secret = self.signer().sign_key(id, owner, now, expires_at)?;
        let record = KeyRecord {
            id,
            user_id: owner,
            name: request.name.map(KeyName::into_string),
            digest: KeyDigest::of(secret.reveal()),
            created_at: now,
            updated_at: now,
            expires_at,
            last_used_at: None,
            disabled: false,
            scopes: request.scopes.map(Scopes::into_vec),
            meta: request.meta.map_or_else(|| serde_json::json!({}), Meta::into_value),
            grants,
            credits_period: request
                .credits
                .and_then(|c| c.refill)
                .map(|r| r.interval.period_start(now)),
            ratelimits: request.ratelimits,
            credits: request.credits,
        };
        Ok((record, secret))
    }

    /// A new key's expiry (`None`: never) is in the future and within the configured
    /// maximum lifetime; `field` names it in the refusal.
    pub(super) fn check_lifetime(
        &self,
        field: &'static str,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), Error> {
        if let Some(t) = expires_at
            && t <= now
        {
            return Err(Error::invalid(field, "must be in the future"));
        }
        if let Some(max) = self.config().max_lifetime
            && expires_at.is_none_or(|t| t > now.plus(max))
        {
            return Err(Error::invalid(
                field,
                format!(
                    "longer than the configured maximum lifetime of {} seconds",
                    max.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// A page of `owner`'s live keys, oldest first.
    pub async fn list_keys(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<KeyPage, Error> {
        caller.require_scope("keys:read")?;
        let owner = self.owner_for(caller, owner)?;
        let limit = paging::page_limit(limit)?;
        let after = paging::parse_cursor(cursor, KeyId::parse)?;
        let page = self
            .store()
            .list_keys(Some(owner), after, limit)
            .await
            .map_err(|e| e.into_domain("listing keys failed"))?
            .ok_or_else(|| Error::invalid("cursor", "not a cursor from a previous page"))?;
        let next_cursor = if page.more {
            page.items.last().map(|k| k.id)
        } else {
            None
        };
        let mut keys = page.items;
        self.overlay_usage(&mut keys);
        Ok(KeyPage {
            keys,
            total: page.total,
            next_cursor,
        })
    }

    /// Admin: the `limit` newest live keys of every user, and how many live keys there are.
    pub async fn newest_keys_of_everyone(&self, caller: &Caller, limit: Option<u32>) -> Result<KeyPage, Error> {
        caller.require_scope("keys:read")?;
        access::require_admin(caller)?;
        let page = self
            .store()
            .newest_keys(paging::page_limit(limit)?)
            .await
            .map_err(|e| e.into_domain("listing keys failed"))?;
        let mut keys = page.items;
        self.overlay_usage(&mut keys);
        Ok(KeyPage {
            keys,
            total: page.total,
            next_cursor: None,
        })
    }

    /// Every live key of `owner` (the seed lists have no paging).
    pub async fn all_keys(&self, caller: &Caller, owner: Option<UserId>) -> Result<Vec<KeyRecord>, Error> {
        caller.require_scope("keys:read")?;
        let owner = self.owner_for(caller, owner)?;
        self.live_keys(Some(owner)).await
    }

    /// `owner`'s keys revoked in the last `within`, the latest first (at most 100), with when.
    pub async fn recently_revoked_keys(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        within: std::time::Duration,
    ) -> Result<Vec<(KeyRecord, Timestamp)>, Error> {
        let now = self.now();
        caller.require_scope("keys:read")?;
        let owner = self.owner_for(caller, owner)?;
        self.store()
            .revoked_keys(owner, now.minus(within), 100)
            .await
            .map_err(|e| e.into_domain("listing revoked keys failed"))
    }

    /// How long a key made without `expires` lasts (`keys.default_lifetime`).
    pub fn default_key_lifetime(&self) -> Lifetime {
        self.config().default_lifetime
    }

    /// Admin: every live key of every user, oldest first (the CLI's `key list`).
    pub async fn every_live_key(&self, caller: &Caller) -> Result<Vec<KeyRecord>, Error> {
        caller.require_scope("keys:read")?;
        access::require_admin(caller)?;
        self.live_keys(None).await
    }

    /// Every live key of `owner` (everyone's for `None`), page by page.
    async fn live_keys(&self, owner: Option<UserId>) -> Result<Vec<KeyRecord>, Error> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store()
                .list_keys(owner, after, paging::MAX_PAGE)
                .await
                .map_err(|e| e.into_domain("listing keys failed"))?
                .ok_or_else(|| Error::internal("a key listed a moment ago is gone from the cursor"))?;
            after = page.items.last().map(|k| k.id).filter(|_| page.more);
            all.extend(page.items);
            if after.is_none() {
                self.overlay_usage(&mut all);
                return Ok(all);
            }
        }
    }

    pub async fn get_key(&self, caller: &Caller, owner: Option<UserId>, id: KeyId) -> Result<KeyRecord, Error> {
        caller.require_scope("keys:read")?;
        let owner = self.owner_for(caller, owner)?;
        let mut key = self
            .store()
            .find_key(owner, id)
            .await
            .map_err(|e| e.into_domain("reading the key failed"))?
            .ok_or(Error::NotFound)?;
        self.overlay_usage(std::slice::from_mut(&mut key));
        Ok(key)
    }

    /// Changes a key's name, disabled flag and scopes, all in one transaction. Needs
    /// `keys:write` before anything else, so an empty change is refused to a reader too.
    /// A disabled key fails from the next request on.
    pub async fn update_key(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        id: KeyId,
        patch: KeyPatch,
    ) -> Result<KeyRecord, Error> {
        let now = self.now();
        caller.require_scope("keys:write")?;
        let owner = self.owner_for(caller, owner)?;
        let mut current = self
            .store()
            .find_key(owner, id)
            .await
            .map_err(|e| e.into_domain("reading the key failed"))?
            .ok_or(Error::NotFound)?;
        // As the key is shown: an owner may set its credits to what they see (or less).
        self.overlay_usage(std::slice::from_mut(&mut current));
        let scopes = match patch.scopes {
            None => None,
            Some(scopes) => {
                let grants = access::grants_for(caller, scopes.as_ref(), Some(&Held::of(&current)))?;
                Some((scopes.map(Scopes::into_vec), grants))
            }
        };
        access::may_set_limits(
            caller,
            access::Limits::of(&current),
            patch.ratelimits.as_ref(),
            patch.credits.as_ref(),
        )?;
        check_credits_change(current.credits.as_ref(), patch.credits.as_ref())?;
        let credits = match patch.credits {
            // An owner only lowers the balance: the store makes it the least of this and the
            // balance at the write, so spends since the check above never make it a raise.
            Some(CreditsChange::Set(Some(credits))) if !caller.is_admin() => Some(CreditsChange::SetAtMost {
                credits,
                since: current
                    .credits
                    .and_then(|c| c.refill)
                    .map(|r| r.interval.period_start(now)),
            }),
            other => other,
        };
        // An owner's change to the scopes or limits was checked against those read above: it
        // is written only while they stand, never over an admin's change made since.
        let access_seen = (!caller.is_admin()
            && (scopes.is_some() || patch.ratelimits.is_some() || patch.credits.is_some()))
        .then(|| AccessSeen::of(&current));
        let changes = KeyChanges {
            access_seen,
            name: patch.name.map(|n| n.map(KeyName::into_string)),
            disabled: patch.disabled,
            expires_by: None,
            scopes,
            ratelimits: patch.ratelimits,
            credits,
            meta: None,
        };
        if changes.is_empty() {
            return Ok(current);
        }
        let target = || Some(("key", id.to_string()));
        let mut audits = Vec::new();
        if changes.name.is_some() {
            audits.push(caller.audit("key.rename", target(), now).with_detail("name"));
        }
        if let Some(disabled) = changes.disabled {
            let action = if disabled { "key.disable" } else { "key.enable" };
            audits.push(
                caller
                    .audit(action, target(), now)
                    .with_detail(format!("disabled={disabled}")),
            );
        }
        if let Some((scopes, grants)) = &changes.scopes {
            let detail = scopes_detail(&KeyRecord {
                scopes: scopes.clone(),
                grants: grants.clone(),
                ..current.clone()
            });
            let detail = if detail.is_empty() {
                "scopes=(acts as its user)".to_owned()
            } else {
                detail.join(", ")
            };
            audits.push(caller.audit("key.update", target(), now).with_detail(detail));
        }
        if changes.ratelimits.is_some() || changes.credits.is_some() {
            let ratelimits = changes.ratelimits.clone();
            let mut detail = limits_detail(
                ratelimits.as_ref().unwrap_or(&RateLimits::none()),
                changes.credits.as_ref(),
            );
            if ratelimits.as_ref().is_some_and(RateLimits::is_empty) {
                detail.insert(0, "ratelimits=none".to_owned());
            }
            audits.push(caller.audit("key.limits", target(), now).with_detail(detail.join(", ")));
        }
        let view = self.view().clone();
        // Credits added: what this node knew of the balance is forgotten (its block stays);
        // set anew, the credits' generation moves on and the block is void.
        let added_credits = matches!(changes.credits, Some(CreditsChange::Add(_)));
        let mut key = self
            .store()
            .update_key(owner, id, changes, now, audits, move |key| {
                if let Some(key) = key {
                    view.update_key(key, added_credits);
                }
            })
            .await
            .map_err(|e| e.into_domain("the key could not be changed"))?
            .ok_or(Error::NotFound)?;
        self.overlay_usage(std::slice::from_mut(&mut key));
        Ok(key)
    }

    /// Relabels a key; `None` clears the name.
    pub async fn rename_key(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        id: KeyId,
        name: Option<KeyName>,
    ) -> Result<KeyRecord, Error> {
        let patch = KeyPatch {
            name: Some(name),
            ..KeyPatch::default()
        };
        self.update_key(caller, owner, id, patch).await
    }

    /// Disables or enables a key without deleting it.
    pub async fn set_key_disabled(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        id: KeyId,
        disabled: bool,
    ) -> Result<KeyRecord, Error> {
        let patch = KeyPatch {
            disabled: Some(disabled),
            ..KeyPatch::default()
        };
        self.update_key(caller, owner, id, patch).await
    }

    /// Replaces a key: a new key with the same name, scopes, grants and meta (and the same
    /// lifetime, counted from now), while the old one keeps working for `grace`, then
    /// fails. One transaction: either both happen or neither.
    pub async fn rotate_key(
        &self,
        caller: &Caller,
        owner: Option<UserId>,
        id: KeyId,
        grace: std::time::Duration,
    ) -> Result<MintedKey, Error> {
        let now = self.now();
        caller.require_scope("keys:write")?;
        let old = self.get_key(caller, owner, id).await?;
        let expires = match old.expires_at {
            None => Some(Expiry::Never),
            Some(t) => {
                let lifetime = u64::try_from(t.millis() - old.created_at.millis()).unwrap_or(0) / 1000;
                Some(Expiry::After(std::time::Duration::from_secs(lifetime.max(1))))
            }
        };
        let request = NewKeyRequest {
            name: old.name.as_deref().map(KeyName::parse).transpose()?,
            expires,
            scopes: old.scopes.clone().map(Scopes::of_record),
            meta: Some(Meta::of_record(old.meta.clone())),
            ratelimits: old.ratelimits.clone(),
            // The store moves the balance over, exactly as it is at the rotation (a new
            // key's credits start at generation 0).
            credits: old.credits.map(|c| Credits { generation: 0, ..c }),
            replaces: Some(Held::of(&old)),
            ..NewKeyRequest::default()
        };
        let (record, secret) = self.prepare_key(caller, Some(old.user_id), request, now)?;
        // A request made with a key rotates only keys at least as limited as that key: the
        // successor's secret is as good as a new key. That key must stay as it was checked
        // until the write (revoked, disabled or narrowed since: nothing is written).
        let presenting = self
            .require_limited_like_presenting_key(caller, &record, Some(old.id))
            .await?
            .map(|k| (k.user_id, k.id, AccessSeen::of(&k)));
        // To the millisecond: never shorter than asked.
        let until = now.plus(grace);
        let create = caller
            .audit("key.create", Some(("key", record.id.to_string())), now)
            .with_detail(create_detail(&record));
        let rotate = caller
            .audit("key.rotate", Some(("key", old.id.to_string())), now)
            .with_detail(format!("expires_at={}, replaced_by={}", until.rfc3339(), record.id));
        let view = self.view().clone();
        let (record, _) = self
            .store()
            .rotate_key(
                old.user_id,
                old.id,
                until,
                Successor {
                    key: record,
                    made_from: AccessSeen::of(&old),
                    presenting,
                },
                [create, rotate],
                move |done| {
                    if let Some((new, old)) = done {
                        view.insert_key(ActiveKeyRow::of(new), true);
                        // Its balance moved to the new key (the old credits set anew): what this
                        // node held of it goes too.
                        view.update_key(old, false);
                    }
                },
            )
            .await
            .map_err(|e| e.into_domain("the key could not be rotated"))?
            .ok_or(Error::NotFound)?;
        Ok(MintedKey { record, secret })
    }

    /// Revokes a key. When this returns, the key already fails verification.
    pub async fn revoke_key(&self, caller: &Caller, owner: Option<UserId>, id: KeyId) -> Result<(), Error> {
        let now = self.now();
        caller.require_scope("keys:write")?;
        let owner = self.owner_for(caller, owner)?;
        let view = self.view().clone();
        self.store()
            .revoke_key(
                owner,
                id,
                now,
                caller.audit("key.revoke", Some(("key", id.to_string())), now),
                move |lookup| {
                    if let Some(lookup) = lookup {
                        view.remove_keys(std::slice::from_ref(lookup));
                    }
                },
            )
            .await
            .map_err(|e| e.into_domain("the key could not be revoked"))?
            .map(|_| ())
            .ok_or(Error::NotFound)
    }

    /// Admin: revokes a key whoever owns it (the CLI's `key revoke ID`).
    pub async fn revoke_any_key(&self, caller: &Caller, id: KeyId) -> Result<(), Error> {
        access::require_admin_role(caller)?;
        let owner = self
            .store()
            .find_key_owner(id)
            .await
            .map_err(|e| e.into_domain("reading the key failed"))?
            .ok_or(Error::NotFound)?;
        self.revoke_key(caller, Some(owner), id).await
    }
}
