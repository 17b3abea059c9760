//! The in-memory key view: the hot path of authentication, with no SQL at all.
//!
//! A map from the 32-byte blake3 hash of a key to a compact entry, loaded at start from every
//! active key and changed by the writer thread right after each commit, before the caller is
//! answered. It is authoritative: a miss means the key is not valid, so a garbage or forged
//! token costs a shape check, one hash and one lookup, and never reaches the database.
//! Users live here too (a few per team), so disabling one stops all their keys at once.
//!
//! Several workers check keys at once, each on its own core. So the hot path writes no
//! memory another core reads on its hot path: the keys are split over [`SHARDS`] maps, each
//! behind its own lock on its own cache line; each worker thread keeps its own copies of the
//! user records it hands out (refreshed when any user changes), so no reference count is
//! shared; and key uses are queued per shard.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use super::clock::Clock;
use super::limits::KeyLimits;
use super::tokens::{self, TokenSigner};
use super::usage::{HourCounter, Outcomes, hour_index};
use crate::model::{
    ActiveKeyRow, Credits, KeyDigest, KeyId, KeyRecord, Outcome, RateLimits, Sha256Hash, Timestamp, UsageBucket,
    UsageCounts, UserId, UserRecord,
};
use crate::store::{HeldBlock, Payer};

/// Longest token the hot path will hash; keyward's keys are about 250 bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

const SIGNATURE_CHECKED: u8 = 1;
const DISABLED: u8 = 2;
/// The key has scopes (in its shard's `scopes`); without the flag no second lookup is made.
const SCOPED: u8 = 4;
/// A use of the key is queued for the database and not yet written: it is queued once per
/// write, however often it is used meanwhile.
const USED: u8 = 8;
/// An imported key (one keyward did not mint): held under its SHA-256, with no signature of
/// ours to check (so it is inserted with `SIGNATURE_CHECKED`).
const IMPORTED: u8 = 32;

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

/// A map by id read on the hot path (a limited or scoped key's state): foldhash, seeded per
/// map, instead of SipHash, which cost a limited key's request about 500 instructions.
type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Most revoked keys remembered for counting their later uses (about 3 MB).
const REVOKED_REMEMBERED: usize = 65_536;

/// How many parts the key map is split into.
const SHARDS: usize = 16;

/// Keeps what it holds on cache lines of its own (128 bytes: adjacent-line prefetch).
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

impl Lookup {
    /// Which shard holds this key: a byte the map's own hash does not use.
    fn shard(&self) -> usize {
        usize::from(self.0[31]) % SHARDS
    }
}

/// 48 bytes a key: a million keys fit in well under 200 MB.
struct KeyEntry {
    id: KeyId,
    /// Index into `Users::list`.
    user: u32,
    /// Unix ms; `i64::MAX` for never.
    expires_at: i64,
    flags: AtomicU8,
    /// Unix seconds of the last use seen.
    last_used: AtomicU32,
    /// Valid uses of a key without limits, in the current hour, not yet written.
    uses: HourCounter,
    /// The key's rate limit and credit state (`None`: it has none and pays nothing), the
    /// same as its shard's `limits` holds: here so that a limited key's check reads it from
    /// the entry it has in hand, not from a second map.
    limits: Option<Arc<KeyLimits>>,
}

#[derive(Default)]
struct KeyShard {
    keys: HashMap<Lookup, KeyEntry, BuildHasherDefault<LookupHasher>>,
    /// Scopes of the keys that have them (most keys act as their user and are not here).
    scopes: IdMap<KeyId, Arc<[String]>>,
    /// Rate limit and credit state of the keys that have limits, by id (each also in its
    /// entry): for the sweeps over every limited key and the reads by id.
    limits: IdMap<KeyId, Arc<KeyLimits>>,
}

