//! The store: the one seam the domain calls to reach the database.
//!
//! [`Store`] is an enum over the backends (today SQLite, [`sqlite::SqliteStore`]); each
//! operation dispatches to the backend, which owns all of its SQL, connections, threads and
//! migrations. The seam speaks only in the model's records and values (`crate::model`) and
//! the few types below; it never names the domain, and the domain never names a backend.
//! Every operation is async and never runs a blocking database call on an async worker.
//!
//! What every backend promises (the conformance suite, `conformance.rs`, checks it):
//! - A write that returns `Ok` is committed and durable; its `after_commit` step ran after
//!   the commit and before the return, in commit order with the other writes.
//! - Every key or user write appends to the change feed in the same transaction (so other
//!   processes and nodes learn of it), and its audit lines are written with it, only when
//!   the write changed something.
//! - "Not there" is `Ok(None)` (or `false`), never an error; a unique name taken is
//!   [`StoreErrorKind::Conflict`].

pub mod better_auth;
#[cfg(test)]
mod conformance;
pub mod copy;
pub(crate) mod formats;
pub mod postgres;
pub mod sqlite;

use std::path::Path;

use crate::model::{
    ActiveKeyRow, AuditLine, AuditRecord, Credits, FeedEntry, FixtureItem, KeyDigest, KeyId, KeyRecord, RateLimits,
    Role, SessionRecord, SigningKey, ThrottleCheck, ThrottleRules, Timestamp, UsageBucket, UserId, UserRecord,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// A unique constraint refused the write.
    Conflict,
    /// The key's scopes or limits a change was checked against changed before its write
    /// ([`ACCESS_CHANGED`]); nothing was written.
    AccessChanged,
    /// The database or its disk is full (or at `database.max_size`).
    Full,
    /// The database was opened read-only, or its file cannot be written.
    ReadOnly,
    /// The database cannot take this now: locked by another process, I/O error.
    Unavailable,
    /// The writer has stopped (shutdown).
    Stopped,
    Other,
}

/// A database failure. `message` is for the log only: it may hold SQL.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    fn stopped() -> Self {
        StoreError::new(StoreErrorKind::Stopped, "the database writer has stopped")
    }
}

/// How to open the database, whatever the backend.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Read connections in the pool.
    pub pool_size: u32,
    /// Largest the database may grow, in bytes; past it writes fail as [`StoreErrorKind::Full`].
    pub max_size: Option<u64>,
    /// Open without writing anything: for inspection, or a disk that must not change.
    pub read_only: bool,
    /// Observes how many writes each transaction commits together.
    pub batch_sizes: Option<prometheus::Histogram>,
}

/// A page of rows in insertion order, with the count of all rows that match.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub more: bool,
}

/// The fields of a user that an update may change. `None` leaves one as it is.
#[derive(Default)]
pub struct UserChanges {
    pub password_hash: Option<std::sync::Arc<str>>,
    pub email: Option<Option<String>>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// Move the token epoch on, ending every access token of the user.
    pub bump_epoch: bool,
    /// New rate limits shared by the user's keys (empty: none).
    pub ratelimits: Option<RateLimits>,
    pub credits: Option<CreditsChange>,
}

/// Whose credits a reservation takes: a key's own, or its user's (shared by their keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payer {
    Key(KeyId),
    User(UserId),
}

/// Changes to a live key, made together in one transaction by [`Store::update_key`];
/// `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct KeyChanges {
    pub name: Option<Option<String>>,
    pub disabled: Option<bool>,
    /// Bring the expiry forward to this instant (never later).
    pub expires_by: Option<Timestamp>,
    /// New scopes (`None` inside: acts as its user) and the privileged ones granted.
    pub scopes: Option<(Option<Vec<String>>, Vec<String>)>,
    /// New rate limits (empty: none).
    pub ratelimits: Option<RateLimits>,
    pub credits: Option<CreditsChange>,
    /// New metadata (a JSON object), replacing the old.
    pub meta: Option<serde_json::Value>,
    /// Write only if the key's scopes, grants and limits are still these, read in the write's
    /// own transaction (else [`StoreErrorKind::AccessChanged`], and nothing written): an
    /// owner's change was checked against them, and must not undo an admin's change made since.
    pub access_seen: Option<AccessSeen>,
}

