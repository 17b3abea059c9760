//! Seed 000 conformance: the document's own requests (`curl -X POST ... -H "Authorization:
//! Bearer ..." -H "Content-Type: application/json" -d '{"description": ...}'` and its Python
//! `requests` calls), checked for status, fields, types and shapes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

const FIELDS: [&str; 7] = [
    "user_id",
    "description",
    "created_at",
    "key_id",
    "api_key",
    "last_auth",
    "email",
];

fn assert_shape(k: &Value) {
    let obj = k.as_object().unwrap();
    assert_eq!(obj.len(), FIELDS.len(), "{k}");
    for f in FIELDS {
        assert!(obj.contains_key(f), "{f} missing in {k}");
    }
    assert!(k["created_at"].is_i64(), "created_at is unix seconds: {k}");
    assert!(k["last_auth"].is_null() || k["last_auth"].is_i64());
    assert!(k["key_id"].is_string() && k["user_id"].is_string());
}

#[tokio::test]
async fn create_get_list_delete_as_the_document_shows() {
    let app = spawn_app().await;
    let (uid, token) = app.user("ada").await;
    let base = format!("/1/users/{uid}/apiKeys");

    let r = app
        .post(&base)
        .as_(&token)
        .header("Content-Type", "application/json")
        .body(r#"{"description":"New Token for Image downloads"}"#)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the document answers create with 200");
    let created = r.json();
    assert_shape(&created);
    assert_eq!(created["user_id"], uid.as_str());
    assert_eq!(created["description"], "New Token for Image downloads");
    assert_eq!(created["email"], "ada@example.com");
    assert!(created["last_auth"].is_null());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((created["created_at"].as_i64().unwrap() - now).abs() < 60);
    let api_key = created["api_key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();

    // The key works instead of a username and password.
    assert_eq!(app.me_status(&format!("Bearer {api_key}")).await, StatusCode::OK);

    let r = app
        .get(&format!("{base}/{key_id}"))
        .as_(&token)
        .header("Content-Type", "application/json")
        .await
        .expect_status(StatusCode::OK);
    let one = r.json();
    assert_shape(&one);
    assert!(one["api_key"].is_null(), "the key is shown only at creation");
    assert_eq!(one["key_id"], key_id.as_str());

    let r = app.get(&base).as_(&token).await.expect_status(StatusCode::OK);
    let list = r.json();
    assert_eq!(list.as_object().unwrap().len(), 1);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_shape(&data[0]);
    assert!(data[0]["api_key"].is_null());

    let r = app
        .delete(&format!("{base}/{key_id}"))
        .as_(&token)
        .header("Content-Type", "application/json")
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert!(r.bytes().is_empty(), "204 with no body");
    assert_eq!(
        app.me_status(&format!("Bearer {api_key}")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn last_auth_becomes_unix_seconds_after_a_use() {
    let app = spawn_app().await;
    let (uid, token) = app.user("ada").await;
    let base = format!("/1/users/{uid}/apiKeys");
    let created = app.post(&base).as_(&token).json(&json!({})).await.json();
    assert!(created["description"].is_null(), "description is optional");
    assert_eq!(
        app.me_status(created["api_key"].as_str().unwrap()).await,
        StatusCode::OK
    );
    let path = format!("{base}/{}", created["key_id"].as_str().unwrap());
    let seen = crate::helpers::eventually(|| async {
        let k = app.get(&path).as_(&token).await.json();
        k["last_auth"].is_i64()
    })
    .await;
    assert!(seen);
}

#[tokio::test]
async fn another_users_id_is_not_found() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let (_, bob) = app.user("bob").await;
    let made = app
        .post(&format!("/1/users/{ada_id}/apiKeys"))
        .as_(&ada)
        .json(&json!({"description": "x"}))
        .await
        .json();
    let kid = made["key_id"].as_str().unwrap();
    for (method, path) in [
        (Method::POST, format!("/1/users/{ada_id}/apiKeys")),
        (Method::GET, format!("/1/users/{ada_id}/apiKeys")),
        (Method::GET, format!("/1/users/{ada_id}/apiKeys/{kid}")),
        (Method::DELETE, format!("/1/users/{ada_id}/apiKeys/{kid}")),
    ] {
        app.call(method, &path)
            .as_(&bob)
            .json(&json!({"description": "x"}))
            .await
            .problem(StatusCode::NOT_FOUND);
    }
    // An admin may manage anyone's keys.
    app.get(&format!("/1/users/{ada_id}/apiKeys/{kid}"))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::OK);
}
