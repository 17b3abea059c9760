//! Start-up, restarts and what lands on disk.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use keyward::domain::Secret;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, basic, spawn_app, spawn_with};

#[tokio::test]
async fn keys_and_revocations_survive_a_restart() {
    let app = spawn_app().await;
    let (_, kept) = app.admin_key().await;
    let (gone_id, gone) = app.admin_key().await;
    app.delete(&format!("/v1/keys/{gone_id}")).as_(&app.admin).await;
    let app = app.restart().await;
    assert_eq!(app.me_status(&kept).await, StatusCode::OK);
    assert_eq!(app.me_status(&gone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&basic("admin", ADMIN_PASSWORD)).await, StatusCode::OK);
}

#[tokio::test]
async fn a_changed_master_secret_invalidates_every_key_and_token() {
    let app = spawn_with(|s| s.auth.secret = Some(Secret::new("first secret, at least thirty-two bytes long"))).await;
    let (_, key) = app.admin_key().await;
    let token = app.admin.clone();
    let app = app
        .restart_with(|s| s.auth.secret = Some(Secret::new("second secret, at least thirty-two bytes long")))
        .await;
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me_status(&format!("Bearer {token}")).await,
        StatusCode::UNAUTHORIZED
    );
    // The generated secret is kept in the database: without a configured one, keys survive.
    let app = app.restart_with(|s| s.auth.secret = None).await;
    let (_, key) = app.admin_key().await;
    let app = app.restart().await;
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
}

#[tokio::test]
async fn no_key_or_password_is_stored_in_plain_text() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key().await;
    let (_, ada) = app.user("ada").await;
    let ada_key = app.create_key(&ada, json!({"name": "x"})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = app.restart().await; // checkpoint-free: read the WAL as well as the main file
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", app.db_path().display());
        bytes.extend(std::fs::read(&path).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [
        key.as_str(),
        ada_key.as_str(),
        ADMIN_PASSWORD,
        "ada-password",
        app.admin.as_str(),
        ada.as_str(),
    ] {
        assert!(!text.contains(secret), "found a secret in the database files");
    }
    // Not even the signature part of a key.
    assert!(!text.contains(key.rsplit('.').next().unwrap()));
}

#[tokio::test]
async fn first_start_without_a_password_generates_one_in_a_private_file() {
    let app = spawn_with(|s| s.auth.admin_password = None).await;
    let file = app.dir.path().join(keyward::startup::ADMIN_PASSWORD_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(password.len() >= 20);
    assert_eq!(app.me_status(&basic("admin", &password)).await, StatusCode::OK);
}

#[test]
fn an_admin_password_given_once_there_are_users_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let ignored = "is set but ignored";
    drop(crate::helpers::start_binary(dir.path(), &[]));
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains(ignored),
        "the first start uses it"
    );
    // The second start logs the warning before it serves, so it is in the log already.
    let _server = crate::helpers::start_binary(dir.path(), &[]);
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(ignored))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("WARN") && line.contains("KEYWARD_ADMIN_PASSWORD"),
        "{line}"
    );
    assert!(
        !line.contains(crate::helpers::ADMIN_PASSWORD),
        "never the password itself"
    );
}

#[test]
fn a_bad_setting_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(dir.path())
        .env("KEYWARD__SERVER__BIND", "not an address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.bind"));

    std::fs::write(dir.path().join("bad.toml"), "[keys]\nmax_lifetime = \"forever\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(dir.path())
        .args(["--config", "bad.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.max_lifetime"));
}

#[test]
fn the_binary_prints_its_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
