//! Graceful shutdown and backups of a server under load.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ADMIN_PASSWORD, Http, basic, spawn_with, start_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_requests_in_flight_loses_nothing_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = start_binary(dir.path(), &[]);
    let http = Http::new(&url);
    let admin = basic("admin", ADMIN_PASSWORD);
    let made = http.post("/v1/keys").authorization(&admin).await.json();
    let (id, key) = (
        made["id"].as_str().unwrap().to_owned(),
        made["key"].as_str().unwrap().to_owned(),
    );
    // A use, kept in memory: only the shutdown flush writes it within this test.
    http.get("/v1/me").api_key(&key).await.expect_status(StatusCode::OK);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (http, key) = (http.clone(), key.clone());
        tasks.spawn(async move {
            let mut acknowledged = Vec::new();
            for _ in 0..50 {
                match http.post("/v1/keys").api_key(&key).try_send().await {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        acknowledged.push(r.json()["key"].as_str().unwrap().to_owned())
                    }
                    _ => break,
                }
            }
            acknowledged
        });
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pid = server.pid().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || server.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(status, Some(0), "a clean exit within the shutdown timeout");
    let mut acknowledged = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acknowledged.extend(done.unwrap());
    }
    assert!(!acknowledged.is_empty());

    let (_server, url) = start_binary(dir.path(), &[]);
    let http = Http::new(&url);
    for k in &acknowledged {
        http.get("/v1/me").api_key(k).await.expect_status(StatusCode::OK);
    }
    let k = http.get(&format!("/v1/keys/{id}")).authorization(&admin).await.json();
    assert!(
        k["last_used_at"].is_string(),
        "the key use was written at shutdown: {k}"
    );
}

#[tokio::test]
async fn a_sigterm_as_soon_as_the_server_says_it_serves_stops_it_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    // `start_binary` returns as soon as the log says "serving on": the signal handlers are
    // in place by then, so this signal stops it gracefully instead of killing it.
    let (mut server, _url) = start_binary(dir.path(), &[]);
    let pid = server.pid().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || server.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert_eq!(status, Some(0), "a clean exit, not death by the signal: {log}");
}

/// Reads one HTTP/1.1 response (an interim one included) from `stream`, its body by its
/// `Content-Length`: (status, body). A connection closed first panics with what was read and
/// the server's log (`log`), which says why.
fn read_response(stream: &mut std::net::TcpStream, log: &std::path::Path) -> (u16, String) {
    use std::io::Read;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                return (status, body.to_owned());
            }
        }
        let n = stream.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "reading the response failed ({e}) after {text:?}; the server's log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        assert!(
            n > 0,
            "the connection closed before a whole response, after {text:?}; the server's log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        bytes.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_like_sigterm_finishes_the_request_in_flight_and_exits_0() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = start_binary(dir.path(), &[]);
    let host = url.trim_start_matches("http://").to_owned();
    let log = dir.path().join("server.log");
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A request in flight: its headers, asking to continue (as curl does for big bodies).
    // The server's "100 Continue" says it has started on the request; the body follows
    // only after the signal.
    let body = r#"{"name":"in flight"}"#;
    write!(
        stream,
        "POST /v1/keys HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        basic("admin", ADMIN_PASSWORD),
        body.len()
    )
    .unwrap();
    assert_eq!(read_response(&mut stream, &log).0, 100);

    let pid = server.pid().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let logged = crate::helpers::eventually(|| async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("SIGINT received: graceful stop"))
    })
    .await;
    assert!(
        logged,
        "the server says it stops gracefully: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    stream.write_all(body.as_bytes()).unwrap();
    let read_log = log.clone();
    let (status, answer) = tokio::task::spawn_blocking(move || read_response(&mut stream, &read_log))
        .await
        .unwrap();
    assert_eq!(status, 201, "the request in flight was finished: {answer}");
    let key = serde_json::from_str::<Value>(&answer).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = tokio::task::spawn_blocking(move || server.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(status, Some(0), "a clean exit");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("forced shutdown"), "{log}");

    // The key made while stopping is there after a restart.
    let (_server, url) = start_binary(dir.path(), &[]);
    Http::new(&url)
        .get("/v1/me")
        .api_key(&key)
        .await
        .expect_status(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_write_load_restores_to_the_keys_it_holds() {
    let app = spawn_with(|_| {}).await;
    let (_, key) = app.admin_key().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, key, stop) = (app.http.clone(), key.clone(), stop.clone());
        writers.spawn(async move {
            let mut made = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http
                    .post("/v1/keys")
                    .api_key(&key)
                    .await
                    .expect_status(StatusCode::CREATED);
                made.push(r.json()["key"].as_str().unwrap().to_owned());
            }
            made
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Everything acknowledged before the backup starts must be in it.
    let before: Vec<String> = {
        let db =
            rusqlite::Connection::open_with_flags(app.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        db.prepare("SELECT id FROM keys")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let backup = app.dir.path().join("backup.db");
    let (db, target) = (app.db_path(), backup.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_keyward"))
            .current_dir(db.parent().unwrap())
            .env("KEYWARD__DATABASE__PATH", &db)
            .args(["backup", target.to_str().unwrap()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while writers.join_next().await.is_some() {}

    let copy = rusqlite::Connection::open(&backup).unwrap();
    let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let in_backup: std::collections::HashSet<String> = copy
        .prepare("SELECT id FROM keys")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &before {
        assert!(
            in_backup.contains(id),
            "a key acknowledged before the backup is missing"
        );
    }
    let source =
        rusqlite::Connection::open_with_flags(app.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let now: std::collections::HashSet<String> = source
        .prepare("SELECT id FROM keys")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        in_backup.is_subset(&now),
        "the backup holds no key the source never had"
    );
    drop(copy);

    // Restore: stop, copy the file, start.
    let restored_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, restored_dir.path().join("keyward.db")).unwrap();
    let mut settings = crate::helpers::test_settings(&restored_dir);
    settings.auth.admin_password = None;
    let restored = crate::helpers::start(settings, restored_dir).await;
    assert_eq!(
        restored.me_status(&key).await,
        StatusCode::OK,
        "keys work on the restored copy"
    );
    let admin = basic("admin", ADMIN_PASSWORD);
    let list = restored.get("/v1/keys?limit=1").authorization(admin).await.json();
    assert_eq!(list["total"].as_u64().unwrap() as usize, in_backup.len());
}
