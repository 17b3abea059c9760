//! Credentials: the four forms a request may carry, how each is checked, logins, and the
//! throttle on failed passwords.
//!
//! 1. `Authorization: Bearer <access token or key>`
//! 2. `Authorization: <key>` with no scheme (seed 002)
//! 3. `Authorization: Basic base64(user:password)` or `Basic base64(anything:<key>)`
//! 4. `X-API-Key: <key>`
//!
//! Only the Bearer form accepts an access token.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use parking_lot::Mutex;

use super::service::{Caller, Keyward, Via};
use super::view::{Bearer, KeyCheck};
use super::{Error, Secret, Timestamp};
use crate::store::AuditRecord;

/// A credential as presented, not yet checked.
pub enum Credential {
    Bearer(Secret),
    RawKey(Secret),
    Basic { username: String, password: Secret },
    ApiKeyHeader(Secret),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(***)"),
            Credential::RawKey(_) => f.write_str("RawKey(***)"),
            Credential::Basic { username, .. } => write!(f, "Basic({username:?}, ***)"),
            Credential::ApiKeyHeader(_) => f.write_str("ApiKeyHeader(***)"),
        }
    }
}

/// What the headers held: nothing, something unreadable, two different credentials, or
/// one credential.
#[derive(Debug)]
pub enum Presented {
    Nothing,
    Malformed,
    /// Two different credentials (RFC 6750 §3.1 `invalid_request`): refused rather than
    /// resolved by header order, which would let a valid one mask a revoked one.
    Conflicting,
    Credential(Credential),
}

impl Presented {
    /// Reads every `Authorization` and `X-API-Key` header value (bytes as received). The
    /// same key sent more than once, in any of the forms, is one credential.
    pub fn from_headers<'a>(
        authorization: impl IntoIterator<Item = &'a [u8]>,
        api_key: impl IntoIterator<Item = &'a [u8]>,
    ) -> Presented {
        let parsed = authorization
            .into_iter()
            .map(parse_authorization)
            .chain(api_key.into_iter().map(parse_api_key));
        let mut found: Option<Credential> = None;
        for credential in parsed {
            let Some(credential) = credential else {
                return Presented::Malformed;
            };
            match &found {
                None => found = Some(credential),
                Some(first) if first.same_as(&credential) => {}
                Some(_) => return Presented::Conflicting,
            }
        }
        found.map_or(Presented::Nothing, Presented::Credential)
    }
}

impl Credential {
    /// The key or password it carries.
    fn secret(&self) -> &Secret {
        match self {
            Credential::Bearer(s) | Credential::RawKey(s) | Credential::ApiKeyHeader(s) => s,
            Credential::Basic { password, .. } => password,
        }
    }

    /// Whether two headers carry one credential: the same key in any form, or the same
    /// username and password twice.
    fn same_as(&self, other: &Credential) -> bool {
        match (self, other) {
            (
                Credential::Basic {
                    username: a,
                    password: p,
                },
                Credential::Basic {
                    username: b,
                    password: q,
                },
            ) => a == b && p.reveal() == q.reveal(),
            _ => self.secret().reveal() == other.secret().reveal(),
        }
    }
}

fn parse_api_key(value: &[u8]) -> Option<Credential> {
    let v = std::str::from_utf8(value).ok()?.trim();
    (!v.is_empty() && !has_space(v)).then(|| Credential::ApiKeyHeader(Secret::new(v)))
}

/// Header values are ASCII in practice; a byte scan is all the hot path needs.
fn has_space(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_whitespace())
}

fn parse_authorization(value: &[u8]) -> Option<Credential> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest.trim()),
        None => ("", value),
    };
    if rest.is_empty() || has_space(rest) {
        return None;
    }
    if scheme.is_empty() {
        if rest.eq_ignore_ascii_case("bearer") || rest.eq_ignore_ascii_case("basic") {
            return None; // a scheme with nothing after it
        }
        return Some(Credential::RawKey(Secret::new(rest)));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credential::Bearer(Secret::new(rest)));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        return Some(Credential::Basic {
            username: username.to_owned(),
            password: Secret::new(password),
        });
    }
    None
}