/// What a key could do when a change to it was checked: its scopes and the privileged ones
/// an admin granted, its rate limits, and its credits' refill and generation (moved by every
/// set or clear of the credits, not by an addition or a spend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessSeen {
    /// A rotation moves it (to the end of the grace): a key rotated away since is not as seen.
    pub expires_at: Option<Timestamp>,
    pub scopes: Option<Vec<String>>,
    pub grants: Vec<String>,
    pub ratelimits: RateLimits,
    pub credits: Option<(Option<crate::model::Refill>, u64)>,
}

impl AccessSeen {
    pub fn of(key: &KeyRecord) -> AccessSeen {
        AccessSeen {
            expires_at: key.expires_at,
            scopes: key.scopes.clone(),
            grants: key.grants.clone(),
            ratelimits: key.ratelimits.clone(),
            credits: key.credits.map(|c| (c.refill, c.generation)),
        }
    }
}

/// A rotation's new key, made from the old key as it was when the rotation was checked
/// (`made_from`: changed since, [`StoreErrorKind::AccessChanged`] and nothing written).
pub struct Successor {
    pub key: KeyRecord,
    pub made_from: AccessSeen,
    /// The key the rotation was asked with (its owner, id, and as it was checked), `None` for
    /// a password or an access token: it must still be live, enabled and as seen at the
    /// write (else [`StoreErrorKind::AccessChanged`], nothing written), so a key revoked,
    /// disabled or narrowed meanwhile gets no fresh secret.
    pub presenting: Option<(UserId, KeyId, AccessSeen)>,
}

/// The conflict of a change whose [`AccessSeen`] no longer hold.
pub const ACCESS_CHANGED: &str =
    "the key's scopes or limits changed while this change was checked; read the key and try again";

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.disabled.is_none()
            && self.expires_by.is_none()
            && self.scopes.is_none()
            && self.ratelimits.is_none()
            && self.credits.is_none()
            && self.meta.is_none()
    }
}

/// What must hold, in the transaction that stores a key made with another key, for it to be
/// stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyGuard {
    /// The maker is still a live, enabled key of the new key's owner with no limits and no
    /// scopes of its own (it acts as its user), and still expires when it did as the new key
    /// was checked (the `Option`; a rotation moves it): nothing the new key was checked
    /// against can have been narrowed since without this failing.
    MakerUnlimited(KeyId, Option<Timestamp>),
    /// The maker is still a live, enabled key of the new key's owner, with the scopes,
    /// grants and limits the new key was checked against (changed: [`StoreErrorKind::AccessChanged`]).
    MadeBy(KeyId, AccessSeen),
    /// The same of this live key, and the new key's credits (`remaining`) are carved out of
    /// its balance (`… SET credits_remaining = credits_remaining - n WHERE credits_remaining
    /// >= n`).
    CarvedFrom(KeyId, AccessSeen),
}

/// A change to a key's credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditsChange {
    /// Replace them (`None`: unlimited); the refill period starts at the given instant's.
    Set(Option<Credits>),
    /// Replace them, but never raise the balance (an owner's tightening): `remaining`
    /// becomes the least of the given and the balance at the write, in the write itself, so
    /// spends between the owner's check and the write cannot make it a raise. A stored
    /// balance of a refill period that started before `since` was due a refill (its
    /// balance is the refill's, which the owner's check saw), and the given stands.
    SetAtMost { credits: Credits, since: Option<Timestamp> },
    /// Add to the balance of a key that has credits (nothing for an unlimited one).
    Add(u64),
}

/// A block of credits a node reserved and did not spend, to give back to the balance (at a
/// graceful stop): only to the generation and refill period it was reserved from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldBlock {
    pub payer: Payer,
    pub unspent: u64,
    /// The credits' generation the block was reserved under.
    pub generation: u64,
    /// The refill period the block was reserved in (`None`: the credits do not refill).
    pub period: Option<Timestamp>,
}

