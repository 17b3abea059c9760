//! Many writers and readers at once: no 5xx, no "database is locked", nothing lost.
//! CI runs the short form; `CONTENTION_WRITERS=50 CONTENTION_READERS=200` the long one.

use std::time::Instant;

use reqwest::StatusCode;

use crate::helpers::spawn_app;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_and_readers_at_once_see_no_5xx_and_no_lock_errors() {
    let app = spawn_app().await;
    let (writers, readers, per_client) = (env_or("CONTENTION_WRITERS", 10), env_or("CONTENTION_READERS", 40), 20);
    let (_, key) = app.admin_key().await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (http, key) = (app.http.clone(), key.clone());
        tasks.spawn(async move {
            let mut made = Vec::new();
            for i in 0..per_client {
                let r = http
                    .post("/v1/keys")
                    .api_key(&key)
                    .json(&serde_json::json!({"name": format!("w{w}-{i}")}))
                    .await;
                let body = r.text();
                assert!(!body.contains("locked"), "{body}");
                assert_eq!(r.status(), StatusCode::CREATED, "{body}");
                let v = r.json();
                made.push(v["key"].as_str().unwrap().to_owned());
                // Revoke every fourth, so revocations contend too.
                if i % 4 == 0 {
                    http.delete(&format!("/v1/keys/{}", v["id"].as_str().unwrap()))
                        .api_key(&key)
                        .await
                        .expect_status(StatusCode::NO_CONTENT);
                    made.pop();
                }
            }
            made
        });
    }
    for _ in 0..readers {
        let (http, key) = (app.http.clone(), key.clone());
        tasks.spawn(async move {
            for i in 0..per_client {
                let path = if i % 2 == 0 { "/v1/me" } else { "/v1/keys?limit=20" };
                let r = http.get(path).api_key(&key).await;
                let body = r.text();
                assert!(!body.contains("locked"), "{body}");
                assert_eq!(r.status(), StatusCode::OK, "{path}: {body}");
            }
            Vec::new()
        });
    }
    let mut alive = Vec::new();
    while let Some(done) = tasks.join_next().await {
        alive.extend(done.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    let requests = (writers * per_client * 5 / 4) + readers * per_client;
    eprintln!(
        "contention: {writers} writers, {readers} readers, {requests} requests in {secs:.2} s ({:.0} req/s)",
        requests as f64 / secs
    );
    for key in alive.iter().step_by(7) {
        assert_eq!(app.me_status(key).await, StatusCode::OK);
    }
}
