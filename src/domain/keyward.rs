//! [`Keyward`]: the domain's one entry point, what it holds, and how it opens. Its
//! operations are in the files of their subject (`keys/`, `users.rs`, `credentials.rs`,
//! `sessions.rs`, `maintenance.rs`, `background.rs`).

use std::sync::Arc;
use std::time::Duration;

use super::caller::{Caller, Via};
use super::clock::Clock;
use super::passwords::Passwords;
use super::throttle::{Throttle, UnknownLogins};
use super::tokens::TokenSigner;
use super::view::KeyView;
use super::{Error, Lifetime, Role, Secret, Timestamp, UserId, UserRecord, access};
use crate::metrics::Metrics;
use crate::model::SigningKey;
use crate::store::Store;

/// The settings the domain needs, already validated.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    pub issuer: String,
    pub access_token_ttl: Duration,
    pub default_lifetime: Lifetime,
    pub max_lifetime: Option<Duration>,
    /// The configured master secret; `None`: generate one and keep it in the database.
    pub secret: Option<Secret>,
    /// How many argon2 hashes may run at once (each takes 19 MiB).
    pub password_concurrency: usize,
    /// Sign keys with Ed25519 (published at `/.well-known/jwks.json`) instead of HS256.
    pub eddsa: bool,
    /// Most credits this node reserves for a key at once (`keys.credit_block`).
    pub credit_block: u64,
    /// How long a web console session lasts after sign-in.
    pub session_ttl: Duration,
    /// How long keys' hourly usage is kept (`usage.retention`).
    pub usage_retention: Duration,
    /// Several nodes (PostgreSQL): past this since the last successful read of the change
    /// feed, credentials are refused (503) rather than checked against a view that may have
    /// missed a revocation. `None` on SQLite, where there is no one to miss.
    pub max_staleness: Option<Duration>,
}

struct Inner {
    store: Store,
    view: Arc<KeyView>,
    signer: TokenSigner,
    passwords: Passwords,
    throttle: Throttle,
    unknown_logins: parking_lot::Mutex<UnknownLogins>,
    config: DomainConfig,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// Until when the view counts as current, in ms after `started`: the last successful
    /// read of the change feed plus `max_staleness`. Real time, not the domain's clock:
    /// staleness is about how long ago the database answered, whatever the clock says.
    fresh_until: std::sync::atomic::AtomicI64,
    started: std::time::Instant,
    /// One read-and-apply of the change feed at a time: an older read applied after a newer
    /// one would put back what the newer one removed.
    following: tokio::sync::Mutex<()>,
    /// When (domain clock, ms) old usage buckets were last swept.
    usage_swept_at: std::sync::atomic::AtomicI64,
}

/// The domain: cheap to clone, shared by every handler and protocol.
#[derive(Clone)]
pub struct Keyward(Arc<Inner>);

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

const MASTER_SECRET_SETTING: &str = "master_secret";

/// The Ed25519 signing keys (oldest first), making the first one on first use. Read first,
/// so a read-only database that has them opens.
pub(super) async fn signing_keys(store: &Store) -> Result<Vec<SigningKey>, Error> {
    let keys = store
        .signing_keys()
        .await
        .map_err(|e| e.into_domain("reading the signing keys failed"))?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    store
        .signing_keys_or_insert(SigningKey::generate()?)
        .await
        .map_err(|e| e.into_domain("storing a signing key failed"))
}

