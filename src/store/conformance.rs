//! The store's conformance suite: every operation of the seam with its edge cases, written
//! against [`Store`] alone, so every backend runs the very same checks: `suite!(sqlite, …)`
//! below runs them on a temporary SQLite file; another backend adds a `TestDb` maker and
//! one `suite!` line.
//!
//! Each check gets a fresh, empty database ([`TestDb`]) and may open it a second time, as
//! another process (or node) would.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    AccessSeen, Change, CreditsChange, HeldBlock, KeyChanges, KeyDescription, KeyGuard, Payer, Reservation, Store,
    StoreError, StoreErrorKind, StoreOptions, Successor, UserChanges,
};
use crate::model::{
    AuditRecord, Credits, FeedState, FixtureItem, GivenDuration, HOUR_MS, KeyDigest, KeyId, KeyRecord, MAX_CREDITS,
    Outcome, RateLimit, RateLimits, Refill, RefillInterval, Role, SessionRecord, Sha256Hash, SigningKey, Timestamp,
    UsageBucket, UsageCounts, UserId, UserRecord,
};

type Checked = Result<(), Box<dyn std::error::Error>>;
type Opening = Pin<Box<dyn Future<Output = Result<Store, StoreError>>>>;

/// A fresh database for one check: its store, and a way to open it again.
pub struct TestDb {
    pub store: Store,
    open: Box<dyn Fn(StoreOptions) -> Opening>,
    /// Whatever must live as long as the database (a temporary directory).
    _keep: Box<dyn std::any::Any>,
}

impl TestDb {
    /// The same database opened again, as another process would (its writes are not this
    /// store's own).
    async fn another_process(&self, read_only: bool) -> Result<Store, StoreError> {
        (self.open)(StoreOptions { read_only, ..options() }).await
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        pool_size: 2,
        max_size: None,
        read_only: false,
        batch_sizes: None,
    }
}

/// A database on a temporary SQLite file.
pub async fn sqlite_db() -> Result<TestDb, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("conformance.db");
    let open = move |options: StoreOptions| -> Opening {
        let path = path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || Store::open_sqlite(&path, &options))
                .await
                .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?
        })
    };
    let store = open(options()).await?;
    Ok(TestDb {
        store,
        open: Box::new(open),
        _keep: Box::new(dir),
    })
}

/// One `#[tokio::test]` per check, each on a fresh database from `$db`.
macro_rules! checks_on {
    ($backend:ident, $db:path: $($check:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() -> super::Checked {
                    let db = match $db().await {
                        Ok(db) => db,
                        Err(e) if e.is::<super::Skipped>() => return Ok(()),
                        Err(e) => return Err(e),
                    };
                    super::$check(&db).await
                }
            )*
        }
    };
}

/// The suite on one backend: `suite!(name, maker of a fresh TestDb)`.
macro_rules! suite {
    ($backend:ident, $db:path) => {
        checks_on!($backend, $db:
            a_new_database_answers_and_is_sound,
            settings_keep_the_first_value_stored,
            signing_keys_are_made_once_and_appended_in_order,
            users_are_stored_listed_and_paged,
            usernames_and_emails_are_unique_among_live_users,
            a_user_update_changes_only_what_it_names,
            deleting_a_user_revokes_their_keys_and_frees_the_username,
            writes_to_what_is_not_there_change_nothing,
            keys_are_stored_found_and_owned,
            numbered_keys_count_every_key_the_owner_ever_had,
            key_lists_page_by_cursor_and_hide_revoked_keys,
            a_key_update_applies_every_change_in_one_write,
            an_expiry_only_moves_earlier,
            revoking_is_once_and_only_for_the_owner,
            active_keys_are_the_live_unexpired_ones,
            rotation_shortens_the_old_key_and_stores_the_new_one_together,
            a_rotation_asked_with_a_key_needs_that_key_as_it_was_checked,
            key_uses_never_move_backwards,
            usage_buckets_add_up_by_key_and_hour_and_are_swept,
            a_key_made_by_a_key_is_stored_only_while_that_key_is_live_and_unlimited,
            the_revocation_feed_is_in_commit_order_with_cursors,
            user_changes_put_each_of_their_keys_on_the_feed,
            the_older_revocation_list_is_by_time,
            concurrent_writes_commit_together_and_a_failing_one_alone_fails,
            audit_lines_keep_the_target_name_of_their_time,
            audit_lines_on_their_own,
            sessions_are_stored_found_and_ended,
            another_process_sees_every_change,
            a_read_only_store_reads_and_refuses_writes,
            limits_are_stored_with_the_key_changed_and_cleared,
            credits_are_reserved_in_blocks_never_past_the_balance,
            concurrent_reservations_never_take_more_than_the_balance,
            a_refill_restores_the_balance_at_the_period_start,
            rotation_moves_the_credits_to_the_new_key,
            imported_keys_are_stored_all_or_none_and_travel_like_minted_ones,
            fixture_items_are_recorded_once_and_forgotten,
            fixture_credits_are_remembered_replaced_and_forgotten,
            a_users_limits_are_stored_changed_and_reserved_from,
            an_owners_set_never_raises_the_balance_at_the_write,
            a_change_checked_against_access_changed_since_is_refused,
            unspent_blocks_go_back_only_to_their_generation_and_period,
            a_childs_credits_are_carved_out_of_its_parents_balance,
        );
    };
}

suite!(sqlite, super::sqlite_db);
suite!(postgres, super::postgres_db);

/// A fresh database on the PostgreSQL server `KEYWARD_TEST_POSTGRES` names (dropped with
/// the `TestDb`). Without one: SKIPPED, or a failure under `CI=true`.
pub async fn postgres_db() -> Result<TestDb, Box<dyn std::error::Error>> {
    let Some(server) = crate::store::postgres::testing::server() else {
        return Err(Box::new(Skipped));
    };
    let db = crate::store::postgres::testing::TestDatabase::create(&server).await;
    let url = db.url.clone();
    let open = move |options: StoreOptions| -> Opening {
        let url = url.clone();
        Box::pin(async move {
            let options = crate::store::postgres::PgOptions {
                url,
                pool_size: options.pool_size as usize,
                read_only: options.read_only,
                batch_sizes: options.batch_sizes,
            };
            Store::open_postgres(&options).await
        })
    };
    let store = open(options()).await?;
    Ok(TestDb {
        store,
        open: Box::new(open),
        _keep: Box::new(db),
    })
}

/// No PostgreSQL here (outside CI): the check says so and passes.
#[derive(Debug)]
struct Skipped;

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("skipped")
    }
}

impl std::error::Error for Skipped {}

// ---- fixtures -------------------------------------------------------------------------

fn t(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + secs)
}

fn user(name: &str) -> Result<UserRecord, Box<dyn std::error::Error>> {
    Ok(UserRecord {
        id: UserId::generate()?,
        username: name.to_owned(),
        email: Some(format!("{name}@example.com")),
        role: Role::User,
        disabled: false,
        deleted: false,
        token_epoch: 0,
        created_at: t(0),
        updated_at: t(0),
        password_hash: Arc::from(format!("$argon2id$hash-of-{name}")),
        ratelimits: RateLimits::none(),
        credits: None,
        credits_period: None,
        rendered: Default::default(),
    })
}

fn key(owner: UserId, token: &str) -> Result<KeyRecord, Box<dyn std::error::Error>> {
    Ok(KeyRecord {
        id: KeyId::generate()?,
        user_id: owner,
        name: Some(format!("key {token}")),
        digest: KeyDigest::of(token),
        created_at: t(1),
        updated_at: t(1),
        expires_at: None,
        last_used_at: None,
        disabled: false,
        scopes: None,
        meta: serde_json::json!({}),
        grants: Vec::new(),
        ratelimits: RateLimits::none(),
        credits: None,
        credits_period: None,
    })
}

fn audit(action: &'static str, target: Option<(&'static str, String)>) -> AuditRecord {
    AuditRecord {
        at: t(2),
        actor_id: None,
        actor: "operator".into(),
        action,
        target_type: target.as_ref().map(|x| x.0),
        target_id: target.map(|x| x.1),
        source_ip: Some("192.0.2.1".into()),
        detail: None,
    }
}

async fn add_user(store: &Store, name: &str) -> Result<UserRecord, Box<dyn std::error::Error>> {
    let user = user(name)?;
    store
        .insert_user(
            user.clone(),
            audit("user.create", Some(("user", user.id.to_string()))),
            || {},
        )
        .await?;
    Ok(user)
}

async fn add_key(store: &Store, owner: UserId, token: &str) -> Result<KeyRecord, Box<dyn std::error::Error>> {
    let key = key(owner, token)?;
    let audit = audit("key.create", Some(("key", key.id.to_string())));
    Ok(store.insert_key(key, false, audit, |_| {}).await?)
}

/// The changes that narrow a key as the guards' tests need: scopes set, credits set,
/// disabled, or its expiry brought forward to t(500) (as a rotation does).
fn narrowing(how: &str) -> Result<KeyChanges, Box<dyn std::error::Error>> {
    let mut changes = KeyChanges::default();
    match how {
        "scoped" => changes.scopes = Some((Some(vec!["keys:read".into()]), Vec::new())),
        "limited" => changes.credits = Some(CreditsChange::Set(Some(Credits::new(5, None)?))),
        "disabled" => changes.disabled = Some(true),
        "rotated" => changes.expires_by = Some(t(500)),
        other => return Err(format!("no narrowing {other}").into()),
    }
    Ok(changes)
}

/// A key of `owner` as it was stored (what a request was checked against), then narrowed
/// by [`narrowing`]`(how)`.
async fn add_key_then_narrow(
    store: &Store,
    owner: UserId,
    how: &'static str,
) -> Result<KeyRecord, Box<dyn std::error::Error>> {
    let key = add_key(store, owner, how).await?;
    store
        .update_key(owner, key.id, narrowing(how)?, t(2), Vec::new(), |_| {})
        .await?
        .ok_or("the key is live")?;
    Ok(key)
}

async fn revoke(store: &Store, key: &KeyRecord, at: Timestamp) -> Result<Option<[u8; 32]>, StoreError> {
    let audit = audit("key.revoke", Some(("key", key.id.to_string())));
    store.revoke_key(key.user_id, key.id, at, audit, |_| {}).await
}

async fn feed(store: &Store) -> Result<Vec<(KeyId, FeedState)>, StoreError> {
    let (entries, _) = store.revocation_feed(0, 1000).await?;
    Ok(entries.into_iter().map(|e| (e.id, e.state)).collect())
}

async fn audit_count(store: &Store) -> Result<u64, StoreError> {
    Ok(store.list_audit(None, 1).await?.total)
}

/// Counts calls of an after-commit step.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

// ---- the database as a whole ------------------------------------------------------------

async fn a_new_database_answers_and_is_sound(db: &TestDb) -> Checked {
    db.store.ping().await?;
    let (version, integrity) = db.store.check().await?;
    assert_eq!(version, db.store.schema_version());
    assert_eq!(integrity, "ok");
    assert_eq!(db.store.count_users().await?, 0);
    assert!(db.store.load_users().await?.is_empty());
    assert!(db.store.poll_changes(t(0)).await?.is_empty());
    Ok(())
}

// ---- settings ---------------------------------------------------------------------------

