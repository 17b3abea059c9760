//! Who may act on what: every rule of it, in one place, for every protocol.
//!
//! A caller is a user (admin or not) and a credential: an access token, a console session,
//! a password, or an API key that acts as its user (no scopes) or holds only its scopes.
//! The rules:
//! - **Scopes.** A key with scopes may do only what they name; any other credential acts as
//!   its user ([`Caller::has_scope`]).
//! - **Privileged scopes** (`keys:verify`, `users:admin`, `metrics:read`) are honoured on a
//!   key only if an admin granted them ([`honoured_scopes`]); a capability that needs one
//!   takes an admin acting with the scope, or a key holding it ([`require_privileged`]).
//! - **Admin routes** take an admin whose credential may act with `users:admin`
//!   ([`require_admin`]); the HTTP extractor refuses non-admins before the body is read
//!   ([`require_admin_role`]).
//! - **Whose keys.** One's own; anyone's for an admin. Anyone else's is `NotFound`, exactly
//!   like what does not exist ([`owner_for`], [`user_by_login`]).
//! - **Passwords** are never set with a key for the key's own user ([`may_set_password`]);
//!   an admin never disables, demotes or deletes themself ([`may_change_self`]).
//! - **Keys made by keys** carry only scopes of the presenting key and never outlive it;
//!   privileged scopes are granted only by an admin, or carried over exactly as they were
//!   granted ([`grants_for`], [`may_make_key_until`]).
//! - **Rate limits and credits** are loosened (a higher limit, one removed, more credits)
//!   only by an admin; anyone else may only tighten them, and a key never makes a key
//!   looser than itself ([`may_set_limits`], [`may_make_key_limited`]); a key with credits
//!   gives a key it makes credits out of its own, never a refill ([`may_carve_credits`]).

use std::sync::Arc;

use super::caller::{Caller, Via};
use super::{Error, KeyRecord, Role, Scopes, Timestamp, UserId};
use crate::model::{Credits, RateLimits};
use crate::store::CreditsChange;

/// Scopes only an admin may grant: a key holding one is honoured for it only if an admin
/// granted it (the grant is recorded with the key).
pub const PRIVILEGED_SCOPES: [&str; 3] = ["keys:verify", "users:admin", "metrics:read"];

pub fn is_privileged(scope: &str) -> bool {
    PRIVILEGED_SCOPES.contains(&scope)
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Whether this caller may act with `scope`: keys with scopes only for theirs; keys
    /// without scopes, access tokens, sessions and passwords act as the user.
    pub fn has_scope(&self, scope: &str) -> bool {
        match &self.via {
            Via::ApiKey {
                scopes: Some(scopes), ..
            } => scopes.iter().any(|s| s == scope),
            _ => true,
        }
    }

    /// `InsufficientScope` (403) unless [`Self::has_scope`].
    pub fn require_scope(&self, scope: &str) -> Result<(), Error> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Error::InsufficientScope(scope.to_owned()))
        }
    }
}

/// The scopes of a key that are honoured: all it holds, less any privileged one no admin
/// granted (so a key holding only such a scope can do nothing that needs a scope, never
/// everything).
pub fn honoured_scopes(scopes: Vec<String>, grants: &[String]) -> Arc<[String]> {
    scopes
        .into_iter()
        .filter(|s| !is_privileged(s) || grants.contains(s))
        .collect()
}

/// A privileged capability (`keys:verify`, `metrics:read`): an admin whose credential may
/// act with `scope`, or a key that holds `scope` explicitly and was granted it by an admin
/// (ungranted privileged scopes never reach a caller's scopes: [`honoured_scopes`]). A key
/// without scopes does not get it implicitly unless its user is an admin.
pub fn require_privileged(caller: &Caller, scope: &str) -> Result<(), Error> {
    let explicit = matches!(&caller.via, Via::ApiKey { scopes: Some(s), .. } if s.iter().any(|x| x == scope));
    if explicit || (caller.is_admin() && caller.has_scope(scope)) {
        Ok(())
    } else {
        Err(Error::InsufficientScope(scope.into()))
    }
}