impl Keyward {
    /// Loads the master secret (generating it on first start), users and active keys. Every
    /// operation reads the time from `clock`.
    pub async fn open(
        store: Store,
        config: DomainConfig,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Result<Keyward, Error> {
        let secret = match &config.secret {
            Some(s) => s.clone(),
            None => {
                let stored = store
                    .setting(MASTER_SECRET_SETTING)
                    .await
                    .map_err(|e| e.into_domain("reading the master secret failed"))?;
                let value = match stored {
                    Some(value) => value,
                    None => {
                        let mut bytes = [0u8; 32];
                        crate::model::os_random(&mut bytes)?;
                        store
                            .setting_or_insert(MASTER_SECRET_SETTING, crate::model::hex(&bytes))
                            .await
                            .map_err(|e| e.into_domain("the master secret could not be stored"))?
                    }
                };
                Secret::new(value)
            }
        };
        let signing_keys = if config.eddsa {
            signing_keys(&store).await?
        } else {
            Vec::new()
        };
        let signer = TokenSigner::new(&secret, &config.issuer, config.access_token_ttl, &signing_keys)?;
        let users = store
            .load_users()
            .await
            .map_err(|e| e.into_domain("loading users failed"))?;
        let view = Arc::new(KeyView::with_users(users, clock.clone()));
        let loading = Arc::clone(&view);
        store
            .load_active_keys(clock.now(), move |row, expected| loading.load_key(row, expected))
            .await
            .map_err(|e| e.into_domain("loading keys failed"))?;
        let passwords = Passwords::new(config.password_concurrency)?;
        let started = std::time::Instant::now();
        let fresh_until = config.max_staleness.map_or(i64::MAX, millis);
        Ok(Keyward(Arc::new(Inner {
            store,
            view,
            signer,
            passwords,
            throttle: Throttle::default(),
            unknown_logins: parking_lot::Mutex::default(),
            config,
            fresh_until: std::sync::atomic::AtomicI64::new(fresh_until),
            started,
            following: tokio::sync::Mutex::new(()),
            usage_swept_at: std::sync::atomic::AtomicI64::new(i64::MIN),
            metrics,
            clock,
        })))
    }

    /// `Stale` (503, with when to retry) while this node's view of the other nodes' writes is
    /// older than `max_staleness`: it fails closed rather than honour a key another node may
    /// have revoked. Always `Ok` on SQLite.
    pub fn require_fresh(&self) -> Result<(), Error> {
        let Some(stale) = self.0.config.max_staleness else {
            return Ok(());
        };
        let until = self.0.fresh_until.load(std::sync::atomic::Ordering::Relaxed);
        if millis(self.0.started.elapsed()) <= until {
            return Ok(());
        }
        Err(Error::Stale {
            retry_after: (stale / 4).max(Duration::from_secs(1)),
        })
    }

    /// The view is current as of `at` (a read of the change feed that started then
    /// succeeded).
    pub(crate) fn mark_fresh(&self, at: std::time::Instant) {
        if let Some(stale) = self.0.config.max_staleness {
            let until = millis(at.saturating_duration_since(self.0.started) + stale);
            self.0
                .fresh_until
                .fetch_max(until, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Held while the change feed is read and applied.
    pub(crate) async fn following(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.following.lock().await
    }

    /// The time now, by the domain's clock: what every operation uses, and what the
    /// protocols show as "now" (a page's relative times, a list's `as_of`).
    pub fn now(&self) -> Timestamp {
        self.0.clock.now()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn view(&self) -> &Arc<KeyView> {
        &self.0.view
    }

    pub(crate) fn signer(&self) -> &TokenSigner {
        &self.0.signer
    }

    pub(crate) fn passwords(&self) -> &Passwords {
        &self.0.passwords
    }

    pub(crate) fn throttle(&self) -> &Throttle {
        &self.0.throttle
    }

    pub(crate) fn unknown_logins(&self) -> &parking_lot::Mutex<UnknownLogins> {
        &self.0.unknown_logins
    }

    /// How many entries the password throttle holds, and the bytes each takes.
    pub fn throttle_footprint(&self) -> (usize, usize) {
        self.0.throttle.footprint()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub(crate) fn config(&self) -> &DomainConfig {
        &self.0.config
    }

    /// Whether an hour has passed since old usage was last swept; if so, the sweep is this
    /// caller's.
    pub(crate) fn usage_sweep_due(&self, now: Timestamp) -> bool {
        use std::sync::atomic::Ordering;
        let last = self.0.usage_swept_at.load(Ordering::Relaxed);
        now.millis().saturating_sub(last) >= crate::model::HOUR_MS
            && self
                .0
                .usage_swept_at
                .compare_exchange(last, now.millis(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// How many keys can authenticate right now (the size of the in-memory view).
    pub fn active_key_count(&self) -> usize {
        self.0.view.key_count()
    }

    /// How many argon2 verifications have run, for known and unknown users alike.
    pub fn password_verification_count(&self) -> u64 {
        self.0.passwords.verification_count()
    }

    /// The most argon2 hashes that ever ran at once (bounded by configuration).
    pub fn password_peak_concurrency(&self) -> usize {
        self.0.passwords.peak_concurrency()
    }

    /// The operator at the console (the CLI): an admin who is no user, so the "not
    /// yourself" rules never apply to them.
    pub fn operator(&self) -> Caller {
        self.operator_named("operator")
    }

    /// The operator under another name in the audit trail (`fixtures`, `import`).
    pub fn operator_named(&self, name: &str) -> Caller {
        let now = self.now();
        let user = UserRecord::new(UserId::nil(), name.into(), None, Role::Admin, Arc::from(""), now);
        Caller {
            user: Arc::new(user),
            via: Via::Password,
            source: None,
        }
    }

    /// A live user by username or email (the CLI names users so).
    pub fn find_user(&self, login: &str) -> Option<Arc<UserRecord>> {
        self.0.view.user_by_login(login)
    }

    /// The record of the user whose keys a call concerns (see [`Self::owner_for`]).
    pub fn key_owner(&self, caller: &Caller, owner: Option<UserId>) -> Result<Arc<UserRecord>, Error> {
        let id = self.owner_for(caller, owner)?;
        self.0.view.user(id).ok_or(Error::NotFound)
    }

    /// The user a caller names by username or email (seed 002's `username`): themself, or,
    /// for an admin, any live user. A non-admin naming someone else is refused (403).
    pub fn user_id_by_login(&self, caller: &Caller, login: &str) -> Result<UserId, Error> {
        access::user_by_login(caller, login, |login| self.0.view.user_by_login(login).map(|u| u.id))
    }

    /// The user whose keys a call concerns: the caller's own when `owner` is `None`; another
    /// live user only for an admin. Anyone else's id is `NotFound`, as if it did not exist.
    pub(crate) fn owner_for(&self, caller: &Caller, owner: Option<UserId>) -> Result<UserId, Error> {
        access::owner_for(caller, owner, |id| self.0.view.user(id).is_some_and(|u| !u.deleted))
    }
}
