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

    pub fn hex(&self) -> String {
        super::hex(&self.0)
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

/// A key that can authenticate: what the in-memory view is built from.
#[derive(Clone, Debug)]
pub struct ActiveKeyRow {
    pub id: KeyId,
    pub user_id: UserId,
    pub lookup: [u8; 32],
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