async fn settings_keep_the_first_value_stored(db: &TestDb) -> Checked {
    let s = &db.store;
    assert_eq!(s.setting("master_secret").await?, None);
    assert_eq!(s.setting_or_insert("master_secret", "first".into()).await?, "first");
    assert_eq!(s.setting_or_insert("master_secret", "second".into()).await?, "first");
    assert_eq!(s.setting("master_secret").await?.as_deref(), Some("first"));
    assert_eq!(s.setting("something_else").await?, None);
    Ok(())
}

async fn signing_keys_are_made_once_and_appended_in_order(db: &TestDb) -> Checked {
    let s = &db.store;
    assert!(s.signing_keys().await?.is_empty());
    let (a, b, c) = (
        SigningKey::generate()?,
        SigningKey::generate()?,
        SigningKey::generate()?,
    );
    assert_eq!(s.signing_keys_or_insert(a.clone()).await?, vec![a.clone()]);
    assert_eq!(
        s.signing_keys_or_insert(b.clone()).await?,
        vec![a.clone()],
        "only the first is kept"
    );
    assert_eq!(s.add_signing_key(b.clone()).await?, [a.clone(), b.clone()]);
    assert_eq!(s.add_signing_key(c.clone()).await?, [a.clone(), b.clone(), c.clone()]);
    assert_eq!(s.signing_keys().await?, [a, b, c]);
    Ok(())
}

// ---- users ------------------------------------------------------------------------------

async fn users_are_stored_listed_and_paged(db: &TestDb) -> Checked {
    let s = &db.store;
    let calls = Calls::default();
    let ada = user("ada")?;
    let counted = calls.clone();
    s.insert_user(ada.clone(), audit("user.create", None), move || counted.hit())
        .await?;
    assert_eq!(calls.count(), 1, "after_commit ran before the write returned");
    let bob = add_user(s, "bob").await?;
    let cy = add_user(s, "cy").await?;
    assert_eq!(s.count_users().await?, 3);
    let loaded = s.load_users().await?;
    let names: Vec<&str> = loaded.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["ada", "bob", "cy"]);
    let stored = &loaded[0];
    assert_eq!(
        (stored.id, stored.email.as_deref(), stored.role),
        (ada.id, Some("ada@example.com"), Role::User)
    );
    assert_eq!(&*stored.password_hash, &*ada.password_hash);
    assert_eq!(
        (stored.created_at, stored.token_epoch, stored.disabled),
        (t(0), 0, false)
    );

    let first = s.list_users(None, 2).await?.ok_or("a first page")?;
    assert_eq!(first.items.iter().map(|u| u.id).collect::<Vec<_>>(), [ada.id, bob.id]);
    assert_eq!((first.total, first.more), (3, true));
    let second = s.list_users(Some(bob.id), 2).await?.ok_or("a second page")?;
    assert_eq!(second.items.iter().map(|u| u.id).collect::<Vec<_>>(), [cy.id]);
    assert_eq!((second.total, second.more), (3, false));
    assert!(
        s.list_users(Some(UserId::generate()?), 2).await?.is_none(),
        "an unknown cursor"
    );
    Ok(())
}

async fn usernames_and_emails_are_unique_among_live_users(db: &TestDb) -> Checked {
    let s = &db.store;
    add_user(s, "ada").await?;
    let calls = Calls::default();
    let mut twin = user("ADA")?;
    twin.email = None;
    let counted = calls.clone();
    let refused = s
        .insert_user(twin, audit("user.create", None), move || counted.hit())
        .await;
    assert_eq!(
        refused.map_err(|e| e.kind),
        Err(StoreErrorKind::Conflict),
        "usernames ignore case"
    );
    let mut same_email = user("other")?;
    same_email.email = Some("ADA@example.com".into());
    let refused = s.insert_user(same_email, audit("user.create", None), || {}).await;
    assert_eq!(
        refused.map_err(|e| e.kind),
        Err(StoreErrorKind::Conflict),
        "emails ignore case"
    );
    assert_eq!(calls.count(), 0, "no after_commit for a refused write");
    assert_eq!(s.count_users().await?, 1);
    assert_eq!(audit_count(s).await?, 1, "nor its audit line");
    let bob = add_user(s, "bob").await?;
    let taken = UserChanges {
        email: Some(Some("ada@example.com".into())),
        ..UserChanges::default()
    };
    let refused = s
        .update_user(bob.id, taken, t(5), audit("user.update", None), |_| {})
        .await;
    assert_eq!(refused.err().map(|e| e.kind), Some(StoreErrorKind::Conflict));
    Ok(())
}

async fn a_user_update_changes_only_what_it_names(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let into = Arc::clone(&seen);
    let changes = UserChanges {
        role: Some(Role::Admin),
        bump_epoch: true,
        ..UserChanges::default()
    };
    let updated = s
        .update_user(ada.id, changes, t(10), audit("user.update", None), move |u| {
            *into.lock() = u.as_ref().map(|u| u.role)
        })
        .await?
        .ok_or("ada is there")?;
    assert_eq!(*seen.lock(), Some(Role::Admin), "after_commit saw the user as written");
    assert_eq!(
        (updated.role, updated.token_epoch, updated.updated_at),
        (Role::Admin, 1, t(10))
    );
    assert_eq!(updated.email.as_deref(), Some("ada@example.com"), "email untouched");
    assert_eq!(&*updated.password_hash, &*ada.password_hash, "password untouched");

    let changes = UserChanges {
        password_hash: Some(Arc::from("$argon2id$new")),
        email: Some(None),
        disabled: Some(true),
        ..UserChanges::default()
    };
    let updated = s
        .update_user(ada.id, changes, t(11), audit("user.update", None), |_| {})
        .await?
        .ok_or("ada is there")?;
    assert_eq!(
        (updated.email, updated.disabled, updated.role),
        (None, true, Role::Admin)
    );
    assert_eq!((&*updated.password_hash, updated.token_epoch), ("$argon2id$new", 1));
    let loaded = s.load_users().await?;
    assert_eq!(
        loaded.first().map(|u| u.disabled),
        Some(true),
        "disabled users still load"
    );
    Ok(())
}

async fn deleting_a_user_revokes_their_keys_and_frees_the_username(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let bob = add_user(s, "bob").await?;
    let a1 = add_key(s, ada.id, "a1").await?;
    let a2 = add_key(s, ada.id, "a2").await?;
    let b1 = add_key(s, bob.id, "b1").await?;
    revoke(s, &a2, t(3)).await?;
    let lookups = s
        .delete_user(
            ada.id,
            t(20),
            audit("user.delete", Some(("user", ada.id.to_string()))),
            |_| {},
        )
        .await?
        .ok_or("ada is there")?;
    assert_eq!(lookups, [a1.digest.lookup()], "only the keys still live");
    assert_eq!(s.find_key(ada.id, a1.id).await?.map(|k| k.id), None);
    assert_eq!(
        s.find_key(bob.id, b1.id).await?.map(|k| k.id),
        Some(b1.id),
        "others' keys stay"
    );
    assert_eq!(s.load_users().await?.iter().map(|u| u.id).collect::<Vec<_>>(), [bob.id]);
    assert_eq!(s.count_users().await?, 2, "the row stays for the audit trail");
    let states = feed(s).await?;
    assert_eq!(states, [(a2.id, FeedState::Revoked), (a1.id, FeedState::Revoked)]);
    assert!(
        s.delete_user(ada.id, t(21), audit("user.delete", None), |_| {})
            .await?
            .is_none(),
        "once"
    );
    let again = add_user(s, "ada").await?;
    assert_ne!(again.id, ada.id, "the username is free again");
    Ok(())
}

/// A write that finds nothing to change answers `None`/`false`, writes no audit line and no
/// feed entry, and still runs its after-commit step with that answer.
async fn writes_to_what_is_not_there_change_nothing(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let bob = add_user(s, "bob").await?;
    let key = add_key(s, ada.id, "k").await?;
    let lines = audit_count(s).await?;
    let (nobody, no_key) = (UserId::generate()?, KeyId::generate()?);
    let calls = Calls::default();
    let counted = calls.clone();
    let none = s
        .update_user(
            nobody,
            UserChanges::default(),
            t(5),
            audit("user.update", None),
            move |u| {
                assert!(u.is_none());
                counted.hit();
            },
        )
        .await?;
    assert!(none.is_none());
    assert_eq!(calls.count(), 1);
    assert!(
        s.delete_user(nobody, t(5), audit("user.delete", None), |_| {})
            .await?
            .is_none()
    );
    let rename = KeyChanges {
        name: Some(Some("x".into())),
        ..KeyChanges::default()
    };
    let audits = vec![audit("key.rename", None)];
    assert!(
        s.update_key(ada.id, no_key, rename.clone(), t(5), audits.clone(), |_| {})
            .await?
            .is_none()
    );
    assert!(
        s.update_key(bob.id, key.id, rename, t(5), audits, |_| {})
            .await?
            .is_none(),
        "not bob's"
    );
    assert!(
        revoke(
            s,
            &KeyRecord {
                id: no_key,
                ..key.clone()
            },
            t(5)
        )
        .await?
        .is_none()
    );
    assert!(!s.delete_session([7; 32], audit("session.end", None)).await?);
    assert_eq!(
        audit_count(s).await?,
        lines,
        "no audit line for a write that changed nothing"
    );
    assert!(feed(s).await?.is_empty());
    assert_eq!(s.find_key(ada.id, key.id).await?.and_then(|k| k.name), key.name);
    Ok(())
}

// ---- keys ---------------------------------------------------------------------------------

async fn keys_are_stored_found_and_owned(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let bob = add_user(s, "bob").await?;
    let mut made = key(ada.id, "ada-1")?;
    made.scopes = Some(vec!["keys:read".into(), "keys:verify".into()]);
    made.grants = vec!["keys:verify".into()];
    made.meta = serde_json::json!({"team": "ops"});
    made.expires_at = Some(t(3600));
    let calls = Calls::default();
    let counted = calls.clone();
    let stored = s
        .insert_key(made.clone(), false, audit("key.create", None), move |k| {
            assert_eq!(k.name.as_deref(), Some("key ada-1"));
            counted.hit();
        })
        .await?;
    assert_eq!(calls.count(), 1);
    let found = s.find_key(ada.id, made.id).await?.ok_or("ada's key")?;
    for k in [&stored, &found] {
        assert_eq!(
            (k.id, k.user_id, k.name.as_deref()),
            (made.id, ada.id, Some("key ada-1"))
        );
        assert_eq!(
            (k.digest, k.created_at, k.updated_at, k.expires_at),
            (made.digest, t(1), t(1), Some(t(3600)))
        );
        assert_eq!(
            (&k.scopes, &k.grants, &k.meta),
            (&made.scopes, &made.grants, &made.meta)
        );
        assert_eq!((k.last_used_at, k.disabled), (None, false));
    }
    assert!(s.find_key(bob.id, made.id).await?.is_none(), "not bob's");
    assert_eq!(s.find_key_owner(made.id).await?, Some(ada.id));
    assert_eq!(s.find_key_owner(KeyId::generate()?).await?, None);
    let (by_digest, revoked) = s.find_key_by_digest(KeyDigest::of("ada-1")).await?.ok_or("by digest")?;
    assert_eq!((by_digest.id, revoked), (made.id, false));
    assert!(s.find_key_by_digest(KeyDigest::of("nobody's")).await?.is_none());
    revoke(s, &stored, t(2)).await?;
    assert!(
        s.find_key(ada.id, made.id).await?.is_none(),
        "revoked keys are not found"
    );
    assert_eq!(s.find_key_owner(made.id).await?, None);
    let (_, revoked) = s
        .find_key_by_digest(KeyDigest::of("ada-1"))
        .await?
        .ok_or("still on file")?;
    assert!(revoked, "the digest lookup tells revoked from unknown");

    let mut twin = key(bob.id, "ada-1")?;
    twin.name = None;
    let refused = s.insert_key(twin, false, audit("key.create", None), |_| {}).await;
    assert_eq!(
        refused.err().map(|e| e.kind),
        Some(StoreErrorKind::Conflict),
        "one digest, one key"
    );
    Ok(())
}