#[derive(Default)]
struct Users {
    list: Vec<Arc<UserRecord>>,
    slot: HashMap<UserId, u32>,
    /// Lowercased username and email of every live user.
    by_login: HashMap<String, u32>,
    /// Rate limit and credit state of the users that have limits, by slot.
    limits: IdMap<u32, Arc<KeyLimits>>,
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
    /// `None`: the key has no rate limits and no credits.
    pub limits: Option<Arc<KeyLimits>>,
    /// `None`: the key's user has no rate limits and no credits (shared by their keys).
    pub user_limits: Option<Arc<KeyLimits>>,
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

/// A key whose use waits to be written: where it is, which it is, and when it was queued.
type QueuedUse = (Lookup, KeyId, Timestamp);

/// Tells views apart in the threads' user caches (tests run several in one process).
static NEXT_VIEW: AtomicU64 = AtomicU64::new(1);

pub struct KeyView {
    id: u64,
    shards: Box<[Padded<RwLock<KeyShard>>]>,
    users: RwLock<Users>,
    /// Moves on with every change to a user: the threads' copies older than it are dropped.
    users_generation: Padded<AtomicU64>,
    tokens: RwLock<HashMap<Lookup, TokenEntry, BuildHasherDefault<LookupHasher>>>,
    /// Keys used since their last use was written, per shard, with the time of the use
    /// that queued them.
    usage: Box<[Padded<Mutex<Vec<QueuedUse>>>]>,
    /// Uses counted outside the entries: refusals, limited keys' uses, closed hours.
    outcomes: Outcomes,
    /// Keys this process saw revoked (or gone with their user), by lookup: a later use of
    /// one counts as `revoked` in its usage, with no signature check. At most
    /// [`REVOKED_REMEMBERED`]; past that it starts over.
    revoked: RwLock<HashMap<Lookup, KeyId, BuildHasherDefault<LookupHasher>>>,
    /// Whether `revoked` holds any: while it does not, a failed credential is not hashed again.
    any_revoked: Padded<std::sync::atomic::AtomicBool>,
    /// How many imported keys the view holds: while none, a credential that misses is not
    /// hashed a second time (the one check a store without imported keys pays).
    imported: Padded<AtomicUsize>,
    /// The domain's clock: a changed rate limit's state is carried over as of now.
    clock: Clock,
}

impl Default for KeyView {
    fn default() -> Self {
        KeyView {
            id: NEXT_VIEW.fetch_add(1, Ordering::Relaxed),
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            users: RwLock::default(),
            users_generation: Padded::default(),
            tokens: RwLock::default(),
            usage: (0..SHARDS).map(|_| Padded::default()).collect(),
            outcomes: Outcomes::default(),
            revoked: RwLock::default(),
            any_revoked: Padded::default(),
            imported: Padded::default(),
            clock: Clock::default(),
        }
    }
}

/// A worker thread's own copies of the user records it has handed out, for one view and one
/// generation of its users.
#[derive(Default)]
struct UserCache {
    view: u64,
    generation: u64,
    users: Vec<Option<Arc<UserRecord>>>,
}

thread_local! {
    static USER_CACHE: RefCell<UserCache> = RefCell::default();
}

/// Shortest token worth hashing: a JWT has a header, a payload and a signature.
const MIN_TOKEN_LEN: usize = 20;

/// The blake3 lookup hash of a token that may be one of keyward's JWTs, or `None` for one
/// whose length or start rules it out. Nothing more is checked before the lookup: the map
/// is authoritative, so garbage simply misses. A token that cannot be keyward's (most
/// imported keys: `sk_live_…`) pays neither this hash nor the lookup: it goes straight to
/// the SHA-256 lookup of imported keys.
fn lookup_of(token: &str) -> Option<Lookup> {
    ((MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) && tokens::may_be_ours(token))
        .then(|| Lookup(*blake3::hash(token.as_bytes()).as_bytes()))
}

impl KeyView {
    /// Builds the view from the store's users and active keys. Loaded keys have their
    /// signature checked on first use, so a key signed with an old secret fails.
    pub fn with_users(users: Vec<UserRecord>, clock: Clock) -> Self {
        let view = KeyView {
            clock,
            ..KeyView::default()
        };
        for user in users {
            view.put_user(user);
        }
        view
    }

    fn shard(&self, lookup: &Lookup) -> &RwLock<KeyShard> {
        &self.shards[lookup.shard()].0
    }

    /// Adds a key read from the database at start; `expected` is how many are coming, so
    /// each map is sized once instead of doubling (which would hold two tables at once).
    pub fn load_key(&self, k: ActiveKeyRow, expected: u64) {
        let lookup = Lookup(k.lookup);
        let Some(slot) = self.users.read().slot.get(&k.user_id).copied() else {
            return;
        };
        let mut shard = self.shard(&lookup).write();
        let per_shard = usize::try_from(expected).unwrap_or(0) / SHARDS + 1;
        if shard.keys.capacity() < per_shard {
            let more = per_shard.saturating_sub(shard.keys.len());
            shard.keys.reserve(more);
        }
        let imported = insert_locked(&mut shard, slot, k, false, self.clock.now());
        drop(shard);
        self.count_imported(imported);
    }

    /// Moves the count of imported keys by `delta` (after the entries changed, so a reader
    /// that sees the count finds the entries).
    fn count_imported(&self, delta: isize) {
        match delta {
            0 => {}
            d if d > 0 => {
                self.imported.0.fetch_add(d.unsigned_abs(), Ordering::Release);
            }
            d => {
                self.imported.0.fetch_sub(d.unsigned_abs(), Ordering::Release);
            }
        }
    }