/// What [`Store::reserve_credits`] took from a key's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Credits now this node's to spend; 0 when the balance could not cover the need.
    pub granted: u64,
    /// The balance left in the database after the reservation.
    pub left: u64,
    /// The start of the refill period the balance belongs to (unix ms), if it refills.
    pub period: Option<Timestamp>,
    /// The credits' generation the block was reserved under.
    pub generation: u64,
}

/// What another process (the CLI, another server) committed, ready for the key view.
#[derive(Debug)]
pub enum Change {
    /// A key that can authenticate (created or re-enabled elsewhere).
    KeyActive(ActiveKeyRow),
    /// A key that must fail from now on (revoked, expired, gone), by lookup hash.
    KeyGone([u8; 32]),
    /// A user's current record (deleted ones included, so their tokens die).
    User(UserRecord),
    /// The signing keys as they are now (another node added one).
    SigningKeys(Vec<SigningKey>),
}

/// What the audit page shows of a key it names, revoked or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDescription {
    pub id: KeyId,
    pub owner: UserId,
    /// Its name now.
    pub name: Option<String>,
    pub revoked: bool,
}

/// A write's after-commit step: told what the write returned; run once the write is
/// committed, in commit order with the other writes, before the write returns (the key view
/// learns of a change here, before anyone is answered).
pub trait AfterCommit<T>: FnOnce(&T) + Send + 'static {}

impl<T, F: FnOnce(&T) + Send + 'static> AfterCommit<T> for F {}

fn counted_in_memory() -> StoreError {
    StoreError::new(
        StoreErrorKind::Other,
        "failed logins are counted in memory on SQLite, not in the database",
    )
}

/// The backends behind the seam.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens (creating if need be) the SQLite database at `path`; see
    /// [`sqlite::SqliteStore::open`]. Blocking: call it off the async workers.
    pub fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        sqlite::SqliteStore::open(path, options).map(Store::Sqlite)
    }

    /// Connects to the PostgreSQL database at `options.url`, brings its schema up to date
    /// (unless read-only) and starts its writer; see [`postgres::PgStore::open`].
    pub async fn open_postgres(options: &postgres::PgOptions) -> Result<Store, StoreError> {
        let mut origin = [0u8; 8];
        getrandom::fill(&mut origin)
            .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("OS random source failed: {e}")))?;
        postgres::PgStore::open(options, crate::model::hex(&origin))
            .await
            .map(Store::Postgres)
    }

    /// The schema version this build writes.
    pub fn schema_version(&self) -> i64 {
        match self {
            Store::Sqlite(_) => sqlite::SCHEMA_VERSION,
            Store::Postgres(_) => postgres::SCHEMA_VERSION,
        }
    }

    /// Which backend this is, for the log and `keyward check`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "SQLite",
            Store::Postgres(_) => "PostgreSQL",
        }
    }

    /// Whether several nodes serve this database (PostgreSQL): failed logins are then
    /// counted in it rather than in the memory of the one process that serves a SQLite
    /// database, and an account unknown to this node's view may be a moment old elsewhere.
    pub fn shared_by_nodes(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Whether `account` may try a password from `source` now; see
    /// [`postgres::PgStore::check_login`]. Only where [`Store::shared_by_nodes`].
    pub async fn check_login(
        &self,
        account: [u8; 16],
        source: String,
        now: Timestamp,
        rules: ThrottleRules,
    ) -> Result<ThrottleCheck, StoreError> {
        match self {
            Store::Sqlite(_) => Err(counted_in_memory()),
            Store::Postgres(backend) => backend.check_login(account, source, now, rules).await,
        }
    }

    /// Counts a failed password; only where [`Store::shared_by_nodes`].
    pub async fn count_login_failure(
        &self,
        account: [u8; 16],
        source: String,
        now: Timestamp,
        rules: ThrottleRules,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(_) => Err(counted_in_memory()),
            Store::Postgres(backend) => backend.count_login_failure(account, source, now, rules).await,
        }
    }

    /// Ends an account's failure counts after a success; only where
    /// [`Store::shared_by_nodes`].
    pub async fn clear_login_failures(&self, account: [u8; 16], source: String) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(_) => Err(counted_in_memory()),
            Store::Postgres(backend) => backend.clear_login_failures(account, source).await,
        }
    }

    /// Waits until another process may have committed something, or `timeout`: on
    /// PostgreSQL a NOTIFY wakes it at once; SQLite has no such hint, so it just waits.
    pub async fn wait_for_changes(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(_) => {
                tokio::time::sleep(timeout).await;
                Ok(())
            }
            Store::Postgres(backend) => backend.wait_for_changes(timeout).await,
        }
    }
}