async fn numbered_keys_count_every_key_the_owner_ever_had(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let bob = add_user(s, "bob").await?;
    let mut names = Vec::new();
    for n in 0..3 {
        let mut k = key(ada.id, &format!("n{n}"))?;
        k.name = None;
        let stored = s.insert_key(k, true, audit("key.create", None), |_| {}).await?;
        names.push(stored.name.clone().unwrap_or_default());
        if n == 0 {
            revoke(s, &stored, t(2)).await?;
        }
    }
    assert_eq!(names, ["key#1", "key#2", "key#3"], "a revoked key still counts");
    let mut named = key(ada.id, "named")?;
    named.name = Some("mine".into());
    let kept = s.insert_key(named, true, audit("key.create", None), |_| {}).await?;
    assert_eq!(kept.name.as_deref(), Some("mine"), "a given name is kept");
    let mut plain = key(bob.id, "plain")?;
    plain.name = None;
    let plain = s.insert_key(plain, false, audit("key.create", None), |_| {}).await?;
    assert_eq!(plain.name, None, "unnumbered keys stay unnamed");
    let mut first = key(bob.id, "bob-numbered")?;
    first.name = None;
    let first = s.insert_key(first, true, audit("key.create", None), |_| {}).await?;
    assert_eq!(first.name.as_deref(), Some("key#2"), "counted per owner");
    Ok(())
}

async fn key_lists_page_by_cursor_and_hide_revoked_keys(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let bob = add_user(s, "bob").await?;
    let mut ada_keys = Vec::new();
    for n in 0..5 {
        ada_keys.push(add_key(s, ada.id, &format!("a{n}")).await?);
    }
    let b0 = add_key(s, bob.id, "b0").await?;
    revoke(s, &ada_keys[2], t(3)).await?;
    let ids = |keys: &[KeyRecord]| keys.iter().map(|k| k.id).collect::<Vec<_>>();
    let first = s.list_keys(Some(ada.id), None, 2).await?.ok_or("page 1")?;
    assert_eq!(ids(&first.items), [ada_keys[0].id, ada_keys[1].id]);
    assert_eq!((first.total, first.more), (4, true), "revoked keys are not counted");
    let second = s
        .list_keys(Some(ada.id), Some(ada_keys[1].id), 2)
        .await?
        .ok_or("page 2")?;
    assert_eq!(ids(&second.items), [ada_keys[3].id, ada_keys[4].id]);
    assert!(!second.more);
    let after_revoked = s
        .list_keys(Some(ada.id), Some(ada_keys[2].id), 10)
        .await?
        .ok_or("a revoked cursor")?;
    assert_eq!(
        ids(&after_revoked.items),
        [ada_keys[3].id, ada_keys[4].id],
        "a revoked key still marks its place"
    );
    assert!(
        s.list_keys(Some(ada.id), Some(KeyId::generate()?), 2).await?.is_none(),
        "an unknown cursor"
    );
    let everyone = s.list_keys(None, None, 100).await?.ok_or("everyone's")?;
    assert_eq!(everyone.total, 5);
    assert_eq!(everyone.items.last().map(|k| k.id), Some(b0.id));
    let newest = s.newest_keys(2).await?;
    assert_eq!(ids(&newest.items), [b0.id, ada_keys[4].id]);
    assert_eq!((newest.total, newest.more), (5, true));
    let none = s
        .list_keys(Some(UserId::generate()?), None, 10)
        .await?
        .ok_or("an empty page")?;
    assert_eq!((none.items.len(), none.total, none.more), (0, 0, false));

    let revoked = s.revoked_keys(ada.id, t(3), 10).await?;
    assert_eq!(
        revoked.iter().map(|(k, at)| (k.id, *at)).collect::<Vec<_>>(),
        [(ada_keys[2].id, t(3))]
    );
    assert!(
        s.revoked_keys(ada.id, t(4), 10).await?.is_empty(),
        "revoked before `since`"
    );
    let mut described = s.describe_keys(vec![ada_keys[2].id, b0.id, KeyId::generate()?]).await?;
    described.sort_by_key(|d| d.revoked);
    let expected = [
        KeyDescription {
            id: b0.id,
            owner: bob.id,
            name: b0.name.clone(),
            revoked: false,
        },
        KeyDescription {
            id: ada_keys[2].id,
            owner: ada.id,
            name: ada_keys[2].name.clone(),
            revoked: true,
        },
    ];
    assert_eq!(described, expected, "unknown ids are left out");
    Ok(())
}

/// One update may rename, disable and rescope a key at once: one write, one feed entry for
/// the state, one audit line per part.
async fn a_key_update_applies_every_change_in_one_write(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let k = add_key(s, ada.id, "k").await?;
    let lines = audit_count(s).await?;
    let changes = KeyChanges {
        name: Some(None),
        disabled: Some(true),
        expires_by: None,
        scopes: Some((
            Some(vec!["keys:read".into(), "keys:verify".into()]),
            vec!["keys:verify".into()],
        )),
        ..KeyChanges::default()
    };
    let audits = vec![
        audit("key.rename", None),
        audit("key.disable", None),
        audit("key.update", None),
    ];
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let into = Arc::clone(&seen);
    let updated = s
        .update_key(ada.id, k.id, changes, t(30), audits, move |k| {
            *into.lock() = k.as_ref().map(|k| k.disabled)
        })
        .await?
        .ok_or("the key is live")?;
    assert_eq!(*seen.lock(), Some(true));
    assert_eq!(
        (updated.name, updated.disabled, updated.updated_at),
        (None, true, t(30))
    );
    assert_eq!(
        updated.scopes,
        Some(vec!["keys:read".to_owned(), "keys:verify".to_owned()])
    );
    assert_eq!(updated.grants, ["keys:verify"]);
    assert_eq!(audit_count(s).await?, lines + 3);
    assert_eq!(feed(s).await?, [(k.id, FeedState::Disabled)]);

    let back = KeyChanges {
        disabled: Some(false),
        scopes: Some((None, Vec::new())),
        ..KeyChanges::default()
    };
    let updated = s
        .update_key(ada.id, k.id, back, t(31), Vec::new(), |_| {})
        .await?
        .ok_or("the key is live")?;
    assert_eq!(
        (updated.disabled, updated.scopes, updated.grants),
        (false, None, Vec::<String>::new())
    );
    assert_eq!(
        feed(s).await?,
        [(k.id, FeedState::Disabled), (k.id, FeedState::Enabled)]
    );
    let renamed = KeyChanges {
        name: Some(Some("again".into())),
        meta: Some(serde_json::json!({"env": "staging"})),
        ..KeyChanges::default()
    };
    let updated = s
        .update_key(ada.id, k.id, renamed, t(32), Vec::new(), |_| {})
        .await?
        .ok_or("the key is live")?;
    assert_eq!(
        (updated.name.as_deref(), updated.meta),
        (Some("again"), serde_json::json!({"env": "staging"}))
    );
    assert_eq!(feed(s).await?.len(), 2, "a rename is no feed entry");
    revoke(s, &k, t(33)).await?;
    let late = KeyChanges {
        disabled: Some(true),
        ..KeyChanges::default()
    };
    assert!(
        s.update_key(ada.id, k.id, late, t(34), Vec::new(), |_| {})
            .await?
            .is_none(),
        "revoked keys stay so"
    );
    Ok(())
}

async fn an_expiry_only_moves_earlier(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let never = add_key(s, ada.id, "never").await?;
    let by = |at| KeyChanges {
        expires_by: Some(at),
        ..KeyChanges::default()
    };
    let shortened = s
        .update_key(ada.id, never.id, by(t(100)), t(10), Vec::new(), |_| {})
        .await?;
    assert_eq!(
        shortened.and_then(|k| k.expires_at),
        Some(t(100)),
        "a key that never expired now does"
    );
    let later = s
        .update_key(ada.id, never.id, by(t(200)), t(11), Vec::new(), |_| {})
        .await?;
    assert_eq!(later.and_then(|k| k.expires_at), Some(t(100)), "never later");
    let earlier = s
        .update_key(ada.id, never.id, by(t(50)), t(12), Vec::new(), |_| {})
        .await?;
    assert_eq!(earlier.and_then(|k| k.expires_at), Some(t(50)));
    let (entries, _) = s.revocation_feed(0, 10).await?;
    let ends: Vec<_> = entries.iter().map(|e| (e.state, e.not_after)).collect();
    let shortened = FeedState::Shortened;
    assert_eq!(
        ends,
        [
            (shortened, Some(t(100))),
            (shortened, Some(t(100))),
            (shortened, Some(t(50)))
        ]
    );
    Ok(())
}

async fn revoking_is_once_and_only_for_the_owner(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let bob = add_user(s, "bob").await?;
    let k = add_key(s, ada.id, "k").await?;
    let as_bob = audit("key.revoke", None);
    assert!(
        s.revoke_key(bob.id, k.id, t(5), as_bob, |_| {}).await?.is_none(),
        "not bob's to revoke"
    );
    let calls = Calls::default();
    let counted = calls.clone();
    let lookup = s
        .revoke_key(ada.id, k.id, t(5), audit("key.revoke", None), move |l| {
            assert!(l.is_some());
            counted.hit();
        })
        .await?;
    assert_eq!(lookup, Some(k.digest.lookup()));
    assert_eq!(calls.count(), 1);
    assert!(revoke(s, &k, t(6)).await?.is_none(), "once");
    assert_eq!(feed(s).await?, [(k.id, FeedState::Revoked)]);
    Ok(())
}

async fn active_keys_are_the_live_unexpired_ones(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let live = add_key(s, ada.id, "live").await?;
    let mut scoped = key(ada.id, "scoped")?;
    scoped.scopes = Some(vec!["keys:read".into()]);
    scoped.grants = vec!["metrics:read".into()];
    scoped.expires_at = Some(t(100));
    let scoped = s.insert_key(scoped, false, audit("key.create", None), |_| {}).await?;
    let mut expired = key(ada.id, "expired")?;
    expired.expires_at = Some(t(10));
    s.insert_key(expired, false, audit("key.create", None), |_| {}).await?;
    let revoked = add_key(s, ada.id, "revoked").await?;
    revoke(s, &revoked, t(2)).await?;
    let disabled = add_key(s, ada.id, "disabled").await?;
    let off = KeyChanges {
        disabled: Some(true),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, disabled.id, off, t(3), Vec::new(), |_| {}).await?;

    let rows = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = Arc::clone(&rows);
    s.load_active_keys(t(10), move |row, expected| sink.lock().push((row, expected)))
        .await?;
    let rows = rows.lock();
    let ids: Vec<KeyId> = rows.iter().map(|(r, _)| r.id).collect();
    assert_eq!(
        ids.len(),
        3,
        "live, scoped and disabled; not expired (at `now`) nor revoked"
    );
    assert!(ids.contains(&live.id) && ids.contains(&scoped.id) && ids.contains(&disabled.id));
    assert!(
        rows.iter().all(|(_, expected)| *expected == 3),
        "the sink is told how many come"
    );
    for (row, _) in rows.iter() {
        assert_eq!(row.user_id, ada.id);
        if row.id == scoped.id {
            assert_eq!(row.lookup, scoped.digest.lookup());
            assert_eq!(
                (row.expires_at, &row.scopes, &row.grants),
                (Some(t(100)), &scoped.scopes, &scoped.grants)
            );
        }
        assert_eq!(row.disabled, row.id == disabled.id);
    }
    Ok(())
}