    pub fn key_count(&self) -> usize {
        self.shards.iter().map(|s| s.0.read().keys.len()).sum()
    }

    /// Decides on a presented key: shape, blake3, lookup, expiry, disabled, owner; and the
    /// signature the first time this process sees the key. A miss is looked up again by
    /// SHA-256 among imported keys, if there are any.
    pub fn check_key(&self, token: &str, now: Timestamp, signer: &TokenSigner) -> KeyCheck {
        let check = match lookup_of(token) {
            Some(lookup) => self.check_key_at(lookup, token, now, signer),
            None => KeyCheck::NotFound,
        };
        match check {
            KeyCheck::NotFound => self.check_imported_key(token, now, signer),
            found => found,
        }
    }

    /// A credential no minted key matched, looked up by its SHA-256 among the imported keys
    /// (an imported key may be of any shape, a JWT of another issuer included). With no
    /// imported keys in the view, this is one load and no hash.
    fn check_imported_key(&self, token: &str, now: Timestamp, signer: &TokenSigner) -> KeyCheck {
        if self.imported.0.load(Ordering::Acquire) == 0 || token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return KeyCheck::NotFound;
        }
        let lookup = Lookup(*Sha256Hash::of(token).as_bytes());
        self.check_key_at(lookup, token, now, signer)
    }

    /// A `Bearer` credential: a key if the view holds it, else maybe an access token, else
    /// maybe an imported key; the token is hashed with blake3 once for the first two.
    pub fn check_bearer(&self, token: &str, now: Timestamp, signer: &TokenSigner) -> Bearer {
        let Some(lookup) = lookup_of(token) else {
            return Bearer::Key(self.check_imported_key(token, now, signer));
        };
        // Access tokens before imported keys: a token (its verdict cached) pays no SHA-256.
        match self.check_key_at(lookup, token, now, signer) {
            KeyCheck::NotFound => match self.check_access_token_at(lookup, token, now, signer) {
                Some(user) => Bearer::AccessToken(Some(user)),
                None => match self.check_imported_key(token, now, signer) {
                    KeyCheck::NotFound => Bearer::AccessToken(None),
                    imported => Bearer::Key(imported),
                },
            },
            other => Bearer::Key(other),
        }
    }

    fn check_key_at(&self, lookup: Lookup, token: &str, now: Timestamp, signer: &TokenSigner) -> KeyCheck {
        let shard = self.shard(&lookup).read();
        let Some(entry) = shard.keys.get(&lookup) else {
            return KeyCheck::NotFound;
        };
        let Some(user) = self.cached_user(entry.user) else {
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
            self.record_outcome(entry.id, now, Outcome::Expired);
            return KeyCheck::Expired;
        }
        if flags & DISABLED != 0 || !user.active() {
            self.record_outcome(entry.id, now, Outcome::Disabled);
            return KeyCheck::Disabled;
        }
        let secs = u32::try_from(now.secs()).unwrap_or(u32::MAX);
        // Read before writing: most uses fall in a second already recorded, and a load
        // leaves the entry's cache line clean.
        if entry.last_used.load(Ordering::Relaxed) != secs {
            entry.last_used.store(secs, Ordering::Relaxed);
        }
        // Counted as valid here, limited keys too: a request their limits then refuse is
        // moved from valid to its refusal by [`Self::record_refusal`], so the hot path of a
        // limited key pays one atomic add too, not a lock.
        if let Some((hour, n)) = entry.uses.count(hour_index(now)) {
            self.outcomes.record(entry.id, hour, Outcome::Valid, n);
        }
        // The key is queued for the database once until its use is written, however often
        // it is used meanwhile.
        if flags & USED == 0 && entry.flags.fetch_or(USED, Ordering::AcqRel) & USED == 0 {
            self.usage[lookup.shard()].0.lock().push((lookup, entry.id, now));
        }
        let user_limits = if user.limited() {
            self.users.read().limits.get(&entry.user).cloned()
        } else {
            None
        };
        KeyCheck::Valid(ValidKey {
            key_id: entry.id,
            user,
            expires_at: (entry.expires_at != i64::MAX).then(|| Timestamp::from_millis(entry.expires_at)),
            scopes: if flags & SCOPED == 0 {
                None
            } else {
                shard.scopes.get(&entry.id).cloned()
            },
            limits: entry.limits.clone(),
            user_limits,
        })
    }