/// Asking about other keys (`/v1/verify`, the revocation feed): an admin, or a key granted
/// `keys:verify`.
pub fn require_verifier(caller: &Caller) -> Result<(), Error> {
    require_privileged(caller, "keys:verify")
}

/// An admin-only operation: the credential may act with `users:admin` (403
/// `insufficient_scope` otherwise), and the user is an admin (403).
pub fn require_admin(caller: &Caller) -> Result<(), Error> {
    caller.require_scope("users:admin")?;
    require_admin_role(caller)
}

/// The user is an admin (403 otherwise), whatever the credential may do: what an admin-only
/// route checks before it reads the body ([`require_admin`] follows in the domain).
pub fn require_admin_role(caller: &Caller) -> Result<(), Error> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden("this route is for admins only".into()))
    }
}

/// The user whose keys a call concerns: the caller's own when `owner` is `None`; another
/// live user (`live` says whether the id is one) only for an admin. Anyone else's id is
/// `NotFound`, as if it did not exist.
pub fn owner_for(caller: &Caller, owner: Option<UserId>, live: impl FnOnce(UserId) -> bool) -> Result<UserId, Error> {
    match owner {
        None => Ok(caller.user.id),
        Some(id) if id == caller.user.id => Ok(id),
        Some(id) if caller.is_admin() && live(id) => Ok(id),
        Some(_) => Err(Error::NotFound),
    }
}

/// The user a caller names by username or email (seed 002's `username`): themself, or,
/// for an admin, any live user (`find` looks one up). A non-admin naming someone else is
/// refused (403).
pub fn user_by_login(caller: &Caller, login: &str, find: impl FnOnce(&str) -> Option<UserId>) -> Result<UserId, Error> {
    let own = &caller.user;
    let is_self =
        own.username.eq_ignore_ascii_case(login) || own.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(login));
    if is_self {
        return Ok(own.id);
    }
    if !caller.is_admin() {
        return Err(Error::Forbidden("a user may create keys only for themself".into()));
    }
    find(login).ok_or(Error::NotFound)
}

/// A key never sets its own user's password, on any route: a leaked key must not become
/// the account.
pub fn may_set_password(caller: &Caller, of: UserId) -> Result<(), Error> {
    if of == caller.user.id && matches!(caller.via, Via::ApiKey { .. }) {
        return Err(Error::Forbidden(
            "a password cannot be changed with an API key; log in with the password".into(),
        ));
    }
    Ok(())
}

/// What an admin may not do to themself, so one admin always remains (409).
pub enum SelfChange {
    /// Disable or demote (a user update).
    DisableOrDemote,
    Delete,
}

/// Refuses an admin disabling, demoting or deleting themself.
pub fn may_change_self(caller: &Caller, target: UserId, change: SelfChange) -> Result<(), Error> {
    if target != caller.user.id {
        return Ok(());
    }
    Err(Error::Conflict(match change {
        SelfChange::DisableOrDemote => "an admin cannot disable or demote themself".into(),
        SelfChange::Delete => "an admin cannot delete themself".into(),
    }))
}

/// The scopes a key holds and the privileged ones granted to it, when a change or a
/// replacement carries them over.
#[derive(Clone, Debug, Default)]
pub struct Held {
    pub scopes: Vec<String>,
    pub grants: Vec<String>,
}

impl Held {
    /// What `key` holds now.
    pub fn of(key: &KeyRecord) -> Held {
        Held {
            scopes: key.scopes.clone().unwrap_or_default(),
            grants: key.grants.clone(),
        }
    }
}

/// Who may give a key `scopes`, and which privileged scopes it is granted.
///
/// A request made with a scoped key gives only scopes that key holds (and never "acts as
/// its user"). An admin grants every privileged scope they give. Anyone else may give a
/// privileged scope only by carrying it over from the key being changed or replaced
/// (`held`), where it stays granted exactly if it was; any other is refused (403).
pub fn grants_for(caller: &Caller, scopes: Option<&Scopes>, held: Option<&Held>) -> Result<Vec<String>, Error> {
    if let Via::ApiKey { scopes: Some(own), .. } = &caller.via {
        let within = scopes.is_some_and(|s| s.as_slice().iter().all(|x| own.contains(x)));
        if !within {
            return Err(Error::Forbidden(
                "a key with scopes can only make keys with some of its own scopes".into(),
            ));
        }
    }
    let privileged = scopes
        .map_or(&[][..], Scopes::as_slice)
        .iter()
        .filter(|x| is_privileged(x));
    if caller.is_admin() {
        return Ok(privileged.cloned().collect());
    }
    let held = held.cloned().unwrap_or_default();
    let mut grants = Vec::new();
    for scope in privileged {
        if !held.scopes.contains(scope) {
            return Err(Error::Forbidden(format!("only an admin may grant the scope {scope}")));
        }
        if held.grants.contains(scope) {
            grants.push(scope.clone());
        }
    }
    Ok(grants)
}

