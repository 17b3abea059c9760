//! The in-memory key view: the hot path of authentication, with no SQL at all.
//!
//! A map from the 32-byte blake3 hash of a key to a compact entry, loaded at start from every
//! active key and changed by the writer thread right after each commit, before the caller is
//! answered. It is authoritative: a miss means the key is not valid, so a garbage or forged
//! token costs a shape check, one hash and one lookup, and never reaches the database.
//! Users live here too (a few per team), so disabling one stops all their keys at once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use parking_lot::{Mutex, RwLock};

use super::tokens::TokenSigner;
use super::{KeyId, Timestamp, UserId, UserRecord};
use crate::store::ActiveKeyRow;

/// Longest token the hot path will hash; keyward's keys are about 250 bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

const SIGNATURE_CHECKED: u8 = 1;
const DISABLED: u8 = 2;
/// The key has scopes (in `Inner::scopes`); without the flag no second lookup is made.
const SCOPED: u8 = 4;

/// The lookup hash. It is already uniformly random (and attackers cannot add entries), so
/// its first 8 bytes are the map's hash: no SipHash on the hot path.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Lookup([u8; 32]);

impl Hash for Lookup {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

#[derive(Default)]
struct LookupHasher(u64);

impl Hasher for LookupHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// 32 bytes a key: a million keys fit in well under 200 MB.
struct KeyEntry {
    id: KeyId,
    /// Index into `Inner::users`.
    user: u32,
    /// Unix ms; `i64::MAX` for never.
    expires_at: i64,
    flags: AtomicU8,
    /// Unix seconds of the last use seen, so a use is queued at most once a second.
    last_used: AtomicU32,
}

#[derive(Default)]
struct Inner {
    keys: HashMap<Lookup, KeyEntry, BuildHasherDefault<LookupHasher>>,
    users: Vec<Arc<UserRecord>>,
    user_slot: HashMap<UserId, u32>,
    /// Lowercased username and email of every live user.
    by_login: HashMap<String, u32>,
    /// Scopes of the keys that have them (most keys act as their user and are not here).
    scopes: HashMap<KeyId, Arc<[String]>>,
}

/// The verdict on a `Bearer` credential.
pub enum Bearer {
    Key(KeyCheck),
    /// Not a key; the user of the access token it is, if valid.
    AccessToken(Option<Arc<UserRecord>>),
}

/// The verdict on a presented key.
pub enum KeyCheck {
    Valid(ValidKey),
    /// Not a key this server holds: unknown, revoked, malformed, or signed with another secret.
    NotFound,
    Expired,
    /// The key or its user is disabled (or the user deleted).
    Disabled,
}

pub struct ValidKey {
    pub key_id: KeyId,
    pub user: Arc<UserRecord>,
    pub expires_at: Option<Timestamp>,
    /// `None`: the key acts as its user.
    pub scopes: Option<Arc<[String]>>,
}

/// A verified access token: verdicts are cached so a token's signature is checked once.
struct TokenEntry {
    user: UserId,
    epoch: i64,
    /// Unix seconds.
    expires_at: i64,
}

/// Most access tokens remembered at once; past it, expired ones are swept, and if that is not
/// enough, new ones are verified every time instead of cached.
const MAX_CACHED_TOKENS: usize = 100_000;

#[derive(Default)]
pub struct KeyView {
    inner: RwLock<Inner>,
    tokens: RwLock<HashMap<Lookup, TokenEntry, BuildHasherDefault<LookupHasher>>>,
    /// Uses not yet written to the database: key id -> last use.
    usage: Mutex<HashMap<KeyId, Timestamp>>,
}

/// Shortest token worth hashing: a JWT has a header, a payload and a signature.
const MIN_TOKEN_LEN: usize = 20;

/// The lookup hash of a token, or `None` for one whose length rules it out. Nothing more
/// is checked before the lookup: the map is authoritative, so garbage simply misses.
fn lookup_of(token: &str) -> Option<Lookup> {
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN)
        .contains(&token.len())
        .then(|| Lookup(*blake3::hash(token.as_bytes()).as_bytes()))
}

impl KeyView {
    /// Builds the view from the store's users and active keys. Loaded keys have their
    /// signature checked on first use, so a key signed with an old secret fails.
    pub fn with_users(users: Vec<UserRecord>) -> Self {
        let view = KeyView::default();
        for user in users {
            view.put_user(user);
        }
        view
    }

    /// Adds a key read from the database at start; `expected` is how many are coming, so
    /// the map is sized once instead of doubling (which would hold two tables at once).
    pub fn load_key(&self, k: ActiveKeyRow, expected: u64) {
        let mut inner = self.inner.write();
        if inner.keys.capacity() < usize::try_from(expected).unwrap_or(0) {
            let more = usize::try_from(expected).unwrap_or(0).saturating_sub(inner.keys.len());
            inner.keys.reserve(more);
        }
        insert_locked(&mut inner, k, false);
    }