async fn rotation_shortens_the_old_key_and_stores_the_new_one_together(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let bob = add_user(s, "bob").await?;
    let old = add_key(s, ada.id, "old").await?;
    let mut new = key(ada.id, "new")?;
    new.created_at = t(40);
    new.updated_at = t(40);
    let audits = [audit("key.create", None), audit("key.rotate", None)];
    let lines = audit_count(s).await?;
    let (stored, before) = s
        .rotate_key(
            ada.id,
            old.id,
            t(100),
            Successor {
                key: new.clone(),
                made_from: AccessSeen::of(&old),
                presenting: None,
            },
            audits.clone(),
            |_| {},
        )
        .await?
        .ok_or("the old key is live")?;
    assert_eq!(
        (stored.id, before.id, before.expires_at),
        (new.id, old.id, Some(t(100)))
    );
    assert_eq!(before.updated_at, t(40), "at the new key's creation");
    assert_eq!(audit_count(s).await?, lines + 2);
    assert!(s.find_key(ada.id, new.id).await?.is_some());
    assert_eq!(feed(s).await?, [(old.id, FeedState::Shortened)]);

    let refused = key(ada.id, "refused")?;
    let not_bobs = s
        .rotate_key(
            bob.id,
            old.id,
            t(100),
            Successor {
                key: refused.clone(),
                made_from: AccessSeen::of(&old),
                presenting: None,
            },
            audits.clone(),
            |_| {},
        )
        .await?;
    assert!(not_bobs.is_none());
    revoke(s, &old, t(50)).await?;
    let gone = s
        .rotate_key(
            ada.id,
            old.id,
            t(100),
            Successor {
                key: refused.clone(),
                made_from: AccessSeen::of(&old),
                presenting: None,
            },
            audits,
            |_| {},
        )
        .await?;
    assert!(gone.is_none(), "a revoked key is not rotated");
    assert!(
        s.find_key(ada.id, refused.id).await?.is_none(),
        "and its replacement is not stored"
    );
    assert_eq!(audit_count(s).await?, lines + 3, "only the revocation's line since");
    Ok(())
}

async fn a_rotation_asked_with_a_key_needs_that_key_as_it_was_checked(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let target = add_key(s, ada.id, "target").await?;
    // Rotates `old`, asked with `asker` as it was checked (as these records hold it).
    let rotate = |old: &KeyRecord, asker: &KeyRecord, token: &'static str| {
        let (old, old_seen) = (old.id, AccessSeen::of(old));
        let (asker, seen) = (asker.id, AccessSeen::of(asker));
        async move {
            let new = key(ada.id, token)?;
            let id = new.id;
            let rotated = s
                .rotate_key(
                    ada.id,
                    old,
                    t(100),
                    Successor {
                        key: new,
                        made_from: old_seen,
                        presenting: Some((ada.id, asker, seen)),
                    },
                    [audit("key.create", None), audit("key.rotate", None)],
                    |_| {},
                )
                .await;
            let stored = s.find_key(ada.id, id).await?.is_some();
            Ok::<_, Box<dyn std::error::Error>>((rotated.map(|r| r.is_some()).map_err(|e| e.kind), stored))
        }
    };
    let refused = (Err(StoreErrorKind::AccessChanged), false);
    // Narrowed, disabled or rotated away since the rotation was checked.
    for (how, token) in [("scoped", "r1"), ("disabled", "r2"), ("rotated", "r5")] {
        let asker = add_key_then_narrow(s, ada.id, how).await?;
        assert_eq!(rotate(&target, &asker, token).await?, refused, "{how}");
    }
    // Revoked since.
    let revoked = add_key(s, ada.id, "revoked").await?;
    revoke(s, &revoked, t(3)).await?;
    assert_eq!(rotate(&target, &revoked, "r3").await?, refused, "revoked");
    // Expired by the rotation's write (made at t(1)), though as it was checked.
    let mut expiring = key(ada.id, "expiring")?;
    expiring.expires_at = Some(t(1));
    let expiring = s.insert_key(expiring, false, audit("key.create", None), |_| {}).await?;
    assert_eq!(rotate(&target, &expiring, "r7").await?, refused, "expired at the write");
    let still = s.find_key(ada.id, target.id).await?.ok_or("target")?;
    assert_eq!(still.expires_at, target.expires_at, "the target was not rotated");
    // As it was checked: rotated.
    let asker = add_key(s, ada.id, "asker").await?;
    assert_eq!(rotate(&target, &asker, "r4").await?, (Ok(true), true));
    // A key rotating itself: the presenting key is the old one, read twice in one write.
    let itself = add_key(s, ada.id, "itself").await?;
    assert_eq!(
        rotate(&itself, &itself, "r6").await?,
        (Ok(true), true),
        "a key rotates itself"
    );
    Ok(())
}

async fn key_uses_never_move_backwards(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let a = add_key(s, ada.id, "a").await?;
    let b = add_key(s, ada.id, "b").await?;
    s.record_key_usage(vec![(a.id, t(50)), (b.id, t(20))], Vec::new())
        .await?;
    s.record_key_usage(vec![(a.id, t(40)), (b.id, t(30))], Vec::new())
        .await?;
    s.record_key_usage(vec![(KeyId::generate()?, t(60))], Vec::new())
        .await?;
    s.record_key_usage(Vec::new(), Vec::new()).await?;
    let a = s.find_key(ada.id, a.id).await?.ok_or("a")?;
    let b = s.find_key(ada.id, b.id).await?.ok_or("b")?;
    assert_eq!(a.last_used_at, Some(t(50)), "an older use does not overwrite");
    assert_eq!(b.last_used_at, Some(t(30)));
    Ok(())
}

async fn a_key_made_by_a_key_is_stored_only_while_that_key_is_live_and_unlimited(db: &TestDb) -> Checked {
    let s = &db.store;
    let (ada, bob) = (add_user(s, "ada").await?, add_user(s, "bob").await?);
    let maker = add_key(s, ada.id, "maker").await?;
    let made = |token: &str| key(ada.id, token);
    // Made as checked against a maker that never expires (as `key` makes them).
    let store = |k: KeyRecord, maker: KeyId| async move {
        s.insert_key_guarded(
            k,
            false,
            KeyGuard::MakerUnlimited(maker, None),
            audit("key.create", None),
            |_| {},
        )
        .await
    };
    let child = made("child")?;
    assert_eq!(
        store(child.clone(), maker.id).await?.map(|k| k.id),
        Some(child.id),
        "stored"
    );
    assert!(s.find_key(ada.id, child.id).await?.is_some());
    // Another user's key makes nothing for ada; nor does a key that does not exist.
    let bobs = add_key(s, bob.id, "bob's").await?;
    assert!(store(made("c2")?, bobs.id).await?.is_none());
    assert!(store(made("c3")?, KeyId::generate()?).await?.is_none());
    // Nor a key rotated away since (its expiry moved, here to t(500)), nor an expired one.
    let rotated = add_key_then_narrow(s, ada.id, "rotated").await?;
    let refused = made("rotated")?;
    assert!(store(refused.clone(), rotated.id).await?.is_none(), "rotated since");
    let mut later = made("later")?;
    later.created_at = t(600);
    let as_checked = |k: KeyRecord| {
        s.insert_key_guarded(
            k,
            false,
            KeyGuard::MakerUnlimited(rotated.id, Some(t(500))),
            audit("key.create", None),
            |_| {},
        )
    };
    assert!(as_checked(later).await?.is_none(), "expired at the write");
    let within = made("within")?;
    assert!(as_checked(within).await?.is_some(), "as checked and within its grace");
    // The same of a maker read in the write (a limited or scoped maker's guard): one with
    // credits to carve from, expiring at t(500), makes a key at t(1) and none at t(600).
    let mut parent = key(ada.id, "parent")?;
    (parent.expires_at, parent.credits) = (Some(t(500)), Some(Credits::new(10, None)?));
    let parent = s.insert_key(parent, false, audit("key.create", None), |_| {}).await?;
    let seen = AccessSeen::of(&parent);
    for (guard, why) in [
        (KeyGuard::MadeBy(parent.id, seen.clone()), "made by"),
        (KeyGuard::CarvedFrom(parent.id, seen), "carved from"),
    ] {
        let guarded = |created_at: Timestamp| {
            let guard = guard.clone();
            async move {
                let mut k = made(why)?;
                (k.created_at, k.credits) = (created_at, Some(Credits::new(1, None)?));
                let stored = s.insert_key_guarded(k, false, guard, audit("key.create", None), |_| {});
                Ok::<_, Box<dyn std::error::Error>>(stored.await?.is_some())
            }
        };
        assert!(!guarded(t(600)).await?, "{why}: expired at the write");
        assert!(guarded(t(1)).await?, "{why}: before its expiry");
    }
    // Nor a key with limits or scopes of its own, a disabled one, or a revoked one.
    let scoped = add_key_then_narrow(s, ada.id, "scoped").await?;
    let limited = add_key_then_narrow(s, ada.id, "limited").await?;
    let disabled = add_key_then_narrow(s, ada.id, "disabled").await?;
    revoke(s, &maker, t(3)).await?;
    for (maker, why) in [
        (scoped.id, "scoped"),
        (limited.id, "limited"),
        (disabled.id, "disabled"),
        (maker.id, "revoked"),
    ] {
        let refused = made(why)?;
        assert!(store(refused.clone(), maker).await?.is_none(), "{why}");
        assert!(s.find_key(ada.id, refused.id).await?.is_none(), "{why}: nothing stored");
    }
    Ok(())
}

async fn usage_buckets_add_up_by_key_and_hour_and_are_swept(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let (a, b) = (add_key(s, ada.id, "a").await?, add_key(s, ada.id, "b").await?);
    let hour = |n: i64| Timestamp::from_millis(n * HOUR_MS);
    let bucket = |key: &KeyRecord, h: i64, outcome: Outcome, n: i64| UsageBucket {
        key_id: key.id,
        start: hour(h),
        counts: UsageCounts::one(outcome, n),
    };
    s.record_key_usage(
        Vec::new(),
        vec![
            bucket(&a, 10, Outcome::Valid, 5),
            bucket(&a, 12, Outcome::RateLimited, 2),
            bucket(&b, 10, Outcome::Valid, 7),
        ],
    )
    .await?;
    s.record_key_usage(
        vec![(a.id, hour(10))],
        vec![bucket(&a, 10, Outcome::Valid, 3), bucket(&a, 10, Outcome::Revoked, 1)],
    )
    .await?;
    let used = s.key_usage(a.id, hour(0), hour(100)).await?;
    let mut ten = UsageCounts::one(Outcome::Valid, 8);
    ten.add(&UsageCounts::one(Outcome::Revoked, 1));
    assert_eq!(
        used,
        vec![
            UsageBucket {
                key_id: a.id,
                start: hour(10),
                counts: ten
            },
            bucket(&a, 12, Outcome::RateLimited, 2),
        ],
        "counts add up in their bucket, oldest first"
    );
    assert_eq!(
        s.key_usage(a.id, hour(11), hour(12)).await?,
        Vec::new(),
        "`to` is exclusive"
    );
    let mut recent = s.valid_uses_since(hour(10)).await?;
    recent.sort();
    let mut expected = vec![(a.id, 8), (b.id, 7)];
    expected.sort();
    assert_eq!(recent, expected);
    assert_eq!(s.sweep_usage(hour(11)).await?, 2, "the buckets of hour 10 go");
    assert_eq!(
        s.key_usage(a.id, hour(0), hour(100)).await?,
        vec![bucket(&a, 12, Outcome::RateLimited, 2)]
    );
    assert!(s.valid_uses_since(hour(0)).await?.iter().all(|(_, n)| *n == 0));
    Ok(())
}

