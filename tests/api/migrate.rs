//! `keyward migrate`: a SQLite database with keys of every kind, copied into PostgreSQL by
//! the built binary; a node on PostgreSQL then accepts every live key and password and
//! refuses every revoked one. A target that is not empty is refused.

use std::path::Path;
use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, spawn_with, start, test_settings};
use crate::postgres::{Database, server};

/// `keyward migrate ARGS` on the SQLite database at `db`, with `env`.
fn migrate(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(db.parent().unwrap())
        .env("KEYWARD__DATABASE__PATH", db)
        .env_remove("KEYWARD__DATABASE__URL")
        .envs(env.iter().copied())
        .arg("migrate")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn every_key_and_password_keeps_working_after_migrate() {
    let Some(server) = server("every_key_and_password_keeps_working_after_migrate") else {
        return;
    };
    let target = Database::create(&server).await;

    // On SQLite, with the master secret generated inside the database: keys of every kind.
    let app = spawn_with(|s| s.auth.secret = None).await;
    let (ada_id, ada) = app.user("ada").await;
    let (bob_id, bob) = app.user("bob").await;
    let key = |body: serde_json::Value, token: String| {
        let app = &app;
        async move {
            let k = app.create_key(&token, body).await;
            (
                k["id"].as_str().unwrap().to_owned(),
                k["key"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (_, plain) = key(json!({"name": "plain"}), app.admin.clone()).await;
    let (_, rich) = key(
        json!({"name": "rich", "expires": "30 days", "scopes": ["read"], "meta": {"team": "a"}}),
        ada.clone(),
    )
    .await;
    let (disabled_id, disabled) = key(json!({"name": "disabled"}), ada.clone()).await;
    let (revoked_id, revoked) = key(json!({"name": "revoked"}), ada.clone()).await;
    let (graced_id, graced) = key(json!({"name": "graced"}), ada.clone()).await;
    let (rotated_id, rotated) = key(json!({"name": "rotated"}), ada.clone()).await;
    let (_, of_bob) = key(json!({"name": "bob's"}), bob.clone()).await;
    // A key keyward did not mint, held by its SHA-256.
    let imported = "legacy_migrate_key_01".to_owned();
    app.post("/v1/keys/import")
        .as_(&app.admin)
        .json(&json!({"keys": [{"username": "ada", "name": "imported", "key": imported}]}))
        .await
        .expect_status(StatusCode::CREATED);
    app.patch(&format!("/v1/keys/{disabled_id}"))
        .as_(&ada)
        .json(&json!({"disabled": true}))
        .await
        .expect_status(StatusCode::OK);
    app.delete(&format!("/v1/keys/{revoked_id}"))
        .as_(&ada)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    let successor = |id: String, grace: serde_json::Value| {
        let app = &app;
        let ada = ada.clone();
        async move {
            let r = app
                .post(&format!("/v1/keys/{id}/rotate"))
                .as_(&ada)
                .json(&json!({"grace": grace}))
                .await
                .expect_status(StatusCode::CREATED);
            r.json()["key"].as_str().unwrap().to_owned()
        }
    };
    let graced_successor = successor(graced_id, json!("1d")).await;
    let rotated_successor = successor(rotated_id, json!(0)).await;
    app.patch(&format!("/v1/users/{bob_id}"))
        .as_(&app.admin)
        .json(&json!({"disabled": true}))
        .await
        .expect_status(StatusCode::OK);
    let live = [&plain, &rich, &graced, &graced_successor, &rotated_successor, &imported];
    let dead = [&disabled, &revoked, &rotated, &of_bob];
    for k in live {
        assert_eq!(app.get("/v1/me").api_key(k).await.status(), StatusCode::OK);
    }
    for k in dead {
        assert_eq!(app.get("/v1/me").api_key(k).await.status(), StatusCode::UNAUTHORIZED);
    }
    let db = app.db_path();
    let dir = tempfile::tempdir().unwrap();
    let (mut settings, _source) = app.stop().await;

    // No target named: refused, and says how.
    let out = migrate(&db, &[], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--to postgres://"), "{}", stderr(&out));
    // The url from the environment (no password in argv).
    let out = migrate(&db, &[], &[("KEYWARD__DATABASE__URL", &target.url)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("users 3") && said.contains("keys 10"), "{said}");
    assert!(
        !said.contains("keyward_test:keyward_test"),
        "the password is not echoed: {said}"
    );
    // Twice: the target is not empty any more.
    let out = migrate(&db, &["--to", &target.url], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));

    // A node on PostgreSQL (its SQLite path points nowhere).
    settings.database.url = Some(keyward::domain::Secret::new(&target.url));
    settings.database.path = dir.path().join("absent.db");
    let node = start(settings, dir).await;
    for k in live {
        assert_eq!(
            node.get("/v1/me").api_key(k).await.status(),
            StatusCode::OK,
            "live after migrate"
        );
    }
    for k in dead {
        assert_eq!(
            node.get("/v1/me").api_key(k).await.status(),
            StatusCode::UNAUTHORIZED,
            "dead after migrate"
        );
    }
    assert!(
        !node.settings.database.path.exists(),
        "no SQLite file on the PostgreSQL node"
    );
    // Passwords: ada's and the admin's work, disabled bob's does not.
    node.login("ada", "ada-password").await;
    node.login("admin", ADMIN_PASSWORD).await;
    let r = node
        .post("/v1/auth/token")
        .json(&json!({"username": "bob", "password": "bob-password"}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Lists, scopes and meta came along; new keys continue after the copied ones.
    let ada_again = node.login("ada", "ada-password").await;
    let keys = node.get_json("/v1/keys", &ada_again).await;
    let names: Vec<&str> = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(names.contains(&"rich") && !names.contains(&"revoked"), "{names:?}");
    let fresh = node.create_key(&ada_again, json!({"name": "after"})).await;
    assert_eq!(
        node.get("/v1/me")
            .api_key(fresh["key"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let audit = node.get_json("/v1/audit", &node.admin).await;
    assert!(audit.to_string().contains(&ada_id), "the audit trail came along");
}

#[tokio::test]
async fn migrate_refuses_a_database_a_node_has_started_on() {
    let Some(server) = server("migrate_refuses_a_database_a_node_has_started_on") else {
        return;
    };
    let target = Database::create(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    settings.database.url = Some(keyward::domain::Secret::new(&target.url));
    let node = start(settings, dir).await;
    drop(node.stop().await);
    let source = spawn_with(|_| {}).await;
    let db = source.db_path();
    let _source = source.stop().await;
    let out = migrate(&db, &["--to", &target.url], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("keyward_test:keyward_test"), "{}", stderr(&out));
}

#[tokio::test]
async fn the_cli_creates_nothing_in_a_database_keyward_never_started_on() {
    let Some(server) = server("the_cli_creates_nothing_in_a_database_keyward_never_started_on") else {
        return;
    };
    let target = Database::create(&server).await;
    let dir = tempfile::tempdir().unwrap();
    for args in [&["check"][..], &["key", "list"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
            .current_dir(dir.path())
            .env("KEYWARD__DATABASE__URL", &target.url)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(stderr(&out).contains("has not started on"), "{}", stderr(&out));
        assert!(!stderr(&out).contains("keyward_test:keyward_test"), "{}", stderr(&out));
    }
    // So migrate still finds it empty.
    let source = spawn_with(|_| {}).await;
    let db = source.db_path();
    let _source = source.stop().await;
    let out = migrate(&db, &["--to", &target.url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}