    pub fn key_count(&self) -> usize {
        self.inner.read().keys.len()
    }

    /// Decides on a presented key: shape, blake3, lookup, expiry, disabled, owner; and the
    /// signature the first time this process sees the key.
    pub fn check_key(&self, token: &str, now: Timestamp, signer: &TokenSigner) -> KeyCheck {
        match lookup_of(token) {
            Some(lookup) => self.check_key_at(lookup, token, now, signer),
            None => KeyCheck::NotFound,
        }
    }

    /// A `Bearer` credential: a key if the view holds it, else maybe an access token; the
    /// token is hashed once for both.
    pub fn check_bearer(&self, token: &str, now: Timestamp, signer: &TokenSigner) -> Bearer {
        let Some(lookup) = lookup_of(token) else {
            return Bearer::Key(KeyCheck::NotFound);
        };
        match self.check_key_at(lookup, token, now, signer) {
            KeyCheck::NotFound => Bearer::AccessToken(self.check_access_token_at(lookup, token, now, signer)),
            other => Bearer::Key(other),
        }
    }

    fn check_key_at(&self, lookup: Lookup, token: &str, now: Timestamp, signer: &TokenSigner) -> KeyCheck {
        let inner = self.inner.read();
        let Some(entry) = inner.keys.get(&lookup) else {
            return KeyCheck::NotFound;
        };
        let Some(user) = inner.users.get(entry.user as usize) else {
            return KeyCheck::NotFound;
        };
        let flags = entry.flags.load(Ordering::Acquire);
        if flags & SIGNATURE_CHECKED == 0 {
            if !signer.key_signature_valid(token, entry.id, user.id) {
                return KeyCheck::NotFound;
            }
            entry.flags.fetch_or(SIGNATURE_CHECKED, Ordering::AcqRel);
        }
        if now.millis() >= entry.expires_at {
            return KeyCheck::Expired;
        }
        if flags & DISABLED != 0 || !user.active() {
            return KeyCheck::Disabled;
        }
        let secs = u32::try_from(now.secs()).unwrap_or(u32::MAX);
        // Read before writing: most uses fall in a second already recorded, and a load
        // leaves the entry's cache line clean.
        if entry.last_used.load(Ordering::Relaxed) != secs && entry.last_used.swap(secs, Ordering::Relaxed) != secs {
            self.usage.lock().insert(entry.id, now);
        }
        KeyCheck::Valid(ValidKey {
            key_id: entry.id,
            user: Arc::clone(user),
            expires_at: (entry.expires_at != i64::MAX).then(|| Timestamp::from_millis(entry.expires_at)),
            scopes: if flags & SCOPED == 0 {
                None
            } else {
                inner.scopes.get(&entry.id).cloned()
            },
        })
    }

    /// The user of a valid access token: signature, `typ`, `kid`, issuer, audience and
    /// expiry checked once and remembered; the user's state and epoch every time.
    fn check_access_token_at(
        &self,
        lookup: Lookup,
        token: &str,
        now: Timestamp,
        signer: &TokenSigner,
    ) -> Option<Arc<UserRecord>> {
        let cached = self.tokens.read().get(&lookup).map(|t| (t.user, t.epoch, t.expires_at));
        let (user_id, epoch, expires_at) = match cached {
            Some(hit) => hit,
            None => {
                let claims = signer.verify_access_token(token)?;
                let mut tokens = self.tokens.write();
                if tokens.len() >= MAX_CACHED_TOKENS {
                    tokens.retain(|_, t| t.expires_at > now.secs());
                }
                if tokens.len() < MAX_CACHED_TOKENS {
                    tokens.insert(
                        lookup,
                        TokenEntry {
                            user: claims.user_id,
                            epoch: claims.epoch,
                            expires_at: claims.expires_at,
                        },
                    );
                }
                (claims.user_id, claims.epoch, claims.expires_at)
            }
        };
        if now.secs() >= expires_at {
            return None;
        }
        let user = self.user(user_id)?;
        (user.active() && user.token_epoch == epoch).then_some(user)
    }

    /// Adds a key just committed. `signature_checked`: this process signed it.
    pub fn insert_key(&self, key: ActiveKeyRow, signature_checked: bool) {
        insert_locked(&mut self.inner.write(), key, signature_checked);
    }

    /// Brings a key's entry up to its record just committed (expiry, disabled, scopes),
    /// keeping what this process knows of it (signature checked, last use).
    pub fn update_key(&self, key: &super::KeyRecord) {
        let mut inner = self.inner.write();
        let Some(mut entry) = inner.keys.remove(&Lookup(key.digest.lookup())) else {
            return;
        };
        entry.expires_at = key.expires_at.map_or(i64::MAX, Timestamp::millis);
        let flags = entry.flags.get_mut();
        if key.disabled {
            *flags |= DISABLED;
        } else {
            *flags &= !DISABLED;
        }
        set_scopes(&mut inner, &mut entry, key.scopes.clone(), &key.grants);
        inner.keys.insert(Lookup(key.digest.lookup()), entry);
    }

