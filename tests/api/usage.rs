//! Per-key usage by the hour: successful uses and refusals by reason, counted in memory on
//! the hot path, visible at once, written with the key-use batches, kept for the retention.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_with};

const HOUR: Duration = Duration::from_secs(3600);

/// The counts of a usage bucket.
const FIELDS: [&str; 6] = [
    "valid",
    "rate_limited",
    "usage_exceeded",
    "expired",
    "disabled",
    "revoked",
];

/// Moves the server's clock to ten minutes past an hour, so a test has fifty minutes of
/// real time before its uses could fall in another hour than it expects.
fn to_ten_past(app: &TestApp) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        + app.clock.ahead();
    let into_hour = Duration::from_millis(u64::try_from(now.as_millis() % 3_600_000).unwrap());
    app.advance(HOUR - into_hour + Duration::from_secs(600));
}

/// The buckets of `key`'s usage with anything in them: (start, bucket).
async fn used_buckets(app: &TestApp, token: &str, path: &str) -> Vec<(String, Value)> {
    let usage = app.get(path).as_(token).await.expect_status(StatusCode::OK).json();
    usage["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| FIELDS.iter().any(|f| b[f].as_i64().unwrap() != 0))
        .map(|b| (b["start"].as_str().unwrap().to_owned(), b.clone()))
        .collect()
}

fn count(bucket: &Value, field: &str) -> i64 {
    bucket[field].as_i64().unwrap()
}

async fn use_key(app: &TestApp, key: &str, times: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..times {
        statuses.push(app.me_status(&format!("Bearer {key}")).await);
    }
    statuses
}

#[tokio::test]
async fn uses_are_counted_by_hour_at_once_and_survive_a_restart() {
    let app = spawn_app().await;
    // An admin key, not the admin's access token: the clock moves past its lifetime.
    let (_, admin) = app.admin_key().await;
    to_ten_past(&app);
    let created = app.create_key(&admin, json!({"name": "counted"})).await;
    let (id, key) = (created["id"].as_str().unwrap(), created["key"].as_str().unwrap());
    let path = format!("/v1/keys/{id}/usage");
    assert!(
        used_buckets(&app, &admin, &path).await.is_empty(),
        "a new key has no uses"
    );

    assert!(use_key(&app, key, 3).await.iter().all(|s| *s == StatusCode::OK));
    app.advance(2 * HOUR);
    use_key(&app, key, 2).await;

    let used = used_buckets(&app, &admin, &path).await;
    assert_eq!(used.len(), 2, "two hours with uses: {used:?}");
    assert_eq!((count(&used[0].1, "valid"), count(&used[1].1, "valid")), (3, 2));
    let first = time::OffsetDateTime::parse(&used[0].0, &time::format_description::well_known::Rfc3339).unwrap();
    let second = time::OffsetDateTime::parse(&used[1].0, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(second - first, time::Duration::hours(2));
    assert_eq!((first.minute(), first.second()), (0, 0), "buckets start on the hour");

    // The whole window is there, empty hours included, oldest first.
    let usage = app.get(&path).as_(&admin).await.json();
    assert_eq!(usage["key_id"], id);
    assert_eq!(usage["granularity"], "hour");
    let buckets = usage["buckets"].as_array().unwrap();
    assert!(buckets.len() >= 30 * 24, "30 days of hours: {}", buckets.len());
    assert_eq!(
        buckets.last().unwrap()["start"],
        used[1].0,
        "the window ends with the current hour"
    );

    // By day: the same uses, in at most two days.
    let days = used_buckets(&app, &admin, &format!("{path}?granularity=day")).await;
    assert_eq!(days.iter().map(|(_, b)| count(b, "valid")).sum::<i64>(), 5);
    assert!(days.iter().all(|(start, _)| start.ends_with("T00:00:00Z")), "{days:?}");

    // Written at a graceful stop, read back from the database after.
    let app = app.restart().await;
    let used = used_buckets(&app, &admin, &path).await;
    assert_eq!(
        used.iter().map(|(_, b)| count(b, "valid")).collect::<Vec<_>>(),
        vec![3, 2]
    );
    use_key(&app, key, 1).await;
    app.keyward.flush_usage().await.unwrap();
    let used = used_buckets(&app, &admin, &path).await;
    assert_eq!(
        used.iter().map(|(_, b)| count(b, "valid")).collect::<Vec<_>>(),
        vec![3, 3],
        "a flush adds to the hour's bucket"
    );
}

#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let app = spawn_app().await;
    // An admin key, not the admin's access token: the clock moves past its lifetime.
    let (_, admin) = app.admin_key().await;
    to_ten_past(&app);
    let limited = app
        .create_key(
            &admin,
            json!({"ratelimits": [{"name": "hourly", "limit": 2, "duration": "1h"}]}),
        )
        .await;
    let credited = app.create_key(&admin, json!({"credits": {"remaining": 1}})).await;
    let expiring = app.create_key(&admin, json!({"expires": "1h"})).await;
    let disabled = app.create_key(&admin, json!({})).await;
    let revoked = app.create_key(&admin, json!({})).await;
    let key = |k: &Value| k["key"].as_str().unwrap().to_owned();
    let id = |k: &Value| k["id"].as_str().unwrap().to_owned();

    let statuses = use_key(&app, &key(&limited), 3).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(),
        1
    );
    let statuses = use_key(&app, &key(&credited), 3).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1);
    app.patch(&format!("/v1/keys/{}", id(&disabled)))
        .as_(&admin)
        .json(&json!({"disabled": true}))
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(use_key(&app, &key(&disabled), 1).await, vec![StatusCode::UNAUTHORIZED]);
    app.delete(&format!("/v1/keys/{}", id(&revoked)))
        .as_(&admin)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    // Every credential form counts the same.
    for status in [
        app.me_status(&format!("Bearer {}", key(&revoked))).await,
        app.get("/v1/me").api_key(&key(&revoked)).await.status(),
    ] {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    app.advance(HOUR + Duration::from_secs(60));
    assert_eq!(use_key(&app, &key(&expiring), 1).await, vec![StatusCode::UNAUTHORIZED]);

    let totals = |used: Vec<(String, Value)>| {
        let mut sum = json!({});
        for field in FIELDS {
            sum[field] = used.iter().map(|(_, b)| count(b, field)).sum::<i64>().into();
        }
        sum
    };
    let usage_of = |k: &Value| format!("/v1/keys/{}/usage", id(k));
    let expect = |valid: i64, field: &str, n: i64| {
        let mut want =
            json!({"valid": valid, "rate_limited": 0, "usage_exceeded": 0, "expired": 0, "disabled": 0, "revoked": 0});
        if n > 0 {
            want[field] = n.into();
        }
        want
    };
    for (k, want) in [
        (&limited, expect(2, "rate_limited", 1)),
        (&credited, expect(1, "usage_exceeded", 2)),
        (&disabled, expect(0, "disabled", 1)),
        (&expiring, expect(0, "expired", 1)),
        (&revoked, expect(0, "revoked", 2)),
    ] {
        let got = totals(used_buckets(&app, &admin, &usage_of(k)).await);
        assert_eq!(got, want, "usage of {}", id(k));
    }
    // The same after the counts are written.
    app.keyward.flush_usage().await.unwrap();
    let got = totals(used_buckets(&app, &admin, &usage_of(&limited)).await);
    assert_eq!(got, expect(2, "rate_limited", 1));
}