/// Failed passwords, per account and source address. After [`FREE_FAILURES`] failures in a
/// row, each further attempt waits twice as long as the last, up to [`MAX_BLOCK`]; a
/// success, or [`FORGET_AFTER`] without failures, clears the count. Keyed by source too, so
/// an attacker elsewhere cannot lock the owner out.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<(String, Option<IpAddr>), Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Timestamp,
    blocked_until: Timestamp,
}

pub const FREE_FAILURES: u32 = 5;
pub const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Beyond this many tracked pairs, stale ones are swept.
const SWEEP_AT: usize = 100_000;

impl Throttle {
    fn key(login: &str, source: Option<IpAddr>) -> (String, Option<IpAddr>) {
        (login.to_ascii_lowercase(), source)
    }

    /// `Throttled` while this account is blocked for this source.
    pub fn check(&self, login: &str, source: Option<IpAddr>, now: Timestamp) -> Result<(), Error> {
        let map = self.failures.lock();
        match map.get(&Self::key(login, source)) {
            Some(f) if f.blocked_until > now => {
                let wait = u64::try_from(f.blocked_until.millis() - now.millis()).unwrap_or(0);
                Err(Error::Throttled {
                    retry_after: Duration::from_millis(wait).max(Duration::from_secs(1)),
                })
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, login: &str, source: Option<IpAddr>, now: Timestamp) {
        let mut map = self.failures.lock();
        if map.len() >= SWEEP_AT {
            map.retain(|_, f| f.last.plus(FORGET_AFTER) > now);
        }
        let f = map.entry(Self::key(login, source)).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: now,
        });
        if f.last.plus(FORGET_AFTER) <= now {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count >= FREE_FAILURES {
            let exp = (f.count - FREE_FAILURES).min(16);
            let block = Duration::from_secs(1u64 << exp).min(MAX_BLOCK);
            f.blocked_until = now.plus(block);
        }
    }

    pub fn succeeded(&self, login: &str, source: Option<IpAddr>) {
        self.failures.lock().remove(&Self::key(login, source));
    }
}

/// The caller a key check admits; `Ok(None)` for a key this server does not hold.
fn key_caller(check: KeyCheck) -> Result<Option<Caller>, Error> {
    match check {
        KeyCheck::Valid(k) => Ok(Some(Caller {
            user: k.user,
            via: Via::ApiKey {
                key_id: k.key_id,
                expires_at: k.expires_at,
                scopes: k.scopes,
            },
            source: None,
        })),
        KeyCheck::NotFound => Ok(None),
        KeyCheck::Expired | KeyCheck::Disabled => Err(Error::Unauthenticated { presented: true }),
    }
}

/// The outcome of the synchronous part of authentication.
pub enum Authentication {
    /// Decided: keys and access tokens never wait.
    Done(Result<Caller, Error>),
    /// A username and password, which need argon2 on the blocking pool.
    NeedsPassword { username: String, password: Secret },
}

impl Keyward {
    /// Turns a presented credential into a caller, or `Unauthenticated`.
    pub async fn authenticate(
        &self,
        presented: Presented,
        source: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<Caller, Error> {
        match self.authenticate_now(presented, now) {
            Authentication::Done(result) => result,
            Authentication::NeedsPassword { username, password } => {
                self.authenticate_password(&username, &password, source, now).await
            }
        }
    }

    /// Everything that can be decided without waiting: keys and access tokens, from memory.
    pub fn authenticate_now(&self, presented: Presented, now: Timestamp) -> Authentication {
        let refused = || Error::Unauthenticated { presented: true };
        let credential = match presented {
            Presented::Nothing => return Authentication::Done(Err(Error::Unauthenticated { presented: false })),
            Presented::Malformed => return Authentication::Done(Err(refused())),
            Presented::Conflicting => {
                return Authentication::Done(Err(Error::InvalidRequest(
                    "the request carries two different credentials; send one".into(),
                )));
            }
            Presented::Credential(c) => c,
        };
        let started = Instant::now();
        Authentication::Done(match credential {
            Credential::Bearer(token) => match self.view().check_bearer(token.reveal(), now, self.signer()) {
                Bearer::Key(check) => {
                    self.count_verification(&check, started);
                    key_caller(check).and_then(|c| c.ok_or_else(refused))
                }
                Bearer::AccessToken(user) => user
                    .map(|user| Caller {
                        user,
                        via: Via::AccessToken,
                        source: None,
                    })
                    .ok_or_else(refused),
            },
            Credential::RawKey(token) | Credential::ApiKeyHeader(token) => {
                let check = self.view().check_key(token.reveal(), now, self.signer());
                self.count_verification(&check, started);
                key_caller(check).and_then(|c| c.ok_or_else(refused))
            }
            Credential::Basic { username, password } => {
                match self.view().check_key(password.reveal(), now, self.signer()) {
                    // Not a key this server holds: a password.
                    KeyCheck::NotFound => return Authentication::NeedsPassword { username, password },
                    check => {
                        self.count_verification(&check, started);
                        key_caller(check).and_then(|c| c.ok_or_else(refused))
                    }
                }
            }
        })
    }

    /// Counts a key verification by result, with its latency. A revoked key has left the
    /// view, so it counts as `not_found`.
    fn count_verification(&self, check: &KeyCheck, started: Instant) {
        let metrics = self.metrics();
        metrics.verification_seconds.observe(started.elapsed().as_secs_f64());
        // Indexes into VERIFICATION_RESULTS: valid, not_found, expired, revoked, disabled.
        let index = match check {
            KeyCheck::Valid(_) => 0,
            KeyCheck::NotFound => 1,
            KeyCheck::Expired => 2,
            KeyCheck::Disabled => 4,
        };
        metrics.verification_by_result[index].inc();
    }

    /// The password half of Basic authentication.
    pub async fn authenticate_password(
        &self,
        username: &str,
        password: &Secret,
        source: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<Caller, Error> {
        let user = self.check_password(username, password, source, now).await?;
        Ok(Caller {
            user,
            via: Via::Password,
            source,
        })
    }

    /// Checks a username (or email) and password, with throttling. Unknown users cost the
    /// same argon2 work as known ones.
    pub(super) async fn check_password(
        &self,
        login: &str,
        password: &Secret,
        source: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<std::sync::Arc<super::UserRecord>, Error> {
        self.throttle().check(login, source, now)?;
        let user = self.view().user_by_login(login);
        let phc = user.as_ref().map(|u| u.password_hash.clone());
        let matched = self.passwords().verify(password, phc.as_deref()).await?;
        match user {
            Some(user) if matched && user.active() => {
                self.throttle().succeeded(login, source);
                Ok(user)
            }
            _ => {
                self.throttle().failed(login, source, now);
                self.metrics().logins_failed.inc();
                // Name the account only if it exists: a mistyped password in the username
                // field must not end up in the audit trail.
                let audit = AuditRecord {
                    at: now,
                    actor_id: user.as_ref().map(|u| u.id),
                    actor: user
                        .as_ref()
                        .map_or_else(|| "anonymous".to_owned(), |u| u.username.clone()),
                    action: "login.failed",
                    target_type: user.as_ref().map(|_| "user"),
                    target_id: user.as_ref().map(|u| u.id.to_string()),
                    source_ip: source.map(|ip| ip.to_string()),
                    detail: None,
                };
                if let Err(e) = self.store().record_audit(audit).await {
                    log::warn!("recording a failed login: {e}");
                }
                log::info!(
                    "failed password login for {} from {}",
                    user.as_ref()
                        .map_or_else(|| "an unknown user".to_owned(), |u| format!("user {}", u.id)),
                    source.map_or_else(|| "?".into(), |s| s.to_string())
                );
                Err(Error::Unauthenticated { presented: true })
            }
        }
    }

    /// `POST /v1/auth/token`: a username (or email) and password for an access token and its
    /// lifetime in seconds.
    pub async fn login(
        &self,
        login: &str,
        password: &Secret,
        source: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<(Secret, u64), Error> {
        let user = self.check_password(login, password, source, now).await?;
        self.signer().issue_access_token(user.id, user.token_epoch, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(auth: Option<&str>, key: Option<&str>) -> Presented {
        Presented::from_headers(auth.map(str::as_bytes), key.map(str::as_bytes))
    }

    #[test]
    fn two_different_credentials_conflict_and_one_repeated_does_not() {
        let many = |auth: &[&str], keys: &[&str]| {
            Presented::from_headers(auth.iter().map(|a| a.as_bytes()), keys.iter().map(|k| k.as_bytes()))
        };
        assert!(matches!(
            many(&["Bearer a.b.c", "Bearer d.e.f"], &[]),
            Presented::Conflicting
        ));
        assert!(matches!(many(&[], &["a.b.c", "d.e.f"]), Presented::Conflicting));
        assert!(matches!(many(&["Bearer a.b.c"], &["d.e.f"]), Presented::Conflicting));
        assert!(matches!(
            many(&["Basic YWRhOnBhc3M="], &["pass"]),
            Presented::Credential(Credential::Basic { .. })
        ));
        assert!(matches!(many(&["Bearer a.b.c"], &["a.b.c"]), Presented::Credential(_)));
        assert!(matches!(
            many(&["a.b.c", "Bearer a.b.c"], &["a.b.c"]),
            Presented::Credential(_)
        ));
        assert!(matches!(many(&["Bearer a.b.c"], &[""]), Presented::Malformed));
    }

    #[test]
    fn the_four_forms() {
        assert!(
            matches!(parse(Some("Bearer a.b.c"), None), Presented::Credential(Credential::Bearer(t)) if t.reveal() == "a.b.c")
        );
        assert!(matches!(
            parse(Some("bearer a.b.c"), None),
            Presented::Credential(Credential::Bearer(_))
        ));
        assert!(
            matches!(parse(Some("a.b.c"), None), Presented::Credential(Credential::RawKey(t)) if t.reveal() == "a.b.c")
        );
        // "ada:pass:word" -> the password keeps its colons.
        match parse(Some("Basic YWRhOnBhc3M6d29yZA=="), None) {
            Presented::Credential(Credential::Basic { username, password }) => {
                assert_eq!(username, "ada");
                assert_eq!(password.reveal(), "pass:word");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(None, Some("a.b.c")),
            Presented::Credential(Credential::ApiKeyHeader(_))
        ));
        assert!(matches!(parse(None, None), Presented::Nothing));
    }

    #[test]
    fn malformed_headers() {
        for bad in [
            "Bearer",
            "Bearer ",
            "Basic !!!",
            "Basic bm9jb2xvbg==",
            "Digest a b",
            "Bearer a b",
            "",
        ] {
            assert!(matches!(parse(Some(bad), None), Presented::Malformed), "{bad:?}");
        }
        assert!(matches!(parse(None, Some("")), Presented::Malformed));
    }

    proptest::proptest! {
        #[test]
        fn any_header_bytes_parse_or_are_malformed_without_panicking(
            auth in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..300)),
            key in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..300)),
        ) {
            let _ = Presented::from_headers(auth.as_deref(), key.as_deref());
        }

        #[test]
        fn any_basic_payload_parses_or_is_malformed(payload in "\\PC{0,80}") {
            use base64::Engine;
            let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&payload));
            let parsed = Presented::from_headers(Some(header.as_bytes()), None);
            let has_colon = payload.contains(':');
            proptest::prop_assert_eq!(matches!(parsed, Presented::Credential(Credential::Basic { .. })), has_colon);
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Credential::Basic {
            username: "ada".into(),
            password: Secret::new("hunter22"),
        };
        assert!(!format!("{c:?}").contains("hunter22"));
    }

    #[test]
    fn throttle_blocks_after_free_failures_and_per_source() {
        let t = Throttle::default();
        let now = Timestamp::from_secs(1_000_000);
        let a: Option<IpAddr> = "10.0.0.1".parse().ok();
        let b: Option<IpAddr> = "10.0.0.2".parse().ok();
        for _ in 0..FREE_FAILURES {
            assert!(t.check("Ada", a, now).is_ok());
            t.failed("ada", a, now);
        }
        assert!(matches!(t.check("ADA", a, now), Err(Error::Throttled { .. })));
        assert!(t.check("ada", b, now).is_ok(), "another source is not blocked");
        assert!(
            t.check("ada", a, now.plus(Duration::from_secs(2))).is_ok(),
            "the block ends"
        );
    }
}