    /// Drops keys just revoked: from here on they fail.
    pub fn remove_keys(&self, lookups: &[[u8; 32]]) {
        let mut inner = self.inner.write();
        for l in lookups {
            if let Some(entry) = inner.keys.remove(&Lookup(*l)) {
                inner.scopes.remove(&entry.id);
            }
        }
    }

    /// Adds or replaces a user just committed.
    pub fn put_user(&self, user: UserRecord) {
        let mut inner = self.inner.write();
        let slot = match inner.user_slot.get(&user.id) {
            Some(&slot) => slot,
            None => {
                let slot = u32::try_from(inner.users.len()).unwrap_or(u32::MAX);
                inner.user_slot.insert(user.id, slot);
                inner.users.push(Arc::new(user.clone()));
                slot
            }
        };
        inner.by_login.retain(|_, s| *s != slot);
        if !user.deleted {
            inner.by_login.insert(user.username.to_ascii_lowercase(), slot);
            if let Some(email) = &user.email {
                inner.by_login.insert(email.to_ascii_lowercase(), slot);
            }
        }
        if let Some(entry) = inner.users.get_mut(slot as usize) {
            *entry = Arc::new(user);
        }
    }

    pub fn user(&self, id: UserId) -> Option<Arc<UserRecord>> {
        let inner = self.inner.read();
        inner
            .user_slot
            .get(&id)
            .and_then(|&s| inner.users.get(s as usize))
            .cloned()
    }

    /// A live user by username or email, case-insensitively.
    pub fn user_by_login(&self, login: &str) -> Option<Arc<UserRecord>> {
        let inner = self.inner.read();
        inner
            .by_login
            .get(&login.to_ascii_lowercase())
            .and_then(|&s| inner.users.get(s as usize))
            .cloned()
    }

    /// Brings `last_used_at` of `keys` up to the uses seen in memory but not yet written:
    /// uses are visible at once, while the database gets them in batches.
    pub fn overlay_last_used(&self, keys: &mut [super::KeyRecord]) {
        let inner = self.inner.read();
        for key in keys {
            let seen = inner
                .keys
                .get(&Lookup(key.digest.lookup()))
                .map(|e| e.last_used.load(Ordering::Relaxed));
            if let Some(secs) = seen.filter(|&s| s > 0) {
                let seen = Timestamp::from_secs(i64::from(secs));
                if key.last_used_at.is_none_or(|t| t < seen) {
                    key.last_used_at = Some(seen);
                }
            }
        }
    }

    /// Takes the uses recorded since the last call.
    pub fn take_usage(&self) -> Vec<(KeyId, Timestamp)> {
        std::mem::take(&mut *self.usage.lock()).into_iter().collect()
    }
}

/// Adds (or replaces) a key under the caller's write lock; a key whose user is unknown here
/// cannot authenticate and is left out.
fn insert_locked(inner: &mut Inner, key: ActiveKeyRow, signature_checked: bool) {
    let Some(&slot) = inner.user_slot.get(&key.user_id) else {
        return;
    };
    let mut entry = entry(key.id, slot, key.expires_at, key.disabled, signature_checked);
    set_scopes(inner, &mut entry, key.scopes, &key.grants);
    inner.keys.insert(Lookup(key.lookup), entry);
}

/// Records what a key may do: its scopes, less any privileged one no admin granted (so a
/// key holding only such a scope can do nothing that needs a scope, never everything).
fn set_scopes(inner: &mut Inner, entry: &mut KeyEntry, scopes: Option<Vec<String>>, grants: &[String]) {
    match scopes {
        Some(scopes) => {
            *entry.flags.get_mut() |= SCOPED;
            let honoured: Arc<[String]> = scopes
                .into_iter()
                .filter(|s| !super::keys::is_privileged(s) || grants.contains(s))
                .collect();
            inner.scopes.insert(entry.id, honoured);
        }
        None => {
            *entry.flags.get_mut() &= !SCOPED;
            inner.scopes.remove(&entry.id);
        }
    }
}

fn entry(id: KeyId, user: u32, expires_at: Option<Timestamp>, disabled: bool, signature_checked: bool) -> KeyEntry {
    let mut flags = 0;
    if disabled {
        flags |= DISABLED;
    }
    if signature_checked {
        flags |= SIGNATURE_CHECKED;
    }
    KeyEntry {
        id,
        user,
        expires_at: expires_at.map_or(i64::MAX, Timestamp::millis),
        flags: AtomicU8::new(flags),
        last_used: AtomicU32::new(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_impossible_length_are_not_hashed() {
        assert!(lookup_of("short").is_none());
        assert!(lookup_of(&"c".repeat(MAX_TOKEN_LEN + 1)).is_none());
        assert!(lookup_of(&"c".repeat(200)).is_some());
    }

    #[test]
    fn entries_stay_small() {
        assert!(std::mem::size_of::<KeyEntry>() <= 32);
    }
}
