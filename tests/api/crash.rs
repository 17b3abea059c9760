//! The built binary under `kill -9` while 8 clients create keys and 4 revoke them: every
//! create that got 201 still authenticates, every revoke that got 204 stays dead, the
//! database passes `integrity_check`, and the server starts again by itself.
//! CI runs 3 rounds; `CRASH_ROUNDS=20` is the long form.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ADMIN_PASSWORD, Http, basic, start_binary};

#[derive(Default)]
struct Ledger {
    /// Keys whose create was acknowledged (201) and not revoked since.
    alive: Vec<(String, String)>,
    /// Keys whose revoke was acknowledged (204).
    dead: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9_under_load() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let at = |address: &str| Http {
        address: address.to_owned(),
        client: client.clone(),
    };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let admin = basic("admin", ADMIN_PASSWORD);
    let (mut created, mut revoked) = (0usize, 0usize);

    for round in 0..=rounds {
        let (server, url) = start_binary(dir.path(), &[]);
        let http = at(&url);
        // Everything acknowledged so far holds.
        let (alive, dead) = {
            let l = ledger.lock().unwrap();
            (l.alive.clone(), l.dead.clone())
        };
        for (_, key) in &alive {
            assert_eq!(
                http.get("/v1/me").api_key(key).await.status(),
                StatusCode::OK,
                "an acknowledged key was lost (round {round})"
            );
        }
        for key in &dead {
            assert_eq!(
                http.get("/v1/me").api_key(key).await.status(),
                StatusCode::UNAUTHORIZED,
                "an acknowledged revoke was lost (round {round})"
            );
        }
        if round == rounds {
            break;
        }
        // A key to authenticate the load with (argon2 per request would be the bottleneck).
        let made = http.post("/v1/keys").authorization(&admin).await.json();
        let auth = made["key"].as_str().unwrap().to_owned();

        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (http, auth, ledger) = (http.clone(), auth.clone(), Arc::clone(&ledger));
            tasks.spawn(async move {
                let mut n = 0;
                loop {
                    let Ok(r) = http.post("/v1/keys").api_key(&auth).try_send().await else {
                        return (true, n);
                    };
                    if r.status() != StatusCode::CREATED {
                        return (true, n);
                    }
                    let Ok(made) = serde_json::from_slice::<Value>(r.bytes()) else {
                        return (true, n);
                    };
                    let entry = (
                        made["id"].as_str().unwrap().to_owned(),
                        made["key"].as_str().unwrap().to_owned(),
                    );
                    ledger.lock().unwrap().alive.push(entry);
                    n += 1;
                }
            });
        }
        for _ in 0..4 {
            let (http, auth, ledger) = (http.clone(), auth.clone(), Arc::clone(&ledger));
            tasks.spawn(async move {
                let mut n = 0;
                loop {
                    let victim = {
                        let mut l = ledger.lock().unwrap();
                        if l.alive.len() < 2 {
                            None
                        } else {
                            Some(l.alive.swap_remove(0))
                        }
                    };
                    let Some((id, key)) = victim else {
                        if http.get("/healthz").try_send().await.is_err() {
                            return (false, n); // the server is gone
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    match http.delete(&format!("/v1/keys/{id}")).api_key(&auth).try_send().await {
                        Ok(r) if r.status() == StatusCode::NO_CONTENT => {
                            ledger.lock().unwrap().dead.push(key);
                            n += 1;
                        }
                        // No answer: the revoke may or may not have happened; forget the key.
                        _ => return (false, n),
                    }
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(400 + 37 * round as u64)).await;
        drop(server); // SIGKILL mid-load: no shutdown code runs
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                (true, n) => created += n,
                (false, n) => revoked += n,
            }
        }
    }

    let db = rusqlite::Connection::open(dir.path().join("keyward.db")).unwrap();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let l = ledger.lock().unwrap();
    eprintln!(
        "crash: {rounds} rounds of kill -9; {created} creates and {revoked} revokes acknowledged; {} alive and {} dead keys checked, 0 lost",
        l.alive.len(),
        l.dead.len()
    );
    assert!(created > 0 && revoked > 0, "the load did something");
}
