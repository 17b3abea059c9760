//! The command line, run as the built binary against a temporary database; and its writes
//! reaching a running server.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::eventually;

/// Runs `keyward ARGS` on the database at `db`, with `stdin` piped in.
fn keyward(db: &Path, args: &[&str], stdin: &str) -> Output {
    keyward_with(db, args, stdin, &[])
}

/// As [`keyward`], with more environment.
fn keyward_with(db: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let dir = db.parent().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(dir)
        .env("KEYWARD__DATABASE__PATH", db)
        .env(
            "KEYWARD__AUTH__SECRET",
            "a cli test secret of at least thirty-two bytes",
        )
        .envs(env.iter().copied())
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

/// The standard error of a command that failed.
fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
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
    assert!(config.contains("[server]") && config.contains("# secret = (set, not shown)"));
    assert!(!config.contains("thirty-two bytes"), "the secret is never printed");

    let help = ok(&keyward(&db, &["--help"], ""));
    for sub in ["serve", "user", "key", "backup", "check", "config"] {
        assert!(help.contains(sub), "{sub} in --help");
    }
}

#[test]
fn check_and_backup_name_what_is_missing_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyward.db");
    for args in [&["check"][..], &["key", "list"], &["backup", "copy.db"]] {
        let err = failed(&keyward(&db, args, ""));
        assert!(
            err.contains("there is no database at") && err.contains(db.to_str().unwrap()),
            "{args:?}: {err}"
        );
    }
    assert!(!db.exists(), "no database was created");

    ok(&keyward(&db, &["user", "add", "ada"], "ada's password\n"));
    let missing = dir.path().join("no such folder").join("copy.db");
    let err = failed(&keyward(&db, &["backup", missing.to_str().unwrap()], ""));
    assert!(
        err.contains(&format!(
            "there is no directory {}",
            missing.parent().unwrap().display()
        )),
        "{err}"
    );
}

#[test]
fn user_add_says_when_no_password_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyward.db");
    for stdin in ["", "\n"] {
        let err = failed(&keyward(&db, &["user", "add", "ada"], stdin));
        assert!(err.contains("no password was read for ada"), "{err}");
    }
}

#[test]
fn key_list_without_a_user_lists_every_key_with_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyward.db");
    for user in ["ada", "bob"] {
        ok(&keyward(&db, &["user", "add", user], &format!("{user}'s password\n")));
        ok(&keyward(
            &db,
            &["key", "create", "--user", user, "--name", &format!("{user}-ci")],
            "",
        ));
    }
    let listed = ok(&keyward(&db, &["key", "list"], ""));
    let rows: Vec<Vec<&str>> = listed.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!((rows[0][1], rows[0][2]), ("ada", "ada-ci"), "{listed}");
    assert_eq!((rows[1][1], rows[1][2]), ("bob", "bob-ci"), "{listed}");
    let ada = ok(&keyward(&db, &["key", "list", "--user", "ada"], ""));
    assert!(ada.contains("ada-ci") && !ada.contains("bob-ci"), "{ada}");
}

#[test]
fn the_printed_config_loads_back_to_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyward.db");
    let changed = [
        ("KEYWARD__SERVER__BODY_LIMIT", "1MiB"),
        ("KEYWARD__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1"),
        ("KEYWARD__DATABASE__MAX_SIZE", "2GiB"),
        ("KEYWARD__KEYS__DEFAULT_LIFETIME", "30 days"),
        ("KEYWARD__KEYS__MAX_LIFETIME", "1 year"),
        ("KEYWARD__UI__SESSION_TTL", "90 minutes"),
    ];
    let printed = ok(&keyward_with(&db, &["config"], "", &changed));
    for line in [
        "body_limit = \"1MiB\"",
        "access_token_ttl = \"30m\"",
        "session_ttl = \"90m\"",
        "default_lifetime = \"30d\"",
        "max_lifetime = \"365d\"",
        "max_size = \"2GiB\"",
        "shutdown_timeout = \"10s\"",
        "# secret = (set, not shown)",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line} in:\n{printed}");
    }
    // Loaded from the printed file alone (the secret still comes from the environment).
    let file = dir.path().join("printed.toml");
    std::fs::write(&file, &printed).unwrap();
    let again = ok(&keyward(&db, &["--config", file.to_str().unwrap(), "config"], ""));
    assert_eq!(again, printed);
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
    let r = app.get(&format!("/v1/users/{ada_id}")).as_(&app.admin).await;
    assert_eq!(r.json()["disabled"], true);
}

#[tokio::test]
async fn key_import_reads_json_lines_and_a_running_server_takes_the_keys() {
    let app = crate::helpers::spawn_with(|s| {
        s.auth.secret = Some(keyward::domain::Secret::new(
            "a cli test secret of at least thirty-two bytes",
        ))
    })
    .await;
    let db = app.db_path();
    app.user("ada").await;
    let file = app.dir.path().join("keys.jsonl");
    let good = r#"{"username": "ada", "name": "legacy-one", "key": "legacy_cli_key_0001"}"#;
    let hash = "0fb6cbea5ebc2d9a2e17f4fb5e6da1de2a1e1c68bd9f15c8a0a9b08e4a0ce7d1";
    let other = format!(
        r#"{{"username": "ada", "name": "legacy-two", "hash": {{"algorithm": "sha256", "encoding": "hex", "value": "{hash}"}}}}"#
    );
    // A bad line: nothing is written, and the line is named.
    std::fs::write(&file, format!("{good}\n{{\"username\": \"ada\", \"name\": \"x\"}}\n")).unwrap();
    let (db2, file2) = (db.clone(), file.clone());
    let out = tokio::task::spawn_blocking(move || keyward(&db2, &["key", "import", file2.to_str().unwrap()], ""))
        .await
        .unwrap();
    assert!(
        failed(&out).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(&file, format!("{good}\n\n{other}\n")).unwrap();
    let (db2, file2) = (db.clone(), file.clone());
    let printed =
        tokio::task::spawn_blocking(move || ok(&keyward(&db2, &["key", "import", file2.to_str().unwrap()], "")))
            .await
            .unwrap();
    assert_eq!(printed.lines().count(), 2, "{printed}");
    assert!(eventually(|| async { app.me_status("legacy_cli_key_0001").await == StatusCode::OK }).await);
    let listed = tokio::task::spawn_blocking(move || ok(&keyward(&db, &["key", "list", "--user", "ada"], "")))
        .await
        .unwrap();
    assert!(
        listed.contains("legacy-one") && listed.contains("legacy-two"),
        "{listed}"
    );
}