    /// The user in `slot`, from this thread's own copy when it is of the current generation
    /// (so handing it out shares no reference count between cores); made on first use.
    fn cached_user(&self, slot: u32) -> Option<Arc<UserRecord>> {
        let generation = self.users_generation.0.load(Ordering::Acquire);
        let fresh = || {
            self.users
                .read()
                .list
                .get(slot as usize)
                .map(|u| Arc::new(UserRecord::clone(u)))
        };
        USER_CACHE.with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return fresh();
            };
            if cache.view != self.id || cache.generation != generation {
                cache.view = self.id;
                cache.generation = generation;
                cache.users.clear();
            }
            if let Some(Some(user)) = cache.users.get(slot as usize) {
                return Some(Arc::clone(user));
            }
            let user = fresh()?;
            let index = slot as usize;
            if cache.users.len() <= index {
                cache.users.resize(index + 1, None);
            }
            cache.users[index] = Some(Arc::clone(&user));
            Some(user)
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
        self.insert(key, signature_checked, false);
    }

    /// Adds a key as the change feed found it live, unless this process has seen it
    /// removed since (revoked, or gone with its user: for good). The feed's state may have
    /// been read just before a revocation of ours committed and left the view; put back
    /// after it, the revoked key would be let in until the next poll. Checked and inserted
    /// under the shard's lock, under which [`Self::remove_keys`] remembers what it removes.
    pub fn insert_followed_key(&self, key: ActiveKeyRow) {
        self.insert(key, false, true);
    }

    fn insert(&self, key: ActiveKeyRow, signature_checked: bool, unless_removed_here: bool) {
        let lookup = Lookup(key.lookup);
        let Some(slot) = self.users.read().slot.get(&key.user_id).copied() else {
            return;
        };
        let now = self.clock.now();
        let mut shard = self.shard(&lookup).write();
        if unless_removed_here && self.revoked.read().get(&lookup) == Some(&key.id) {
            return;
        }
        let imported = insert_locked(&mut shard, slot, key, signature_checked, now);
        drop(shard);
        self.count_imported(imported);
    }

    /// Brings a key's entry up to its record just committed (expiry, disabled, scopes,
    /// limits), keeping what this process knows of it (signature checked, last use, and the
    /// limits' state unless they changed or the credits were set anew; `added_credits`:
    /// what it knew of the balance is forgotten, credits were added).
    pub fn update_key(&self, key: &KeyRecord, added_credits: bool) {
        let lookup = Lookup(key.digest.lookup());
        let mut shard = self.shard(&lookup).write();
        let Some(mut entry) = shard.keys.remove(&lookup) else {
            return;
        };
        entry.expires_at = key.expires_at.map_or(i64::MAX, Timestamp::millis);
        let flags = entry.flags.get_mut();
        if key.disabled {
            *flags |= DISABLED;
        } else {
            *flags &= !DISABLED;
        }
        set_scopes(&mut shard, &mut entry, key.scopes.clone(), &key.grants);
        set_limits(
            &mut shard,
            &mut entry,
            &key.ratelimits,
            key.credits.as_ref(),
            added_credits,
            self.clock.now(),
        );
        shard.keys.insert(lookup, entry);
    }

    /// Drops keys just revoked: from here on they fail.
    pub fn remove_keys(&self, lookups: &[[u8; 32]]) {
        for l in lookups {
            let lookup = Lookup(*l);
            let mut shard = self.shard(&lookup).write();
            if let Some(mut entry) = shard.keys.remove(&lookup) {
                shard.scopes.remove(&entry.id);
                shard.limits.remove(&entry.id);
                // Remembered before the shard is let go: see `insert_followed_key`.
                self.remember_revoked(lookup, entry.id);
                drop(shard);
                if let Some((hour, n)) = entry.uses.take() {
                    self.outcomes.record(entry.id, hour, Outcome::Valid, n);
                }
                if *entry.flags.get_mut() & IMPORTED != 0 {
                    self.count_imported(-1);
                }
            }
        }
    }

    /// Adds or replaces a user just committed. Every thread's copies of users are dropped
    /// before the next key check (the generation moves on after the change is in place).
    pub fn put_user(&self, user: UserRecord) {
        let mut users = self.users.write();
        let slot = match users.slot.get(&user.id) {
            Some(&slot) => slot,
            None => {
                let slot = u32::try_from(users.list.len()).unwrap_or(u32::MAX);
                users.slot.insert(user.id, slot);
                users.list.push(Arc::new(user.clone()));
                slot
            }
        };
        users.by_login.retain(|_, s| *s != slot);
        if !user.deleted {
            users.by_login.insert(user.username.to_ascii_lowercase(), slot);
            if let Some(email) = &user.email {
                users.by_login.insert(email.to_ascii_lowercase(), slot);
            }
        }
        let old = users.limits.get(&slot);
        let kept = old
            .filter(|l| l.made_for(&user.ratelimits, user.credits.as_ref()))
            .cloned();
        let now = self.clock.now();
        let changed =
            || KeyLimits::changed(old.map(|l| &**l), &user.ratelimits, user.credits.as_ref(), now).map(Arc::new);
        match kept.or_else(changed) {
            Some(limits) => users.limits.insert(slot, limits),
            None => users.limits.remove(&slot),
        };
        if let Some(entry) = users.list.get_mut(slot as usize) {
            *entry = Arc::new(user);
        }
        self.users_generation.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets what this node knew of a user's balance (credits were added to it); the
    /// block it holds stays.
    pub fn forget_user_balance(&self, id: UserId) {
        if let Some(limits) = self.user_limits(id) {
            limits.forget_balance();
        }
    }

    /// Takes the unspent blocks of credits this node holds (keys' and users'), of the refill
    /// period of now: every block (`held_for: None`), to give back to the database at a
    /// graceful stop, or those reserved at least `held_for` ago. A payer whose block is taken
    /// reserves anew at its next request.
    pub fn take_held_blocks(&self, held_for: Option<std::time::Duration>) -> Vec<HeldBlock> {
        let now = self.clock.now();
        let before = held_for.map(|d| now.millis() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let block = |payer: Payer, limits: &KeyLimits| {
            limits
                .take_held(now, before)
                .map(|(unspent, generation, period)| HeldBlock {
                    payer,
                    unspent,
                    generation,
                    period,
                })
        };
        let mut blocks: Vec<HeldBlock> = self
            .shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.0.read();
                shard
                    .limits
                    .iter()
                    .filter_map(|(id, limits)| block(Payer::Key(*id), limits))
                    .collect::<Vec<_>>()
            })
            .collect();
        let users = self.users.read();
        for (slot, limits) in &users.limits {
            if let Some(user) = users.list.get(*slot as usize) {
                blocks.extend(block(Payer::User(user.id), limits));
            }
        }
        blocks
    }

    /// The limits' state of a user, if they have limits.
    pub fn user_limits(&self, id: UserId) -> Option<Arc<KeyLimits>> {
        let users = self.users.read();
        users.slot.get(&id).and_then(|s| users.limits.get(s)).cloned()
    }

    pub fn user(&self, id: UserId) -> Option<Arc<UserRecord>> {
        let users = self.users.read();
        users.slot.get(&id).and_then(|&s| users.list.get(s as usize)).cloned()
    }

    /// A live user by username or email, case-insensitively.
    pub fn user_by_login(&self, login: &str) -> Option<Arc<UserRecord>> {
        let users = self.users.read();
        users
            .by_login
            .get(&login.to_ascii_lowercase())
            .and_then(|&s| users.list.get(s as usize))
            .cloned()
    }

    /// Brings `last_used_at` of `keys` up to the uses seen in memory but not yet written:
    /// uses are visible at once, while the database gets them in batches.
    pub fn overlay_last_used(&self, keys: &mut [KeyRecord]) {
        for key in keys {
            let lookup = Lookup(key.digest.lookup());
            let seen = self
                .shard(&lookup)
                .read()
                .keys
                .get(&lookup)
                .map(|e| e.last_used.load(Ordering::Relaxed));
            if let Some(secs) = seen.filter(|&s| s > 0) {
                let seen = Timestamp::from_secs(i64::from(secs));
                if key.last_used_at.is_none_or(|t| t < seen) {
                    key.last_used_at = Some(seen);
                }
            }
        }
    }

    /// Adds to each key's credits what this node holds reserved and unspent, and shows a
    /// balance whose refill period has begun as refilled: the credits left as of `now`.
    pub fn overlay_credits(&self, keys: &mut [KeyRecord], now: Timestamp) {
        for key in keys {
            let Some(credits) = key.credits.as_mut() else { continue };
            if credits.refill_due(&mut key.credits_period, now) {
                continue;
            }
            let lookup = Lookup(key.digest.lookup());
            let held = self
                .shard(&lookup)
                .read()
                .limits
                .get(&key.id)
                .map_or(0, |l| l.held(now));
            credits.remaining += held;
        }
    }

    /// Takes the uses recorded since the last call: each key used since, with the second of
    /// its last use (uses after this call queue the key again), and the uses counted by
    /// hour and outcome.
    pub fn take_usage(&self) -> (Vec<(KeyId, Timestamp)>, Vec<UsageBucket>) {
        let mut uses = Vec::new();
        for (queue, shard) in self.usage.iter().zip(self.shards.iter()) {
            let queued = std::mem::take(&mut *queue.0.lock());
            let shard = shard.0.read();
            for (lookup, id, queued_at) in queued {
                match shard.keys.get(&lookup) {
                    Some(entry) => {
                        // Unmarked before the count is taken: a use in between queues the
                        // key again, and at worst the next flush finds nothing to add.
                        entry.flags.fetch_and(!USED, Ordering::AcqRel);
                        if let Some((hour, n)) = entry.uses.take() {
                            self.outcomes.record(id, hour, Outcome::Valid, n);
                        }
                        let secs = entry.last_used.load(Ordering::Relaxed);
                        uses.push((id, Timestamp::from_secs(i64::from(secs)).max(queued_at)));
                    }
                    // Revoked since (its count went to `outcomes` then): the use that queued
                    // it is the last one known.
                    None => uses.push((id, queued_at)),
                }
            }
        }
        (uses, self.outcomes.take())
    }

    /// Puts back counts taken by [`Self::take_usage`] that could not be written.
    pub fn put_back_usage<'a>(&self, buckets: impl Iterator<Item = &'a UsageBucket>) {
        for bucket in buckets {
            self.outcomes.put_back(bucket);
        }
    }

    fn remember_revoked(&self, lookup: Lookup, id: KeyId) {
        let mut revoked = self.revoked.write();
        if revoked.len() >= REVOKED_REMEMBERED {
            revoked.clear();
        }
        revoked.insert(lookup, id);
        self.any_revoked.0.store(true, Ordering::Release);
    }

    /// Counts a use of a credential that failed, if it is a key this process saw revoked:
    /// one more hash of it (blake3, or SHA-256 for an imported key's shape), only while any
    /// key was seen revoked.
    pub fn count_revoked_use(&self, token: &str, now: Timestamp) {
        if !self.any_revoked.0.load(Ordering::Acquire) || token.len() > MAX_TOKEN_LEN {
            return;
        }
        let lookup = lookup_of(token).unwrap_or_else(|| Lookup(*Sha256Hash::of(token).as_bytes()));
        let id = self.revoked.read().get(&lookup).copied();
        if let Some(id) = id {
            self.record_outcome(id, now, Outcome::Revoked);
        }
    }

    /// Counts a use of key `id` at `now` that ended in `outcome`.
    pub fn record_outcome(&self, id: KeyId, now: Timestamp, outcome: Outcome) {
        self.outcomes.record(id, hour_index(now), outcome, 1);
    }

    /// Moves a use of key `id` that the key check counted as valid to the refusal its limits
    /// made of it (`RateLimited`, `UsageExceeded`): the hour's counts add up once both are
    /// written (a flush between the two writes the valid use first, then takes it back).
    pub fn record_refusal(&self, id: KeyId, now: Timestamp, outcome: Outcome) {
        self.outcomes.refuse(id, hour_index(now), outcome);
    }

    /// The uses of key `id` (held under `digest` while live) counted in memory and not yet
    /// written: (hour, counts).
    pub fn pending_usage(&self, id: KeyId, digest: Option<&KeyDigest>) -> Vec<(u32, UsageCounts)> {
        let mut pending = self.outcomes.pending(id);
        let counted = digest.and_then(|digest| {
            let lookup = Lookup(digest.lookup());
            let shard = self.shard(&lookup).read();
            shard
                .keys
                .get(&lookup)
                .filter(|e| e.id == id)
                .and_then(|e| e.uses.peek())
        });
        if let Some((hour, n)) = counted {
            pending.push((hour, UsageCounts::one(Outcome::Valid, i64::from(n))));
        }
        pending
    }
}

