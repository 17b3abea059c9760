//! Per-key rate limits (GCRA) and credits: set, shown, changed by the right people, and
//! enforced on every route, the verify API and forward-auth; never overspent, under 32
//! concurrent clients and across `kill -9`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, Http, Reply, TestApp, basic, spawn_app, spawn_with, start_binary};

const RATE_LIMITED: &str = "urn:keyward:problem:rate-limited";
const USAGE_EXCEEDED: &str = "urn:keyward:problem:usage-exceeded";

/// Creates a key with `body` as the admin: (id, key, the 201 body).
async fn limited_key(app: &TestApp, body: Value) -> (String, String, Value) {
    let k = app.create_key(&app.admin, body).await;
    (
        k["id"].as_str().unwrap().to_owned(),
        k["key"].as_str().unwrap().to_owned(),
        k,
    )
}

/// Sends `total` requests to `/v1/me` with `key` from `clients` concurrent clients; the
/// statuses, counted.
async fn hammer(http: &Http, key: &str, clients: usize, total: usize) -> (usize, usize, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let (ok, refused, other) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, key, next) = (http.clone(), key.to_owned(), Arc::clone(&next));
        let (ok, refused, other) = (Arc::clone(&ok), Arc::clone(&refused), Arc::clone(&other));
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < total {
                let Ok(r) = http.get("/v1/me").api_key(&key).try_send().await else {
                    other.fetch_add(1, Ordering::SeqCst);
                    continue;
                };
                match r.status() {
                    StatusCode::OK => ok.fetch_add(1, Ordering::SeqCst),
                    StatusCode::TOO_MANY_REQUESTS => refused.fetch_add(1, Ordering::SeqCst),
                    _ => other.fetch_add(1, Ordering::SeqCst),
                };
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (
        ok.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
        other.load(Ordering::SeqCst),
    )
}

#[tokio::test]
async fn limits_are_set_on_create_shown_on_the_key_and_echoed_as_given() {
    let app = spawn_app().await;
    let (id, _, created) = limited_key(
        &app,
        json!({"name": "metered",
               "ratelimits": [{"name": "requests", "limit": 100, "duration": "1m"},
                              {"name": "burst", "limit": 10, "duration": 1}],
               "credits": {"remaining": 10000, "refill": {"interval": "monthly", "amount": 10000}}}),
    )
    .await;
    let expected_limits = json!([{"name": "requests", "limit": 100, "duration": "1m"},
                                 {"name": "burst", "limit": 10, "duration": 1}]);
    assert_eq!(created["ratelimits"], expected_limits);
    assert_eq!(
        created["credits"],
        json!({"remaining": 10000, "refill": {"interval": "monthly", "amount": 10000}})
    );
    let key = app.get_json(&format!("/v1/keys/{id}"), &app.admin).await;
    assert_eq!(key["ratelimits"], expected_limits);
    assert_eq!(key["credits"]["remaining"], 10000);
    let plain = app.create_key(&app.admin, json!({"name": "plain"})).await;
    assert_eq!(
        (plain["ratelimits"].clone(), plain["credits"].clone()),
        (json!([]), Value::Null)
    );
}

#[tokio::test]
async fn malformed_limits_are_400_naming_the_field() {
    let app = spawn_app().await;
    for body in [
        json!({"ratelimits": [{"name": "r", "limit": 0, "duration": "1m"}]}),
        json!({"ratelimits": [{"name": "r", "limit": 5, "duration": "never"}]}),
        json!({"ratelimits": [{"name": "r", "limit": 5, "duration": 0}]}),
        json!({"ratelimits": [{"name": "r r", "limit": 5, "duration": 1}]}),
        json!({"ratelimits": [{"name": "r", "limit": 5, "duration": 1}, {"name": "r", "limit": 5, "duration": 2}]}),
        json!({"ratelimits": (0..11).map(|i| json!({"name": format!("l{i}"), "limit": 1, "duration": 1})).collect::<Vec<_>>()}),
        json!({"credits": {"remaining": 5, "refill": {"interval": "weekly", "amount": 5}}}),
        json!({"credits": {"add": 5}}),
        json!({"credits": {"remaining": -1}}),
    ] {
        let r = app.post("/v1/keys").as_(&app.admin).json(&body).await;
        let problem = r.problem(StatusCode::BAD_REQUEST);
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("ratelimits") || detail.contains("credits"),
            "{body}: {detail}"
        );
        assert!(!detail.contains("enum"), "no Rust in the message: {detail}");
    }
}

