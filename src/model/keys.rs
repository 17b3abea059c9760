//! API keys as stored: the digest of a key, its record, the values a key carries (name,
//! scopes, meta), and the row the in-memory key view is built from.

use std::fmt;

use super::{Credits, KeyId, ModelError, RateLimits, Timestamp, UserId};

/// A key's label: 1 to 256 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let n = s.chars().count();
        if n == 0 || n > 256 || s.chars().any(char::is_control) {
            return Err(ModelError::invalid(
                "name",
                "must be 1 to 256 characters without control characters",
            ));
        }
        Ok(KeyName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A key's scopes: 1 to 32 distinct names of 1 to 64 of `A-Z a-z 0-9 : _ . - *`, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    pub fn parse(list: Vec<String>) -> Result<Self, ModelError> {
        let ok = |s: &String| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-' | b'*'))
        };
        if list.is_empty() || list.len() > 32 || !list.iter().all(ok) {
            return Err(ModelError::invalid(
                "scopes",
                "must be 1 to 32 names of letters, digits and : _ . - * (up to 64 each)",
            ));
        }
        let mut list = list;
        list.sort();
        list.dedup();
        Ok(Scopes(list))
    }

    /// Scopes as a record holds them: checked when they were first given, so taken as
    /// they are (a rotation carries them over unchanged).
    pub fn of_record(list: Vec<String>) -> Self {
        Scopes(list)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// A key's metadata: a JSON object of at most 4 KiB.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta(serde_json::Value);

impl Meta {
    pub const MAX_BYTES: usize = 4096;

    pub fn parse(value: serde_json::Value) -> Result<Self, ModelError> {
        if !value.is_object() {
            return Err(ModelError::invalid("meta", "must be a JSON object"));
        }
        if value.to_string().len() > Self::MAX_BYTES {
            return Err(ModelError::invalid("meta", "must be at most 4 KiB"));
        }
        Ok(Meta(value))
    }

    /// Meta as a record holds it (checked when it was first given).
    pub fn of_record(value: serde_json::Value) -> Self {
        Meta(value)
    }

    pub fn into_value(self) -> serde_json::Value {
        self.0
    }
}

/// blake3's extendable output to 64 bytes of the exact token bytes. The first 32 bytes are
/// the ordinary blake3 hash, which lookups use; the whole is seed 001's `hash` field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyDigest([u8; 64]);

impl KeyDigest {
    pub fn of(token: &str) -> Self {
        let mut out = [0u8; 64];
        blake3::Hasher::new()
            .update(token.as_bytes())
            .finalize_xof()
            .fill(&mut out);
        KeyDigest(out)
    }

    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        KeyDigest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// The 32-byte blake3 hash: the lookup key.
    pub fn lookup(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0[..32]);
        out
    }

    /// The digest an imported key (one keyward did not mint) is held under: its SHA-256,
    /// then 32 zero bytes. So the lookup hash of an imported key is its SHA-256, and every
    /// path that derives a lookup from a digest (the view, revocation, the change feed, other
    /// nodes) carries imported keys unchanged. blake3's output never ends in 32 zero bytes
    /// (2^-256), which is how the two kinds are told apart.
    pub fn imported(sha256: Sha256Hash) -> Self {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&sha256.0);
        KeyDigest(out)
    }

    /// Whether this is the digest of an imported key (see [`KeyDigest::imported`]).
    pub fn is_imported(&self) -> bool {
        self.0[32..].iter().all(|&b| b == 0)
    }

    /// The foreign SHA-256 of an imported key.
    pub fn sha256(&self) -> Option<Sha256Hash> {
        self.is_imported().then(|| Sha256Hash(self.lookup()))
    }

    /// As seed 001's `hash` shows it: 128 hex chars of the blake3 digest, or for an imported
    /// key the 64 hex chars of its SHA-256.
    pub fn hex(&self) -> String {
        match self.sha256() {
            Some(sha) => super::hex(&sha.0),
            None => super::hex(&self.0),
        }
    }
}

/// The SHA-256 of a key keyward did not mint: what imported keys are looked up by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256Hash([u8; 32]);

/// How an imported hash is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashEncoding {
    Hex,
    Base64,
    Base64Url,
}

impl HashEncoding {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hex" => Some(HashEncoding::Hex),
            "base64" => Some(HashEncoding::Base64),
            "base64url" => Some(HashEncoding::Base64Url),
            _ => None,
        }
    }
}

impl Sha256Hash {
    /// The SHA-256 of a presented key.
    pub fn of(key: &str) -> Self {
        use sha2::Digest;
        Sha256Hash(sha2::Sha256::digest(key.as_bytes()).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Sha256Hash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A hash as another system wrote it: 64 hex chars, or base64 / base64url of the 32
    /// bytes, with or without `=` padding.
    pub fn parse(encoding: HashEncoding, value: &str) -> Result<Self, ModelError> {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let bytes = match encoding {
            HashEncoding::Hex => hex::decode(value).ok(),
            HashEncoding::Base64 => STANDARD_NO_PAD.decode(value.trim_end_matches('=')).ok(),
            HashEncoding::Base64Url => URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).ok(),
        };
        bytes
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(Sha256Hash)
            .ok_or_else(|| ModelError::invalid("hash", "value must be a SHA-256 (32 bytes) in the encoding named"))
    }
}

impl fmt::Debug for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256Hash(..)")
    }
}

/// A literal key given in full to be imported (a fixture's `key`, an import's plaintext):
/// printable ASCII without spaces, 16 to 512 bytes. Only its SHA-256 is kept.
pub struct LiteralKey(String);

