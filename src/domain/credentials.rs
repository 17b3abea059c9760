//! Credentials: the four forms a request may carry, how each is checked, and logins (the
//! throttle on failed passwords is `throttle.rs`).
//!
//! 1. `Authorization: Bearer <access token or key>`
//! 2. `Authorization: <key>` with no scheme (seed 002)
//! 3. `Authorization: Basic base64(user:password)` or `Basic base64(anything:<key>)`
//! 4. `X-API-Key: <key>`
//!
//! Only the Bearer form accepts an access token.

use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use base64::Engine;

use super::caller::{Caller, Via};
use super::keyward::Keyward;
use super::limits::{Admission, Admitted, Charges, PendingSpend};
use super::throttle::AccountKey;
pub use super::throttle::{ACCOUNT_FREE_FAILURES, ACCOUNT_SPACING, FREE_FAILURES, MAX_BLOCK, MAX_TRACKED};
use super::view::{Bearer, KeyCheck};
use super::{AuditRecord, Error, Secret, Timestamp};

/// A credential as presented, not yet checked. Keys and tokens borrow the header they came
/// in (the hot path copies nothing); a Basic pair is decoded, so it is owned.
pub enum Credential<'a> {
    Bearer(&'a str),
    RawKey(&'a str),
    Basic { username: String, password: Secret },
    ApiKeyHeader(&'a str),
}

impl fmt::Debug for Credential<'_> {
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
pub enum Presented<'a> {
    Nothing,
    Malformed,
    /// Two different credentials (RFC 6750 §3.1 `invalid_request`): refused rather than
    /// resolved by header order, which would let a valid one mask a revoked one.
    Conflicting,
    Credential(Credential<'a>),
}

impl<'a> Presented<'a> {
    /// Reads every `Authorization` and `X-API-Key` header value (bytes as received). The
    /// same key sent more than once, in any of the forms, is one credential.
    pub fn from_headers(
        authorization: impl IntoIterator<Item = &'a [u8]>,
        api_key: impl IntoIterator<Item = &'a [u8]>,
    ) -> Presented<'a> {
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

impl Credential<'_> {
    /// The key or password it carries.
    fn secret(&self) -> &str {
        match self {
            Credential::Bearer(s) | Credential::RawKey(s) | Credential::ApiKeyHeader(s) => s,
            Credential::Basic { password, .. } => password.reveal(),
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
            _ => self.secret() == other.secret(),
        }
    }
}

fn parse_api_key(value: &[u8]) -> Option<Credential<'_>> {
    let v = text(value)?.trim();
    (!v.is_empty() && !has_space(v)).then_some(Credential::ApiKeyHeader(v))
}

/// Whether `s` holds ASCII white space. A fold rather than `any`, so the compiler can check
/// many bytes at once: this runs on every key presented.
fn has_space(s: &str) -> bool {
    s.bytes().fold(false, |found, b| {
        found | matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
    })
}

/// A header's value as text, if it is UTF-8: checked with SIMD (a key is 250-270 bytes,
/// checked on every request; already built for actix).
fn text(value: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(value).ok()
}

fn parse_authorization(value: &[u8]) -> Option<Credential<'_>> {
    let value = text(value)?.trim();
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
        return Some(Credential::RawKey(rest));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credential::Bearer(rest));
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

/// The audit line of a failed sign-in. It names the account only if it exists: a mistyped
/// password in the username field must not end up in the audit trail.
fn failed_login(
    user: Option<&std::sync::Arc<super::UserRecord>>,
    source: Option<IpAddr>,
    now: Timestamp,
    detail: Option<String>,
) -> AuditRecord {
    AuditRecord {
        at: now,
        actor_id: user.map(|u| u.id),
        actor: user.map_or_else(|| "anonymous".to_owned(), |u| u.username.clone()),
        action: "login.failed",
        target_type: user.map(|_| "user"),
        target_id: user.map(|u| u.id.to_string()),
        source_ip: source.map(|ip| ip.to_string()),
        detail,
    }
}

/// The outcome of the synchronous part of authentication.
pub enum Authentication {
    /// Decided: keys and access tokens never wait.
    Done(Result<Caller, Error>),
    /// A key with rate limits or credits, admitted: where its limits stand now.
    Admitted(Caller, Admitted),
    /// A key whose credits this node must reserve more of before the request is admitted.
    NeedsCredits(Caller, PendingSpend),
    /// A username and password, which need argon2 on the blocking pool.
    NeedsPassword { username: String, password: Secret },
}

impl Keyward {
    /// Turns a presented credential into a caller, or `Unauthenticated`.
    pub async fn authenticate(&self, presented: Presented<'_>, source: Option<IpAddr>) -> Result<Caller, Error> {
        match self.authenticate_now(presented) {
            Authentication::Done(result) => result,
            Authentication::Admitted(caller, _) => Ok(caller),
            Authentication::NeedsCredits(caller, pending) => self.finish_spend(pending).await.map(|_| caller),
            Authentication::NeedsPassword { username, password } => {
                self.authenticate_password(&username, &password, source).await
            }
        }
    }