#[tokio::test]
async fn patch_replaces_clears_and_adds_and_is_audited() {
    let app = spawn_app().await;
    let (id, _, _) = limited_key(
        &app,
        json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "1m"}], "credits": {"remaining": 10}}),
    )
    .await;
    let path = format!("/v1/keys/{id}");
    let patch = |body: Value| {
        let (app, path) = (&app, path.clone());
        async move { app.patch(&path).as_(&app.admin).json(&body).await }
    };
    let r = patch(json!({"credits": {"add": 500}})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json()["credits"]["remaining"], 510);
    assert_eq!(r.json()["ratelimits"][0]["limit"], 100, "limits untouched");
    let r = patch(json!({"ratelimits": [{"name": "slow", "limit": 1, "duration": "1h"}]})).await;
    assert_eq!(
        r.json()["ratelimits"],
        json!([{"name": "slow", "limit": 1, "duration": "1h"}])
    );
    let r = patch(json!({"ratelimits": [], "credits": null})).await;
    assert_eq!(
        (r.json()["ratelimits"].clone(), r.json()["credits"].clone()),
        (json!([]), Value::Null)
    );
    let r = patch(json!({"ratelimits": null})).await;
    assert_eq!(r.status(), StatusCode::OK);

    let lines = app.audit_lines("key.limits").await;
    let details: Vec<&str> = lines.iter().filter_map(|l| l["detail"].as_str()).collect();
    assert!(details.contains(&"credits+=500"), "{details:?}");
    assert!(details.contains(&"ratelimits=slow:1/3600s"), "{details:?}");
    assert!(details.contains(&"ratelimits=none, credits=unlimited"), "{details:?}");
}

#[tokio::test]
async fn owners_may_only_tighten_and_only_admins_loosen() {
    let app = spawn_app().await;
    let (ada, ada_token) = app.user("ada").await;
    let created = app
        .post(&format!("/v1/users/{ada}/keys"))
        .as_(&app.admin)
        .json(&json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "1m"}], "credits": {"remaining": 100}}))
        .await
        .json();
    let path = format!("/v1/keys/{}", created["id"].as_str().unwrap());
    for (body, status) in [
        (json!({"credits": {"add": 1}}), StatusCode::FORBIDDEN),
        (json!({"credits": {"remaining": 101}}), StatusCode::FORBIDDEN),
        (json!({"credits": null}), StatusCode::FORBIDDEN),
        (json!({"ratelimits": []}), StatusCode::FORBIDDEN),
        (
            json!({"ratelimits": [{"name": "requests", "limit": 101, "duration": "1m"}]}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "30s"}]}),
            StatusCode::FORBIDDEN,
        ),
        (json!({"credits": {"remaining": 50}}), StatusCode::OK),
        (
            json!({"ratelimits": [{"name": "fewer", "limit": 10, "duration": "1m"}, {"name": "burst", "limit": 1, "duration": 1}]}),
            StatusCode::OK,
        ),
        (json!({"credits": {"remaining": 60}}), StatusCode::FORBIDDEN),
    ] {
        let r = app.patch(&path).as_(&ada_token).json(&body).await;
        assert_eq!(r.status(), status, "{body}");
    }
    let key = app.get_json(&path, &ada_token).await;
    assert_eq!(key["credits"]["remaining"], 50);
    // The admin loosens.
    let r = app
        .patch(&format!("/v1/users/{ada}/keys/{}", key["id"].as_str().unwrap()))
        .as_(&app.admin)
        .json(&json!({"credits": {"add": 1000}, "ratelimits": []}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json()["credits"]["remaining"], 1050);
}