/// A key-authenticated request cannot make a key that outlives the presenting key (400).
/// `expires_at` `None`: never expires.
pub fn may_make_key_until(caller: &Caller, expires_at: Option<Timestamp>) -> Result<(), Error> {
    if let Via::ApiKey {
        expires_at: Some(parent),
        ..
    } = &caller.via
        && expires_at.is_none_or(|t| t > *parent)
    {
        return Err(Error::invalid(
            "expires",
            format!(
                "a key cannot make a key that outlives it; this key expires at {}",
                parent.rfc3339()
            ),
        ));
    }
    Ok(())
}

/// The limits a key holds, to compare a change or a new key with.
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    pub ratelimits: &'a RateLimits,
    /// `None`: unlimited.
    pub credits: Option<&'a Credits>,
}

impl<'a> Limits<'a> {
    pub fn of(key: &'a KeyRecord) -> Self {
        Limits {
            ratelimits: &key.ratelimits,
            credits: key.credits.as_ref(),
        }
    }
}

const LOOSEN: &str = "only an admin may raise or remove a key's rate limits or add to its credits";

/// Who may change a key's limits from `current`: an admin anything; anyone else only
/// tightens (each current limit kept or made tighter, credits lowered, never added to).
pub fn may_set_limits(
    caller: &Caller,
    current: Limits,
    ratelimits: Option<&RateLimits>,
    credits: Option<&CreditsChange>,
) -> Result<(), Error> {
    if caller.is_admin() {
        return Ok(());
    }
    let rates_ok = ratelimits.is_none_or(|new| new.within(current.ratelimits));
    let credits_ok = match credits {
        None => true,
        Some(CreditsChange::Set(new)) => Credits::within(new.as_ref(), current.credits),
        Some(CreditsChange::SetAtMost { credits, .. }) => Credits::within(Some(credits), current.credits),
        Some(CreditsChange::Add(n)) => *n == 0,
    };
    if rates_ok && credits_ok {
        Ok(())
    } else {
        Err(Error::Forbidden(LOOSEN.into()))
    }
}

/// A key made by a request with a key that has credits takes its credits out of that key's
/// balance (the store carves them in the write), so it may not have a refill: a refill would
/// be new quota every period, beyond what the presenting key holds.
pub fn may_carve_credits(parent: &KeyRecord, new: &KeyRecord) -> Result<(), Error> {
    // Carving from a balance that refills would bank each period's credits in children, so
    // over months a key could spend many periods' quota at once: such a key makes no keys
    // with credits (a user's shared credits are the way to meter many keys together).
    if parent.credits.is_some_and(|c| c.refill.is_some()) {
        return Err(Error::Forbidden(
            "a key whose credits refill cannot make keys with credits: its children would bank each period's credits; give the user credits instead".into(),
        ));
    }
    if new.credits.is_some_and(|c| c.refill.is_some()) {
        return Err(Error::Forbidden(
            "a key with credits makes keys without a refill: their credits are carved out of its own".into(),
        ));
    }
    Ok(())
}

/// Whether a key's rights now (its honoured scopes, `None`: those of its user; its expiry,
/// `None`: never) are narrower than they were when a request was checked against them: a
/// scope taken away, scopes set on a key that acted as its user, or an earlier expiry.
pub fn narrowed_since(
    (checked, checked_expiry): (Option<&[String]>, Option<Timestamp>),
    (now, now_expiry): (Option<&[String]>, Option<Timestamp>),
) -> bool {
    let scopes = match (checked, now) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(checked), Some(now)) => !checked.iter().all(|s| now.contains(s)),
    };
    let expiry = match (checked_expiry, now_expiry) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(checked), Some(now)) => now < checked,
    };
    scopes || expiry
}

