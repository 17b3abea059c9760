//! The two kinds of JWT keyward issues, and how each is signed and checked.
//!
//! One master secret; each kind signs with its own key derived from it
//! (`blake3::derive_key`, distinct contexts) and carries its own `typ`, and access tokens an
//! audience too. So an access token cannot pass as an API key, nor a key as an access token:
//! the signature fails first (RFC 8725 §3.11). The algorithm is pinned (HS256), `typ` and
//! `kid` are checked by hand (jsonwebtoken does not), and the leeway is 5 s, not 60.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Error, KeyId, Secret, Timestamp, UserId, hex};
use crate::model::SigningKey;

/// `typ` of an API key: seed 001's keys carry plain `JWT`.
const KEY_TYP: &str = "JWT";
/// `typ` of an access token (RFC 9068).
const ACCESS_TYP: &str = "at+jwt";
const ACCESS_AUDIENCE: &str = "keyward:access";
/// Seconds of clock skew tolerated on `exp`.
pub const LEEWAY_SECS: u64 = 5;

const MASTER_CONTEXT: &str = "keyward 2026-11-23 master secret";
const KEY_SIGNING_CONTEXT: &str = "keyward 2026-11-23 api key signing";
const ACCESS_SIGNING_CONTEXT: &str = "keyward 2026-11-23 access token signing";
const KID_CONTEXT: &str = "keyward 2026-11-23 key id of a signing key";

/// Whether `token` may be a JWT keyward signed (a key or an access token): each begins with
/// its header, a JSON object, so `{"` in base64url. Anything else cannot be looked up by
/// blake3 (keyward's keys) and is at most an imported key.
pub fn may_be_ours(token: &str) -> bool {
    token.as_bytes().starts_with(b"eyJ")
}

/// Claims of an API key: seed 001's `sub, iss, iat, exp`, plus `jti` (the key id).
#[derive(Serialize, Deserialize)]
struct KeyClaims {
    iss: String,
    sub: String,
    jti: String,
    iat: i64,
    exp: i64,
}

/// Claims of an access token; `ep` is the user's token epoch when it was issued.
#[derive(Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    ep: i64,
}

/// Signing and checking for one kind of token.
struct KindKeys {
    alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    typ: &'static str,
    validation: Validation,
    /// The Ed25519 public key, published in the JWKS; `None` for HMAC.
    public: Option<[u8; 32]>,
}

/// The checks every token gets: the pinned algorithm, 5 s of leeway, `exp`, `nbf`, issuer,
/// and for access tokens the audience.
fn validation(alg: Algorithm, issuer: &str, audience: Option<&str>) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    validation.set_issuer(&[issuer]);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    validation
}

impl KindKeys {
    fn derive(master: &[u8; 32], context: &str, typ: &'static str, issuer: &str, audience: Option<&str>) -> Self {
        let key = blake3::derive_key(context, master);
        let kid = hex(&blake3::derive_key(KID_CONTEXT, &key)[..8]);
        KindKeys {
            alg: Algorithm::HS256,
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            kid,
            typ,
            validation: validation(Algorithm::HS256, issuer, audience),
            public: None,
        }
    }

