//! Fixtures for local development: `keyward serve --fixtures FILE`, `keyward fixtures
//! apply|keys FILE`. The same file and configured secret give byte-identical keys on every
//! fresh database; applying twice changes nothing the second time.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Http, basic, ok, start_binary_with_args};

const SECRET: &str = "a fixtures test secret of at least thirty-two bytes";

const FILE: &str = r#"
[[users]]
username = "ada"
password = "ada-dev-password"
email = "ada@example.com"
role = "admin"

[[users]]
username = "bob"
password = "bob-dev-password"

[[keys]]
user = "ada"
name = "frontend"
key = "dev_ada_frontend_key"

[[keys]]
user = "bob"
name = "backend"
id = "00000000000000000000b0b0"
scopes = ["billing:read"]
meta = { env = "dev" }
expires = "never"
"#;

fn keyward(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(dir)
        .env("KEYWARD__DATABASE__PATH", dir.join("keyward.db"))
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn with_secret() -> [(&'static str, &'static str); 1] {
    [("KEYWARD__AUTH__SECRET", SECRET)]
}

/// `fixtures keys`: name → key.
fn printed_keys(dir: &Path) -> Vec<(String, String)> {
    ok(&keyward(dir, &["fixtures", "keys", "dev.toml"], &with_secret()))
        .lines()
        .map(|l| {
            let (name, key) = l.split_once('\t').unwrap();
            (name.to_owned(), key.to_owned())
        })
        .collect()
}

async fn keys_work(url: &str, keys: &[(String, String)]) {
    let http = Http::new(url);
    for (name, key) in keys {
        for authorization in [format!("Bearer {key}"), key.clone(), basic("x", key)] {
            let r = http.get("/v1/me").authorization(&authorization).await;
            assert_eq!(r.status(), StatusCode::OK, "{name}");
        }
        let r = http.get("/v1/me").api_key(key).await.expect_status(StatusCode::OK);
        let who = if name == "frontend" { "ada" } else { "bob" };
        assert_eq!(r.json()["user"]["username"], who);
    }
    // The fixture users sign in with their passwords, and a dialect sees the keys.
    let r = http
        .get("/api/v1/apikey")
        .authorization(basic("bob", "bob-dev-password"))
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(r.json()[0]["name"], "backend");
}

#[tokio::test]
async fn a_fresh_start_with_fixtures_twice_gives_the_same_keys_and_they_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.toml"), FILE).unwrap();
    let args = ["serve", "--fixtures", "dev.toml"];
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (server, url) = start_binary_with_args(dir.path(), &args, &with_secret());
        let keys = printed_keys(dir.path());
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], ("frontend".to_owned(), "dev_ada_frontend_key".to_owned()));
        assert_eq!(keys[1].1.split('.').count(), 3, "a minted key is a JWT");
        keys_work(&url, &keys).await;
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
        assert!(log.contains("fixtures loaded from dev.toml"), "{log}");
        seen.push(keys);
        drop(server);
        for file in ["keyward.db", "keyward.db-wal", "keyward.db-shm", "server.log"] {
            let _ = std::fs::remove_file(dir.path().join(file));
        }
    }
    assert_eq!(seen[0], seen[1], "byte-identical keys on a fresh database");
}

#[tokio::test]
async fn apply_twice_reports_no_change_and_prune_removes_only_what_fixtures_made() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::write(path.join("dev.toml"), FILE).unwrap();
    let apply = |extra: &[&str]| {
        let mut args = vec!["fixtures", "apply", "dev.toml"];
        args.extend_from_slice(extra);
        ok(&keyward(path, &args, &with_secret()))
    };
    let first = apply(&[]);
    assert!(
        first.contains("created user ada") && first.contains("created key backend"),
        "{first}"
    );
    let second = apply(&[]);
    assert!(second.starts_with("no changes"), "{second}");

    // A change in the file is brought in; a password changed by hand is put back.
    std::fs::write(
        path.join("dev.toml"),
        FILE.replace("name = \"frontend\"", "name = \"web\""),
    )
    .unwrap();
    let third = apply(&[]);
    assert!(third.contains("updated key web (name)"), "{third}");

    let (server, url) = start_binary_with_args(path, &["serve"], &with_secret());
    let http = Http::new(&url);
    let keys = printed_keys(path);
    keys_work(
        &url,
        &[("frontend".into(), "dev_ada_frontend_key".into()), keys[1].clone()],
    )
    .await;
    // A user made by hand is never pruned. (A database `fixtures apply` created has no
    // bootstrap admin: ada is the file's admin.)
    let admin = basic("ada", "ada-dev-password");
    http.post("/v1/users")
        .authorization(&admin)
        .json(&json!({"username": "carol", "password": "carol-password"}))
        .await
        .expect_status(StatusCode::CREATED);

    // The file without bob and his key: --prune removes them, and nothing else.
    let only_ada = FILE.split("[[users]]\nusername = \"bob\"").next().unwrap().to_owned()
        + "[[keys]]\nuser = \"ada\"\nname = \"frontend\"\nkey = \"dev_ada_frontend_key\"\n";
    std::fs::write(path.join("dev.toml"), &only_ada).unwrap();
    let pruned = apply(&["--prune"]);
    assert!(pruned.contains("removed key 00000000000000000000b0b0"), "{pruned}");
    assert!(pruned.contains("removed user"), "{pruned}");
    assert!(
        crate::helpers::eventually(|| async {
            http.get("/v1/me").api_key(&keys[1].1).await.status() == StatusCode::UNAUTHORIZED
        })
        .await
    );
    let r = http.get("/v1/me").authorization(basic("carol", "carol-password")).await;
    assert_eq!(r.status(), StatusCode::OK, "a user made by hand stays");
    assert!(apply(&["--prune"]).starts_with("no changes"));
    // Every change is audited as `fixtures`.
    let audit = http
        .get("/v1/audit?limit=100")
        .authorization(&admin)
        .await
        .expect_status(StatusCode::OK)
        .json();
    let lines = audit["data"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["actor"] == "fixtures" && l["action"] == "key.create"),
        "{audit}"
    );
    drop(server);
}

