//! The hot path caches verdicts (a key's signature once per process, access tokens once per
//! token). Every change must still win on the very next request.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{basic, spawn_app};

/// A key that has been used, so its verdict is cached.
async fn warm_key(app: &crate::helpers::TestApp, token: &str, body: serde_json::Value) -> (String, String) {
    let made = app.create_key(token, body).await;
    let key = made["key"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(app.me_status(&key).await, StatusCode::OK);
    }
    (made["id"].as_str().unwrap().to_owned(), key)
}

#[tokio::test]
async fn a_cached_key_fails_at_once_when_revoked_through_any_api() {
    let app = spawn_app().await;
    let (uid, token) = app.user("ada").await;
    for path in [
        |_: &str, id: &str| format!("/v1/keys/{id}"),
        |uid: &str, id: &str| format!("/v1/users/{uid}/keys/{id}"),
        |uid: &str, id: &str| format!("/1/users/{uid}/apiKeys/{id}"),
        |_: &str, id: &str| format!("/api/apikey/{id}"),
        |_: &str, id: &str| format!("/api/v1/apikey/{id}"),
    ] {
        let (id, key) = warm_key(&app, &token, json!({})).await;
        assert!(app.delete(&path(&uid, &id)).as_(&token).await.status().is_success());
        assert_eq!(
            app.me_status(&key).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            path(&uid, &id)
        );
    }
}

#[tokio::test]
async fn a_cached_key_fails_when_its_user_is_disabled_or_deleted() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let (_, key) = warm_key(&app, &ada, json!({})).await;
    app.patch(&format!("/v1/users/{ada_id}"))
        .as_(&app.admin)
        .json(&json!({"disabled": true}))
        .await;
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);

    let (bob_id, bob) = app.user("bob").await;
    let (_, key) = warm_key(&app, &bob, json!({})).await;
    app.delete(&format!("/v1/users/{bob_id}")).as_(&app.admin).await;
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cached_key_fails_once_it_expires() {
    let app = spawn_app().await;
    let (_, key) = warm_key(&app, &app.admin, json!({"expires": 2})).await;
    app.advance(std::time::Duration::from_secs(3));
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cached_access_token_fails_when_the_password_changes_or_the_user_is_disabled() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    assert_eq!(app.me_status(&format!("Bearer {ada}")).await, StatusCode::OK);
    app.patch(&format!("/v1/users/{ada_id}"))
        .as_(&app.admin)
        .json(&json!({"password": "a new password"}))
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(app.me_status(&format!("Bearer {ada}")).await, StatusCode::UNAUTHORIZED);

    let ada = app.login("ada", "a new password").await;
    assert_eq!(app.me_status(&format!("Bearer {ada}")).await, StatusCode::OK);
    app.patch(&format!("/v1/users/{ada_id}"))
        .as_(&app.admin)
        .json(&json!({"disabled": true}))
        .await;
    assert_eq!(app.me_status(&format!("Bearer {ada}")).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_restart_with_another_secret_drops_every_cached_verdict() {
    let app = crate::helpers::spawn_with(|s| {
        s.auth.secret = Some(keyward::domain::Secret::new(
            "the first secret of thirty-two bytes or more",
        ))
    })
    .await;
    let (_, key) = warm_key(&app, &app.admin, json!({})).await;
    let token = app.admin.clone();
    assert_eq!(app.me_status(&format!("Bearer {token}")).await, StatusCode::OK);
    let app = app.restart().await;
    assert_eq!(
        app.me_status(&key).await,
        StatusCode::OK,
        "same secret: still valid after restart"
    );
    let app = app
        .restart_with(|s| {
            s.auth.secret = Some(keyward::domain::Secret::new(
                "the second secret of thirty-two bytes or more",
            ))
        })
        .await;
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&basic("x", &key)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me_status(&format!("Bearer {token}")).await,
        StatusCode::UNAUTHORIZED
    );
}
