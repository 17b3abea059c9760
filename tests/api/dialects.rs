//! Across dialects: one key, one record, everywhere; switches; CORS on dialect routes.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{basic, spawn_app, spawn_with};

#[tokio::test]
async fn a_key_from_001_works_on_002_and_native_and_dies_everywhere_when_revoked_via_000() {
    let app = spawn_app().await;
    let (uid, token) = app.user("ada").await;
    let added = app
        .post("/api/apikey")
        .as_(&token)
        .json(&json!({"label": "shared", "expires": "One Month"}))
        .await
        .json();
    let key = added["api_key"].as_str().unwrap().to_owned();

    // Authenticates on every route, in every form.
    app.get("/api/v1/apikey")
        .authorization(&key)
        .await
        .expect_status(StatusCode::OK);
    app.get(&format!("/1/users/{uid}/apiKeys"))
        .as_(&key)
        .await
        .expect_status(StatusCode::OK);
    app.get("/v1/keys").api_key(&key).await.expect_status(StatusCode::OK);

    // One record: the same id and name in every dialect.
    let native = app.get("/v1/keys").as_(&token).await.json();
    let id = native["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(native["data"][0]["name"], "shared");
    let s000 = app.get(&format!("/1/users/{uid}/apiKeys")).as_(&token).await.json();
    assert_eq!(s000["data"][0]["key_id"], id.as_str());
    assert_eq!(s000["data"][0]["description"], "shared");
    let s002 = app.get("/api/v1/apikey").as_(&token).await.json();
    assert_eq!(s002[0]["id"], id.as_str());
    assert_eq!(s002[0]["name"], "shared");
    // Renamed natively, seen in 001.
    app.patch(&format!("/v1/keys/{id}"))
        .as_(&token)
        .json(&json!({"name": "renamed"}))
        .await;
    let s001 = app.get(&format!("/api/apikey/{id}")).as_(&token).await.json();
    assert_eq!(s001["apiKey"]["label"], "renamed");

    app.delete(&format!("/1/users/{uid}/apiKeys/{id}"))
        .as_(&token)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&basic("ada", &key)).await, StatusCode::UNAUTHORIZED);
    app.get("/api/v1/apikey")
        .authorization(&key)
        .await
        .expect_status(StatusCode::UNAUTHORIZED);
    for path in [
        format!("/api/apikey/{id}"),
        format!("/v1/keys/{id}"),
        format!("/1/users/{uid}/apiKeys/{id}"),
    ] {
        assert_eq!(
            app.get(&path).as_(&token).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_dialect_switched_off_is_404() {
    let app = spawn_with(|s| {
        s.dialects.seed000 = false;
        s.dialects.seed001 = false;
        s.dialects.seed002 = false;
    })
    .await;
    let (uid, token) = app.user("ada").await;
    for path in [
        format!("/1/users/{uid}/apiKeys"),
        "/api/apikey".into(),
        "/api/v1/apikey".into(),
    ] {
        assert_eq!(
            app.get(&path).as_(&token).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    app.get("/v1/keys").as_(&token).await.expect_status(StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_and_responses_on_dialect_routes() {
    let origin = "http://localhost:5173";
    let app = spawn_with(|s| s.server.cors_origins = vec![origin.into()]).await;
    for path in ["/api/apikey", "/api/v1/apikey"] {
        let r = app
            .options(path)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization, content-type")
            .await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(r.header("access-control-allow-origin").unwrap(), origin);
        let methods = r.header("access-control-allow-methods").unwrap().to_owned();
        assert!(methods.contains("POST"));
    }
    let r = app
        .get("/api/apikey")
        .as_(&app.admin)
        .header("Origin", origin)
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin").unwrap(), origin);
    let r = app
        .get("/api/apikey")
        .as_(&app.admin)
        .header("Origin", "http://evil.example")
        .await;
    assert!(r.header("access-control-allow-origin").is_none());
}
