//! The offline revocation feed: `GET /v1/revocations?after=<cursor>`, in commit order,
//! covering every way a key stops being valid or is limited.

use std::collections::{HashMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// One page of the feed after `after` (none: from the start).
async fn page(app: &TestApp, token: &str, after: Option<&str>, limit: Option<u32>) -> Value {
    let mut path = "/v1/revocations".to_owned();
    let mut query = Vec::new();
    if let Some(after) = after {
        query.push(format!("after={after}"));
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    app.get_json(&path, token).await
}

/// Everything after `after`, following `next` while `more`: (entries, the last `next`).
async fn drain(app: &TestApp, token: &str, after: Option<String>, limit: Option<u32>) -> (Vec<Value>, String) {
    let mut entries = Vec::new();
    let mut after = after;
    loop {
        let body = page(app, token, after.as_deref(), limit).await;
        entries.extend(body["revocations"].as_array().unwrap().iter().cloned());
        after = Some(body["next"].as_str().unwrap().to_owned());
        if !body["more"].as_bool().unwrap() {
            return (entries, after.unwrap());
        }
    }
}

fn states(entries: &[Value]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn send(app: &TestApp, method: Method, path: &str, body: Value) -> StatusCode {
    app.call(method, path).as_(&app.admin).json(&body).await.status()
}

#[tokio::test]
async fn the_feed_carries_every_change_an_offline_verifier_needs_in_commit_order() {
    let app = spawn_app().await;
    let (_, start) = drain(&app, &app.admin, None, None).await;
    let (disabled, _) = app.admin_key().await;
    let (rotated, _) = app.admin_key().await;
    let (revoked, _) = app.admin_key().await;
    assert_eq!(
        send(
            &app,
            Method::PATCH,
            &format!("/v1/keys/{disabled}"),
            json!({"disabled": true})
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            Method::PATCH,
            &format!("/v1/keys/{disabled}"),
            json!({"disabled": false})
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            Method::POST,
            &format!("/v1/keys/{rotated}/rotate"),
            json!({"grace": "1h"})
        )
        .await,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&app, Method::DELETE, &format!("/v1/keys/{revoked}"), json!({})).await,
        StatusCode::NO_CONTENT
    );

    // A user's change is one entry for each of their keys.
    let (ada, ada_token) = app.user("ada").await;
    let a1 = app.create_key(&ada_token, json!({"name": "one"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a2 = app.create_key(&ada_token, json!({"name": "two"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A key disabled on its own stays disabled when its user is enabled again.
    assert_eq!(
        send(
            &app,
            Method::PATCH,
            &format!("/v1/users/{ada}/keys/{a2}"),
            json!({"disabled": true})
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            Method::PATCH,
            &format!("/v1/users/{ada}"),
            json!({"disabled": true})
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            Method::PATCH,
            &format!("/v1/users/{ada}"),
            json!({"disabled": false})
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::DELETE, &format!("/v1/users/{ada}"), json!({})).await,
        StatusCode::NO_CONTENT
    );

    let (entries, _) = drain(&app, &app.admin, Some(start), None).await;
    let s = |id: &str, state: &str| (id.to_owned(), state.to_owned());
    assert_eq!(
        states(&entries),
        vec![
            s(&disabled, "disabled"),
            s(&disabled, "enabled"),
            s(&rotated, "shortened"),
            s(&revoked, "revoked"),
            s(&a2, "disabled"),
            s(&a1, "disabled"),
            s(&a2, "disabled"),
            s(&a1, "enabled"),
            s(&a2, "disabled"),
            s(&a1, "revoked"),
            s(&a2, "revoked"),
        ]
    );
    let shortened = &entries[2];
    let not_after = time::OffsetDateTime::parse(
        shortened["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let at = time::OffsetDateTime::parse(
        shortened["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(not_after - at >= time::Duration::hours(1), "{shortened}");
    for e in &entries {
        if e["state"] != "shortened" {
            assert!(e["not_after"].is_null(), "{e}");
        }
    }
}

#[tokio::test]
async fn a_poller_that_follows_next_misses_nothing_while_writes_race() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(app.admin_key().await.0);
    }
    let (_, start) = drain(&app, &app.admin, None, None).await;
    // Four writers revoke and disable keys at once while the poller reads small pages.
    let writers: Vec<_> = ids
        .chunks(15)
        .map(|chunk| {
            let (app, chunk) = (std::sync::Arc::clone(&app), chunk.to_vec());
            tokio::spawn(async move {
                for (i, id) in chunk.iter().enumerate() {
                    let status = if i % 3 == 0 {
                        send(
                            &app,
                            Method::PATCH,
                            &format!("/v1/keys/{id}"),
                            json!({"disabled": true}),
                        )
                        .await
                    } else {
                        send(&app, Method::DELETE, &format!("/v1/keys/{id}"), json!({})).await
                    };
                    assert!(status.is_success(), "{status}");
                }
            })
        })
        .collect();
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut next = start.clone();
    let poll_app = std::sync::Arc::clone(&app);
    let poller = tokio::spawn(async move {
        for _ in 0..200 {
            let (entries, after) = drain(&poll_app, &poll_app.admin, Some(next.clone()), Some(3)).await;
            seen.extend(states(&entries));
            next = after;
            tokio::task::yield_now().await;
        }
        (seen, next)
    });
    for w in writers {
        w.await.unwrap();
    }
    let (mut seen, next) = poller.await.unwrap();
    // Whatever committed after the poller's last look is found from its last `next`.
    let (rest, _) = drain(&app, &app.admin, Some(next), Some(3)).await;
    seen.extend(states(&rest));
    let (all, _) = drain(&app, &app.admin, Some(start), None).await;
    assert_eq!(seen, states(&all), "the poller saw exactly the feed, in order");
    let last: HashMap<String, String> = seen.into_iter().collect();
    for (i, id) in ids.iter().enumerate() {
        let expected = if i % 15 % 3 == 0 { "disabled" } else { "revoked" };
        assert_eq!(last.get(id).map(String::as_str), Some(expected), "{id}");
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 60);
}

#[tokio::test]
async fn bad_cursors_and_limits_are_400_and_the_feed_needs_a_verifier() {
    let app = spawn_app().await;
    for query in ["after=x", "after=-1", "limit=0", "limit=1001", "since=0&after=1"] {
        app.get(&format!("/v1/revocations?{query}"))
            .as_(&app.admin)
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    let body = page(&app, &app.admin, None, Some(1)).await;
    assert_eq!(body["revocations"], json!([]));
    assert_eq!(body["more"], false);
    let (_, ada) = app.user("ada").await;
    app.get("/v1/revocations")
        .as_(&ada)
        .await
        .problem(StatusCode::FORBIDDEN);
}