    /// What a key check decides: the caller it admits (a limited key's request taken from
    /// its rate limits and credits), or `refused` for a key this server does not hold.
    fn key_authentication(&self, check: KeyCheck, now: Timestamp) -> Authentication {
        let k = match check {
            KeyCheck::Valid(k) => k,
            KeyCheck::NotFound | KeyCheck::Expired | KeyCheck::Disabled => {
                return Authentication::Done(Err(Error::Unauthenticated { presented: true }));
            }
        };
        let caller = Caller {
            user: k.user,
            via: Via::ApiKey {
                key_id: k.key_id,
                expires_at: k.expires_at,
                scopes: k.scopes,
                limited: k.limits.is_some(),
            },
            source: None,
        };
        // Keys without limits (of their own or their user's) pay this one branch.
        let Some(charges) = Charges::of((k.key_id, k.limits), (caller.user.id, k.user_limits)) else {
            return Authentication::Done(Ok(caller));
        };
        match self.admit_now(charges, 1, now) {
            Ok(Admission::Admitted(admitted)) => Authentication::Admitted(caller, admitted),
            Ok(Admission::Pending(pending)) => Authentication::NeedsCredits(caller, pending),
            Err(refused) => Authentication::Done(Err(refused)),
        }
    }

    /// Everything that can be decided without waiting: keys and access tokens, from memory.
    pub fn authenticate_now(&self, presented: Presented) -> Authentication {
        let now = self.now();
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
        // A node that may have missed a revocation refuses every credential.
        if let Err(stale) = self.require_fresh() {
            return Authentication::Done(Err(stale));
        }
        let started = Instant::now();
        match credential {
            Credential::Bearer(token) => match self.view().check_bearer(token, now, self.signer()) {
                Bearer::Key(check) => {
                    self.count_verification(&check, started);
                    self.key_authentication(check, now)
                }
                Bearer::AccessToken(Some(user)) => Authentication::Done(Ok(Caller {
                    user,
                    via: Via::AccessToken,
                    source: None,
                })),
                Bearer::AccessToken(None) => {
                    self.count_revoked_use(token, now);
                    Authentication::Done(Err(refused()))
                }
            },
            Credential::RawKey(token) | Credential::ApiKeyHeader(token) => {
                let check = self.view().check_key(token, now, self.signer());
                self.count_verification(&check, started);
                if matches!(check, KeyCheck::NotFound) {
                    self.count_revoked_use(token, now);
                }
                self.key_authentication(check, now)
            }
            Credential::Basic { username, password } => {
                match self.view().check_key(password.reveal(), now, self.signer()) {
                    // Not a key this server holds: a password.
                    KeyCheck::NotFound => Authentication::NeedsPassword { username, password },
                    check => {
                        self.count_verification(&check, started);
                        self.key_authentication(check, now)
                    }
                }
            }
        }
    }

    /// Counts, in the key's usage, a use of a key this node saw revoked (or gone with its
    /// user). Only on the way to a 401; no signature is checked.
    pub(super) fn count_revoked_use(&self, token: &str, now: Timestamp) {
        self.view().count_revoked_use(token, now);
    }

    /// Counts a key verification by result, with its latency. A revoked key has left the
    /// view, so it counts as `not_found`.
    fn count_verification(&self, check: &KeyCheck, started: Instant) {
        // Indexes into VERIFICATION_RESULTS: valid, not_found, expired, revoked, disabled.
        let index = match check {
            KeyCheck::Valid(_) => 0,
            KeyCheck::NotFound => 1,
            KeyCheck::Expired => 2,
            KeyCheck::Disabled => 4,
        };
        self.metrics().verifications.record(index, started.elapsed());
    }