    /// An Ed25519 signing key from its 32-byte seed; the `kid` names its public key.
    fn ed25519(seed: &[u8; 32], typ: &'static str, issuer: &str) -> Result<Self, Error> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let signing = ed25519_dalek::SigningKey::from_bytes(seed);
        let public = signing.verifying_key().to_bytes();
        // jsonwebtoken takes the private key as PKCS#8 (RFC 8410) DER.
        let pkcs8 = signing
            .to_pkcs8_der()
            .map_err(|e| Error::internal(format!("encoding an Ed25519 key: {e}")))?;
        Ok(KindKeys {
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public),
            kid: hex(&blake3::hash(&public).as_bytes()[..8]),
            typ,
            validation: validation(Algorithm::EdDSA, issuer, None),
            public: Some(public),
        })
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<Secret, Error> {
        let mut header = Header::new(self.alg);
        header.typ = Some(self.typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map(Secret::new)
            .map_err(|e| Error::internal(format!("signing a token: {e}")))
    }

    /// The claims if the signature, algorithm, `typ`, `kid`, issuer, audience and expiry
    /// all check out.
    fn verify<T: for<'de> Deserialize<'de>>(&self, token: &str) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != self.alg
            || header.typ.as_deref() != Some(self.typ)
            || header.kid.as_deref() != Some(self.kid.as_str())
        {
            return None;
        }
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// Issues and checks API keys and access tokens.
pub struct TokenSigner {
    issuer: String,
    /// Key signing keys; the last one signs, all of them verify (by `kid`).
    keys: Vec<KindKeys>,
    /// Ed25519 keys added after start (by another node, or `keyward signing-key rotate`):
    /// they verify and are published; the ones above sign. Read only on a key's first use.
    learned: parking_lot::RwLock<Vec<KindKeys>>,
    access: KindKeys,
    access_ttl: Duration,
}

/// What a valid access token says.
pub struct AccessTokenClaims {
    pub user_id: UserId,
    pub epoch: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A public key that verifies API keys offline (what the JWKS publishes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// The Ed25519 public key.
    pub ed25519: [u8; 32],
}

impl TokenSigner {
    /// `master_secret` is the configured secret (≥ 32 bytes) or the generated one. With
    /// `ed25519_keys` (oldest first), keys are signed with EdDSA by the last of them and
    /// verify under any; otherwise with HS256 from the master secret. Access tokens are
    /// always HS256: only keyward checks them.
    pub fn new(
        master_secret: &Secret,
        issuer: &str,
        access_ttl: Duration,
        ed25519_keys: &[SigningKey],
    ) -> Result<Self, Error> {
        let master = blake3::derive_key(MASTER_CONTEXT, master_secret.reveal().as_bytes());
        let keys = if ed25519_keys.is_empty() {
            vec![KindKeys::derive(&master, KEY_SIGNING_CONTEXT, KEY_TYP, issuer, None)]
        } else {
            ed25519_keys
                .iter()
                .map(|key| KindKeys::ed25519(key.seed(), KEY_TYP, issuer))
                .collect::<Result<_, _>>()?
        };
        Ok(TokenSigner {
            issuer: issuer.to_owned(),
            keys,
            learned: parking_lot::RwLock::default(),
            access: KindKeys::derive(
                &master,
                ACCESS_SIGNING_CONTEXT,
                ACCESS_TYP,
                issuer,
                Some(ACCESS_AUDIENCE),
            ),
            access_ttl,
        })
    }

    /// Signs a new API key. `expires_at` `None` means never (`exp` = `iat` + 100 years).
    pub fn sign_key(
        &self,
        id: KeyId,
        user: UserId,
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<Secret, Error> {
        let iat = now.secs();
        let exp = expires_at.unwrap_or_else(|| now.never_expiry()).secs();
        let signer = self.keys.last().ok_or_else(|| Error::internal("no signing key"))?;
        signer.sign(&KeyClaims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            jti: id.to_string(),
            iat,
            exp,
        })
    }

    /// Whether `token` is an API key this signer made for exactly this key id and user.
    pub fn key_signature_valid(&self, token: &str, id: KeyId, user: UserId) -> bool {
        self.key_claims(token)
            .is_some_and(|c| KeyId::parse(&c.jti) == Some(id) && UserId::parse(&c.sub) == Some(user))
    }

    fn key_claims(&self, token: &str) -> Option<KeyClaims> {
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid)?;
        match self.keys.iter().find(|k| k.kid == kid) {
            Some(k) => k.verify::<KeyClaims>(token),
            None => self
                .learned
                .read()
                .iter()
                .find(|k| k.kid == kid)
                .and_then(|k| k.verify::<KeyClaims>(token)),
        }
    }

    /// Learns the Ed25519 signing keys in `all` that it does not know yet: keys signed with
    /// them verify from now on, and the JWKS publishes them. Nothing changes with HS256.
    pub fn learn_keys(&self, all: &[SigningKey]) {
        if self.keys.iter().all(|k| k.public.is_none()) {
            return;
        }
        let mut learned = self.learned.write();
        for key in all {
            let candidate = match KindKeys::ed25519(key.seed(), KEY_TYP, &self.issuer) {
                Ok(candidate) => candidate,
                Err(e) => {
                    log::error!("learning a signing key: {e}");
                    continue;
                }
            };
            let known = self.keys.iter().chain(learned.iter()).any(|k| k.kid == candidate.kid);
            if !known {
                learned.push(candidate);
            }
        }
    }

    /// The public keys that verify API keys, as a JWKS document (RFC 7517); empty with
    /// HS256, whose key is secret.
    pub fn jwks(&self) -> Vec<PublicKey> {
        let learned = self.learned.read();
        self.keys
            .iter()
            .chain(learned.iter())
            .filter_map(|k| {
                Some(PublicKey {
                    kid: k.kid.clone(),
                    ed25519: k.public?,
                })
            })
            .collect()
    }

    /// A new access token and its lifetime in seconds.
    pub fn issue_access_token(&self, user: UserId, epoch: i64, now: Timestamp) -> Result<(Secret, u64), Error> {
        let ttl = self.access_ttl.as_secs();
        let iat = now.secs();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            aud: ACCESS_AUDIENCE.to_owned(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            ep: epoch,
        };
        Ok((self.access.sign(&claims)?, ttl))
    }

    /// The user and epoch of a valid access token; `None` for anything else.
    pub fn verify_access_token(&self, token: &str) -> Option<AccessTokenClaims> {
        let claims = self.access.verify::<AccessClaims>(token)?;
        Some(AccessTokenClaims {
            user_id: UserId::parse(&claims.sub)?,
            epoch: claims.ep,
            expires_at: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Clock;

    fn signer(secret: &str) -> TokenSigner {
        match TokenSigner::new(&Secret::new(secret), "keyward", Duration::from_secs(1800), &[]) {
            Ok(signer) => signer,
            Err(e) => panic!("{e}"),
        }
    }

    fn ids() -> (KeyId, UserId) {
        (
            KeyId::parse("60902b70b281af121fcda4ce").unwrap_or_else(|| unreachable!()),
            UserId::parse("60745fe7b57e1a058d849550").unwrap_or_else(|| unreachable!()),
        )
    }

    #[test]
    fn a_key_verifies_for_its_own_ids_only() {
        let s = signer("0123456789abcdef0123456789abcdef");
        let (k, u) = ids();
        let key = s
            .sign_key(k, u, Clock::System.now(), None)
            .unwrap_or_else(|_| unreachable!());
        assert!(s.key_signature_valid(key.reveal(), k, u));
        let other = KeyId::nil();
        assert!(!s.key_signature_valid(key.reveal(), other, u));
    }

    #[test]
    fn kinds_do_not_cross() {
        let s = signer("0123456789abcdef0123456789abcdef");
        let (k, u) = ids();
        let key = s
            .sign_key(k, u, Clock::System.now(), None)
            .unwrap_or_else(|_| unreachable!());
        let (access, _) = s
            .issue_access_token(u, 0, Clock::System.now())
            .unwrap_or_else(|_| unreachable!());
        assert!(s.verify_access_token(key.reveal()).is_none());
        assert!(!s.key_signature_valid(access.reveal(), k, u));
        assert!(s.verify_access_token(access.reveal()).is_some());
    }

    #[test]
    fn another_secret_refuses_everything() {
        let (k, u) = ids();
        let a = signer("0123456789abcdef0123456789abcdef");
        let b = signer("fedcba9876543210fedcba9876543210");
        let key = a
            .sign_key(k, u, Clock::System.now(), None)
            .unwrap_or_else(|_| unreachable!());
        let (access, _) = a
            .issue_access_token(u, 0, Clock::System.now())
            .unwrap_or_else(|_| unreachable!());
        assert!(!b.key_signature_valid(key.reveal(), k, u));
        assert!(b.verify_access_token(access.reveal()).is_none());
    }

    /// Tokens signed with keyward's own key but wrong in one way: the cases an attacker
    /// cannot build, checked here where the signing key is at hand.
    #[test]
    fn validly_signed_but_wrong_tokens_are_refused() {
        let s = signer("0123456789abcdef0123456789abcdef");
        let (k, u) = ids();
        let now = Clock::System.now().secs();
        let good = serde_json::json!({"iss": "keyward", "sub": u.to_string(), "jti": k.to_string(), "iat": now, "exp": now + 3600});
        let sign_with = |alg: Algorithm, typ: &str, claims: &serde_json::Value| {
            let mut header = Header::new(alg);
            header.typ = Some(typ.to_owned());
            header.kid = Some(s.keys[0].kid.clone());
            jsonwebtoken::encode(&header, claims, &s.keys[0].encoding).unwrap_or_default()
        };
        assert!(
            s.key_signature_valid(&sign_with(Algorithm::HS256, KEY_TYP, &good), k, u),
            "the control case passes"
        );
        let mut cases = Vec::new();
        for (field, value) in [
            ("iss", serde_json::json!("someone-else")),
            ("exp", serde_json::json!((now + 3600).to_string())),
            ("exp", serde_json::json!(now - 60)),
            ("nbf", serde_json::json!(now + 3600)),
            ("sub", serde_json::json!("000000000000000000000000")),
            ("jti", serde_json::json!("000000000000000000000000")),
        ] {
            let mut claims = good.clone();
            claims[field] = value;
            cases.push(sign_with(Algorithm::HS256, KEY_TYP, &claims));
        }
        let mut no_exp = good.clone();
        no_exp.as_object_mut().map(|o| o.remove("exp"));
        cases.push(sign_with(Algorithm::HS256, KEY_TYP, &no_exp));
        cases.push(sign_with(Algorithm::HS384, KEY_TYP, &good));
        cases.push(sign_with(Algorithm::HS512, KEY_TYP, &good));
        cases.push(sign_with(Algorithm::HS256, ACCESS_TYP, &good));
        for (i, token) in cases.iter().enumerate() {
            assert!(!s.key_signature_valid(token, k, u), "case {i}");
        }
        // And for access tokens: an audience or epoch missing, or the key's typ.
        let access = serde_json::json!({"iss": "keyward", "sub": u.to_string(), "aud": ACCESS_AUDIENCE, "iat": now, "exp": now + 60, "ep": 0});
        let sign_access = |typ: &str, claims: &serde_json::Value| {
            let mut header = Header::new(Algorithm::HS256);
            header.typ = Some(typ.to_owned());
            header.kid = Some(s.access.kid.clone());
            jsonwebtoken::encode(&header, claims, &s.access.encoding).unwrap_or_default()
        };
        assert!(
            s.verify_access_token(&sign_access(ACCESS_TYP, &access)).is_some(),
            "the control case passes"
        );
        assert!(s.verify_access_token(&sign_access(KEY_TYP, &access)).is_none());
        for field in ["aud", "ep", "exp"] {
            let mut claims = access.clone();
            claims.as_object_mut().map(|o| o.remove(field));
            assert!(
                s.verify_access_token(&sign_access(ACCESS_TYP, &claims)).is_none(),
                "without {field}"
            );
        }
    }

    #[test]
    fn expired_keys_fail_the_signature_check() {
        let s = signer("0123456789abcdef0123456789abcdef");
        let (k, u) = ids();
        let past = Timestamp::from_secs(Clock::System.now().secs() - 3600);
        let key = s
            .sign_key(k, u, past, Some(past.plus(Duration::from_secs(60))))
            .unwrap_or_else(|_| unreachable!());
        assert!(!s.key_signature_valid(key.reveal(), k, u));
    }
}
