//! Moving in from Better Auth: `keyward import better-auth PATH` on a Better Auth-shaped
//! SQLite database built here by hand, then its keys and passwords work against keyward.
//!
//! The shapes, from better-auth/better-auth (commit 451aa4b):
//! - tables `user`, `account` (`packages/core/src/db/get-tables.ts`); SQLite keeps dates as
//!   ISO text and booleans as 0/1 (the adapter factory, `supportsDates: false`).
//! - a password: `salt:key`, hex; key = scrypt(NFKC(password), salt's hex text, N=16384,
//!   r=16, p=1, dkLen=64) (`packages/better-auth/src/crypto/password.ts` before 1.4). The
//!   key below was computed independently with Python's `hashlib.scrypt`.
//! - `apikey` (`packages/api-key/src/schema.ts`): `key` = base64url SHA-256 without padding
//!   (`defaultKeyHasher`, `packages/api-key/src/index.ts`); the owner is `referenceId` in
//!   `@better-auth/api-key`, `userId` in the older plugin.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use sha2::Digest;

use crate::helpers::{basic, eventually, ok};

const SECRET: &str = "a moving-in test secret of at least thirty-two bytes";
/// "correct horse" as Better Auth hashes it, with the salt 0123456789abcdef0123456789abcdef.
const ADA_HASH: &str = "0123456789abcdef0123456789abcdef:c967f8a4438e68448871a4fbb9b41b2aacaa6d9d98bf76d9740467af6a3305c6601235ae3706eaeaafd4c037201f630b3c3670caf74d8be1d22256672828773e";

fn hashed(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(key.as_bytes()))
}

/// A Better Auth database: ada (email and password, two keys: one live, one expired), bob
/// (GitHub only, one disabled key). `owner` names the apikey owner column.
fn better_auth_db(path: &Path, owner: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(&format!(
        r#"
        CREATE TABLE "user" (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
            emailVerified INTEGER NOT NULL, image TEXT, createdAt DATE NOT NULL, updatedAt DATE NOT NULL);
        CREATE TABLE "account" (id TEXT PRIMARY KEY, accountId TEXT NOT NULL, providerId TEXT NOT NULL,
            userId TEXT NOT NULL REFERENCES "user" (id), accessToken TEXT, refreshToken TEXT, idToken TEXT,
            accessTokenExpiresAt DATE, refreshTokenExpiresAt DATE, scope TEXT, password TEXT,
            createdAt DATE NOT NULL, updatedAt DATE NOT NULL);
        CREATE TABLE "apikey" (id TEXT PRIMARY KEY, configId TEXT NOT NULL DEFAULT 'default', name TEXT,
            start TEXT, prefix TEXT, key TEXT NOT NULL, {owner} TEXT NOT NULL, refillInterval INTEGER,
            refillAmount INTEGER, lastRefillAt DATE, enabled INTEGER, rateLimitEnabled INTEGER,
            rateLimitTimeWindow INTEGER, rateLimitMax INTEGER, requestCount INTEGER, remaining INTEGER,
            lastRequest DATE, expiresAt DATE, createdAt DATE NOT NULL, updatedAt DATE NOT NULL,
            permissions TEXT, metadata TEXT);
        INSERT INTO "user" VALUES ('u1', 'Ada Lovelace', 'ada@example.com', 1, NULL,
            '2025-01-02T03:04:05.000Z', '2025-01-02T03:04:05.000Z');
        INSERT INTO "user" VALUES ('u2', 'bob', 'bob@example.com', 1, NULL,
            '2025-01-03T03:04:05.000Z', '2025-01-03T03:04:05.000Z');
        INSERT INTO "account" (id, accountId, providerId, userId, password, createdAt, updatedAt)
            VALUES ('a1', 'u1', 'credential', 'u1', '{ADA_HASH}', '2025-01-02T03:04:05.000Z', '2025-01-02T03:04:05.000Z');
        INSERT INTO "account" (id, accountId, providerId, userId, accessToken, createdAt, updatedAt)
            VALUES ('a2', '4242', 'github', 'u2', 'gho_x', '2025-01-03T03:04:05.000Z', '2025-01-03T03:04:05.000Z');
        "#
    ))
    .unwrap();
    let mut insert = c
        .prepare(&format!(
            "INSERT INTO apikey (id, name, start, prefix, key, {owner}, enabled, expiresAt, createdAt, updatedAt, metadata) \
             VALUES (?1, ?2, 'ba_', 'ba_', ?3, ?4, ?5, ?6, '2025-02-01T00:00:00.000Z', '2025-02-01T00:00:00.000Z', ?7)"
        ))
        .unwrap();
    /// id, name, key, owner, enabled, expiresAt, metadata
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        i64,
        Option<&'a str>,
        Option<&'a str>,
    );
    let rows: [Row; 3] = [
        (
            "k1",
            "ada-cli",
            "ba_ada_live_key_0123456789",
            "u1",
            1,
            Some("2099-01-01T00:00:00.000Z"),
            Some(r#"{"plan":"pro"}"#),
        ),
        (
            "k2",
            "ada-old",
            "ba_ada_expired_key_012345",
            "u1",
            1,
            Some("2020-01-01T00:00:00.000Z"),
            None,
        ),
        ("k3", "bob-off", "ba_bob_disabled_key_01234", "u2", 0, None, None),
    ];
    for (id, name, key, user, enabled, expires, meta) in rows {
        insert
            .execute(rusqlite::params![id, name, hashed(key), user, enabled, expires, meta])
            .unwrap();
    }
}

