//! What keyward says of keys to the services that rely on them: the verify API, and the
//! revocation feeds for services that verify keys offline. Only an admin, or a key granted
//! `keys:verify`, may ask (`access::require_verifier`).

use super::{FEED_PAGE, RevocationFeed, Verification, VerifyCode};
use crate::domain::access;
use crate::domain::caller::Caller;
use crate::domain::keyward::Keyward;
use crate::domain::limits::Charges;
use crate::domain::tokens;
use crate::domain::view::KeyCheck;
use crate::domain::{Error, KeyDigest, KeyId, Timestamp};
use crate::model::{Outcome, Sha256Hash};

impl Keyward {
    /// `POST /v1/verify`: what keyward says of a presented key, for a service checking its
    /// callers. Only an admin, or a key with the explicit scope `keys:verify` (a key without
    /// scopes does not get it implicitly), may ask. A valid key with limits is charged: one
    /// request against each rate limit and `cost` credits (0: only checks one is left).
    pub async fn verify_key(
        &self,
        caller: &Caller,
        token: &str,
        scopes: &[String],
        cost: u64,
    ) -> Result<Verification, Error> {
        let now = self.now();
        access::require_verifier(caller)?;
        let check = self.view().check_key(token, now, self.signer());
        // A token that cannot be keyward's JWT is at most an imported key: one read, not two.
        let mut on_file = if tokens::may_be_ours(token) {
            self.store()
                .find_key_by_digest(KeyDigest::of(token))
                .await
                .map_err(|e| e.into_domain("reading the key failed"))?
        } else {
            None
        };
        if on_file.is_none() {
            // Maybe an imported key (held under its SHA-256).
            on_file = self
                .store()
                .find_key_by_digest(KeyDigest::imported(Sha256Hash::of(token)))
                .await
                .map_err(|e| e.into_domain("reading the key failed"))?;
        }
        let mut code = match (&check, &on_file) {
            (KeyCheck::Valid(k), _) => match &k.scopes {
                Some(own) if !scopes.iter().all(|s| own.contains(s)) => VerifyCode::InsufficientScope,
                _ => VerifyCode::Valid,
            },
            (KeyCheck::Expired, _) => VerifyCode::Expired,
            (KeyCheck::Disabled, _) => VerifyCode::Disabled,
            (KeyCheck::NotFound, Some((_, true))) => VerifyCode::Revoked,
            (KeyCheck::NotFound, Some((key, false))) if key.expires_at.is_some_and(|t| t <= now) => VerifyCode::Expired,
            (KeyCheck::NotFound, _) => VerifyCode::NotFound,
        };
        if let (VerifyCode::Revoked, Some((key, _))) = (code, &on_file) {
            self.view().record_outcome(key.id, now, Outcome::Revoked);
        }
        let mut limits = None;
        if let (VerifyCode::Valid, KeyCheck::Valid(k)) = (code, &check)
            && let Some(charges) = Charges::of((k.key_id, k.limits.clone()), (k.user.id, k.user_limits.clone()))
        {
            let (charged, report) = match self.admit(charges.clone(), cost).await {
                Ok(admitted) => (VerifyCode::Valid, admitted),
                Err(Error::RateLimited { .. }) => (VerifyCode::RateLimited, self.limits_now(charges, now)),
                Err(Error::UsageExceeded { .. }) => (VerifyCode::UsageExceeded, self.limits_now(charges, now)),
                Err(other) => return Err(other),
            };
            code = charged;
            limits = Some(report);
        }
        // Say who the key belongs to only when it is one of ours and not revoked.
        let key = match (&code, on_file) {
            (VerifyCode::NotFound | VerifyCode::Revoked, _) => None,
            (_, Some((key, _))) => Some(key),
            _ => None,
        };
        let username = key
            .as_ref()
            .and_then(|k| self.view().user(k.user_id))
            .map(|u| u.username.clone());
        Ok(Verification {
            code,
            key,
            username,
            limits,
        })
    }

    /// Revocations since `since` (the older feed, kept for older clients): revoked keys only.
    /// The same callers as [`Self::verify_key`].
    pub async fn revocations(
        &self,
        caller: &Caller,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<(KeyId, Timestamp)>, Error> {
        access::require_verifier(caller)?;
        self.store()
            .revocations_since(since, limit)
            .await
            .map_err(|e| e.into_domain("reading revocations failed"))
    }

    /// The offline revocation feed, in commit order, after `after` (a `next` of an earlier
    /// page; `None`: from the beginning): every change that ends or limits a key for a
    /// service verifying keys offline. The same callers as [`Self::verify_key`].
    pub async fn revocation_feed(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<RevocationFeed, Error> {
        access::require_verifier(caller)?;
        let after = match after {
            None => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| Error::invalid("after", "not a cursor from an earlier answer (its \"next\")"))?,
        };
        let limit = match limit {
            None => FEED_PAGE,
            Some(n) if (1..=FEED_PAGE).contains(&n) => n,
            Some(_) => return Err(Error::invalid("limit", format!("must be 1 to {FEED_PAGE}"))),
        };
        let (entries, more) = self
            .store()
            .revocation_feed(after, limit)
            .await
            .map_err(|e| e.into_domain("reading the revocation feed failed"))?;
        let next = entries.last().map_or(after, |e| e.seq).to_string();
        Ok(RevocationFeed { entries, next, more })
    }
}