// ---- the change feed ----------------------------------------------------------------------

async fn the_revocation_feed_is_in_commit_order_with_cursors(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let mut keys = Vec::new();
    for n in 0..5 {
        keys.push(add_key(s, ada.id, &format!("k{n}")).await?);
    }
    assert!(feed(s).await?.is_empty(), "creating keys is no revocation");
    for k in keys.iter().rev() {
        revoke(s, k, t(9)).await?;
    }
    let (first, more) = s.revocation_feed(0, 2).await?;
    assert!(more);
    assert_eq!(
        first.iter().map(|e| e.id).collect::<Vec<_>>(),
        [keys[4].id, keys[3].id],
        "commit order"
    );
    assert!(
        first
            .iter()
            .all(|e| e.state == FeedState::Revoked && e.at == t(9) && e.not_after.is_none())
    );
    let cursor = first.last().map(|e| e.seq).ok_or("a cursor")?;
    let (rest, more) = s.revocation_feed(cursor, 10).await?;
    assert!(!more);
    assert_eq!(
        rest.iter().map(|e| e.id).collect::<Vec<_>>(),
        [keys[2].id, keys[1].id, keys[0].id]
    );
    assert!(rest.windows(2).all(|w| w[0].seq < w[1].seq), "positions increase");
    let last = rest.last().map(|e| e.seq).ok_or("a cursor")?;
    let (none, more) = s.revocation_feed(last, 10).await?;
    assert!(none.is_empty() && !more, "nothing after the last");
    let (exact, more) = s.revocation_feed(0, 5).await?;
    assert_eq!((exact.len(), more), (5, false), "a full page with nothing after it");
    Ok(())
}

async fn user_changes_put_each_of_their_keys_on_the_feed(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let a1 = add_key(s, ada.id, "a1").await?;
    let a2 = add_key(s, ada.id, "a2").await?;
    let mut short = key(ada.id, "short")?;
    short.expires_at = Some(t(5));
    s.insert_key(short, false, audit("key.create", None), |_| {}).await?;
    let off = KeyChanges {
        disabled: Some(true),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, a2.id, off, t(6), Vec::new(), |_| {}).await?;
    let disable = UserChanges {
        disabled: Some(true),
        bump_epoch: true,
        ..UserChanges::default()
    };
    s.update_user(ada.id, disable, t(10), audit("user.update", None), |_| {})
        .await?;
    let enable = UserChanges {
        disabled: Some(false),
        ..UserChanges::default()
    };
    s.update_user(ada.id, enable, t(11), audit("user.update", None), |_| {})
        .await?;
    let same = UserChanges {
        role: Some(Role::Admin),
        ..UserChanges::default()
    };
    s.update_user(ada.id, same, t(12), audit("user.update", None), |_| {})
        .await?;
    let expected = [
        (a2.id, FeedState::Disabled),
        (a1.id, FeedState::Disabled),
        (a2.id, FeedState::Disabled),
        (a1.id, FeedState::Enabled),
        (a2.id, FeedState::Disabled),
    ];
    assert_eq!(
        feed(s).await?,
        expected,
        "each live, unexpired key in key order, with its effective state; no entry when the state stays"
    );
    Ok(())
}

async fn the_older_revocation_list_is_by_time(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let a = add_key(s, ada.id, "a").await?;
    let b = add_key(s, ada.id, "b").await?;
    let c = add_key(s, ada.id, "c").await?;
    revoke(s, &b, t(20)).await?;
    revoke(s, &a, t(10)).await?;
    revoke(s, &c, t(30)).await?;
    let all = s.revocations_since(t(0), 10).await?;
    assert_eq!(
        all,
        [(a.id, t(10)), (b.id, t(20)), (c.id, t(30))],
        "by time, not by commit"
    );
    assert_eq!(
        s.revocations_since(t(20), 10).await?,
        [(b.id, t(20)), (c.id, t(30))],
        "`since` included"
    );
    assert_eq!(s.revocations_since(t(0), 1).await?, [(a.id, t(10))]);
    Ok(())
}