fn import(db: &Path, source: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(db.parent().unwrap())
        .env("KEYWARD__DATABASE__PATH", db)
        .env("KEYWARD__AUTH__SECRET", SECRET)
        .args(["import", "better-auth", source.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_better_auth_database_moves_in_with_working_keys_and_passwords() {
    let app = crate::helpers::spawn_with(|s| s.auth.secret = Some(keyward::domain::Secret::new(SECRET))).await;
    let (db, source) = (app.db_path(), app.dir.path().join("better-auth.db"));
    better_auth_db(&source, "referenceId");

    let (d, s) = (db.clone(), source.clone());
    let printed = tokio::task::spawn_blocking(move || ok(&import(&d, &s))).await.unwrap();
    assert!(
        printed.contains("users: 2 imported") && printed.contains("keys: 2 imported"),
        "{printed}"
    );
    assert!(
        printed.contains("without a password") && printed.contains("bob"),
        "{printed}"
    );

    // Ada's key works in the four forms; bob's disabled one does not; the expired one was left out.
    let key = "ba_ada_live_key_0123456789";
    assert!(eventually(|| async { app.me_status(key).await == StatusCode::OK }).await);
    let me = app
        .get("/v1/me")
        .api_key(key)
        .await
        .expect_status(StatusCode::OK)
        .json();
    assert_eq!(me["user"]["email"], "ada@example.com");
    let username = me["user"]["username"].as_str().unwrap().to_owned();
    assert_eq!(username, "ada", "the name is no username, so the email's local part");
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::OK);
    assert_eq!(app.me_status(&basic("x", key)).await, StatusCode::OK);
    assert_eq!(
        app.me_status("ba_bob_disabled_key_01234").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status("ba_ada_expired_key_012345").await,
        StatusCode::UNAUTHORIZED
    );
    let mine = app
        .get("/v1/keys")
        .api_key(key)
        .await
        .expect_status(StatusCode::OK)
        .json();
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["data"][0]["name"], "ada-cli");
    assert_eq!(mine["data"][0]["meta"], json!({"plan": "pro"}));

    // Ada's Better Auth password signs her in (by email or username), and is then argon2id.
    let r = app
        .post("/v1/auth/token")
        .json(&json!({"username": "ada@example.com", "password": "correct horse"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let stored: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT password_hash FROM users WHERE username = 'ada'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert_eq!(app.me_status(&basic("ada", "correct horse")).await, StatusCode::OK);
    assert_eq!(
        app.me_status(&basic("ada", "wrong horse")).await,
        StatusCode::UNAUTHORIZED
    );
    // Bob has no password until an admin sets one.
    assert_eq!(app.me_status(&basic("bob", "")).await, StatusCode::UNAUTHORIZED);

    // A second run imports nothing twice.
    let again = tokio::task::spawn_blocking(move || ok(&import(&db, &source)))
        .await
        .unwrap();
    assert!(
        again.contains("users: 0 imported, 2 already here; keys: 0 imported, 2 already here"),
        "{again}"
    );
    assert!(again.contains("nothing new"), "{again}");
}

#[tokio::test]
async fn the_older_api_key_plugin_names_the_owner_user_id() {
    let app = crate::helpers::spawn_with(|s| s.auth.secret = Some(keyward::domain::Secret::new(SECRET))).await;
    let (db, source) = (app.db_path(), app.dir.path().join("better-auth.db"));
    better_auth_db(&source, "userId");
    let printed = tokio::task::spawn_blocking(move || ok(&import(&db, &source)))
        .await
        .unwrap();
    assert!(printed.contains("keys: 2 imported"), "{printed}");
    assert!(eventually(|| async { app.me_status("ba_ada_live_key_0123456789").await == StatusCode::OK }).await);
}
