//! The built binary under `kill -9`: every acknowledged create still authenticates, every
//! acknowledged revoke stays dead. (The long, concurrent form is the hardening issue's.)

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{ADMIN_PASSWORD, basic, start_binary};

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let admin = basic("admin", ADMIN_PASSWORD);
    let mut alive = Vec::new();
    let mut dead = Vec::new();
    // Three rounds of writes, each ended by SIGKILL; a fourth start only checks.
    for round in 0..4 {
        let (server, url) = start_binary(dir.path(), &[]);
        for key in alive.iter().chain(dead.iter()) {
            let expected = if alive.contains(key) {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            let r = client
                .get(format!("{url}/v1/me"))
                .header("X-API-Key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), expected, "round {round}");
        }
        if round == 3 {
            break;
        }
        for i in 0..10 {
            let r = client
                .request(Method::POST, format!("{url}/v1/keys"))
                .header("Authorization", &admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let made: Value = r.json().await.unwrap();
            let key = made["key"].as_str().unwrap().to_owned();
            if i % 3 == 0 {
                let r = client
                    .delete(format!("{url}/v1/keys/{}", made["id"].as_str().unwrap()))
                    .header("Authorization", &admin)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::NO_CONTENT);
                dead.push(key);
            } else {
                alive.push(key);
            }
        }
        drop(server); // SIGKILL: no shutdown code runs
    }
    assert_eq!(alive.len() + dead.len(), 30);
}
