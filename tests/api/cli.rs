//! The command line, run as the built binary against a temporary database; and its writes
//! reaching a running server.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::eventually;

/// Runs `keyward ARGS` on the database at `db`, with `stdin` piped in.
fn keyward(db: &Path, args: &[&str], stdin: &str) -> Output {
    let dir = db.parent().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(dir)
        .env("KEYWARD__DATABASE__PATH", db)
        .env(
            "KEYWARD__AUTH__SECRET",
            "a cli test secret of at least thirty-two bytes",
        )
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn every_subcommand_does_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyward.db");

    assert!(
        ok(&keyward(
            &db,
            &["user", "add", "ada", "--email", "ada@example.com"],
            "ada's password\n"
        ))
        .contains("added user ada")
    );
    ok(&keyward(
        &db,
        &["user", "add", "root", "--role", "admin"],
        "root password\n",
    ));
    let bad = keyward(&db, &["user", "add", "eve"], "short\n");
    assert!(!bad.status.success());
    let users = ok(&keyward(&db, &["user", "list"], ""));
    assert!(users.contains("ada") && users.contains("ada@example.com") && users.contains("root"));

    let key = ok(&keyward(
        &db,
        &["key", "create", "--user", "ada", "--name", "ci", "--expires", "90 days"],
        "",
    ))
    .trim()
    .to_owned();
    assert_eq!(key.split('.').count(), 3, "the key is printed");
    let listed = ok(&keyward(&db, &["key", "list", "--user", "ada@example.com"], ""));
    assert!(
        listed.contains("ci") && !listed.contains(&key),
        "listed, without the key itself"
    );
    let id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(ok(&keyward(&db, &["key", "revoke", &id], "")).contains("revoked"));
    assert!(
        !keyward(&db, &["key", "revoke", &id], "").status.success(),
        "a second revoke fails"
    );

    ok(&keyward(&db, &["user", "passwd", "ada"], "a new password\n"));
    ok(&keyward(&db, &["user", "disable", "ada"], ""));
    assert!(
        ok(&keyward(&db, &["user", "list"], ""))
            .lines()
            .any(|l| l.contains("ada") && l.trim_end().ends_with("true"))
    );
    ok(&keyward(&db, &["user", "enable", "ada"], ""));
    ok(&keyward(&db, &["user", "delete", "ada"], ""));
    assert!(!ok(&keyward(&db, &["user", "list"], "")).contains("ada@example.com"));

    let check = ok(&keyward(&db, &["check"], ""));
    assert!(
        check.contains("integrity: ok") && check.contains("schema: version"),
        "{check}"
    );

    let backup = dir.path().join("copy.db");
    ok(&keyward(&db, &["backup", backup.to_str().unwrap()], ""));
    assert!(backup.exists());
    assert!(
        !keyward(&db, &["backup", backup.to_str().unwrap()], "").status.success(),
        "never overwrites"
    );

    let config = ok(&keyward(&db, &["config"], ""));
    assert!(config.contains("[server]") && config.contains("secret = \"***\""));
    assert!(!config.contains("thirty-two bytes"), "the secret is redacted");

    let help = ok(&keyward(&db, &["--help"], ""));
    for sub in ["serve", "user", "key", "backup", "check", "config"] {
        assert!(help.contains(sub), "{sub} in --help");
    }
}

#[tokio::test]
async fn cli_changes_reach_a_running_server() {
    let app = crate::helpers::spawn_with(|s| {
        s.auth.secret = Some(keyward::domain::Secret::new(
            "a cli test secret of at least thirty-two bytes",
        ))
    })
    .await;
    let db = app.db_path();
    let (ada_id, ada) = app.user("ada").await;
    let made = app.create_key(&ada, json!({"name": "web"})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    assert_eq!(app.me_status(&key).await, StatusCode::OK);

    // A revocation from the CLI.
    let db2 = db.clone();
    let id = made["id"].as_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || ok(&keyward(&db2, &["key", "revoke", &id], "")))
        .await
        .unwrap();
    assert!(eventually(|| async { app.me_status(&key).await == StatusCode::UNAUTHORIZED }).await);

    // A key made by the CLI works on the server.
    let db2 = db.clone();
    let cli_key = tokio::task::spawn_blocking(move || {
        ok(&keyward(&db2, &["key", "create", "--user", "ada"], ""))
            .trim()
            .to_owned()
    })
    .await
    .unwrap();
    assert!(eventually(|| async { app.me_status(&cli_key).await == StatusCode::OK }).await);

    // Disabling the user from the CLI stops their keys and access tokens.
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || ok(&keyward(&db2, &["user", "disable", "ada"], "")))
        .await
        .unwrap();
    assert!(eventually(|| async { app.me_status(&cli_key).await == StatusCode::UNAUTHORIZED }).await);
    assert_eq!(app.me_status(&format!("Bearer {ada}")).await, StatusCode::UNAUTHORIZED);
    let r = app
        .bearer(Method::GET, &format!("/v1/users/{ada_id}"), &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["disabled"], true);
}
