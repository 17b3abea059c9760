//! Operating keyward: metrics after known traffic, request ids, the request log line.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Http, basic, spawn_app, spawn_with, start_binary};

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_known_traffic() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    for _ in 0..3 {
        assert_eq!(app.me_status(&key).await, StatusCode::OK);
    }
    assert_eq!(
        app.me_status("eyJhbGciOiJIUzI1NiJ9.e30.not-a-key-we-issued").await,
        StatusCode::UNAUTHORIZED
    );
    app.delete(&format!("/v1/keys/{id}")).as_(&app.admin).await;
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    app.post("/v1/auth/token")
        .json(&json!({"username": "admin", "password": "wrong password!"}))
        .await
        .expect_status(StatusCode::UNAUTHORIZED);

    let r = app.get("/metrics").as_(&app.admin).await.expect_status(StatusCode::OK);
    let text = r.text();
    assert_eq!(metric(&text, r#"keyward_key_verifications_total{result="valid"}"#), 3.0);
    assert_eq!(
        metric(&text, r#"keyward_key_verifications_total{result="not_found"}"#),
        2.0
    );
    assert_eq!(
        metric(&text, r#"keyward_key_verifications_total{result="expired"}"#),
        0.0
    );
    assert_eq!(
        metric(&text, r#"keyward_http_requests_total{route="/v1/me",status="200"}"#),
        3.0
    );
    assert_eq!(
        metric(&text, r#"keyward_http_requests_total{route="/v1/me",status="401"}"#),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            r#"keyward_http_requests_total{route="/v1/keys/{key_id}",status="204"}"#
        ),
        1.0
    );
    assert_eq!(metric(&text, "keyward_logins_failed_total"), 1.0);
    assert_eq!(metric(&text, "keyward_active_keys"), 0.0);
    assert_eq!(metric(&text, "keyward_key_verification_seconds_count"), 5.0);
    assert!(
        metric(&text, "keyward_db_write_batch_size_count") >= 2.0,
        "creates and revokes went through the writer"
    );
    assert!(!text.contains(&key));
}

#[tokio::test]
async fn metrics_can_be_switched_off_or_moved() {
    let app = spawn_with(|s| s.metrics.enabled = false).await;
    app.get("/metrics").await.expect_status(StatusCode::NOT_FOUND);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_with(|s| s.metrics.bind = Some(format!("127.0.0.1:{port}").parse().unwrap())).await;
    app.get("/metrics").await.expect_status(StatusCode::NOT_FOUND);
    let r = Http::new(&format!("http://127.0.0.1:{port}"))
        .get("/metrics")
        .await
        .expect_status(StatusCode::OK);
    assert!(r.text().contains("keyward_active_keys"));
}

#[tokio::test]
async fn metrics_on_the_main_listener_are_for_admins_and_metrics_readers_only() {
    let app = spawn_app().await;
    app.get("/metrics").await.expect_status(StatusCode::UNAUTHORIZED);
    let (ada_id, ada) = app.user("ada").await;
    app.get("/metrics").as_(&ada).await.expect_status(StatusCode::FORBIDDEN);
    // Prometheus scrapes with a key an admin granted metrics:read (to any user).
    let r = app
        .post(&format!("/v1/users/{ada_id}/keys"))
        .as_(&app.admin)
        .json(&json!({"name": "prometheus", "scopes": ["metrics:read"]}))
        .await;
    let scraper = r.json();
    let r = app
        .get("/metrics")
        .as_(scraper["key"].as_str().unwrap())
        .await
        .expect_status(StatusCode::OK);
    assert!(r.text().contains("keyward_logins_failed_total"));
    let (_, other) = app.admin_key().await;
    assert_eq!(
        app.get("/metrics").as_(&other).await.status(),
        StatusCode::OK,
        "an admin's key without scopes acts as the admin"
    );
    let reader = app.create_key(&app.admin, json!({"scopes": ["keys:read"]})).await;
    app.get("/metrics")
        .as_(reader["key"].as_str().unwrap())
        .await
        .expect_status(StatusCode::FORBIDDEN);

    let public = spawn_with(|s| s.metrics.public = true).await;
    public.get("/metrics").await.expect_status(StatusCode::OK);
}

#[tokio::test]
async fn request_ids_are_random_not_sequential() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = app.get("/healthz").await;
        ids.push(r.header("x-request-id").unwrap().to_owned());
    }
    for id in &ids {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    // No common prefix beyond what chance gives, no counter at the end.
    let common = ids[0].bytes().zip(ids[1].bytes()).take_while(|(a, b)| a == b).count();
    assert!(common < 8, "{ids:?}");
    assert_ne!(ids[1], ids[2]);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    let id = r.header("x-request-id").unwrap().to_owned();
    assert!(!id.is_empty());
    let r = app.get("/healthz").await;
    assert_ne!(r.header("x-request-id").unwrap(), id);
    let r = app.get("/healthz").header("X-Request-Id", "trace-123").await;
    assert_eq!(r.header("x-request-id").unwrap(), "trace-123");
    let r = app.get("/healthz").header("X-Request-Id", "bad id with spaces").await;
    assert_ne!(r.header("x-request-id").unwrap(), "bad id with spaces");
}

#[tokio::test]
async fn one_log_line_per_request_with_request_and_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let (process, url) = start_binary(dir.path(), &[]);
    let server = Http::new(&url);
    let admin = basic("admin", crate::helpers::ADMIN_PASSWORD);
    let made = server.post("/v1/keys").authorization(&admin).await.json();
    let (id, key) = (
        made["id"].as_str().unwrap().to_owned(),
        made["key"].as_str().unwrap().to_owned(),
    );
    server
        .get("/v1/me")
        .api_key(&key)
        .header("X-Request-Id", "probe-42")
        .await
        .expect_status(StatusCode::OK);
    // The log is copied to the file by a thread: wait for the line (up to 5 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let log = loop {
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
        if log.contains("request_id=probe-42") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(process);
    let line = log
        .lines()
        .find(|l| l.contains("request_id=probe-42"))
        .expect("a line for the request");
    assert!(line.contains("GET /v1/me 200"), "{line}");
    assert!(line.contains(&format!("key_id={id}")), "{line}");
    assert!(!log.contains(&key));
}

#[tokio::test]
async fn the_audit_trail_records_a_scripted_sequence() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let made = app.create_key(&ada, json!({"name": "one"})).await;
    let kid = made["id"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/keys/{kid}"))
        .as_(&ada)
        .json(&json!({"name": "two"}))
        .await;
    app.delete(&format!("/v1/keys/{kid}")).as_(&ada).await;
    app.patch(&format!("/v1/users/{ada_id}"))
        .as_(&app.admin)
        .json(&json!({"disabled": true}))
        .await;
    app.post("/v1/auth/token")
        .json(&json!({"username": "ada", "password": "not ada's password"}))
        .await;
    app.post("/v1/auth/token")
        .json(&json!({"username": "my secret password", "password": "x"}))
        .await;
    app.delete(&format!("/v1/users/{ada_id}")).as_(&app.admin).await;

    let r = app
        .get("/v1/audit?limit=500")
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::OK);
    let page = r.json();
    let mut lines: Vec<serde_json::Value> = page["data"].as_array().unwrap().clone();
    lines.reverse(); // oldest first
    let actions: Vec<&str> = lines.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.create",
            "key.create",
            "key.rename",
            "key.revoke",
            "user.update",
            "login.failed",
            "login.failed",
            "user.delete"
        ]
    );
    let key_create = &lines[2];
    assert_eq!(key_create["actor"], "ada");
    assert_eq!(key_create["actor_id"], ada_id.as_str());
    assert_eq!(key_create["target_id"], kid.as_str());
    assert_eq!(key_create["source_ip"], "127.0.0.1");
    assert_eq!(lines[5]["detail"], "disabled=true");
    // Each line names its target as it was then: the key's name at creation and after the
    // rename; and says what changed, never a secret.
    let names: Vec<&str> = lines[..7].iter().map(|l| l["target_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "ada", "one", "two", "two", "ada", "ada"]);
    assert_eq!(key_create["detail"], "expires_at=never");
    assert_eq!(lines[3]["detail"], "name");
    assert!(
        lines[7]["target_name"].is_null(),
        "an unknown login name is not recorded"
    );
    assert_eq!(lines[6]["actor"], "ada");
    assert_eq!(lines[7]["actor"], "anonymous", "an unknown login name is not recorded");
    let text = page.to_string();
    for secret in [
        made["key"].as_str().unwrap(),
        "not ada's password",
        "my secret password",
        "ada-password",
    ] {
        assert!(!text.contains(secret));
    }
    // Paging, newest first, and admins only.
    let first = app.get("/v1/audit?limit=2").as_(&app.admin).await.json();
    assert_eq!(first["data"][0]["action"], "user.delete");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/v1/audit?limit=2&cursor={cursor}"))
        .as_(&app.admin)
        .await
        .json();
    assert_eq!(second["data"][0]["action"], "login.failed");
    let (_, bob) = app.user("bob").await;
    app.get("/v1/audit")
        .as_(&bob)
        .await
        .expect_status(StatusCode::FORBIDDEN);
}

/// Every native route, as the router knows it.
const NATIVE_ROUTES: [(&str, &str); 31] = [
    ("get", "/.well-known/jwks.json"),
    ("get", "/v1/keys/{key_id}/usage"),
    ("get", "/v1/users/{user_id}/keys/{key_id}/usage"),
    ("post", "/v1/keys/import"),
    ("get", "/v1/revocations"),
    ("post", "/v1/keys/{key_id}/rotate"),
    ("post", "/v1/users/{user_id}/keys/{key_id}/rotate"),
    ("post", "/v1/verify"),
    ("get", "/v1/forward-auth"),
    ("post", "/v1/auth/token"),
    ("get", "/v1/me"),
    ("post", "/v1/me/password"),
    ("post", "/v1/keys"),
    ("get", "/v1/keys"),
    ("get", "/v1/keys/{key_id}"),
    ("patch", "/v1/keys/{key_id}"),
    ("delete", "/v1/keys/{key_id}"),
    ("post", "/v1/users/{user_id}/keys"),
    ("get", "/v1/users/{user_id}/keys"),
    ("get", "/v1/users/{user_id}/keys/{key_id}"),
    ("patch", "/v1/users/{user_id}/keys/{key_id}"),
    ("delete", "/v1/users/{user_id}/keys/{key_id}"),
    ("post", "/v1/users"),
    ("get", "/v1/users"),
    ("get", "/v1/users/{id}"),
    ("patch", "/v1/users/{id}"),
    ("delete", "/v1/users/{id}"),
    ("get", "/v1/audit"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_openapi_document_describes_every_native_route() {
    let app = spawn_app().await;
    let r = app.get("/openapi.json").await.expect_status(StatusCode::OK);
    let doc = r.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for (method, path) in NATIVE_ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not in /openapi.json"
        );
        // And the router really serves it: an unknown route says "no such route".
        let concrete = path
            .replace("{key_id}", "000000000000000000000000")
            .replace("{user_id}", "000000000000000000000000")
            .replace("{id}", "000000000000000000000000");
        let r = app
            .call(method.to_uppercase().parse().unwrap(), &concrete)
            .as_(&app.admin)
            .json(&json!({}))
            .await;
        let body = r.text();
        assert!(!body.contains("no such route"), "{method} {path} is not routed");
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|ops| ops.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        NATIVE_ROUTES.len(),
        "the document has no route the router lacks"
    );
}