/// Writes sent at once share transactions (group commit); each runs in its own savepoint,
/// so one that fails fails alone and the others commit.
async fn concurrent_writes_commit_together_and_a_failing_one_alone_fails(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..40 {
        let store = s.clone();
        // Every tenth one reuses a digest: one of each pair must fail.
        let token = if n % 10 == 9 {
            format!("k{}", n - 1)
        } else {
            format!("k{n}")
        };
        let k = key(ada.id, &token)?;
        writes.spawn(async move { store.insert_key(k, false, audit("key.create", None), |_| {}).await });
    }
    let (mut stored, mut conflicts) = (0, 0);
    while let Some(done) = writes.join_next().await {
        match done? {
            Ok(_) => stored += 1,
            Err(e) if e.kind == StoreErrorKind::Conflict => conflicts += 1,
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!((stored, conflicts), (36, 4));
    let page = s.list_keys(Some(ada.id), None, 100).await?.ok_or("a page")?;
    assert_eq!(page.total, 36);
    assert_eq!(audit_count(s).await?, 1 + 36, "the failed writes left no audit line");
    Ok(())
}

// ---- audit ----------------------------------------------------------------------------------

async fn audit_lines_keep_the_target_name_of_their_time(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let k = add_key(s, ada.id, "k").await?;
    let rename = KeyChanges {
        name: Some(Some("renamed".into())),
        ..KeyChanges::default()
    };
    let line = audit("key.rename", Some(("key", k.id.to_string()))).with_detail("name");
    s.update_key(ada.id, k.id, rename, t(5), vec![line.clone()], |_| {})
        .await?;
    let page = s.list_audit(None, 10).await?;
    let names: Vec<(&str, Option<&str>)> = page
        .items
        .iter()
        .map(|l| (l.record.action, l.target_name.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("key.rename", Some("renamed")),
            ("key.create", Some("key k")),
            ("user.create", Some("ada"))
        ],
        "newest first, each with the name its target had when written"
    );
    assert_eq!(page.items[0].record, line, "read back as written");
    assert!(page.items.windows(2).all(|w| w[0].seq > w[1].seq));
    Ok(())
}

async fn audit_lines_on_their_own(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let first = s
        .record_audit(audit("login.failed", None).with_detail("1 failed sign-in"))
        .await?;
    let second = s
        .record_audit(audit("login.failed", Some(("user", ada.id.to_string()))))
        .await?;
    assert!(second > first);
    s.set_audit_detail(first, "3 failed sign-ins".into()).await?;
    s.set_audit_detail(i64::MAX, "no such line".into()).await?;
    let page = s.list_audit(None, 2).await?;
    assert_eq!((page.total, page.more), (3, true));
    assert_eq!(page.items.iter().map(|l| l.seq).collect::<Vec<_>>(), [second, first]);
    assert_eq!(page.items[1].record.detail.as_deref(), Some("3 failed sign-ins"));
    assert_eq!(page.items[0].target_name.as_deref(), Some("ada"));
    let older = s.list_audit(Some(first), 10).await?;
    assert_eq!((older.items.len(), older.more), (1, false));
    assert_eq!(older.items[0].record.action, "user.create");
    let mut other = audit("key.create", None);
    other.action = "made.up";
    s.record_audit(other).await?;
    let newest = s.list_audit(None, 1).await?;
    assert_eq!(
        newest.items[0].record.action, "other",
        "actions outside the set read as other"
    );

    assert!(!s.has_started_a_session(ada.id).await?);
    let mut start = audit("session.start", Some(("user", ada.id.to_string())));
    start.actor_id = Some(ada.id);
    s.record_audit(start).await?;
    assert!(s.has_started_a_session(ada.id).await?);
    Ok(())
}

// ---- sessions ---------------------------------------------------------------------------------

async fn sessions_are_stored_found_and_ended(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let session = |until| SessionRecord {
        user_id: ada.id,
        token_epoch: 3,
        expires_at: until,
    };
    let lines = audit_count(s).await?;
    s.insert_session([1; 32], session(t(100)), t(10), audit("session.start", None))
        .await?;
    s.insert_session([2; 32], session(t(20)), t(10), audit("session.start", None))
        .await?;
    assert_eq!(s.find_session([1; 32]).await?, Some(session(t(100))));
    assert_eq!(
        s.find_session([2; 32]).await?,
        Some(session(t(20))),
        "found expired or not"
    );
    assert_eq!(s.find_session([3; 32]).await?, None);
    s.insert_session([3; 32], session(t(100)), t(20), audit("session.start", None))
        .await?;
    assert_eq!(
        s.find_session([2; 32]).await?,
        None,
        "expired sessions go at the next sign-in"
    );
    assert!(s.delete_session([1; 32], audit("session.end", None)).await?);
    assert!(!s.delete_session([1; 32], audit("session.end", None)).await?, "once");
    assert_eq!(s.find_session([1; 32]).await?, None);
    assert_eq!(audit_count(s).await?, lines + 4);
    let duplicate = s
        .insert_session([3; 32], session(t(100)), t(21), audit("session.start", None))
        .await;
    assert_eq!(duplicate.map_err(|e| e.kind), Err(StoreErrorKind::Conflict));
    Ok(())
}

// ---- other processes --------------------------------------------------------------------------

async fn another_process_sees_every_change(db: &TestDb) -> Checked {
    let here = &db.store;
    let there = db.another_process(false).await?;
    let ada = add_user(here, "ada").await?;
    let k = add_key(here, ada.id, "k").await?;
    // Its own writes are already in its view: skipped (SQLite), or read back as they are now
    // (PostgreSQL, where a node's read of another's change made just before one of its own
    // must not be the last word).
    let own = here.poll_changes(t(5)).await?;
    assert!(
        own.is_empty()
            || matches!(&own[..], [Change::User(u), Change::KeyActive(row)] if u.id == ada.id && row.id == k.id),
        "its own writes: skipped, or as they are now: {own:?}"
    );
    let seen = there.poll_changes(t(5)).await?;
    assert!(matches!(&seen[..], [Change::User(u), Change::KeyActive(row)] if u.id == ada.id && row.id == k.id));
    assert!(there.poll_changes(t(5)).await?.is_empty(), "each change once");

    revoke(&there, &k, t(6)).await?;
    let disable = UserChanges {
        disabled: Some(true),
        ..UserChanges::default()
    };
    there
        .update_user(ada.id, disable, t(7), audit("user.update", None), |_| {})
        .await?;
    let mut expiring = key(ada.id, "expiring")?;
    expiring.expires_at = Some(t(8));
    let expiring = there
        .insert_key(expiring, false, audit("key.create", None), |_| {})
        .await?;
    let seen = here.poll_changes(t(9)).await?;
    let lookup = k.digest.lookup();
    let gone = expiring.digest.lookup();
    assert!(
        matches!(&seen[..], [Change::KeyGone(a), Change::User(u), Change::KeyGone(b)] if *a == lookup && u.disabled && *b == gone),
        "a revoked key, the user as now, and a key expired by `now`: {seen:?}"
    );
    Ok(())
}

async fn a_read_only_store_reads_and_refuses_writes(db: &TestDb) -> Checked {
    let ada = add_user(&db.store, "ada").await?;
    let reader = db.another_process(true).await?;
    assert_eq!(
        reader.load_users().await?.iter().map(|u| u.id).collect::<Vec<_>>(),
        [ada.id]
    );
    let refused = reader
        .insert_user(user("bob")?, audit("user.create", None), || {})
        .await;
    assert_eq!(refused.map_err(|e| e.kind), Err(StoreErrorKind::ReadOnly));
    let refused = reader
        .record_key_usage(vec![(KeyId::generate()?, t(1))], Vec::new())
        .await;
    assert_eq!(refused.map_err(|e| e.kind), Err(StoreErrorKind::ReadOnly));
    assert_eq!(db.store.count_users().await?, 1);
    Ok(())
}

// ---- rate limits and credits -----------------------------------------------------------

fn limits(list: &[(&str, u64, u64)]) -> Result<RateLimits, Box<dyn std::error::Error>> {
    let list = list
        .iter()
        .map(|(name, n, secs)| RateLimit::new((*name).to_owned(), *n, GivenDuration::Text(format!("{secs}s")), *secs))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RateLimits::parse(list)?)
}

async fn add_limited_key(
    s: &Store,
    owner: UserId,
    token: &str,
    credits: Option<Credits>,
) -> Result<KeyRecord, Box<dyn std::error::Error>> {
    let mut k = key(owner, token)?;
    k.ratelimits = limits(&[("requests", 100, 60)])?;
    k.credits = credits;
    k.credits_period = credits
        .and_then(|c| c.refill)
        .map(|r| r.interval.period_start(k.created_at));
    let audit = audit("key.create", Some(("key", k.id.to_string())));
    Ok(s.insert_key(k, false, audit, |_| {}).await?)
}

/// Limits and credits go in with the key, come back from every read (the view's rows too),
/// and a change replaces, adds to or clears them.
async fn limits_are_stored_with_the_key_changed_and_cleared(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let credits = Credits::new(
        500,
        Some(Refill {
            interval: RefillInterval::Monthly,
            amount: 1000,
        }),
    )?;
    let k = add_limited_key(s, ada.id, "k", Some(credits)).await?;
    let found = s.find_key(ada.id, k.id).await?.ok_or("stored")?;
    assert_eq!(found.ratelimits, limits(&[("requests", 100, 60)])?);
    assert_eq!(found.credits, Some(credits));
    assert_eq!(found.credits_period, k.credits_period);
    let (by_digest, _) = s.find_key_by_digest(KeyDigest::of("k")).await?.ok_or("by digest")?;
    assert_eq!(by_digest.credits, Some(credits));
    let rows = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let into = Arc::clone(&rows);
    s.load_active_keys(t(2), move |row, _| into.lock().push(row)).await?;
    let row = rows.lock().pop().ok_or("active")?;
    assert_eq!((row.ratelimits.as_slice().len(), row.credits), (1, Some(credits)));

    let add = KeyChanges {
        credits: Some(CreditsChange::Add(250)),
        ..KeyChanges::default()
    };
    let added = s
        .update_key(ada.id, k.id, add, t(3), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    assert_eq!(added.credits.map(|c| c.remaining), Some(750));
    assert_eq!(added.ratelimits, k.ratelimits, "limits untouched");

    let replace = KeyChanges {
        ratelimits: Some(limits(&[("burst", 5, 1), ("daily", 1000, 86_400)])?),
        credits: Some(CreditsChange::Set(Some(Credits::new(7, None)?))),
        ..KeyChanges::default()
    };
    let replaced = s
        .update_key(ada.id, k.id, replace, t(4), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    assert_eq!(replaced.ratelimits.as_slice().len(), 2);
    assert_eq!(
        replaced.credits,
        Some(Credits {
            generation: 1,
            ..Credits::new(7, None)?
        }),
        "set anew: the next generation"
    );
    assert_eq!(
        added.credits.map(|c| c.generation),
        Some(0),
        "an addition keeps the generation"
    );

    let clear = KeyChanges {
        ratelimits: Some(RateLimits::none()),
        credits: Some(CreditsChange::Set(None)),
        ..KeyChanges::default()
    };
    let cleared = s
        .update_key(ada.id, k.id, clear, t(5), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    assert!(cleared.ratelimits.is_empty());
    assert_eq!(cleared.credits, None);
    let add = KeyChanges {
        credits: Some(CreditsChange::Add(5)),
        ..KeyChanges::default()
    };
    let still = s
        .update_key(ada.id, k.id, add, t(6), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    assert_eq!(still.credits, None, "adding to an unlimited key leaves it unlimited");
    Ok(())
}

/// Reservations take blocks from the balance, smaller as it nears zero, never more than is
/// there; an unlimited, revoked or unknown key has nothing to reserve.
async fn credits_are_reserved_in_blocks_never_past_the_balance(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let k = add_limited_key(s, ada.id, "k", Some(Credits::new(20, None)?)).await?;
    let mut got = 0;
    let mut blocks = Vec::new();
    loop {
        let r = s
            .reserve_credits(Payer::Key(k.id), 1, 64, t(3))
            .await?
            .ok_or("limited")?;
        if r.granted == 0 {
            assert_eq!(r.left, 0);
            break;
        }
        got += r.granted;
        assert_eq!(r.left, 20 - got);
        blocks.push(r.granted);
    }
    assert_eq!(got, 20);
    assert_eq!(blocks.first(), Some(&2), "an eighth of 20");
    assert_eq!(blocks.last(), Some(&1));
    let stored = s.find_key(ada.id, k.id).await?.ok_or("live")?;
    assert_eq!(stored.credits.map(|c| c.remaining), Some(0));

    let big = add_limited_key(s, ada.id, "big", Some(Credits::new(10, None)?)).await?;
    let r = s.reserve_credits(Payer::Key(big.id), 11, 64, t(3)).await?;
    assert_eq!(
        r,
        Some(Reservation {
            granted: 0,
            left: 10,
            period: None,
            generation: 0,
        }),
        "a need past the balance takes nothing"
    );
    let r = s.reserve_credits(Payer::Key(big.id), 6, 64, t(3)).await?;
    assert_eq!(
        r,
        Some(Reservation {
            granted: 6,
            left: 4,
            period: None,
            generation: 0,
        })
    );

    let unlimited = add_key(s, ada.id, "free").await?;
    assert_eq!(s.reserve_credits(Payer::Key(unlimited.id), 1, 64, t(3)).await?, None);
    revoke(s, &big, t(4)).await?;
    assert_eq!(s.reserve_credits(Payer::Key(big.id), 1, 64, t(5)).await?, None);
    Ok(())
}

/// Two processes (nodes) reserving at once take no more than the balance between them.
async fn concurrent_reservations_never_take_more_than_the_balance(db: &TestDb) -> Checked {
    let s = &db.store;
    let other = db.another_process(false).await?;
    let ada = add_user(s, "ada").await?;
    let k = add_limited_key(s, ada.id, "k", Some(Credits::new(300, None)?)).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.spawn(async move {
            let mut got = 0u64;
            loop {
                match store.reserve_credits(Payer::Key(k.id), 1, 8, t(3)).await {
                    Ok(Some(r)) if r.granted > 0 => got += r.granted,
                    Ok(_) => return Ok(got),
                    Err(e) => return Err(e),
                }
            }
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    assert_eq!(total, 300);
    Ok(())
}

/// A balance with a refill is refilled at the first reservation in a new period (UTC),
/// however long the key was idle; the period is recorded.
async fn a_refill_restores_the_balance_at_the_period_start(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let refill = Refill {
        interval: RefillInterval::Daily,
        amount: 50,
    };
    let k = add_limited_key(s, ada.id, "k", Some(Credits::new(3, Some(refill))?)).await?;
    let r = s
        .reserve_credits(Payer::Key(k.id), 3, 64, t(3))
        .await?
        .ok_or("limited")?;
    assert_eq!((r.granted, r.left), (3, 0));
    assert_eq!(
        s.reserve_credits(Payer::Key(k.id), 1, 64, t(3))
            .await?
            .map(|r| r.granted),
        Some(0)
    );
    // Three days later (idle meanwhile).
    let later = Timestamp::from_millis(t(3).millis() + 3 * 86_400_000);
    let r = s
        .reserve_credits(Payer::Key(k.id), 1, 64, later)
        .await?
        .ok_or("limited")?;
    assert_eq!((r.granted, r.left), (6, 44), "refilled to 50, an eighth taken");
    assert_eq!(r.period, Some(RefillInterval::Daily.period_start(later)));
    let stored = s.find_key(ada.id, k.id).await?.ok_or("live")?;
    assert_eq!(stored.credits_period, r.period);
    Ok(())
}

/// An owner's set (`SetAtMost`) is the least of what was asked and the balance at the
/// write: credits reserved (spent) between the owner's check and the write never make it a
/// raise. A balance due a refill takes what was asked.
async fn an_owners_set_never_raises_the_balance_at_the_write(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let k = add_limited_key(s, ada.id, "k", Some(Credits::new(100, None)?)).await?;
    let set_at_most = |n: u64, since: Option<Timestamp>| -> Result<KeyChanges, Box<dyn std::error::Error>> {
        Ok(KeyChanges {
            credits: Some(CreditsChange::SetAtMost {
                credits: Credits::new(n, None)?,
                since,
            }),
            ..KeyChanges::default()
        })
    };
    // The owner saw 100 and asks for 95; meanwhile 40 were reserved (spent).
    s.reserve_credits(Payer::Key(k.id), 40, 64, t(2)).await?;
    let set = s
        .update_key(ada.id, k.id, set_at_most(95, None)?, t(3), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    let credits = set.credits.ok_or("limited")?;
    assert_eq!(
        (credits.remaining, credits.generation),
        (60, 1),
        "never above the balance"
    );
    let set = s
        .update_key(ada.id, k.id, set_at_most(10, None)?, t(4), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    assert_eq!(set.credits.map(|c| c.remaining), Some(10), "lowered");

    // A daily refill of 50, spent to 0 yesterday: today's balance is the refill's.
    let refill = Refill {
        interval: RefillInterval::Daily,
        amount: 50,
    };
    let r = add_limited_key(s, ada.id, "r", Some(Credits::new(2, Some(refill))?)).await?;
    s.reserve_credits(Payer::Key(r.id), 2, 64, t(2)).await?;
    let tomorrow = Timestamp::from_millis(t(2).millis() + 86_400_000);
    let today = Some(RefillInterval::Daily.period_start(tomorrow));
    let changes = KeyChanges {
        credits: Some(CreditsChange::SetAtMost {
            credits: Credits::new(30, Some(refill))?,
            since: today,
        }),
        ..KeyChanges::default()
    };
    let set = s
        .update_key(ada.id, r.id, changes, tomorrow, Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    assert_eq!(set.credits.map(|c| c.remaining), Some(30));
    Ok(())
}

/// A change written only while the scopes, grants and limits it was checked against stand
/// (`access_seen`, an owner's change): refused, nothing written, once an admin's change moved
/// them (a refill removed, a rate limit lowered, a grant withdrawn); written while only the
/// balance moved.
async fn a_change_checked_against_access_changed_since_is_refused(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let refill = Refill {
        interval: RefillInterval::Daily,
        amount: 50,
    };
    let k = add_limited_key(s, ada.id, "k", Some(Credits::new(50, Some(refill))?)).await?;
    let seen = AccessSeen::of(&k);
    // The owner asks for 40 with the refill, checked against what they read.
    let owners = || -> Result<KeyChanges, Box<dyn std::error::Error>> {
        Ok(KeyChanges {
            credits: Some(CreditsChange::SetAtMost {
                credits: Credits::new(40, Some(refill))?,
                since: None,
            }),
            access_seen: Some(seen.clone()),
            ..KeyChanges::default()
        })
    };
    // Only the balance moved (a spend, an addition): still written.
    s.reserve_credits(Payer::Key(k.id), 5, 64, t(2)).await?;
    let added = KeyChanges {
        credits: Some(CreditsChange::Add(10)),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, k.id, added, t(2), Vec::new(), |_| {}).await?;
    let set = s
        .update_key(ada.id, k.id, owners()?, t(3), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    assert_eq!(set.credits.map(|c| (c.remaining, c.refill)), Some((40, Some(refill))));

    // An admin removes the refill: the owner's change, checked before, is refused.
    let seen_now = AccessSeen::of(&set);
    let admins = KeyChanges {
        credits: Some(CreditsChange::Set(Some(Credits::new(1000, None)?))),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, k.id, admins, t(4), Vec::new(), |_| {}).await?;
    let stale = KeyChanges {
        credits: Some(CreditsChange::SetAtMost {
            credits: Credits::new(10, Some(refill))?,
            since: None,
        }),
        access_seen: Some(seen_now),
        ..KeyChanges::default()
    };
    let refused = s.update_key(ada.id, k.id, stale, t(5), Vec::new(), |_| {}).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind),
        Err(StoreErrorKind::AccessChanged)
    );
    let stored = s.find_key(ada.id, k.id).await?.ok_or("live")?;
    assert_eq!(
        stored.credits.map(|c| (c.remaining, c.refill)),
        Some((1000, None)),
        "nothing written"
    );

    // An admin lowers a rate limit: an owner's limit checked against the old one is refused.
    let seen_then = AccessSeen::of(&stored);
    let lowered = KeyChanges {
        ratelimits: Some(limits(&[("requests", 10, 60)])?),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, k.id, lowered, t(6), Vec::new(), |_| {}).await?;
    let stale = KeyChanges {
        ratelimits: Some(limits(&[("requests", 90, 60)])?),
        access_seen: Some(seen_then),
        ..KeyChanges::default()
    };
    let refused = s.update_key(ada.id, k.id, stale, t(7), Vec::new(), |_| {}).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind),
        Err(StoreErrorKind::AccessChanged)
    );
    let stored = s.find_key(ada.id, k.id).await?.ok_or("live")?;
    assert_eq!(stored.ratelimits, limits(&[("requests", 10, 60)])?, "nothing written");

    // An admin withdraws a granted scope: an owner's change of scopes checked against the
    // grant is refused, and the grant stays withdrawn.
    let granted = KeyChanges {
        scopes: Some((Some(vec!["keys:verify".into()]), vec!["keys:verify".into()])),
        ..KeyChanges::default()
    };
    let granted = s
        .update_key(ada.id, k.id, granted, t(8), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    let withdrawn = KeyChanges {
        scopes: Some((Some(vec!["keys:read".into()]), Vec::new())),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, k.id, withdrawn, t(9), Vec::new(), |_| {}).await?;
    let stale = KeyChanges {
        scopes: Some((Some(vec!["keys:verify".into()]), vec!["keys:verify".into()])),
        access_seen: Some(AccessSeen::of(&granted)),
        ..KeyChanges::default()
    };
    let refused = s.update_key(ada.id, k.id, stale, t(10), Vec::new(), |_| {}).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind),
        Err(StoreErrorKind::AccessChanged)
    );
    let stored = s.find_key(ada.id, k.id).await?.ok_or("live")?;
    assert_eq!(stored.grants, Vec::<String>::new(), "nothing written");
    Ok(())
}

/// A block given back at a graceful stop goes back to its balance, but not to credits set
/// anew since it was reserved (another generation), nor to a balance refilled since (another
/// period), nor past the most a balance may hold.
async fn unspent_blocks_go_back_only_to_their_generation_and_period(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let k = add_limited_key(s, ada.id, "k", Some(Credits::new(500, None)?)).await?;
    let r = s
        .reserve_credits(Payer::Key(k.id), 1, 64, t(2))
        .await?
        .ok_or("limited")?;
    assert_eq!((r.granted, r.left, r.generation), (62, 438, 0));
    let held = |payer, unspent, r: Reservation| HeldBlock {
        payer,
        unspent,
        generation: r.generation,
        period: r.period,
    };
    assert_eq!(s.return_credits(vec![held(Payer::Key(k.id), 52, r)]).await?, 52);
    let balance = |id| async move {
        Ok::<_, Box<dyn std::error::Error>>(
            s.find_key(ada.id, id)
                .await?
                .and_then(|k| k.credits)
                .map(|c| c.remaining),
        )
    };
    assert_eq!(balance(k.id).await?, Some(490), "500 less the 10 spent");

    // Set anew after the reservation: the old block is void.
    let r = s
        .reserve_credits(Payer::Key(k.id), 1, 64, t(3))
        .await?
        .ok_or("limited")?;
    let set = KeyChanges {
        credits: Some(CreditsChange::Set(Some(Credits::new(100, None)?))),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, k.id, set, t(4), Vec::new(), |_| {}).await?;
    assert_eq!(s.return_credits(vec![held(Payer::Key(k.id), r.granted, r)]).await?, 0);
    assert_eq!(balance(k.id).await?, Some(100));
    // An addition is no set: a block reserved before it still goes back.
    let r = s
        .reserve_credits(Payer::Key(k.id), 1, 64, t(5))
        .await?
        .ok_or("limited")?;
    let add = KeyChanges {
        credits: Some(CreditsChange::Add(5)),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, k.id, add, t(6), Vec::new(), |_| {}).await?;
    assert_eq!(
        s.return_credits(vec![held(Payer::Key(k.id), r.granted, r)]).await?,
        r.granted
    );
    assert_eq!(balance(k.id).await?, Some(105));

    // Refilled since: the block of yesterday is not added to today's balance.
    let refill = Refill {
        interval: RefillInterval::Daily,
        amount: 50,
    };
    let d = add_limited_key(s, ada.id, "d", Some(Credits::new(40, Some(refill))?)).await?;
    let yesterday = s
        .reserve_credits(Payer::Key(d.id), 1, 64, t(2))
        .await?
        .ok_or("limited")?;
    let tomorrow = Timestamp::from_millis(t(2).millis() + 86_400_000);
    let today = s
        .reserve_credits(Payer::Key(d.id), 1, 64, tomorrow)
        .await?
        .ok_or("limited")?;
    assert_eq!(today.left, 44, "refilled to 50, an eighth taken");
    let back = s
        .return_credits(vec![
            held(Payer::Key(d.id), yesterday.granted, yesterday),
            held(Payer::Key(d.id), today.granted, today),
        ])
        .await?;
    assert_eq!(back, today.granted);
    assert_eq!(balance(d.id).await?, Some(50));

    // Never past the most a balance may hold.
    let m = add_limited_key(s, ada.id, "m", Some(Credits::new(MAX_CREDITS, None)?)).await?;
    let r = s
        .reserve_credits(Payer::Key(m.id), 1, 64, t(2))
        .await?
        .ok_or("limited")?;
    let add = KeyChanges {
        credits: Some(CreditsChange::Add(r.granted)),
        ..KeyChanges::default()
    };
    s.update_key(ada.id, m.id, add, t(3), Vec::new(), |_| {}).await?;
    s.return_credits(vec![held(Payer::Key(m.id), r.granted, r)]).await?;
    assert_eq!(balance(m.id).await?, Some(MAX_CREDITS));
    Ok(())
}

/// A key made by a key with credits takes its credits out of the parent's balance in the
/// same write; a balance that cannot cover them stores nothing.
async fn a_childs_credits_are_carved_out_of_its_parents_balance(db: &TestDb) -> Checked {
    let s = &db.store;
    // Stores `k` made by a key, as `guard` says.
    let guarded =
        |k: KeyRecord, guard: KeyGuard| s.insert_key_guarded(k, false, guard, audit("key.create", None), |_| {});
    let ada = add_user(s, "ada").await?;
    let parent = add_limited_key(s, ada.id, "parent", Some(Credits::new(100, None)?)).await?;
    let child = |token: &str, n: u64| -> Result<KeyRecord, Box<dyn std::error::Error>> {
        let mut k = key(ada.id, token)?;
        k.credits = Some(Credits::new(n, None)?);
        Ok(k)
    };
    let made = guarded(
        child("a", 60)?,
        KeyGuard::CarvedFrom(parent.id, AccessSeen::of(&parent)),
    )
    .await?
    .ok_or("carved")?;
    assert_eq!(made.credits.map(|c| c.remaining), Some(60));
    let too_many = child("b", 41)?;
    let refused_id = too_many.id;
    let refused = guarded(too_many, KeyGuard::CarvedFrom(parent.id, AccessSeen::of(&parent))).await?;
    assert!(refused.is_none());
    assert!(s.find_key(ada.id, refused_id).await?.is_none(), "nothing stored");
    guarded(
        child("c", 40)?,
        KeyGuard::CarvedFrom(parent.id, AccessSeen::of(&parent)),
    )
    .await?
    .ok_or("carved")?;
    let left = s.find_key(ada.id, parent.id).await?.and_then(|k| k.credits);
    assert_eq!(left.map(|c| c.remaining), Some(0));

    // A maker whose limits or scopes an admin changed after the new key was checked against
    // them makes nothing; one revoked or disabled since makes nothing either.
    let maker = add_limited_key(s, ada.id, "maker", None).await?;
    let seen = AccessSeen::of(&maker);
    let lowered = KeyChanges {
        ratelimits: Some(limits(&[("requests", 10, 60)])?),
        ..KeyChanges::default()
    };
    let lowered = s
        .update_key(ada.id, maker.id, lowered, t(3), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    let late = key(ada.id, "late")?;
    let late_id = late.id;
    let refused = guarded(late, KeyGuard::MadeBy(maker.id, seen)).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind),
        Err(StoreErrorKind::AccessChanged)
    );
    assert!(s.find_key(ada.id, late_id).await?.is_none(), "nothing stored");
    let made = guarded(
        key(ada.id, "in time")?,
        KeyGuard::MadeBy(maker.id, AccessSeen::of(&lowered)),
    )
    .await?;
    assert!(made.is_some(), "made while the maker is as it was checked");
    s.update_key(ada.id, maker.id, narrowing("disabled")?, t(4), Vec::new(), |_| {})
        .await?;
    let made = guarded(
        key(ada.id, "disabled")?,
        KeyGuard::MadeBy(maker.id, AccessSeen::of(&lowered)),
    )
    .await?;
    assert!(made.is_none(), "a disabled maker makes nothing");
    let rich = add_limited_key(s, ada.id, "rich", Some(Credits::new(100, None)?)).await?;
    let rich_seen = AccessSeen::of(&rich);
    s.update_key(ada.id, rich.id, narrowing("disabled")?, t(5), Vec::new(), |_| {})
        .await?;
    let carved = guarded(child("d", 10)?, KeyGuard::CarvedFrom(rich.id, rich_seen)).await?;
    assert!(carved.is_none(), "a disabled parent carves nothing");
    let left = s.find_key(ada.id, rich.id).await?.and_then(|k| k.credits);
    assert_eq!(left.map(|c| c.remaining), Some(100));
    Ok(())
}

/// Rotation moves the balance to the new key; the old one keeps none.
async fn rotation_moves_the_credits_to_the_new_key(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let old = add_limited_key(s, ada.id, "old", Some(Credits::new(100, None)?)).await?;
    s.reserve_credits(Payer::Key(old.id), 40, 64, t(2)).await?;
    let mut new = key(ada.id, "new")?;
    new.ratelimits = old.ratelimits.clone();
    new.credits = Some(Credits::new(100, None)?);
    let audits = [audit("key.create", None), audit("key.rotate", None)];
    let (new, old) = s
        .rotate_key(
            ada.id,
            old.id,
            t(10),
            Successor {
                key: new,
                made_from: AccessSeen::of(&old),
                presenting: None,
            },
            audits,
            |_| {},
        )
        .await?
        .ok_or("rotated")?;
    assert_eq!(
        new.credits.map(|c| c.remaining),
        Some(60),
        "what was left, not what was asked"
    );
    assert_eq!(old.credits.map(|c| c.remaining), Some(0));
    assert_eq!(new.ratelimits, old.ratelimits);

    // A rotation prepared before an admin lowered a limit and removed the credits' refill is
    // refused, nothing written; prepared after, it carries them. The old key keeps no refill.
    let refill = Refill {
        interval: RefillInterval::Daily,
        amount: 50,
    };
    let before = add_limited_key(s, ada.id, "before", Some(Credits::new(50, Some(refill))?)).await?;
    let successor = |of: &KeyRecord, token: &str| -> Result<KeyRecord, Box<dyn std::error::Error>> {
        let mut k = key(ada.id, token)?;
        k.ratelimits = of.ratelimits.clone();
        k.credits = of.credits;
        Ok(k)
    };
    let stale = successor(&before, "stale")?;
    let admins = KeyChanges {
        ratelimits: Some(limits(&[("requests", 10, 60)])?),
        credits: Some(CreditsChange::Set(Some(Credits::new(20, Some(refill))?))),
        ..KeyChanges::default()
    };
    let changed = s
        .update_key(ada.id, before.id, admins, t(3), Vec::new(), |_| {})
        .await?
        .ok_or("live")?;
    let audits = || [audit("key.create", None), audit("key.rotate", None)];
    let refused = s
        .rotate_key(
            ada.id,
            before.id,
            t(10),
            Successor {
                key: stale,
                made_from: AccessSeen::of(&before),
                presenting: None,
            },
            audits(),
            |_| {},
        )
        .await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind),
        Err(StoreErrorKind::AccessChanged)
    );
    let kept = s.find_key(ada.id, before.id).await?.ok_or("live")?;
    assert_eq!(kept.credits.map(|c| c.remaining), Some(20), "nothing written");
    let (rotated, old) = s
        .rotate_key(
            ada.id,
            before.id,
            t(10),
            Successor {
                key: successor(&changed, "fresh")?,
                made_from: AccessSeen::of(&changed),
                presenting: None,
            },
            audits(),
            |_| {},
        )
        .await?
        .ok_or("rotated")?;
    assert_eq!(rotated.ratelimits, limits(&[("requests", 10, 60)])?);
    assert_eq!(
        rotated.credits.map(|c| (c.remaining, c.refill)),
        Some((20, Some(refill)))
    );
    assert_eq!(
        old.credits.map(|c| (c.remaining, c.refill)),
        Some((0, None)),
        "no refill left"
    );
    Ok(())
}

fn imported(owner: UserId, plaintext: &str) -> Result<KeyRecord, Box<dyn std::error::Error>> {
    let mut k = key(owner, plaintext)?;
    k.digest = KeyDigest::imported(Sha256Hash::of(plaintext));
    Ok(k)
}

async fn imported_keys_are_stored_all_or_none_and_travel_like_minted_ones(db: &TestDb) -> Checked {
    let store = &db.store;
    let there = db.another_process(false).await?;
    let ada = add_user(store, "ada").await?;
    let taken = add_key(store, ada.id, "minted").await?;
    there.poll_changes(t(3)).await?;

    // One clash (an id on file) and nothing of the batch is stored.
    let mut clash = imported(ada.id, "legacy-two")?;
    clash.id = taken.id;
    let batch = vec![imported(ada.id, "legacy-one")?, clash];
    let refused = store.insert_keys(batch, vec![audit("key.import", None)], |_| {}).await;
    assert_eq!(refused.err().map(|e| e.kind), Some(StoreErrorKind::Conflict));
    let one = imported(ada.id, "legacy-one")?;
    assert!(store.find_key_by_digest(one.digest).await?.is_none(), "all or none");

    let calls = Calls::default();
    let counted = calls.clone();
    let mut disabled = imported(ada.id, "legacy-three")?;
    disabled.disabled = true;
    let stored = store
        .insert_keys(
            vec![one.clone(), disabled.clone()],
            vec![audit("key.import", None), audit("key.import", None)],
            move |keys| {
                assert_eq!(keys.len(), 2);
                counted.0.fetch_add(1, Ordering::SeqCst);
            },
        )
        .await?;
    assert_eq!(calls.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        stored.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![one.id, disabled.id]
    );
    let (found, revoked) = store
        .find_key_by_digest(one.digest)
        .await?
        .ok_or("imported key not found")?;
    assert!(found.digest.is_imported() && !revoked);
    assert_eq!(found.digest.sha256(), Some(Sha256Hash::of("legacy-one")));
    assert!(store.find_key(ada.id, disabled.id).await?.ok_or("no key")?.disabled);

    // The view's load and another process see them under their SHA-256, marked imported.
    let rows = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = Arc::clone(&rows);
    store
        .load_active_keys(t(3), move |row, _| sink.lock().push(row))
        .await?;
    let sha = *Sha256Hash::of("legacy-one").as_bytes();
    assert!(
        rows.lock()
            .iter()
            .any(|r| r.id == one.id && r.imported && r.lookup == sha)
    );
    assert!(rows.lock().iter().any(|r| r.id == taken.id && !r.imported));
    let seen = there.poll_changes(t(4)).await?;
    assert!(
        seen.iter()
            .any(|c| matches!(c, Change::KeyActive(r) if r.id == one.id && r.imported && r.lookup == sha)),
        "{seen:?}"
    );
    assert_eq!(revoke(store, &one, t(5)).await?, Some(sha));
    let seen = there.poll_changes(t(6)).await?;
    assert!(
        seen.iter().any(|c| matches!(c, Change::KeyGone(l) if *l == sha)),
        "{seen:?}"
    );
    Ok(())
}

async fn fixture_items_are_recorded_once_and_forgotten(db: &TestDb) -> Checked {
    let store = &db.store;
    assert!(store.fixture_items().await?.is_empty());
    let (user, key) = (
        FixtureItem::User(UserId::generate()?),
        FixtureItem::Key(KeyId::generate()?),
    );
    store.set_fixture_item(user, true).await?;
    store.set_fixture_item(key, true).await?;
    store.set_fixture_item(key, true).await?;
    let mut items = store.fixture_items().await?;
    items.sort_by_key(FixtureItem::kind);
    assert_eq!(items, vec![key, user], "each once");
    store.set_fixture_item(key, false).await?;
    store.set_fixture_item(key, false).await?;
    assert_eq!(store.fixture_items().await?, vec![user]);
    Ok(())
}

async fn fixture_credits_are_remembered_replaced_and_forgotten(db: &TestDb) -> Checked {
    let store = &db.store;
    let (a, b) = (KeyId::generate()?, KeyId::generate()?);
    assert_eq!(store.fixture_credits(a).await?, None);
    let monthly = Credits::new(
        1000,
        Some(Refill {
            interval: RefillInterval::Monthly,
            amount: 500,
        }),
    )?;
    store.set_fixture_credits(a, Some(monthly)).await?;
    store.set_fixture_credits(b, Some(Credits::new(7, None)?)).await?;
    assert_eq!(store.fixture_credits(a).await?, Some(monthly));
    store.set_fixture_credits(a, Some(Credits::new(5, None)?)).await?;
    assert_eq!(store.fixture_credits(a).await?, Some(Credits::new(5, None)?));
    store.set_fixture_credits(a, None).await?;
    store.set_fixture_credits(a, None).await?;
    assert_eq!(store.fixture_credits(a).await?, None);
    assert_eq!(
        store.fixture_credits(b).await?,
        Some(Credits::new(7, None)?),
        "each key its own"
    );
    Ok(())
}
/// A user's limits (shared by their keys) are stored with the user, changed by an update,
/// and reserved from like a key's; a deleted user has nothing to reserve.
async fn a_users_limits_are_stored_changed_and_reserved_from(db: &TestDb) -> Checked {
    let s = &db.store;
    let ada = add_user(s, "ada").await?;
    let set = UserChanges {
        ratelimits: Some(limits(&[("requests", 10, 60)])?),
        credits: Some(CreditsChange::Set(Some(Credits::new(30, None)?))),
        ..UserChanges::default()
    };
    let updated = s
        .update_user(ada.id, set, t(3), audit("user.update", None), |_| {})
        .await?
        .ok_or("live")?;
    assert_eq!(updated.ratelimits, limits(&[("requests", 10, 60)])?);
    let set_anew = Credits {
        generation: 1,
        ..Credits::new(30, None)?
    };
    assert_eq!(updated.credits, Some(set_anew));
    let loaded = s.load_users().await?;
    let loaded = loaded.iter().find(|u| u.id == ada.id).ok_or("loaded")?;
    assert_eq!(loaded.credits, Some(set_anew));

    let r = s
        .reserve_credits(Payer::User(ada.id), 1, 64, t(4))
        .await?
        .ok_or("limited")?;
    assert_eq!((r.granted, r.left), (3, 27));
    let add = UserChanges {
        credits: Some(CreditsChange::Add(10)),
        ..UserChanges::default()
    };
    let added = s
        .update_user(ada.id, add, t(5), audit("user.update", None), |_| {})
        .await?
        .ok_or("live")?;
    assert_eq!(added.credits.map(|c| c.remaining), Some(37));
    assert_eq!(added.ratelimits.as_slice().len(), 1, "limits untouched");

    let bob = add_user(s, "bob").await?;
    assert_eq!(
        s.reserve_credits(Payer::User(bob.id), 1, 64, t(5)).await?,
        None,
        "unlimited"
    );
    s.delete_user(ada.id, t(6), audit("user.delete", None), |_| {}).await?;
    assert_eq!(
        s.reserve_credits(Payer::User(ada.id), 1, 64, t(7)).await?,
        None,
        "deleted"
    );
    Ok(())
}
