//! Files on disk: the database, its side files, the generated admin password and backups
//! are 0600 whatever the umask; an exposed database is named at start; a backup never
//! follows a symlink.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Http, Server};

/// Runs `keyward ARGS` in `dir` under the usual umask 022, as a shell would.
fn under_umask_022(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .current_dir(dir)
        .env_remove("KEYWARD_ADMIN_PASSWORD")
        .env("KEYWARD__SERVER__BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    command
}

/// Starts the server; returns it, its URL and the log lines up to "serving on".
fn serve(dir: &Path) -> (Server, String, Vec<String>) {
    let mut child = under_umask_022(dir, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let url = loop {
        let line = lines.next().expect("the server logs where it serves").unwrap();
        log.push(line.clone());
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    (Server::from(child), url, log)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn every_file_keyward_writes_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, _) = serve(dir.path());
    // A write, so the WAL and its index exist.
    let password = std::fs::read_to_string(dir.path().join("keyward-admin-password")).unwrap();
    let http = Http::new(&url);
    let token = http
        .post("/v1/auth/token")
        .json(&json!({"username": "admin", "password": password.trim()}))
        .await
        .json();
    http.post("/v1/keys")
        .as_(token["access_token"].as_str().unwrap())
        .json(&json!({}))
        .await
        .expect_status(StatusCode::CREATED);
    for name in [
        "keyward.db",
        "keyward.db-wal",
        "keyward.db-shm",
        "keyward-admin-password",
    ] {
        assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
    }

    // A backup taken while the server runs, by the CLI under the same umask.
    let out = under_umask_022(dir.path(), &["backup", "copy.db"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&dir.path().join("copy.db")), 0o600);
    drop(server);
}

#[test]
fn a_backup_never_follows_a_symlink_and_names_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    // `user add` makes the database (reading the password from standard input).
    let mut add = under_umask_022(dir.path(), &["user", "add", "ada"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut add.stdin.take().unwrap(), b"ada's password\n").unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Another user plants a link where the backup will go, to read or clobber a file.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "not yours").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("backup.db")).unwrap();
    let out = under_umask_022(dir.path(), &["backup", "backup.db"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours");
    assert_eq!(mode(&victim), 0o644, "the link's target keeps its mode");
    // A dangling link is refused too.
    std::fs::remove_file(&victim).unwrap();
    let out = under_umask_022(dir.path(), &["backup", "backup.db"]).output().unwrap();
    assert!(!out.status.success());
    assert!(!victim.exists(), "nothing was created through the link");

    let out = under_umask_022(dir.path(), &["backup", "no/such/dir/copy.db"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no/such/dir"), "{stderr}");
    // No work files are left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".keyward-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_database_others_can_read_is_named_at_start_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, log) = serve(dir.path());
    assert!(!log.iter().any(|l| l.contains("readable by other users")), "{log:?}");
    drop(server);
    let db = dir.path().join("keyward.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_server, _, log) = serve(dir.path());
    let warning = log
        .iter()
        .find(|l| l.contains("readable by other users"))
        .unwrap_or_else(|| panic!("no warning in {log:?}"));
    let full = std::fs::canonicalize(&db).unwrap();
    assert!(warning.contains(&full.display().to_string()), "{warning}");
    assert!(warning.contains("chmod 600"), "{warning}");
}