/// Adds (or replaces) a key of the user in `slot` under its shard's write lock; how the
/// count of imported keys moves.
fn insert_locked(shard: &mut KeyShard, slot: u32, key: ActiveKeyRow, signature_checked: bool, now: Timestamp) -> isize {
    let mut entry = entry(key.id, slot, key.expires_at, key.disabled, signature_checked);
    if key.imported {
        *entry.flags.get_mut() |= IMPORTED | SIGNATURE_CHECKED;
    }
    // The same key read again (another node's change, or this node's own read back from the
    // feed): what this process knows of it stays, its last use above all.
    if let Some(old) = shard.keys.get(&Lookup(key.lookup)).filter(|old| old.id == key.id) {
        let known = old.flags.load(Ordering::Relaxed) & (SIGNATURE_CHECKED | USED);
        *entry.flags.get_mut() |= known;
        *entry.last_used.get_mut() = old.last_used.load(Ordering::Relaxed);
        entry.uses.carry(&old.uses);
    }
    set_scopes(shard, &mut entry, key.scopes, &key.grants);
    set_limits(shard, &mut entry, &key.ratelimits, key.credits.as_ref(), false, now);
    let replaced = shard.keys.insert(Lookup(key.lookup), entry);
    let was_imported = replaced.is_some_and(|mut e| *e.flags.get_mut() & IMPORTED != 0);
    isize::from(key.imported) - isize::from(was_imported)
}

