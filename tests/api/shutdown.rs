//! Graceful shutdown and backups of a server under load.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ADMIN_PASSWORD, basic, spawn_with, start_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_requests_in_flight_loses_nothing_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = start_binary(dir.path(), &[]);
    let client = reqwest::Client::new();
    let admin = basic("admin", ADMIN_PASSWORD);
    let made: Value = client
        .post(format!("{url}/v1/keys"))
        .header("Authorization", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, key) = (
        made["id"].as_str().unwrap().to_owned(),
        made["key"].as_str().unwrap().to_owned(),
    );
    // A use, kept in memory: only the shutdown flush writes it within this test.
    assert_eq!(
        client
            .get(format!("{url}/v1/me"))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        tasks.spawn(async move {
            let mut acknowledged = Vec::new();
            for _ in 0..50 {
                match client
                    .post(format!("{url}/v1/keys"))
                    .header("X-API-Key", &key)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        acknowledged.push(r.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_owned())
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
    for k in &acknowledged {
        assert_eq!(
            client
                .get(format!("{url}/v1/me"))
                .header("X-API-Key", k)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    let k: Value = client
        .get(format!("{url}/v1/keys/{id}"))
        .header("Authorization", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        k["last_used_at"].is_string(),
        "the key use was written at shutdown: {k}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_write_load_restores_to_the_keys_it_holds() {
    let app = spawn_with(|_| {}).await;
    let (_, key) = app.admin_key().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, url, key, stop) = (app.client.clone(), app.address.clone(), key.clone(), stop.clone());
        writers.spawn(async move {
            let mut made = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .post(format!("{url}/v1/keys"))
                    .header("X-API-Key", &key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                made.push(r.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_owned());
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
    let list: Value = restored
        .request(reqwest::Method::GET, "/v1/keys?limit=1")
        .header("Authorization", admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"].as_u64().unwrap() as usize, in_backup.len());
}