/// A request made with a key (`presenting`: that key's limits) makes only keys at least as
/// limited as itself, whoever the caller is.
pub fn may_make_key_limited(presenting: Option<Limits>, new: Limits) -> Result<(), Error> {
    let Some(own) = presenting else { return Ok(()) };
    if new.ratelimits.within(own.ratelimits) && Credits::within(new.credits, own.credits) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "a key can only make keys with rate limits and credits at least as tight as its own".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KeyId, UserRecord};

    /// The credentials a test caller may present.
    #[derive(Clone, Copy, Debug)]
    enum Credential {
        AccessToken,
        Session,
        Password,
        /// A key that acts as its user.
        Key,
        /// A key with the plain scope `keys:read`.
        ScopedKey,
        /// A key with `keys:read` and `keys:verify`, which an admin granted.
        GrantedKey,
        /// A key with `keys:read` and `keys:verify`, which no admin granted.
        UngrantedKey,
    }

    const CREDENTIALS: [Credential; 7] = [
        Credential::AccessToken,
        Credential::Session,
        Credential::Password,
        Credential::Key,
        Credential::ScopedKey,
        Credential::GrantedKey,
        Credential::UngrantedKey,
    ];

    fn id(n: u8) -> UserId {
        UserId::parse(&format!("{n:024x}")).unwrap_or_else(|| unreachable!())
    }

    /// The time keys in the table expire.
    const KEY_END: Timestamp = Timestamp::from_millis(1_900_000_000_000);

    fn caller(role: Role, credential: Credential) -> Caller {
        let user = UserRecord {
            id: id(1),
            username: "ada".into(),
            email: Some("ada@example.com".into()),
            role,
            disabled: false,
            deleted: false,
            token_epoch: 0,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            password_hash: Arc::from(""),
            ratelimits: RateLimits::none(),
            credits: None,
            credits_period: None,
            rendered: Default::default(),
        };
        let key = |scopes: &[&str], grants: &[&str]| Via::ApiKey {
            key_id: KeyId::parse("0123456789abcdef01234567").unwrap_or_else(|| unreachable!()),
            expires_at: Some(KEY_END),
            limited: false,
            scopes: (!scopes.is_empty()).then(|| {
                let grants: Vec<String> = grants.iter().map(|g| (*g).to_owned()).collect();
                honoured_scopes(scopes.iter().map(|s| (*s).to_owned()).collect(), &grants)
            }),
        };
        let via = match credential {
            Credential::AccessToken => Via::AccessToken,
            Credential::Session => Via::Session,
            Credential::Password => Via::Password,
            Credential::Key => key(&[], &[]),
            Credential::ScopedKey => key(&["keys:read"], &[]),
            Credential::GrantedKey => key(&["keys:read", "keys:verify"], &["keys:verify"]),
            Credential::UngrantedKey => key(&["keys:read", "keys:verify"], &[]),
        };
        Caller {
            user: Arc::new(user),
            via,
            source: None,
        }
    }

    fn scopes(list: &[&str]) -> Scopes {
        Scopes::parse(list.iter().map(|s| (*s).to_owned()).collect()).unwrap_or_else(|_| unreachable!())
    }

    /// The verdict of a rule, as one letter: `Y` allowed, `F` forbidden (403), `S` missing
    /// scope (403 `insufficient_scope`), `N` not found (404), `C` conflict (409), `I`
    /// invalid (400).
    fn verdict<T>(result: Result<T, Error>) -> char {
        match result {
            Ok(_) => 'Y',
            Err(Error::Forbidden(_)) => 'F',
            Err(Error::InsufficientScope(_)) => 'S',
            Err(Error::NotFound) => 'N',
            Err(Error::Conflict(_)) => 'C',
            Err(Error::Invalid { .. }) => 'I',
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    type Rule = fn(&Caller) -> Result<(), Error>;

    /// Gives a key `keys:verify` (carried over from `held`): allowed only if it is granted.
    fn gives_keys_verify(caller: &Caller, held: Option<&Held>) -> Result<(), Error> {
        match grants_for(caller, Some(&scopes(&["keys:verify"])), held)?.as_slice() {
            [granted] if granted == "keys:verify" => Ok(()),
            other => panic!("granted {other:?}"),
        }
    }

    /// Every action against every caller. Each row: the action, then its verdict for an
    /// admin and for a user, one letter per credential in the order of [`CREDENTIALS`]:
    /// access token, session, password, key, scoped key, granted key, ungranted key.
    #[test]
    fn only_a_narrowing_since_the_check_counts() {
        let s = |list: &[&str]| list.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
        let (read, both) = (s(&["keys:read"]), s(&["keys:read", "keys:write"]));
        let at = Timestamp::from_secs;
        let narrowed = |checked: (Option<&[String]>, Option<Timestamp>), now| narrowed_since(checked, now);
        // The same, or wider: scopes added, scopes cleared (acts as its user), no expiry.
        assert!(!narrowed((Some(&read), Some(at(10))), (Some(&read), Some(at(10)))));
        assert!(!narrowed((Some(&read), Some(at(10))), (Some(&both), Some(at(20)))));
        assert!(!narrowed((Some(&read), Some(at(10))), (None, None)));
        assert!(!narrowed((None, None), (None, None)));
        // Narrower: a scope taken away, scopes set on a key that acted as its user, an
        // expiry set or brought forward (a rotation).
        assert!(narrowed((Some(&both), None), (Some(&read), None)));
        assert!(narrowed((None, None), (Some(&both), None)));
        assert!(narrowed((None, None), (None, Some(at(10)))));
        assert!(narrowed((None, Some(at(20))), (None, Some(at(10)))));
    }

    #[test]
    fn who_may_do_what() {
        let table: [(&str, Rule, &str, &str); 20] = [
            ("read keys", |c| c.require_scope("keys:read"), "YYYYYYY", "YYYYYYY"),
            ("write keys", |c| c.require_scope("keys:write"), "YYYYSSS", "YYYYSSS"),
            (
                "act on one's own keys",
                |c| owner_for(c, None, |_| true).map(drop),
                "YYYYYYY",
                "YYYYYYY",
            ),
            (
                "act on one's own keys by id",
                |c| owner_for(c, Some(c.user.id), |_| false).map(drop),
                "YYYYYYY",
                "YYYYYYY",
            ),
            (
                "act on another user's keys",
                |c| owner_for(c, Some(id(2)), |_| true).map(drop),
                "YYYYYYY",
                "NNNNNNN",
            ),
            (
                "act on a deleted user's keys",
                |c| owner_for(c, Some(id(2)), |_| false).map(drop),
                "NNNNNNN",
                "NNNNNNN",
            ),
            (
                "name another user by login",
                |c| user_by_login(c, "bob", |_| Some(id(2))).map(drop),
                "YYYYYYY",
                "FFFFFFF",
            ),
            (
                "name oneself by email",
                |c| user_by_login(c, "ADA@example.com", |_| None).map(drop),
                "YYYYYYY",
                "YYYYYYY",
            ),
            ("admin route (users, audit)", require_admin, "YYYYSSS", "FFFFSSS"),
            ("admin route, before the body", require_admin_role, "YYYYYYY", "FFFFFFF"),
            (
                "verify keys, read the revocation feed",
                require_verifier,
                "YYYYSYS",
                "SSSSSYS",
            ),
            (
                "read metrics",
                |c| require_privileged(c, "metrics:read"),
                "YYYYSSS",
                "SSSSSSS",
            ),
            (
                "set one's own password",
                |c| may_set_password(c, c.user.id),
                "YYYFFFF",
                "YYYFFFF",
            ),
            (
                "set another's password",
                |c| may_set_password(c, id(2)),
                "YYYYYYY",
                "YYYYYYY",
            ),
            (
                "disable or demote oneself",
                |c| may_change_self(c, c.user.id, SelfChange::DisableOrDemote),
                "CCCCCCC",
                "CCCCCCC",
            ),
            (
                "delete another user",
                |c| may_change_self(c, id(2), SelfChange::Delete),
                "YYYYYYY",
                "YYYYYYY",
            ),
            (
                "grant keys:verify to a new key",
                |c| gives_keys_verify(c, None),
                "YYYYFYF",
                "FFFFFFF",
            ),
            (
                "carry a granted keys:verify over to a replacement",
                |c| {
                    let held = Held {
                        scopes: vec!["keys:verify".into()],
                        grants: vec!["keys:verify".into()],
                    };
                    gives_keys_verify(c, Some(&held))
                },
                "YYYYFYF",
                "YYYYFYF",
            ),
            (
                "make a key with a scope the presenting key lacks, or none",
                |c| {
                    grants_for(c, Some(&scopes(&["orders:write"])), None)?;
                    grants_for(c, None, None).map(drop)
                },
                "YYYYFFF",
                "YYYYFFF",
            ),
            (
                "make a key that outlives the presenting key",
                |c| may_make_key_until(c, None),
                "YYYIIII",
                "YYYIIII",
            ),
        ];
        for (action, rule, admin, user) in table {
            for (role, expected) in [(Role::Admin, admin), (Role::User, user)] {
                let got: String = CREDENTIALS.iter().map(|&c| verdict(rule(&caller(role, c)))).collect();
                assert_eq!(got, expected, "{action}, as {role:?} with {CREDENTIALS:?}");
            }
        }
    }

    #[test]
    fn a_key_may_make_a_key_that_ends_with_it_or_before() {
        let key = caller(Role::User, Credential::Key);
        assert!(may_make_key_until(&key, Some(KEY_END)).is_ok());
        assert!(may_make_key_until(&key, Some(KEY_END.plus(std::time::Duration::from_secs(1)))).is_err());
    }

    fn ratelimits(list: &[(u64, u64)]) -> RateLimits {
        let list = list
            .iter()
            .enumerate()
            .map(|(i, (n, secs))| {
                crate::model::RateLimit::new(format!("l{i}"), *n, crate::model::GivenDuration::Seconds(*secs), *secs)
                    .unwrap_or_else(|_| unreachable!())
            })
            .collect();
        RateLimits::parse(list).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn only_an_admin_loosens_limits_and_anyone_may_tighten() {
        let current_limits = ratelimits(&[(100, 60)]);
        let current_credits = Credits::new(100, None).unwrap_or_else(|_| unreachable!());
        let current = Limits {
            ratelimits: &current_limits,
            credits: Some(&current_credits),
        };
        let looser = [
            (Some(ratelimits(&[])), None),
            (Some(ratelimits(&[(101, 60)])), None),
            (Some(ratelimits(&[(100, 59)])), None),
            (None, Some(CreditsChange::Set(None))),
            (
                None,
                Some(CreditsChange::Set(Some(
                    Credits::new(101, None).unwrap_or_else(|_| unreachable!()),
                ))),
            ),
            (None, Some(CreditsChange::Add(1))),
        ];
        let tighter = [
            (Some(ratelimits(&[(100, 60)])), None),
            (Some(ratelimits(&[(10, 60), (1, 1)])), None),
            (
                None,
                Some(CreditsChange::Set(Some(
                    Credits::new(5, None).unwrap_or_else(|_| unreachable!()),
                ))),
            ),
            (None, Some(CreditsChange::Add(0))),
        ];
        for credential in CREDENTIALS {
            let (admin, user) = (caller(Role::Admin, credential), caller(Role::User, credential));
            for (rates, credits) in &looser {
                assert_eq!(
                    verdict(may_set_limits(&admin, current, rates.as_ref(), credits.as_ref())),
                    'Y'
                );
                assert_eq!(
                    verdict(may_set_limits(&user, current, rates.as_ref(), credits.as_ref())),
                    'F'
                );
            }
            for (rates, credits) in &tighter {
                assert_eq!(
                    verdict(may_set_limits(&user, current, rates.as_ref(), credits.as_ref())),
                    'Y'
                );
            }
        }
        // A key makes only keys as tight as itself, whoever holds it.
        assert!(may_make_key_limited(Some(current), current).is_ok());
        let free = RateLimits::none();
        let unlimited = Limits {
            ratelimits: &free,
            credits: None,
        };
        assert!(may_make_key_limited(Some(current), unlimited).is_err());
        assert!(may_make_key_limited(None, unlimited).is_ok());
    }
}