#[tokio::test]
async fn only_the_owner_or_an_admin_reads_a_keys_usage() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let (_, bob) = app.user("bob").await;
    let key = app.create_key(&ada, json!({"name": "ada's"})).await;
    let id = key["id"].as_str().unwrap();
    app.get(&format!("/v1/keys/{id}/usage"))
        .as_(&ada)
        .await
        .expect_status(StatusCode::OK);
    app.get(&format!("/v1/users/{ada_id}/keys/{id}/usage"))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::OK);
    app.get(&format!("/v1/keys/{id}/usage"))
        .as_(&bob)
        .await
        .problem(StatusCode::NOT_FOUND);
    app.get(&format!("/v1/users/{ada_id}/keys/{id}/usage"))
        .as_(&bob)
        .await
        .problem(StatusCode::NOT_FOUND);
    app.get("/v1/keys/000000000000000000000000/usage")
        .as_(&ada)
        .await
        .problem(StatusCode::NOT_FOUND);
    app.get(&format!("/v1/keys/{id}/usage"))
        .await
        .expect_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bad_usage_query_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let (id, _) = app.admin_key().await;
    for (query, field) in [
        ("granularity=week", "granularity"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z", "from"),
        ("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        (
            "granularity=day&from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "ask for a shorter window",
        ),
        ("bucket=hour", ""),
    ] {
        let body = app
            .get(&format!("/v1/keys/{id}/usage?{query}"))
            .as_(&app.admin)
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert!(body.to_string().contains(field), "{query}: {body}");
    }
    // An offset's `+` left unescaped (a space once decoded) is read as meant.
    let usage = app
        .get(&format!(
            "/v1/keys/{id}/usage?from=2026-06-01T00:00:00+02:00&to=2026-06-02T00:00:00+02:00"
        ))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::OK)
        .json();
    assert_eq!(usage["buckets"].as_array().unwrap().len(), 24);
    assert_eq!(usage["buckets"][0]["start"], "2026-05-31T22:00:00Z");
}

#[tokio::test]
async fn usage_older_than_the_retention_is_deleted() {
    let app = spawn_with(|s| s.usage.retention = Duration::from_secs(2 * 86_400)).await;
    let (id, key) = app.admin_key().await;
    // Another key reads the usage (a read with `key` would be a use of it).
    let (_, reader) = app.admin_key().await;
    to_ten_past(&app);
    use_key(&app, &key, 2).await;
    app.keyward.flush_usage().await.unwrap();
    let path = format!("/v1/keys/{id}/usage");
    let first = used_buckets(&app, &reader, &path).await;
    assert_eq!(first.len(), 1, "{first:?}");

    app.advance(3 * 86_400 * Duration::from_secs(1));
    use_key(&app, &key, 1).await;
    app.keyward.flush_usage().await.unwrap();
    let used = used_buckets(&app, &reader, &path).await;
    // The 30 days shown would hold the old hour too, had it been kept.
    assert_eq!(used.len(), 1, "only the recent hour is left: {used:?}");
    assert_eq!(count(&used[0].1, "valid"), 1);
}
