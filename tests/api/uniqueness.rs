//! Keys created concurrently never share an id or a hash. CI: 10,000 keys;
//! `UNIQUENESS_KEYS=100000` for the long form.

use std::collections::HashSet;

use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrently_created_keys_have_distinct_ids_and_hashes() {
    let app = spawn_app().await;
    let total: usize = std::env::var("UNIQUENESS_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let clients = 32;
    let (_, key) = app.admin_key().await;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, key) = (app.http.clone(), key.clone());
        let n = total / clients + usize::from(c < total % clients);
        tasks.spawn(async move {
            let mut made = Vec::with_capacity(n);
            for _ in 0..n {
                let r = http
                    .post("/v1/keys")
                    .api_key(&key)
                    .await
                    .expect_status(StatusCode::CREATED);
                let v = r.json();
                made.push((
                    v["id"].as_str().unwrap().to_owned(),
                    v["key"].as_str().unwrap().to_owned(),
                ));
            }
            made
        });
    }
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        for (id, key) in done.unwrap() {
            assert!(ids.insert(id), "duplicate id");
            assert!(keys.insert(key), "duplicate key");
        }
    }
    assert_eq!(ids.len(), total);
    // And in the database: one row per key, every id and hash distinct.
    let db = rusqlite::Connection::open_with_flags(app.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (rows, distinct_ids, distinct_hashes): (i64, i64, i64) = db
        .query_row(
            "SELECT count(*), count(DISTINCT id), count(DISTINCT hash) FROM keys",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(rows as usize, total + 1);
    assert_eq!(distinct_ids, rows);
    assert_eq!(distinct_hashes, rows);
}