/// The file's ada, with a literal key that has meta, an expiry, a rate limit and credits.
fn limited() -> String {
    let ada = FILE.split("[[users]]\nusername = \"bob\"").next().unwrap_or_default();
    ada.to_owned()
        + r#"[[keys]]
user = "ada"
name = "frontend"
key = "dev_ada_frontend_key"
meta = { env = "dev" }
expires = "2099-01-01T00:00:00Z"
ratelimits = [{ name = "requests", limit = 100, duration = "1m" }]
credits = { remaining = 10 }
"#
}

/// A fixture key's state as the API shows it: meta, rate limit, credits, expiry.
async fn shown(http: &Http) -> (Value, Value, Value, Value) {
    let admin = basic("ada", "ada-dev-password");
    let keys = http
        .get("/v1/keys")
        .authorization(&admin)
        .await
        .expect_status(StatusCode::OK)
        .json();
    let key = keys["data"][0].clone();
    (
        key["meta"].clone(),
        key["ratelimits"][0]["limit"].clone(),
        key["credits"]["remaining"].clone(),
        key["expires_at"].clone(),
    )
}

async fn spend(http: &Http, n: usize) {
    for _ in 0..n {
        http.get("/v1/me")
            .api_key("dev_ada_frontend_key")
            .await
            .expect_status(StatusCode::OK);
    }
}

#[tokio::test]
async fn an_edited_file_is_applied_and_a_third_apply_changes_nothing_nor_resets_credits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let write = |text: &str| std::fs::write(path.join("dev.toml"), text).unwrap();
    let apply = || ok(&keyward(path, &["fixtures", "apply", "dev.toml"], &[]));
    let file = limited();
    write(&file);
    assert!(apply().contains("created key frontend"));
    let (server, url) = start_binary_with_args(path, &["serve"], &[]);
    let http = Http::new(&url);
    assert_eq!(
        shown(&http).await,
        (
            json!({"env": "dev"}),
            json!(100),
            json!(10),
            json!("2099-01-01T00:00:00Z")
        )
    );
    spend(&http, 3).await;
    // Unchanged: nothing is applied, and the spent balance stays spent.
    let again = apply();
    assert!(again.starts_with("no changes"), "{again}");
    assert_eq!(shown(&http).await.2, json!(7));

    // Every kind of change in the file is applied, and the output names it.
    write(
        &file
            .replace("ada@example.com", "ada@example.org")
            .replace("env = \"dev\"", "env = \"staging\"")
            .replace("2099-01-01", "2098-01-01")
            .replace("limit = 100", "limit = 50")
            .replace("remaining = 10", "remaining = 20"),
    );
    let edited = apply();
    assert!(
        edited.contains("updated user ada (email)")
            && edited.contains("updated key frontend (expires, meta, ratelimits, credits)"),
        "{edited}"
    );
    let expected = (
        json!({"env": "staging"}),
        json!(50),
        json!(20),
        json!("2098-01-01T00:00:00Z"),
    );
    assert!(
        crate::helpers::eventually(|| async { shown(&http).await == expected }).await,
        "{:?}",
        shown(&http).await
    );
    // The server learns of the user's change from the change feed (within a second).
    let email = || async {
        let me = http.get("/v1/me").authorization(basic("ada", "ada-dev-password")).await;
        me.expect_status(StatusCode::OK).json()["user"]["email"].clone()
    };
    assert!(
        crate::helpers::eventually(|| async { email().await == "ada@example.org" }).await,
        "{}",
        email().await
    );
    spend(&http, 2).await;

    let third = apply();
    assert!(third.starts_with("no changes"), "{third}");
    assert_eq!(
        shown(&http).await.2,
        json!(18),
        "a re-apply does not reset a balance spent down"
    );

    // An expiry only moves earlier: a later one is reported and left.
    write(
        &file
            .replace("2099-01-01", "2097-01-01")
            .replace("ada@example.com", "ada@example.org"),
    );
    let earlier = apply();
    assert!(
        earlier.contains("updated key frontend (expires, meta, ratelimits, credits)"),
        "{earlier}"
    );
    write(&file);
    let later = apply();
    assert!(later.contains("later expiry, left as it is"), "{later}");
    // Every change is audited as `fixtures`, naming what changed.
    let audit = http
        .get("/v1/audit?limit=100")
        .authorization(basic("ada", "ada-dev-password"))
        .await
        .expect_status(StatusCode::OK)
        .json();
    assert!(
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["actor"] == "fixtures"
                && l["action"] == "key.update"
                && l["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("fixture: expires meta ratelimits credits"))),
        "{audit}"
    );
    drop(server);
}

#[test]
fn minted_fixture_keys_need_a_configured_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.toml"), FILE).unwrap();
    let out = keyward(dir.path(), &["fixtures", "apply", "dev.toml"], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("configured [auth] secret"), "{stderr}");
}

#[test]
fn serve_with_fixtures_is_refused_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.toml"), FILE).unwrap();
    let env = [
        ("KEYWARD__AUTH__SECRET", SECRET),
        ("KEYWARD__SERVER__BIND", "0.0.0.0:0"),
    ];
    let out = keyward(dir.path(), &["serve", "--fixtures", "dev.toml"], &env);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("allow_fixtures"), "{stderr}");
}
