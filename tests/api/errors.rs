//! Errors and limits: problem+json, 404 vs 403, 413, 415, unknown fields, empty bodies.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn unknown_routes_are_problem_404s() {
    let app = spawn_app().await;
    app.get("/nowhere").await.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_whatever_their_type() {
    let app = spawn_app().await;
    let big = "x".repeat(70 * 1024);
    for ct in ["application/json", "text/plain", "application/x-www-form-urlencoded"] {
        app.post("/v1/keys")
            .as_(&app.admin)
            .header("content-type", ct)
            .body(big.clone())
            .await
            .problem(StatusCode::PAYLOAD_TOO_LARGE);
    }
}

#[tokio::test]
async fn a_non_empty_body_that_is_not_json_is_415() {
    let app = spawn_app().await;
    app.post("/v1/keys")
        .as_(&app.admin)
        .header("content-type", "text/plain")
        .body("name=x")
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.post("/v1/keys")
        .as_(&app.admin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=x")
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn an_empty_post_body_counts_as_an_empty_object_whatever_its_type() {
    let app = spawn_app().await;
    for ct in [None, Some("text/plain"), Some("application/json")] {
        let mut req = app.post("/v1/keys").as_(&app.admin);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        assert_eq!(req.await.status(), StatusCode::CREATED, "{ct:?}");
    }
}

#[tokio::test]
async fn malformed_json_and_unknown_fields_are_400() {
    let app = spawn_app().await;
    for body in ["{", "[]", "{\"name\": 5}", "{\"name\": \"x\", \"user_id\": \"y\"}"] {
        app.post("/v1/keys")
            .as_(&app.admin)
            .header("content-type", "application/json")
            .body(body)
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    app.get("/healthz").await.expect_status(StatusCode::OK);
    app.get("/readyz").await.expect_status(StatusCode::OK);
}

#[tokio::test]
async fn cors_is_off_by_default_and_on_for_configured_origins() {
    let app = spawn_app().await;
    let r = app
        .options("/v1/keys")
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .await;
    assert!(r.header("access-control-allow-origin").is_none());

    let app = crate::helpers::spawn_with(|s| s.server.cors_origins = vec!["http://localhost:3000".into()]).await;
    let r = app
        .options("/v1/keys")
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type")
        .await;
    assert!(r.status().is_success());
    assert_eq!(
        r.header("access-control-allow-origin").unwrap(),
        "http://localhost:3000"
    );
    let r = app
        .get("/v1/me")
        .as_(&app.admin)
        .header("Origin", "http://localhost:3000")
        .await;
    assert_eq!(
        r.header("access-control-allow-origin").unwrap(),
        "http://localhost:3000"
    );
    let _ = json!({});
}
