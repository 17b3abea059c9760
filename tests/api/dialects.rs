//! Across dialects: one key, one record, everywhere; switches; CORS on dialect routes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{basic, spawn_app, spawn_with};

#[tokio::test]
async fn a_key_from_001_works_on_002_and_native_and_dies_everywhere_when_revoked_via_000() {
    let app = spawn_app().await;
    let (uid, token) = app.user("ada").await;
    let added: Value = app
        .bearer(Method::POST, "/api/apikey", &token)
        .json(&json!({"label": "shared", "expires": "One Month"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = added["api_key"].as_str().unwrap().to_owned();

    // Authenticates on every route, in every form.
    assert_eq!(
        app.request(Method::GET, "/api/v1/apikey")
            .header("Authorization", &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.bearer(Method::GET, &format!("/1/users/{uid}/apiKeys"), &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.request(Method::GET, "/v1/keys")
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // One record: the same id and name in every dialect.
    let native: Value = app
        .bearer(Method::GET, "/v1/keys", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = native["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(native["data"][0]["name"], "shared");
    let s000: Value = app
        .bearer(Method::GET, &format!("/1/users/{uid}/apiKeys"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s000["data"][0]["key_id"], id.as_str());
    assert_eq!(s000["data"][0]["description"], "shared");
    let s002: Value = app
        .bearer(Method::GET, "/api/v1/apikey", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s002[0]["id"], id.as_str());
    assert_eq!(s002[0]["name"], "shared");
    // Renamed natively, seen in 001.
    app.bearer(Method::PATCH, &format!("/v1/keys/{id}"), &token)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    let s001: Value = app
        .bearer(Method::GET, &format!("/api/apikey/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s001["apiKey"]["label"], "renamed");

    let r = app
        .bearer(Method::DELETE, &format!("/1/users/{uid}/apiKeys/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&basic("ada", &key)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.request(Method::GET, "/api/v1/apikey")
            .header("Authorization", &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    for path in [
        format!("/api/apikey/{id}"),
        format!("/v1/keys/{id}"),
        format!("/1/users/{uid}/apiKeys/{id}"),
    ] {
        assert_eq!(
            app.bearer(Method::GET, &path, &token).send().await.unwrap().status(),
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
            app.bearer(Method::GET, &path, &token).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        app.bearer(Method::GET, "/v1/keys", &token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cors_preflight_and_responses_on_dialect_routes() {
    let origin = "http://localhost:5173";
    let app = spawn_with(|s| s.server.cors_origins = vec![origin.into()]).await;
    for path in ["/api/apikey", "/api/v1/apikey"] {
        let r = app
            .request(Method::OPTIONS, path)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization, content-type")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), origin);
        let methods = r
            .headers()
            .get("access-control-allow-methods")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(methods.contains("POST"));
    }
    let r = app
        .bearer(Method::GET, "/api/apikey", &app.admin)
        .header("Origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), origin);
    let r = app
        .bearer(Method::GET, "/api/apikey", &app.admin)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
