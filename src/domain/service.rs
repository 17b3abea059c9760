//! [`Keyward`]: the domain's one entry point, and [`Caller`], who is asking.

use std::sync::Arc;
use std::time::Duration;

use super::clock::Clock;
use super::passwords::Passwords;
use super::tokens::TokenSigner;
use super::view::KeyView;
use super::{AuditRecord, Error, Lifetime, Secret, Timestamp, UserId, UserRecord};
use crate::metrics::Metrics;
use crate::model::SigningKey;
use crate::store::{Change, Store, StoreError, StoreErrorKind};

/// How a caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    AccessToken,
    /// A web console session (cookie); only the console accepts it.
    Session,
    ApiKey {
        key_id: super::KeyId,
        expires_at: Option<Timestamp>,
        /// `None`: the key acts as its user.
        scopes: Option<Arc<[String]>>,
    },
    Password,
}

impl Via {
    /// The name `/v1/me` reports.
    pub fn method(&self) -> &'static str {
        match self {
            Via::AccessToken => "access_token",
            Via::Session => "session",
            Via::ApiKey { .. } => "api_key",
            Via::Password => "password",
        }
    }

    pub fn key_id(&self) -> Option<super::KeyId> {
        match self {
            Via::ApiKey { key_id, .. } => Some(*key_id),
            _ => None,
        }
    }
}

/// An authenticated request's user and how they authenticated.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: Arc<UserRecord>,
    pub via: Via,
    /// The client's address, for throttling and the audit trail (set by the protocol).
    pub source: Option<std::net::IpAddr>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.role == super::Role::Admin
    }

    /// Whether this caller may act with `scope`: keys with scopes only for theirs; keys
    /// without scopes, access tokens and passwords act as the user.
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

    /// An audit line for `action` by this caller on `target`.
    pub(crate) fn audit(
        &self,
        action: &'static str,
        target: Option<(&'static str, String)>,
        now: Timestamp,
    ) -> AuditRecord {
        let operator = self.user.id == UserId::nil();
        AuditRecord {
            at: now,
            actor_id: (!operator).then_some(self.user.id),
            actor: self.user.username.clone(),
            action,
            target_type: target.as_ref().map(|t| t.0),
            target_id: target.map(|t| t.1),
            source_ip: self.source.map(|ip| ip.to_string()),
            detail: None,
        }
    }
}

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
    /// How long a web console session lasts after sign-in.
    pub session_ttl: Duration,
}

struct Inner {
    store: Store,
    view: Arc<KeyView>,
    signer: TokenSigner,
    passwords: Passwords,
    throttle: super::credentials::Throttle,
    unknown_logins: parking_lot::Mutex<super::credentials::UnknownLogins>,
    config: DomainConfig,
    metrics: Arc<Metrics>,
    clock: Clock,
}

/// The domain: cheap to clone, shared by every handler and protocol.
#[derive(Clone)]
pub struct Keyward(Arc<Inner>);

const MASTER_SECRET_SETTING: &str = "master_secret";