    /// The password half of Basic authentication.
    pub async fn authenticate_password(
        &self,
        username: &str,
        password: &Secret,
        source: Option<IpAddr>,
    ) -> Result<Caller, Error> {
        let now = self.now();
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
        // A password is a credential too: a stale node may not know the account was disabled.
        self.require_fresh()?;
        let mut user = self.view().user_by_login(login);
        if user.is_none() && self.store().shared_by_nodes() {
            // On several nodes, an account made on another node a moment ago may not have
            // reached this one yet: read the change feed once before saying there is none.
            if let Err(e) = self.apply_changes().await {
                log::warn!("{e}");
            }
            user = self.view().user_by_login(login);
        }
        // Username and email of one account are one count.
        let account = user
            .as_ref()
            .map_or_else(|| AccountKey::unknown_login(login), |u| AccountKey::user(u.id));
        let counted = self.login_allowed(account, source, now).await?;
        let phc = user.as_ref().map(|u| u.password_hash.clone());
        let matched = self.passwords().verify(password, phc.as_deref()).await?;
        match user {
            Some(user) if matched && user.active() => {
                self.login_succeeded(account, source, counted).await;
                if super::passwords::is_imported_hash(&user.password_hash) {
                    self.replace_imported_hash(&user, password, now).await;
                }
                Ok(user)
            }
            _ => {
                self.login_failed(account, source, now).await;
                self.metrics().logins_failed.inc();
                let recorded = match &user {
                    Some(user) => self
                        .store()
                        .record_audit(failed_login(Some(user), source, now, None))
                        .await
                        .map(|_| ()),
                    None => self.record_unknown_login(source, now).await,
                };
                if let Err(e) = recorded {
                    log::warn!("recording a failed login: {e}");
                }
                log::info!(
                    "failed password login for {} from {}",
                    user.as_ref()
                        .map_or_else(|| "an unknown user".to_owned(), |u| format!("user {}", u.id)),
                    source.map_or_else(|| "?".into(), |s| s.to_string())
                );
                Err(Error::WrongPassword)
            }
        }
    }

    /// Replaces a password hash imported from another system, just verified, by argon2id
    /// (the password is not changed: access tokens go on). A failure is logged; the
    /// imported hash then stays and is replaced at a later sign-in.
    async fn replace_imported_hash(&self, user: &super::UserRecord, password: &Secret, now: Timestamp) {
        let replaced = async {
            let password = super::Password::parse(password.clone())?;
            let hash: std::sync::Arc<str> = self.passwords().hash(&password).await?.into();
            let changes = crate::store::UserChanges {
                password_hash: Some(hash),
                ..crate::store::UserChanges::default()
            };
            let audit = AuditRecord {
                at: now,
                actor_id: Some(user.id),
                actor: user.username.clone(),
                action: "user.password_rehashed",
                target_type: Some("user"),
                target_id: Some(user.id.to_string()),
                source_ip: None,
                detail: Some("an imported password hash replaced by argon2id".into()),
            };
            let view = self.view().clone();
            self.store()
                .update_user(user.id, changes, now, audit, move |u| {
                    if let Some(u) = u {
                        view.put_user(u.clone());
                    }
                })
                .await
                .map_err(|e| e.into_domain("storing the new password hash failed"))?;
            Ok::<(), Error>(())
        };
        if let Err(e) = replaced.await {
            log::warn!("user {}: the imported password hash stays for now: {e}", user.id);
        }
    }

    /// Failed sign-ins with logins that name no account are one audit line per address and
    /// minute, its count kept up to date: guessing usernames does not grow the audit trail
    /// by a line per attempt. (The login itself is never recorded: it may be a password
    /// typed into the wrong field.)
    async fn record_unknown_login(
        &self,
        source: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<(), crate::store::StoreError> {
        let minute = now.secs().div_euclid(60);
        let counted = self.unknown_logins().lock().count(source, minute);
        match counted {
            Some((seq, count)) => {
                let detail = format!("{count} failed sign-ins with unknown usernames in this minute");
                self.store().set_audit_detail(seq, detail).await
            }
            None => {
                let audit = failed_login(
                    None,
                    source,
                    now,
                    Some("1 failed sign-in with an unknown username in this minute".into()),
                );
                let seq = self.store().record_audit(audit).await?;
                self.unknown_logins().lock().started(source, minute, seq);
                Ok(())
            }
        }
    }

    /// `POST /v1/auth/token`: a username (or email) and password for an access token and its
    /// lifetime in seconds.
    pub async fn login(&self, login: &str, password: &Secret, source: Option<IpAddr>) -> Result<(Secret, u64), Error> {
        let now = self.now();
        let user = self.check_password(login, password, source, now).await?;
        self.signer().issue_access_token(user.id, user.token_epoch, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<'a>(auth: Option<&'a str>, key: Option<&'a str>) -> Presented<'a> {
        Presented::from_headers(auth.map(str::as_bytes), key.map(str::as_bytes))
    }

    #[test]
    fn two_different_credentials_conflict_and_one_repeated_does_not() {
        fn many<'a>(auth: &[&'a str], keys: &[&'a str]) -> Presented<'a> {
            Presented::from_headers(auth.iter().map(|a| a.as_bytes()), keys.iter().map(|k| k.as_bytes()))
        }
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
            matches!(parse(Some("Bearer a.b.c"), None), Presented::Credential(Credential::Bearer(t)) if t == "a.b.c")
        );
        assert!(matches!(
            parse(Some("bearer a.b.c"), None),
            Presented::Credential(Credential::Bearer(_))
        ));
        assert!(matches!(parse(Some("a.b.c"), None), Presented::Credential(Credential::RawKey(t)) if t == "a.b.c"));
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
}