/// Records what a key may do: its scopes, less any privileged one no admin granted (so a
/// key holding only such a scope can do nothing that needs a scope, never everything).
fn set_scopes(shard: &mut KeyShard, entry: &mut KeyEntry, scopes: Option<Vec<String>>, grants: &[String]) {
    match scopes {
        Some(scopes) => {
            *entry.flags.get_mut() |= SCOPED;
            shard
                .scopes
                .insert(entry.id, super::access::honoured_scopes(scopes, grants));
        }
        None => {
            *entry.flags.get_mut() &= !SCOPED;
            shard.scopes.remove(&entry.id);
        }
    }
}

/// Records a key's limits: their state is kept while they stay the same (a rename of the
/// key, another node's change), made anew (as of `now`) when they change or the credits
/// were set anew (a newer generation: the block held is void). `added_credits`: a kept
/// state forgets what it knew of the balance.
fn set_limits(
    shard: &mut KeyShard,
    entry: &mut KeyEntry,
    ratelimits: &RateLimits,
    credits: Option<&Credits>,
    added_credits: bool,
    now: Timestamp,
) {
    let old = shard.limits.get(&entry.id);
    let kept = old.filter(|l| l.made_for(ratelimits, credits)).cloned();
    if added_credits && let Some(kept) = &kept {
        kept.forget_balance();
    }
    match kept.or_else(|| KeyLimits::changed(old.map(|l| &**l), ratelimits, credits, now).map(Arc::new)) {
        Some(limits) => {
            entry.limits = Some(Arc::clone(&limits));
            shard.limits.insert(entry.id, limits);
        }
        None => {
            entry.limits = None;
            shard.limits.remove(&entry.id);
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
        uses: HourCounter::default(),
        limits: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_impossible_length_or_start_are_not_hashed() {
        assert!(lookup_of("eyJshort").is_none());
        assert!(lookup_of(&format!("eyJ{}", "c".repeat(MAX_TOKEN_LEN))).is_none());
        assert!(lookup_of(&format!("eyJ{}", "c".repeat(200))).is_some());
        assert!(lookup_of(&"c".repeat(200)).is_none(), "not a JWT: not keyward's");
        assert!(lookup_of(&format!("eyj{}", "c".repeat(200))).is_none());
    }

    /// The signer the view's tests check keys with.
    fn signer() -> TokenSigner {
        let Ok(signer) = TokenSigner::new(
            &crate::domain::Secret::new("a view test secret of at least 32 bytes"),
            "keyward",
            std::time::Duration::from_secs(60),
            &[],
        ) else {
            panic!("the signer is made");
        };
        signer
    }

    fn user() -> UserRecord {
        let now = Timestamp::from_secs(1_800_000_000);
        UserRecord::new(
            UserId::from_bytes([7; 12]),
            "ada".into(),
            None,
            crate::model::Role::User,
            Arc::from(""),
            now,
        )
    }

    fn imported_row(key: &str, id: u8) -> ActiveKeyRow {
        ActiveKeyRow {
            id: KeyId::from_bytes([id; 12]),
            user_id: UserId::from_bytes([7; 12]),
            lookup: *Sha256Hash::of(key).as_bytes(),
            imported: true,
            expires_at: None,
            disabled: false,
            scopes: None,
            grants: Vec::new(),
            ratelimits: RateLimits::default(),
            credits: None,
        }
    }

    #[test]
    fn imported_keys_are_found_by_sha256_and_counted() {
        let signer = signer();
        let now = Timestamp::from_secs(1_800_000_000);
        let view = KeyView::with_users(vec![user()], Clock::default());
        assert_eq!(view.imported.0.load(Ordering::Acquire), 0, "none: no second hash");
        view.load_key(imported_row("legacy_key_0001", 1), 2);
        view.insert_key(imported_row("short_key_16byte", 2), false);
        // Loaded again (another process's change): counted once.
        view.insert_key(imported_row("legacy_key_0001", 1), false);
        assert_eq!(view.imported.0.load(Ordering::Acquire), 2);
        for key in ["legacy_key_0001", "short_key_16byte"] {
            assert!(matches!(view.check_key(key, now, &signer), KeyCheck::Valid(_)), "{key}");
            assert!(matches!(
                view.check_bearer(key, now, &signer),
                Bearer::Key(KeyCheck::Valid(_))
            ));
        }
        assert!(matches!(
            view.check_key("legacy_key_0002", now, &signer),
            KeyCheck::NotFound
        ));
        view.remove_keys(&[*Sha256Hash::of("legacy_key_0001").as_bytes()]);
        assert!(matches!(
            view.check_key("legacy_key_0001", now, &signer),
            KeyCheck::NotFound
        ));
        view.remove_keys(&[*Sha256Hash::of("short_key_16byte").as_bytes()]);
        assert_eq!(view.imported.0.load(Ordering::Acquire), 0);
    }

    fn minted_row(token: &str, id: u8) -> ActiveKeyRow {
        ActiveKeyRow {
            lookup: *blake3::hash(token.as_bytes()).as_bytes(),
            imported: false,
            ..imported_row(token, id)
        }
    }

    #[test]
    fn a_key_removed_here_is_not_put_back_by_an_older_read_of_the_feed() {
        let signer = signer();
        let now = Timestamp::from_secs(1_800_000_000);
        let view = KeyView::with_users(vec![user()], Clock::default());
        let valid = |key: &str| matches!(view.check_key(key, now, &signer), KeyCheck::Valid(_));
        view.insert_key(imported_row("revoked_key_0001", 1), true);
        view.insert_followed_key(imported_row("other_key_00002", 2));
        assert!(valid("revoked_key_0001") && valid("other_key_00002"));
        // Revoked here; then the feed's state of it, read before that, arrives.
        view.remove_keys(&[*Sha256Hash::of("revoked_key_0001").as_bytes()]);
        view.insert_followed_key(imported_row("revoked_key_0001", 1));
        assert!(!valid("revoked_key_0001"), "a revoked key stays out");
        // The feed still brings back a key removed nowhere, and the same state again.
        view.insert_followed_key(imported_row("other_key_00002", 2));
        assert!(valid("other_key_00002"));
    }

    /// A credential that cannot be keyward's JWT skips the blake3 lookup (an entry held
    /// under its blake3 hash is not even looked at) and is found by SHA-256; keyward's own
    /// keys, access tokens, and imported keys that are JWTs of another issuer still are.
    #[test]
    fn only_what_may_be_keywards_jwt_is_looked_up_by_blake3() {
        let signer = signer();
        let now = Timestamp::from_secs(1_800_000_000);
        let owner = user();
        let view = KeyView::with_users(vec![owner.clone()], Clock::default());
        let Ok(minted) = signer.sign_key(KeyId::from_bytes([1; 12]), owner.id, now, None) else {
            panic!("a key is signed");
        };
        let minted = minted.reveal().to_owned();
        view.insert_key(minted_row(&minted, 1), false);
        // An entry under the blake3 hash of something no keyward JWT looks like.
        view.insert_key(minted_row("sk_live_not_a_jwt_0001", 2), true);
        view.insert_key(imported_row("sk_live_imported_0001", 3), false);
        let foreign_jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl";
        view.insert_key(imported_row(foreign_jwt, 4), false);

        let id_of = |check: KeyCheck| match check {
            KeyCheck::Valid(k) => Some(k.key_id),
            _ => None,
        };
        assert_eq!(
            id_of(view.check_key(&minted, now, &signer)),
            Some(KeyId::from_bytes([1; 12]))
        );
        assert!(matches!(
            view.check_bearer(&minted, now, &signer),
            Bearer::Key(KeyCheck::Valid(_))
        ));
        assert_eq!(id_of(view.check_key("sk_live_not_a_jwt_0001", now, &signer)), None);
        for (token, id) in [("sk_live_imported_0001", 3), (foreign_jwt, 4)] {
            assert_eq!(
                id_of(view.check_key(token, now, &signer)),
                Some(KeyId::from_bytes([id; 12])),
                "{token}"
            );
            assert!(matches!(
                view.check_bearer(token, now, &signer),
                Bearer::Key(KeyCheck::Valid(_))
            ));
        }
    }

    #[test]
    fn entries_stay_small() {
        // 32 bytes before keys counted their uses by the hour (an 8-byte counter), 40 before
        // limited keys held their limits in the entry (a pointer): an entry and its 32-byte
        // lookup hash fit in 80 bytes, 88 MB a million keys.
        assert!(std::mem::size_of::<KeyEntry>() <= 48);
    }
}