/// The Ed25519 signing keys (oldest first), making the first one on first use. Read first,
/// so a read-only database that has them opens.
async fn signing_keys(store: &Store) -> Result<Vec<SigningKey>, Error> {
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

/// Key uses written per transaction by [`Keyward::flush_usage`], and the pause between
/// transactions: small writes with room between them keep the flush out of request latency.
const USAGE_CHUNK: usize = 32;
const USAGE_PAUSE: Duration = Duration::from_millis(2);

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
        let signer = TokenSigner::new(&secret, &config.issuer, config.access_token_ttl, &signing_keys);
        let users = store
            .load_users()
            .await
            .map_err(|e| e.into_domain("loading users failed"))?;
        let view = Arc::new(KeyView::with_users(users));
        let loading = Arc::clone(&view);
        store
            .load_active_keys(clock.now(), move |row, expected| loading.load_key(row, expected))
            .await
            .map_err(|e| e.into_domain("loading keys failed"))?;
        let passwords = Passwords::new(config.password_concurrency)?;
        Ok(Keyward(Arc::new(Inner {
            store,
            view,
            signer,
            passwords,
            throttle: super::credentials::Throttle::default(),
            unknown_logins: parking_lot::Mutex::default(),
            config,
            metrics,
            clock,
        })))
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

    pub(crate) fn throttle(&self) -> &super::credentials::Throttle {
        &self.0.throttle
    }

    pub(crate) fn unknown_logins(&self) -> &parking_lot::Mutex<super::credentials::UnknownLogins> {
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
        let now = self.now();
        let user = UserRecord {
            id: UserId::nil(),
            username: "operator".into(),
            email: None,
            role: super::Role::Admin,
            disabled: false,
            deleted: false,
            token_epoch: 0,
            created_at: now,
            updated_at: now,
            password_hash: Arc::from(""),
        };
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

    /// The schema version this build writes.
    pub fn schema_version(&self) -> i64 {
        self.0.store.schema_version()
    }

    /// Schema version and the result of `PRAGMA integrity_check`.
    pub async fn check_database(&self) -> Result<(i64, String), Error> {
        self.0
            .store
            .check()
            .await
            .map_err(|e| e.into_domain("checking the database failed"))
    }

    /// An online, consistent copy of the database at `target` (see the README to restore).
    pub async fn backup(
        &self,
        target: &std::path::Path,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<(), Error> {
        self.0
            .store
            .backup_to(target, progress)
            .await
            .map_err(|e| match e.kind {
                StoreErrorKind::Other => Error::Invalid {
                    field: "backup",
                    reason: e.message,
                },
                _ => e.into_domain("the backup failed"),
            })
    }

    /// The public keys that verify API keys (JWKS); empty with HS256.
    pub fn jwks(&self) -> serde_json::Value {
        self.0.signer.jwks()
    }

    /// Adds a new Ed25519 signing key: a server started from now on signs with it, and keeps
    /// accepting and publishing the earlier ones, so keys signed with them stay valid.
    pub async fn rotate_signing_key(&self) -> Result<usize, Error> {
        signing_keys(&self.0.store).await?;
        let all = self
            .0
            .store
            .add_signing_key(SigningKey::generate()?)
            .await
            .map_err(|e| e.into_domain("storing a signing key failed"))?;
        Ok(all.len())
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> bool {
        self.0.store.ping().await.is_ok()
    }

    /// One step of following what other processes (the CLI, another server) write: their
    /// revocations, new keys and user changes since the last step reach the in-memory view.
    /// `crate::jobs` runs it every so often; it returns how many changes it applied.
    pub async fn apply_changes(&self) -> Result<usize, Error> {
        let changes = self
            .0
            .store
            .poll_changes(self.now())
            .await
            .map_err(|e| e.into_domain("following database changes failed"))?;
        let applied = changes.len();
        let view = &self.0.view;
        for change in changes {
            match change {
                Change::KeyActive(k) => view.insert_key(k, false),
                Change::KeyGone(lookup) => view.remove_keys(&[lookup]),
                Change::User(user) => view.put_user(user),
            }
        }
        Ok(applied)
    }

    /// Writes the key uses seen since the last call.
    ///
    /// In chunks of [`USAGE_CHUNK`], each its own write: ten thousand keys in use would
    /// otherwise hold the writer (and, on a small box, the CPU) for tens of milliseconds at
    /// once, which shows as a latency spike for everyone; chunks let other writes in between.
    pub async fn flush_usage(&self) -> Result<(), Error> {
        let mut uses = self.0.view.take_usage();
        uses.sort_unstable_by_key(|(id, _)| *id);
        for chunk in uses.chunks(USAGE_CHUNK) {
            self.0
                .store
                .record_key_usage(chunk.to_vec())
                .await
                .map_err(|e| e.into_domain("recording key use failed"))?;
            tokio::time::sleep(USAGE_PAUSE).await;
        }
        Ok(())
    }

    /// The record of the user whose keys a call concerns (see [`Self::owner_for`]).
    pub fn key_owner(&self, caller: &Caller, owner: Option<UserId>) -> Result<Arc<UserRecord>, Error> {
        let id = self.owner_for(caller, owner)?;
        self.0.view.user(id).ok_or(Error::NotFound)
    }

    /// The user a caller names by username or email (seed 002's `username`): themself, or,
    /// for an admin, any live user. A non-admin naming someone else is refused (403).
    pub fn user_id_by_login(&self, caller: &Caller, login: &str) -> Result<UserId, Error> {
        let own = &caller.user;
        let is_self = own.username.eq_ignore_ascii_case(login)
            || own.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(login));
        if is_self {
            return Ok(own.id);
        }
        if !caller.is_admin() {
            return Err(Error::Forbidden("a user may create keys only for themself".into()));
        }
        self.0.view.user_by_login(login).map(|u| u.id).ok_or(Error::NotFound)
    }

    /// The user whose keys a call concerns: the caller's own when `owner` is `None`; another
    /// live user only for an admin. Anyone else's id is `NotFound`, as if it did not exist.
    pub(crate) fn owner_for(&self, caller: &Caller, owner: Option<UserId>) -> Result<UserId, Error> {
        match owner {
            None => Ok(caller.user.id),
            Some(id) if id == caller.user.id => Ok(id),
            Some(id) if caller.is_admin() => match self.0.view.user(id) {
                Some(u) if !u.deleted => Ok(id),
                _ => Err(Error::NotFound),
            },
            Some(_) => Err(Error::NotFound),
        }
    }
}

impl StoreError {
    /// The domain's view of a store failure; `what` is logged with the cause.
    pub(crate) fn into_domain(self, what: &str) -> Error {
        match self.kind {
            StoreErrorKind::Full => {
                log::warn!("{what}: {}", self.message);
                Error::Unavailable("the database is full (its disk, or database.max_size): writes are refused until there is room; reads go on".into())
            }
            StoreErrorKind::ReadOnly => {
                log::warn!("{what}: {}", self.message);
                Error::Unavailable("the database is read-only: writes are refused; reads go on".into())
            }
            StoreErrorKind::Unavailable | StoreErrorKind::Stopped => {
                log::warn!("{what}: {}", self.message);
                Error::Unavailable("the database cannot take this request now; try again later".into())
            }
            StoreErrorKind::Conflict => Error::Conflict("that conflicts with an existing record".into()),
            StoreErrorKind::Other => Error::Internal(format!("{what}: {}", self.message)),
        }
    }

    /// As [`into_domain`](Self::into_domain), with a specific message for a conflict.
    pub(crate) fn conflict_as(self, message: &str, what: &str) -> Error {
        match self.kind {
            StoreErrorKind::Conflict => Error::Conflict(message.into()),
            _ => self.into_domain(what),
        }
    }
}