#[tokio::test]
async fn a_key_cannot_make_a_key_looser_than_itself() {
    let app = spawn_app().await;
    let (_, parent, _) = limited_key(
        &app,
        json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "1m"}], "credits": {"remaining": 1000}}),
    )
    .await;
    for body in [
        json!({"name": "free"}),
        json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "1m"}]}),
        json!({"ratelimits": [{"name": "requests", "limit": 200, "duration": "1m"}], "credits": {"remaining": 10}}),
        json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "1m"}], "credits": {"remaining": 1001}}),
    ] {
        let r = app.post("/v1/keys").api_key(&parent).json(&body).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{body}");
    }
    let r = app
        .post("/v1/keys")
        .api_key(&parent)
        .json(&json!({"ratelimits": [{"name": "child", "limit": 10, "duration": "1m"}], "credits": {"remaining": 10}}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_admits_at_most_its_limit_at_32_clients_then_admits_again() {
    let app = spawn_app().await;
    // 10 an hour: one more every 6 minutes, far longer than the test takes on the running
    // clock, so what the limit admits is exactly its burst until the clock is moved on.
    let (_, key, _) = limited_key(
        &app,
        json!({"ratelimits": [{"name": "requests", "limit": 10, "duration": "1h"}]}),
    )
    .await;
    let (ok, refused, other) = hammer(&app.http, &key, 32, 320).await;
    assert_eq!((ok, refused, other), (10, 310, 0));

    let r = app.get("/v1/me").api_key(&key).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.problem(StatusCode::TOO_MANY_REQUESTS)["type"], RATE_LIMITED);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=360).contains(&retry), "{retry}");
    assert_eq!(r.header("ratelimit-policy"), Some(r#""requests";q=10;w=3600"#));
    assert_eq!(
        r.header("ratelimit"),
        Some(format!(r#""requests";r=0;t={retry}"#).as_str())
    );

    // After one emission interval, one more; after the whole window, the whole burst.
    app.advance(Duration::from_secs(360));
    assert_eq!(hammer(&app.http, &key, 32, 64).await, (1, 63, 0));
    app.advance(Duration::from_secs(3600));
    assert_eq!(hammer(&app.http, &key, 32, 64).await, (10, 54, 0));
}

#[tokio::test]
async fn accepted_requests_of_a_limited_key_carry_ratelimit_and_unlimited_keys_none() {
    let app = spawn_app().await;
    let (_, key, _) = limited_key(
        &app,
        json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "1h"}, {"name": "burst", "limit": 5, "duration": 1}]}),
    )
    .await;
    let r = app.get("/v1/me").api_key(&key).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.header("ratelimit-policy"),
        Some(r#""requests";q=100;w=3600, "burst";q=5;w=1"#)
    );
    let state = r.header("ratelimit").unwrap();
    assert!(
        state.starts_with(r#""requests";r=99;t="#) && state.contains(r#""burst";r=4;t="#),
        "{state}"
    );
    let (_, plain) = app.admin_key().await;
    let r = app.get("/v1/me").api_key(&plain).await;
    assert_eq!((r.header("ratelimit"), r.header("ratelimit-policy")), (None, None));
    // Every route counts: a list made with the key is one more request.
    let r = app.get("/v1/keys").api_key(&key).await;
    assert!(r.header("ratelimit").unwrap().starts_with(r#""requests";r=98;"#));
}

/// `RateLimit-Policy` is rendered once per key's limits and shared by its answers: a
/// change of the limits shows at the next answer, and a key of a limited user names both
/// its own limits and its user's, the key's first.
#[tokio::test]
async fn the_ratelimit_policy_follows_changes_to_the_limits_of_a_key_and_its_user() {
    let app = spawn_app().await;
    let (id, key, _) = limited_key(
        &app,
        json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "1h"}]}),
    )
    .await;
    let policy = |r: &Reply| r.header("ratelimit-policy").map(str::to_owned);
    let me = app.get_json("/v1/me", &app.admin).await;
    let (key_path, user_path) = (
        format!("/v1/keys/{id}"),
        format!("/v1/users/{}", me["user"]["id"].as_str().unwrap()),
    );
    // The admin changes `path` with `body`; then the key asks: its answer.
    let changed = |path: &str, body: Value| {
        let (app, key, path) = (&app, &key, path.to_owned());
        async move {
            app.patch(&path)
                .as_(&app.admin)
                .json(&body)
                .await
                .expect_status(StatusCode::OK);
            app.get("/v1/me").api_key(key).await.expect_status(StatusCode::OK)
        }
    };
    let r = app.get("/v1/me").api_key(&key).await.expect_status(StatusCode::OK);
    assert_eq!(policy(&r).as_deref(), Some(r#""requests";q=100;w=3600"#));
    let r = app.get("/v1/me").api_key(&key).await.expect_status(StatusCode::OK);
    assert_eq!(policy(&r).as_deref(), Some(r#""requests";q=100;w=3600"#));

    let r = changed(
        &key_path,
        json!({"ratelimits": [{"name": "requests", "limit": 50, "duration": "1m"}]}),
    )
    .await;
    assert_eq!(policy(&r).as_deref(), Some(r#""requests";q=50;w=60"#));

    let r = changed(
        &user_path,
        json!({"ratelimits": [{"name": "user-requests", "limit": 1000, "duration": "1d"}]}),
    )
    .await;
    assert_eq!(
        policy(&r).as_deref(),
        Some(r#""requests";q=50;w=60, "user-requests";q=1000;w=86400"#)
    );
    let state = r.header("ratelimit").unwrap();
    assert!(
        state.starts_with(r#""requests";r="#) && state.contains(r#", "user-requests";r=999;t="#),
        "{state}"
    );

    // Rate limits taken off the key, credits given: only its user's limits are left to name.
    let r = changed(&key_path, json!({"ratelimits": null, "credits": {"remaining": 100}})).await;
    assert_eq!(policy(&r).as_deref(), Some(r#""user-requests";q=1000;w=86400"#));
    // And the user's changed: the next answer says so.
    let r = changed(
        &user_path,
        json!({"ratelimits": [{"name": "user-requests", "limit": 500, "duration": "1d"}]}),
    )
    .await;
    assert_eq!(policy(&r).as_deref(), Some(r#""user-requests";q=500;w=86400"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credits_are_never_overspent_by_32_clients() {
    let app = spawn_app().await;
    let (id, key, _) = limited_key(&app, json!({"credits": {"remaining": 500}})).await;
    let (ok, refused, other) = hammer(&app.http, &key, 32, 2000).await;
    assert_eq!((ok, refused, other), (500, 1500, 0));
    let r = app.get("/v1/me").api_key(&key).await;
    let problem = r.problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(problem["type"], USAGE_EXCEEDED);
    assert_eq!(r.header("retry-after"), None, "no refill, no time to wait for");
    let shown = app.get_json(&format!("/v1/keys/{id}"), &app.admin).await;
    assert_eq!(shown["credits"]["remaining"], 0);
    // An admin adds more: they are spent again.
    app.patch(&format!("/v1/keys/{id}"))
        .as_(&app.admin)
        .json(&json!({"credits": {"add": 3}}))
        .await;
    assert_eq!(hammer(&app.http, &key, 8, 20).await, (3, 17, 0));

    let metrics = app.get("/metrics").as_(&app.admin).await.text();
    assert!(
        metrics.contains(r#"keyward_limit_refusals_total{reason="usage_exceeded"} 1518"#),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("refusals"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn remaining_shows_what_is_left_as_of_now() {
    let app = spawn_app().await;
    let (id, key, _) = limited_key(&app, json!({"credits": {"remaining": 100}})).await;
    for _ in 0..7 {
        app.get("/v1/me").api_key(&key).await.expect_status(StatusCode::OK);
    }
    let shown = app.get_json(&format!("/v1/keys/{id}"), &app.admin).await;
    assert_eq!(shown["credits"]["remaining"], 93);
    let listed = app.get_json("/v1/keys", &app.admin).await;
    let mine = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["credits"]["remaining"], 93);
}

#[tokio::test]
async fn credits_are_refilled_at_the_utc_day_boundary_even_after_idling() {
    let app = spawn_app().await;
    let (id, key, _) = limited_key(
        &app,
        json!({"credits": {"remaining": 2, "refill": {"interval": "daily", "amount": 5}}}),
    )
    .await;
    assert_eq!(hammer(&app.http, &key, 1, 4).await, (2, 2, 0));
    let r = app.get("/v1/me").api_key(&key).await;
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "until the next UTC midnight: {retry}");
    app.advance(Duration::from_secs(3 * 86_400));
    let admin = app.login("admin", ADMIN_PASSWORD).await;
    let shown = app.get_json(&format!("/v1/keys/{id}"), &admin).await;
    assert_eq!(shown["credits"]["remaining"], 5, "refilled, as of now, before any use");
    assert_eq!(hammer(&app.http, &key, 1, 7).await, (5, 2, 0));
}

#[tokio::test]
async fn verify_charges_cost_in_credits_and_one_against_each_limit() {
    let app = spawn_app().await;
    let (_, key, _) = limited_key(
        &app,
        json!({"ratelimits": [{"name": "requests", "limit": 3, "duration": "1h"}], "credits": {"remaining": 10}}),
    )
    .await;
    let verify = |body: Value| {
        let app = &app;
        async move {
            let r = app.post("/v1/verify").as_(&app.admin).json(&body).await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json()
        }
    };
    let v = verify(json!({"key": key, "cost": 4})).await;
    assert_eq!((v["valid"].clone(), v["code"].clone()), (json!(true), json!("VALID")));
    assert_eq!(v["credits"], json!({"remaining": 6}));
    assert_eq!(v["ratelimits"][0]["name"], "requests");
    assert_eq!(v["ratelimits"][0]["limit"], 3);
    assert_eq!(v["ratelimits"][0]["remaining"], 2);
    assert!(v["ratelimits"][0]["reset_at"].as_str().unwrap().ends_with('Z'));
    let v = verify(json!({"key": key, "cost": 0})).await;
    assert_eq!(
        (v["code"].clone(), v["credits"]["remaining"].clone()),
        (json!("VALID"), json!(6))
    );
    let v = verify(json!({"key": key, "cost": 7})).await;
    assert_eq!(
        (v["valid"].clone(), v["code"].clone()),
        (json!(false), json!("USAGE_EXCEEDED"))
    );
    // The refused check gave its request back to the limit: one is left.
    let v = verify(json!({"key": key, "cost": 6})).await;
    assert_eq!(
        (v["code"].clone(), v["credits"]["remaining"].clone()),
        (json!("VALID"), json!(0))
    );
    let v = verify(json!({"key": key, "cost": 0})).await;
    assert_eq!(
        (v["valid"].clone(), v["code"].clone()),
        (json!(false), json!("RATE_LIMITED"))
    );
    // An unlimited key says nothing of limits.
    let (_, plain) = app.admin_key().await;
    let v = verify(json!({"key": plain})).await;
    assert!(v.get("ratelimits").is_none() && v.get("credits").is_none(), "{v}");
}

#[tokio::test]
async fn forward_auth_answers_429_with_the_headers_or_403_when_asked() {
    let app = spawn_app().await;
    let (_, key, _) = limited_key(
        &app,
        json!({"ratelimits": [{"name": "requests", "limit": 1, "duration": "1h"}]}),
    )
    .await;
    let r = app.get("/v1/forward-auth").api_key(&key).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.header("ratelimit").is_some());
    let r = app.get("/v1/forward-auth").api_key(&key).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("ratelimit-policy"), Some(r#""requests";q=1;w=3600"#));
    let r = app.get("/v1/forward-auth?limited=403").api_key(&key).await;
    let problem = r.problem(StatusCode::FORBIDDEN);
    assert_eq!(
        (problem["type"].as_str(), problem["status"].as_u64()),
        (Some(RATE_LIMITED), Some(403))
    );
    assert!(r.header("retry-after").is_some());
    assert!(r.header("ratelimit").unwrap().starts_with(r#""requests";r=0;"#));
}

#[tokio::test]
async fn rotation_carries_the_limits_and_moves_the_credits() {
    let app = spawn_app().await;
    let (id, old, _) = limited_key(
        &app,
        json!({"ratelimits": [{"name": "requests", "limit": 100, "duration": "1m"}], "credits": {"remaining": 50}}),
    )
    .await;
    for _ in 0..5 {
        app.get("/v1/me").api_key(&old).await.expect_status(StatusCode::OK);
    }
    let r = app
        .post(&format!("/v1/keys/{id}/rotate"))
        .as_(&app.admin)
        .json(&json!({"grace": "1h"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let new = r.json();
    assert_eq!(new["ratelimits"][0]["name"], "requests");
    // The old key's unspent block on this node is given up with its balance: the new key
    // gets the balance the database held, never more than was left.
    let remaining = new["credits"]["remaining"].as_u64().unwrap();
    assert!((45 - 8..=45).contains(&remaining), "{remaining}");
    let r = app.get("/v1/me").api_key(&old).await;
    assert_eq!(r.problem(StatusCode::TOO_MANY_REQUESTS)["type"], USAGE_EXCEEDED);
    // Its grace serves nothing, not even a check that costs nothing (README says so).
    let v = app
        .post("/v1/verify")
        .as_(&app.admin)
        .json(&json!({"key": old, "cost": 0}))
        .await
        .json();
    assert_eq!(
        (v["valid"].clone(), v["code"].clone()),
        (json!(false), json!("USAGE_EXCEEDED")),
        "{v}"
    );
    let new_key = new["key"].as_str().unwrap();
    app.get("/v1/me").api_key(new_key).await.expect_status(StatusCode::OK);
}

#[tokio::test]
async fn a_key_with_credits_in_use_rotates_itself() {
    let app = spawn_app().await;
    let (id, old, _) = limited_key(&app, json!({"expires": "never", "credits": {"remaining": 100}})).await;
    // Used: this node holds a block of its credits, which the key as shown counts.
    for _ in 0..3 {
        app.get("/v1/me").api_key(&old).await.expect_status(StatusCode::OK);
    }
    let r = app.post(&format!("/v1/keys/{id}/rotate")).api_key(&old).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text());
    let new = r.json();
    let remaining = new["credits"]["remaining"].as_u64().unwrap();
    assert!(
        (100 - 64..=96).contains(&remaining),
        "the balance moved, never more: {remaining}"
    );
    let new_key = new["key"].as_str().unwrap();
    app.get("/v1/me").api_key(new_key).await.expect_status(StatusCode::OK);
    // Without a grace, the old key ends at once.
    app.get("/v1/me")
        .api_key(&old)
        .await
        .expect_status(StatusCode::UNAUTHORIZED);
}

/// The built binary, `kill -9` while 16 clients spend a key's 500 credits, twice: after each
/// restart the key keeps spending what is left, and the total of successes never passes
/// 500. What a crash loses is at most one block (64) a kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credits_are_never_overspent_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let admin = basic("admin", ADMIN_PASSWORD);
    let (server, url) = start_binary(dir.path(), &[]);
    let http = Http::new(&url);
    let created = http
        .post("/v1/keys")
        .authorization(&admin)
        .json(&json!({"credits": {"remaining": 500}}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let key = created.json()["key"].as_str().unwrap().to_owned();
    let mut server = Some(server);
    let mut http = http;
    let mut total = 0;
    for round in 0..3 {
        let (ok, _, _) = hammer(&http, &key, 16, if round < 2 { 150 } else { 1000 }).await;
        total += ok;
        assert!(total <= 500, "spent {total} of 500 (round {round})");
        drop(server.take()); // SIGKILL: no shutdown code runs
        let (next, url) = start_binary(dir.path(), &[]);
        server = Some(next);
        http = Http::new(&url);
    }
    let (ok, _, other) = hammer(&http, &key, 16, 200).await;
    total += ok;
    assert_eq!(other, 0);
    assert!(total <= 500, "spent {total} of 500");
    assert!(total >= 500 - 3 * 64, "a kill loses at most one block: {total}");
}

/// A user's limits are shared by all of their keys: minting more keys buys no more quota.
/// Only an admin sets them (`PATCH /v1/users/{id}`); the user object shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_limits_are_shared_by_all_their_keys() {
    let app = spawn_app().await;
    let (ada, ada_token) = app.user("ada").await;
    let r = app
        .patch(&format!("/v1/users/{ada}"))
        .as_(&app.admin)
        .json(
            &json!({"ratelimits": [{"name": "user-requests", "limit": 30, "duration": "1h"}],
                      "credits": {"remaining": 20}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json()["credits"]["remaining"], 20);
    assert_eq!(r.json()["ratelimits"][0]["name"], "user-requests");
    // Not for the user themself.
    let r = app
        .patch(&format!("/v1/users/{ada}"))
        .as_(&ada_token)
        .json(&json!({"credits": {"add": 100}}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let first = app.create_key(&ada_token, json!({"name": "one"})).await;
    let second = app.create_key(&ada_token, json!({"name": "two"})).await;
    let (one, two) = (first["key"].as_str().unwrap(), second["key"].as_str().unwrap());
    let (ok_one, _, _) = hammer(&app.http, one, 16, 40).await;
    let (ok_two, _, _) = hammer(&app.http, two, 16, 40).await;
    assert_eq!(
        ok_one + ok_two,
        20,
        "{ok_one} + {ok_two}: the user's 20 credits, shared"
    );
    let r = app.get("/v1/me").api_key(two).await;
    assert_eq!(r.problem(StatusCode::TOO_MANY_REQUESTS)["type"], USAGE_EXCEEDED);
    let shown = app.get_json(&format!("/v1/users/{ada}"), &app.admin).await;
    assert_eq!(shown["credits"]["remaining"], 0);

    // More credits for the user; the user's rate limit (30 an hour) is shared too, and an
    // accepted request names it in `RateLimit`.
    app.patch(&format!("/v1/users/{ada}"))
        .as_(&app.admin)
        .json(&json!({"credits": {"add": 1000}}))
        .await
        .expect_status(StatusCode::OK);
    let r = app.get("/v1/me").api_key(one).await.expect_status(StatusCode::OK);
    assert!(r.header("ratelimit").unwrap().starts_with(r#""user-requests";r="#));
    let (ok_one, _, _) = hammer(&app.http, one, 16, 40).await;
    let (ok_two, _, _) = hammer(&app.http, two, 16, 40).await;
    // 20 and the one above were the first 21 requests of the hour.
    assert_eq!(1 + ok_one + ok_two, 30 - 20, "the hour's remaining requests");

    // Cleared: unlimited again.
    app.patch(&format!("/v1/users/{ada}"))
        .as_(&app.admin)
        .json(&json!({"ratelimits": null, "credits": null}))
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(hammer(&app.http, one, 8, 50).await, (50, 0, 0));
}

/// Changing a key's limits or credits never hands out a fresh burst: a limit keeps its
/// state by name.
#[tokio::test]
async fn changing_limits_or_credits_does_not_reset_a_rate_limit() {
    let app = spawn_app().await;
    let (ada, ada_token) = app.user("ada").await;
    let made = app
        .post(&format!("/v1/users/{ada}/keys"))
        .as_(&app.admin)
        .json(
            &json!({"ratelimits": [{"name": "requests", "limit": 2, "duration": "1h"}], "credits": {"remaining": 100}}),
        )
        .await
        .json();
    let (id, key) = (made["id"].as_str().unwrap(), made["key"].as_str().unwrap());
    assert_eq!(hammer(&app.http, key, 1, 3).await, (2, 1, 0));
    for body in [
        json!({"credits": {"remaining": 50}}),
        json!({"ratelimits": [{"name": "requests", "limit": 1, "duration": "1h"}]}),
        json!({"name": "renamed"}),
    ] {
        app.patch(&format!("/v1/keys/{id}"))
            .as_(&ada_token)
            .json(&body)
            .await
            .expect_status(StatusCode::OK);
        let r = app.get("/v1/me").api_key(key).await;
        assert_eq!(
            r.problem(StatusCode::TOO_MANY_REQUESTS)["type"],
            RATE_LIMITED,
            "after {body}"
        );
    }
}

/// Credits are bounded by 2^50 (held exactly by both backends' 64-bit columns): a balance,
/// a refill amount, an addition, and a balance with an addition past it are each a 400
/// naming the field, never a 500, and the balance never wraps or rounds. Runs on
/// PostgreSQL too (`on_postgres`).
#[tokio::test]
async fn credits_past_the_maximum_are_400_naming_the_field() {
    const MAX: u64 = 1 << 50;
    let app = spawn_app().await;
    for (body, field) in [
        (json!({"credits": {"remaining": MAX + 1}}), "credits.remaining"),
        (
            json!({"credits": {"remaining": 1, "refill": {"interval": "daily", "amount": MAX + 1}}}),
            "credits.refill.amount",
        ),
    ] {
        let r = app.post("/v1/keys").as_(&app.admin).json(&body).await;
        let detail = r.problem(StatusCode::BAD_REQUEST)["detail"].to_string();
        assert!(detail.contains(field), "{body}: {detail}");
    }
    let (id, _, _) = limited_key(&app, json!({"credits": {"remaining": MAX - 10}})).await;
    let path = format!("/v1/keys/{id}");
    for add in [u64::MAX, 1 << 63, MAX + 1, 11] {
        let r = app
            .patch(&path)
            .as_(&app.admin)
            .json(&json!({"credits": {"add": add}}))
            .await;
        let detail = r.problem(StatusCode::BAD_REQUEST)["detail"].to_string();
        assert!(detail.contains("credits.add"), "add {add}: {detail}");
    }
    let r = app
        .patch(&path)
        .as_(&app.admin)
        .json(&json!({"credits": {"add": 10}}))
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(r.json()["credits"]["remaining"], MAX);
    assert_eq!(app.get_json(&path, &app.admin).await["credits"]["remaining"], MAX);

    // The same bound on a user's credits.
    let (ada, _) = app.user("ada").await;
    let user = format!("/v1/users/{ada}");
    app.patch(&user)
        .as_(&app.admin)
        .json(&json!({"credits": {"remaining": MAX}}))
        .await
        .expect_status(StatusCode::OK);
    let r = app
        .patch(&user)
        .as_(&app.admin)
        .json(&json!({"credits": {"add": 1}}))
        .await;
    assert!(
        r.problem(StatusCode::BAD_REQUEST)["detail"]
            .to_string()
            .contains("credits.add")
    );
    assert_eq!(app.get_json(&user, &app.admin).await["credits"]["remaining"], MAX);
}

/// An owner's change of a key's rate limits never gives more than the old state allowed:
/// renaming a spent limit, or tightening it under a new name or over a longer window,
/// starts the new limit as spent as the old one (no fresh burst).
#[tokio::test]
async fn renaming_or_tightening_a_spent_rate_limit_gives_no_fresh_burst() {
    let app = spawn_app().await;
    let (ada, ada_token) = app.user("ada").await;
    let made = app
        .post(&format!("/v1/users/{ada}/keys"))
        .as_(&app.admin)
        .json(&json!({"ratelimits": [{"name": "requests", "limit": 3, "duration": "1m"}]}))
        .await
        .json();
    let (id, key) = (made["id"].as_str().unwrap(), made["key"].as_str().unwrap());
    assert_eq!(hammer(&app.http, key, 1, 4).await, (3, 1, 0));
    for limits in [
        json!([{"name": "requests2", "limit": 3, "duration": "1m"}]),
        json!([{"name": "requests3", "limit": 2, "duration": "1h"}]),
        json!([{"name": "requests4", "limit": 2, "duration": "1h"}, {"name": "daily", "limit": 100, "duration": 86400}]),
    ] {
        app.patch(&format!("/v1/keys/{id}"))
            .as_(&ada_token)
            .json(&json!({ "ratelimits": limits }))
            .await
            .expect_status(StatusCode::OK);
        let r = app.get("/v1/me").api_key(key).await;
        assert_eq!(
            r.problem(StatusCode::TOO_MANY_REQUESTS)["type"],
            RATE_LIMITED,
            "after {limits}"
        );
    }
    // And it refills as the new limit says: 2 an hour, one every 30 minutes.
    app.advance(Duration::from_secs(30 * 60));
    assert_eq!(hammer(&app.http, key, 1, 3).await, (1, 2, 0));
}

/// The built binary: a graceful stop (SIGTERM) gives the unspent part of every block of
/// credits it reserved back to the database, so after a restart the balance is exactly what
/// was not spent (a crash, by contrast, loses the block: see `kill -9` above). Credits set
/// anew while a block was held are not topped up by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_unspent_reserved_credits_back() {
    let dir = tempfile::tempdir().unwrap();
    let admin = basic("admin", ADMIN_PASSWORD);
    let (mut server, url) = start_binary(dir.path(), &[]);
    let http = Http::new(&url);
    let mut keys = Vec::new();
    for _ in 0..2 {
        let created = http
            .post("/v1/keys")
            .authorization(&admin)
            .json(&json!({"credits": {"remaining": 500}}))
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let made = created.json();
        keys.push((
            made["id"].as_str().unwrap().to_owned(),
            made["key"].as_str().unwrap().to_owned(),
        ));
    }
    for (_, key) in &keys {
        assert_eq!(hammer(&http, key, 4, 10).await, (10, 0, 0));
    }
    // The second key's credits are set anew while this node holds a block of them.
    http.patch(&format!("/v1/keys/{}", keys[1].0))
        .authorization(&admin)
        .json(&json!({"credits": {"remaining": 100}}))
        .await
        .expect_status(StatusCode::OK);

    let pid = server.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || server.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(status, Some(0), "a clean exit");

    let (_server, url) = start_binary(dir.path(), &[]);
    let http = Http::new(&url);
    let remaining = |id: String| {
        let (http, admin) = (&http, &admin);
        async move {
            http.get(&format!("/v1/keys/{id}")).authorization(admin).await.json()["credits"]["remaining"]
                .as_u64()
                .unwrap()
        }
    };
    assert_eq!(
        remaining(keys[0].0.clone()).await,
        490,
        "500 less the 10 spent, exactly"
    );
    assert_eq!(
        remaining(keys[1].0.clone()).await,
        100,
        "set anew: the old block is not added"
    );
}

/// A key with credits cannot mint quota: the credits of a key it makes are carved out of its
/// own balance in the write that stores the new key (409 and nothing stored when it cannot
/// cover them), and such a key may not have a refill (new quota every period). So the
/// children together never hold more than the parent had.
#[tokio::test]
async fn a_key_with_credits_carves_its_childrens_credits_out_of_its_own() {
    let app = spawn_app().await;
    let (parent_id, parent, _) = limited_key(&app, json!({"credits": {"remaining": 100}})).await;
    let child = |credits: Value| {
        let (app, parent) = (&app, parent.clone());
        async move {
            app.post("/v1/keys")
                .api_key(&parent)
                .json(&json!({ "credits": credits }))
                .await
        }
    };
    // Each request made with the parent costs it a credit too (one here, and one per child
    // below); the parent's node holds a block of its balance reserved.
    let first = child(json!({"remaining": 60})).await;
    assert_eq!(first.status(), StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.json()["credits"]["remaining"], 60);
    // Past what is left: refused up front (403, looser than the parent as stored), or 409
    // when spending races the carve; either way nothing is stored.
    let r = child(json!({"remaining": 60})).await;
    assert!(
        [StatusCode::FORBIDDEN, StatusCode::CONFLICT].contains(&r.status()),
        "{}",
        r.text()
    );
    let r = child(json!({"remaining": 1, "refill": {"interval": "daily", "amount": 1}})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let parent_left = app.get_json(&format!("/v1/keys/{parent_id}"), &app.admin).await["credits"]["remaining"]
        .as_u64()
        .unwrap();
    assert!(
        parent_left <= 40 - 3,
        "60 carved out and 3 requests spent: {parent_left}"
    );
    // Minting more children never adds up to more than the parent had.
    let mut carved = 60;
    for _ in 0..10 {
        let r = child(json!({"remaining": 10})).await;
        if r.status() == StatusCode::CREATED {
            carved += 10;
        }
    }
    assert!(carved <= 100, "{carved} carved out of 100");
    let left = app.get_json(&format!("/v1/keys/{parent_id}"), &app.admin).await["credits"]["remaining"]
        .as_u64()
        .unwrap();
    assert!(carved + left <= 100, "{carved} carved, {left} left, of 100");

    // A key whose credits refill makes no keys with credits: carving each period's balance
    // into children would bank period after period.
    let (_, monthly, _) = limited_key(
        &app,
        json!({"credits": {"remaining": 100, "refill": {"interval": "monthly", "amount": 100}}}),
    )
    .await;
    let r = app
        .post("/v1/keys")
        .api_key(&monthly)
        .json(&json!({"credits": {"remaining": 10}}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("refill"), "{}", r.text());
}

const ALL: i64 = 1_000_000;

/// A key with a million credits: its id and key.
async fn rich_key(app: &TestApp) -> (String, String) {
    let (id, key, _) = limited_key(app, json!({"credits": {"remaining": 1_000_000}})).await;
    (id, key)
}

/// What `n` requests with `key`, one after another, leave of its balance in the database.
async fn stored_after(app: &TestApp, (id, key): &(String, String), n: usize) -> i64 {
    for _ in 0..n {
        app.get("/v1/me").api_key(key).await.expect_status(StatusCode::OK);
    }
    let db = rusqlite::Connection::open_with_flags(app.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    db.query_row("SELECT credits_remaining FROM keys WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

/// Blocks follow the pace they are spent at: 64 at first, then what the last block's pace
/// spends in 30 s, up to `keys.credit_block`, and 64 again after an idle hour. Read from the
/// database's balance: what it lacks is what the node reserved.
#[tokio::test]
async fn credit_blocks_follow_the_pace_they_are_spent_at() {
    let app = spawn_app().await;
    let key = rich_key(&app).await;
    assert_eq!(stored_after(&app, &key, 1).await, ALL - 64, "the first block is 64");
    // The first block lasts 3.84 s on the moved clock, plus however long its requests take:
    // the next is 30 s at that pace, 500 at most.
    app.advance(Duration::from_millis(3_840));
    let second = ALL - 64 - stored_after(&app, &key, 64).await;
    assert!(
        (200..=500).contains(&second),
        "64 spent in about 3.9 s: about 500 next, not {second}"
    );
    assert_eq!(
        stored_after(&app, &key, usize::try_from(second - 1).unwrap()).await,
        ALL - 64 - second,
        "nothing reserved while a block lasts"
    );
    app.advance(Duration::from_secs(3600));
    assert_eq!(
        stored_after(&app, &key, 1).await,
        ALL - 64 - second - 64,
        "after an idle hour: 64 again"
    );

    let app = spawn_with(|s| s.keys.credit_block = 100).await;
    let key = rich_key(&app).await;
    assert_eq!(stored_after(&app, &key, 1).await, ALL - 64);
    assert_eq!(
        stored_after(&app, &key, 64).await,
        ALL - 164,
        "spent at once, but never more than credit_block"
    );
    assert_eq!(stored_after(&app, &key, 100).await, ALL - 264);
}

/// A block a node has held for over a minute goes back to the balance with the usage flush
/// (a key that slowed down after a burst keeps nothing a crash would lose for long, nor
/// what other nodes could spend); a younger block stays, and the key's next request
/// reserves anew.
#[tokio::test]
async fn blocks_held_over_a_minute_go_back_to_the_balance() {
    let app = spawn_app().await;
    let key = rich_key(&app).await;
    assert_eq!(stored_after(&app, &key, 1).await, ALL - 64);
    app.advance(Duration::from_secs(30));
    assert_eq!(
        app.keyward.return_idle_credits().await.unwrap(),
        0,
        "held for 30 s: kept"
    );
    assert_eq!(stored_after(&app, &key, 0).await, ALL - 64);
    app.advance(Duration::from_secs(31));
    assert_eq!(
        app.keyward.return_idle_credits().await.unwrap(),
        63,
        "held over a minute: given back"
    );
    assert_eq!(
        stored_after(&app, &key, 0).await,
        ALL - 1,
        "only the one credit spent is gone"
    );
    assert_eq!(
        stored_after(&app, &key, 1).await,
        ALL - 1 - 64,
        "the next request reserves anew"
    );
}