/// The seam's operations: each one, its contract, and its dispatch to the backend. (A
/// macro, so the list reads as one interface; each expands to
/// `pub async fn name(&self, args) -> Result<T, StoreError>`.)
macro_rules! operations {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    match self {
                        Store::Sqlite(backend) => backend.$name($($arg),*).await,
                        Store::Postgres(backend) => backend.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

operations! {
    // ---- the database as a whole ------------------------------------------------------

    /// Whether the database answers a trivial query (readiness).
    fn ping(&self) -> ();

    /// The schema version of the database, and an integrity verdict (`"ok"` when sound).
    fn check(&self) -> (i64, String);

    /// An online, consistent copy of the database at `target`, never overwriting anything
    /// there; `progress` is told bytes written and the expected total. `Other` errors say
    /// what the operator must fix.
    fn backup_to(&self, target: &Path, progress: impl FnMut(u64, u64) + Send + 'static) -> ();

    // ---- settings ----------------------------------------------------------------------

    /// The value of setting `name`, if it has one.
    fn setting(&self, name: &'static str) -> Option<String>;

    /// The value of setting `name`, storing `value` first if it has none (two processes
    /// starting at once agree on one value).
    fn setting_or_insert(&self, name: &'static str, value: String) -> String;

    /// The Ed25519 signing keys, oldest first (empty when there are none).
    fn signing_keys(&self) -> Vec<SigningKey>;

    /// The signing keys, storing `first` as the only one if there are none yet.
    fn signing_keys_or_insert(&self, first: SigningKey) -> Vec<SigningKey>;

    /// Appends a signing key; every key after it, oldest first.
    fn add_signing_key(&self, key: SigningKey) -> Vec<SigningKey>;

    // ---- users -------------------------------------------------------------------------

    /// How many users were ever made, deleted ones included.
    fn count_users(&self) -> u64;

    /// Every user that is not deleted, oldest first.
    fn load_users(&self) -> Vec<UserRecord>;

    /// A page of live users after `after`, oldest first; `None` when the cursor names no user.
    fn list_users(&self, after: Option<UserId>, limit: u32) -> Option<Page<UserRecord>>;

    /// Stores a new user. A live user with the same username or email (case-insensitively)
    /// is a `Conflict`.
    fn insert_user(&self, user: UserRecord, audit: AuditRecord, after_commit: impl FnOnce() + Send + 'static) -> ();

    /// Applies `changes` to a live user; `None` (nothing written) if there is none. A user
    /// disabled or enabled puts each of their live keys on the revocation feed.
    fn update_user(&self, id: UserId, changes: UserChanges, now: Timestamp, audit: AuditRecord,
        after_commit: impl AfterCommit<Option<UserRecord>>) -> Option<UserRecord>;

    /// Soft-deletes a live user and revokes all their keys in the same transaction; the
    /// lookup hashes of the revoked keys, or `None` if there is no such user.
    fn delete_user(&self, id: UserId, now: Timestamp, audit: AuditRecord,
        after_commit: impl AfterCommit<Option<Vec<[u8; 32]>>>) -> Option<Vec<[u8; 32]>>;

    // ---- keys --------------------------------------------------------------------------

    /// Hands every key that is not revoked and has not expired by `now` to `sink`, one at a
    /// time (a million keys are never all in a `Vec`), with how many to expect.
    fn load_active_keys(&self, now: Timestamp, sink: impl FnMut(ActiveKeyRow, u64) + Send + 'static) -> ();

    /// Stores a new key. With `numbered` and no name, names it `key#N`, N being how many
    /// keys its owner has ever had plus one, counted inside the writing transaction (so two
    /// concurrent creates never get the same N). The key as stored.
    fn insert_key(&self, key: KeyRecord, numbered: bool, audit: AuditRecord,
        after_commit: impl AfterCommit<KeyRecord>) -> KeyRecord;

    /// Stores a key made by a request with a key, only if `guard` holds in the same
    /// transaction: `None`, and nothing written, otherwise (see [`KeyGuard`]).
    fn insert_key_guarded(&self, key: KeyRecord, numbered: bool, guard: KeyGuard, audit: AuditRecord,
        after_commit: impl AfterCommit<Option<KeyRecord>>) -> Option<KeyRecord>;

    /// Stores new keys in one transaction, all or none (an id or hash already on file is a
    /// `Conflict` and nothing is written). The keys as stored, in the order given.
    fn insert_keys(&self, keys: Vec<KeyRecord>, audits: Vec<AuditRecord>,
        after_commit: impl AfterCommit<Vec<KeyRecord>>) -> Vec<KeyRecord>;

    /// A rotation, in one transaction: brings the old key's expiry forward to `until` and
    /// stores its replacement (see [`Successor`]), with the old key's balance as it is at the
    /// write. `None` (and nothing written) if the old key is no longer a live key of `owner`.
    /// The new key and the old one as they are now.
    fn rotate_key(&self, owner: UserId, old: KeyId, until: Timestamp, successor: Successor, audits: [AuditRecord; 2],
        after_commit: impl AfterCommit<Option<(KeyRecord, KeyRecord)>>) -> Option<(KeyRecord, KeyRecord)>;

    /// Changes a live key of `owner` (with its feed and audit rows) in one transaction; the
    /// key as it is now, `None` if there is no such key.
    fn update_key(&self, owner: UserId, id: KeyId, changes: KeyChanges, now: Timestamp, audits: Vec<AuditRecord>,
        after_commit: impl AfterCommit<Option<KeyRecord>>) -> Option<KeyRecord>;

    /// Revokes a live key of `owner`; its lookup hash, `None` if there is none.
    fn revoke_key(&self, owner: UserId, id: KeyId, now: Timestamp, audit: AuditRecord,
        after_commit: impl AfterCommit<Option<[u8; 32]>>) -> Option<[u8; 32]>;

    /// Reserves credits of a live key (or user) for this node to spend: `credit_block(balance, need,
    /// most)` of them, taken with one conditional update (`… WHERE credits_remaining >= n`),
    /// so nodes together never take more than the balance. A balance whose refill period
    /// started after the stored one (by `now`, in UTC) is refilled first. `None` for a key
    /// (or user) that is revoked (deleted), gone or unlimited.
    fn reserve_credits(&self, payer: Payer, need: u64, most: u64, now: Timestamp) -> Option<Reservation>;

    /// Gives unspent blocks back to their balances in one transaction (`remaining +=
    /// unspent`, at most `MAX_CREDITS`), each only if the credits are still of the
    /// generation and refill period it was reserved from (never to credits set anew since,
    /// nor to a refilled balance). How many credits went back.
    fn return_credits(&self, blocks: Vec<HeldBlock>) -> u64;

    /// Writes a batch of "key used at" times (a time never moves backwards) and adds a
    /// batch of counts to the keys' hourly usage buckets, in one transaction.
    fn record_key_usage(&self, uses: Vec<(KeyId, Timestamp)>, buckets: Vec<UsageBucket>) -> ();

    /// The hourly usage buckets of key `id` that start in `[from, to)`, oldest first (hours
    /// with no use have no bucket).
    fn key_usage(&self, id: KeyId, from: Timestamp, to: Timestamp) -> Vec<UsageBucket>;

    /// Every key's valid uses in the buckets that start at `since` or later (keys with
    /// none are left out).
    fn valid_uses_since(&self, since: Timestamp) -> Vec<(KeyId, i64)>;

    /// Deletes the usage buckets that start before `before`; how many.
    fn sweep_usage(&self, before: Timestamp) -> u64;

    /// One live (not revoked) key of `owner`.
    fn find_key(&self, owner: UserId, id: KeyId) -> Option<KeyRecord>;

    /// The owner of a live key, whoever it is (for the operator's CLI).
    fn find_key_owner(&self, id: KeyId) -> Option<UserId>;

    /// A key by its whole digest, revoked or not (with whether it is revoked).
    fn find_key_by_digest(&self, digest: KeyDigest) -> Option<(KeyRecord, bool)>;

    /// A page of `owner`'s live keys (every user's for `None`) after `after`, oldest first;
    /// `None` when the cursor names no key.
    fn list_keys(&self, owner: Option<UserId>, after: Option<KeyId>, limit: u32) -> Option<Page<KeyRecord>>;

    /// The `limit` newest live keys of every user, newest first, with the count of all.
    fn newest_keys(&self, limit: u32) -> Page<KeyRecord>;

    /// `owner`'s keys revoked at `since` or later, the latest first, with when: at most `limit`.
    fn revoked_keys(&self, owner: UserId, since: Timestamp, limit: u32) -> Vec<(KeyRecord, Timestamp)>;

    /// The keys of `ids` that exist, revoked ones included, as the audit page shows them.
    fn describe_keys(&self, ids: Vec<KeyId>) -> Vec<KeyDescription>;

    // ---- the change feed ---------------------------------------------------------------

    /// Keys revoked at `since` or later, oldest first (the older revocation list).
    fn revocations_since(&self, since: Timestamp, limit: u32) -> Vec<(KeyId, Timestamp)>;

    /// The offline revocation feed after position `after`, in commit order: at most
    /// `limit` entries, and whether more follow.
    fn revocation_feed(&self, after: i64, limit: u32) -> (Vec<FeedEntry>, bool);

    /// What other processes committed since the last call (the first call: since the store
    /// was opened), resolved as of `now`; empty when nothing.
    fn poll_changes(&self, now: Timestamp) -> Vec<Change>;

    // ---- fixtures ----------------------------------------------------------------------

    /// The users and keys an apply of fixtures created (and `--prune` has not removed).
    fn fixture_items(&self) -> Vec<FixtureItem>;

    /// Records that fixtures created `item` (`made`), or that it is gone.
    fn set_fixture_item(&self, item: FixtureItem, made: bool) -> ();

    /// The credits a fixtures file gave key `id` at the apply that last set them (`None`:
    /// the file gave none, or no apply set them).
    fn fixture_credits(&self, id: KeyId) -> Option<Credits>;

    /// Remembers the credits the file gives key `id` (`None`: forgets them).
    fn set_fixture_credits(&self, id: KeyId, credits: Option<Credits>) -> ();

    // ---- audit -------------------------------------------------------------------------

    /// Records an audit line on its own (a failed login changes nothing else); its position.
    fn record_audit(&self, audit: AuditRecord) -> i64;

    /// Replaces the detail of audit line `seq` (an aggregate line's running count).
    fn set_audit_detail(&self, seq: i64, detail: String) -> ();

    /// A page of the audit trail before position `before`, newest first.
    fn list_audit(&self, before: Option<i64>, limit: u32) -> Page<AuditLine>;

    /// Whether the user has ever started a console session (an audit line says so).
    fn has_started_a_session(&self, user: UserId) -> bool;

    // ---- web console sessions ----------------------------------------------------------

    /// Stores a new session under the hash of its token (with its sign-in audit line),
    /// dropping every session expired by `now`.
    fn insert_session(&self, hash: [u8; 32], session: SessionRecord, now: Timestamp, audit: AuditRecord) -> ();

    /// The session whose token hashes to `hash`, expired or not.
    fn find_session(&self, hash: [u8; 32]) -> Option<SessionRecord>;

    /// Ends a session (with its audit line); `false` if there was none.
    fn delete_session(&self, hash: [u8; 32], audit: AuditRecord) -> bool;
}