impl LiteralKey {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        if !(16..=512).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ModelError::invalid(
                "key",
                "must be 16 to 512 printable ASCII characters without spaces",
            ));
        }
        Ok(LiteralKey(s.to_owned()))
    }

    pub fn sha256(&self) -> Sha256Hash {
        Sha256Hash::of(&self.0)
    }

    /// The key itself, for the one place that prints it (`keyward fixtures keys`).
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LiteralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LiteralKey(***)")
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest(..)")
    }
}

/// A key as stored (never the key itself).
#[derive(Clone, Debug)]
pub struct KeyRecord {
    pub id: KeyId,
    pub user_id: UserId,
    pub name: Option<String>,
    pub digest: KeyDigest,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// `None`: never expires.
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub disabled: bool,
    /// `None`: the key acts as its user. Otherwise only these scopes.
    pub scopes: Option<Vec<String>>,
    /// Free-form JSON object given at creation (at most 4 KiB).
    pub meta: serde_json::Value,
    /// The privileged scopes of `scopes` an admin granted: only these are honoured.
    pub grants: Vec<String>,
    /// Named rate limits (empty: none).
    pub ratelimits: RateLimits,
    /// `None`: unlimited. `remaining` is the balance no node has reserved yet (the domain
    /// adds what this node holds when it shows a key).
    pub credits: Option<Credits>,
    /// The start of the refill period the stored balance belongs to (unix ms), if refilled.
    pub credits_period: Option<Timestamp>,
}

impl KeyRecord {
    /// Whether the key (read as live) may act at `at`: enabled and unexpired. What a write
    /// made with a key checks of it in the write itself.
    pub fn usable_at(&self, at: Timestamp) -> bool {
        !self.disabled && self.expires_at.is_none_or(|e| e > at)
    }
}

/// A key that can authenticate: what the in-memory view is built from.
#[derive(Clone, Debug)]
pub struct ActiveKeyRow {
    pub id: KeyId,
    pub user_id: UserId,
    pub lookup: [u8; 32],
    /// An imported key: its lookup is its SHA-256 and it has no signature of ours to check.
    pub imported: bool,
    pub expires_at: Option<Timestamp>,
    pub disabled: bool,
    pub scopes: Option<Vec<String>>,
    /// The privileged scopes an admin granted (the view honours only these of them).
    pub grants: Vec<String>,
    pub ratelimits: RateLimits,
    /// Whether the key has credits to spend (and how they refill): the balance itself is
    /// reserved block by block from the database.
    pub credits: Option<Credits>,
}

impl ActiveKeyRow {
    pub fn of(key: &KeyRecord) -> ActiveKeyRow {
        ActiveKeyRow {
            id: key.id,
            user_id: key.user_id,
            lookup: key.digest.lookup(),
            imported: key.digest.is_imported(),
            expires_at: key.expires_at,
            disabled: key.disabled,
            scopes: key.scopes.clone(),
            grants: key.grants.clone(),
            ratelimits: key.ratelimits.clone(),
            credits: key.credits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_starts_with_the_plain_blake3_hash() {
        let d = KeyDigest::of("a.b.c");
        assert_eq!(&d.lookup(), blake3::hash(b"a.b.c").as_bytes());
        assert_eq!(d.hex().len(), 128);
    }

    #[test]
    fn imported_digests_are_told_from_minted_ones() {
        let sha = Sha256Hash::of("dev_ada_frontend_key");
        let imported = KeyDigest::imported(sha);
        assert!(imported.is_imported());
        assert!(!KeyDigest::of("a.b.c").is_imported());
        assert_eq!(imported.lookup(), *sha.as_bytes());
        assert_eq!(imported.hex().len(), 64);
    }

    #[test]
    fn imported_hashes_in_every_encoding() {
        let sha = Sha256Hash::of("abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let b64 = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
        let b64url = "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0";
        for (enc, v) in [
            (HashEncoding::Hex, hex),
            (HashEncoding::Base64, b64),
            (HashEncoding::Base64, b64.trim_end_matches('=')),
            (HashEncoding::Base64Url, b64url),
            (HashEncoding::Base64Url, &format!("{b64url}=")),
        ] {
            assert!(Sha256Hash::parse(enc, v).ok() == Some(sha), "{enc:?} {v}");
        }
        assert!(Sha256Hash::parse(HashEncoding::Hex, "abcd").is_err());
        assert!(Sha256Hash::parse(HashEncoding::Base64Url, b64).is_err());
    }

    #[test]
    fn literal_keys() {
        assert!(LiteralKey::parse("dev_ada_frontend").is_ok());
        assert!(LiteralKey::parse("short").is_err());
        assert!(LiteralKey::parse("has a space in it ok").is_err());
        assert!(LiteralKey::parse(&"x".repeat(513)).is_err());
    }

    #[test]
    fn key_names() {
        assert!(KeyName::parse("Test 123").is_ok());
        assert!(KeyName::parse("").is_err());
        assert!(KeyName::parse("tab\there").is_err());
        assert!(KeyName::parse(&"x".repeat(257)).is_err());
    }

    #[test]
    fn scopes_are_sorted_and_distinct() {
        let parsed = Scopes::parse(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(parsed.map(Scopes::into_vec), Ok(vec!["a".to_owned(), "b".to_owned()]));
        assert!(Scopes::parse(Vec::new()).is_err());
        assert!(Scopes::parse(vec!["no spaces".into()]).is_err());
    }
}
