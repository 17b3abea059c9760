//! `/v1/users`: admin-only user management, and what user changes do to credentials.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{basic, spawn_app};

#[tokio::test]
async fn an_admin_creates_lists_gets_and_updates_users() {
    let app = spawn_app().await;
    let r = app
        .post("/v1/users")
        .as_(&app.admin)
        .json(&json!({"username": "ada", "password": "ada-password", "email": "ada@example.com"}))
        .await
        .expect_status(StatusCode::CREATED);
    let location = r.header("location").unwrap().to_owned();
    let ada = r.json();
    assert_eq!(ada["role"], "user");
    assert_eq!(ada["disabled"], false);
    assert!(ada.get("password").is_none() && ada.get("password_hash").is_none());
    assert_eq!(location, format!("/v1/users/{}", ada["id"].as_str().unwrap()));

    let list = app.get("/v1/users").as_(&app.admin).await.json();
    assert_eq!(list["total"], 2);
    let got = app.get(&location).as_(&app.admin).await.json();
    assert_eq!(got["username"], "ada");

    let r = app
        .patch(&location)
        .as_(&app.admin)
        .json(&json!({"email": "ada@lovelace.org", "role": "admin"}))
        .await
        .expect_status(StatusCode::OK);
    let updated = r.json();
    assert_eq!(updated["email"], "ada@lovelace.org");
    assert_eq!(updated["role"], "admin");
    let r = app.patch(&location).as_(&app.admin).json(&json!({"email": null})).await;
    assert!(r.json()["email"].is_null());
}

#[tokio::test]
async fn bad_user_input_is_400_and_duplicates_409() {
    let app = spawn_app().await;
    app.user("ada").await;
    for (body, status) in [
        (
            json!({"username": "ADA", "password": "long enough"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"username": "eve", "password": "long enough", "email": "ada@example.com"}),
            StatusCode::CONFLICT,
        ),
        (json!({"username": "eve", "password": "short"}), StatusCode::BAD_REQUEST),
        (
            json!({"username": "has space", "password": "long enough"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"username": "eve", "password": "long enough", "role": "root"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"username": "eve", "password": "long enough", "email": "nope"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"username": "eve", "password": "long enough", "id": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"password": "long enough"}), StatusCode::BAD_REQUEST),
    ] {
        let detail = app.post("/v1/users").as_(&app.admin).json(&body).await.problem(status);
        assert!(!detail.to_string().contains("long enough"), "no password echoed");
    }
}

#[tokio::test]
async fn non_admins_get_403_on_admin_routes() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let (_, key) = {
        let k = app.create_key(&ada, json!({})).await;
        (k["id"].clone(), k["key"].as_str().unwrap().to_owned())
    };
    for token in [&ada, &key] {
        for (method, path) in [
            (Method::GET, "/v1/users".to_owned()),
            (Method::POST, "/v1/users".to_owned()),
            (Method::GET, format!("/v1/users/{ada_id}")),
            (Method::PATCH, format!("/v1/users/{ada_id}")),
            (Method::DELETE, format!("/v1/users/{ada_id}")),
        ] {
            app.call(method, &path)
                .as_(token)
                .json(&json!({"role": "admin"}))
                .await
                .problem(StatusCode::FORBIDDEN);
        }
    }
}

#[tokio::test]
async fn disabling_a_user_stops_their_keys_and_tokens_at_once_and_enabling_restores_keys() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let key = app.create_key(&ada, json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/users/{ada_id}");
    let r = app.patch(&path).as_(&app.admin).json(&json!({"disabled": true})).await;
    assert_eq!(r.json()["disabled"], true);
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&format!("Bearer {ada}")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me_status(&basic("ada", "ada-password")).await,
        StatusCode::UNAUTHORIZED
    );

    app.patch(&path).as_(&app.admin).json(&json!({"disabled": false})).await;
    assert_eq!(app.me_status(&key).await, StatusCode::OK, "keys come back");
    assert_eq!(
        app.me_status(&format!("Bearer {ada}")).await,
        StatusCode::UNAUTHORIZED,
        "access tokens do not"
    );
}

#[tokio::test]
async fn an_admin_password_reset_ends_the_users_access_tokens() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    app.patch(&format!("/v1/users/{ada_id}"))
        .as_(&app.admin)
        .json(&json!({"password": "reset by admin"}))
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(app.me_status(&format!("Bearer {ada}")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&basic("ada", "reset by admin")).await, StatusCode::OK);
}

#[tokio::test]
async fn deleting_a_user_revokes_their_keys_and_frees_the_name() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let key = app.create_key(&ada, json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/v1/users/{ada_id}"))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.me_status(&format!("Bearer {ada}")).await, StatusCode::UNAUTHORIZED);
    app.get(&format!("/v1/users/{ada_id}"))
        .as_(&app.admin)
        .await
        .problem(StatusCode::NOT_FOUND);
    app.delete(&format!("/v1/users/{ada_id}"))
        .as_(&app.admin)
        .await
        .problem(StatusCode::NOT_FOUND);
    let (new_id, _) = app.user("ada").await;
    assert_ne!(new_id, ada_id);
    // The revocation is in the database too: the key stays dead after a restart.
    let app = app.restart().await;
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_cannot_delete_disable_or_demote_themself() {
    let app = spawn_app().await;
    let me = app.get("/v1/me").as_(&app.admin).await.json();
    let path = format!("/v1/users/{}", me["user"]["id"].as_str().unwrap());
    for body in [json!({"disabled": true}), json!({"role": "user"})] {
        app.patch(&path)
            .as_(&app.admin)
            .json(&body)
            .await
            .problem(StatusCode::CONFLICT);
    }
    app.delete(&path).as_(&app.admin).await.problem(StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_key_never_sets_its_own_users_password_on_any_route() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key().await;
    let me = app.get_json("/v1/me", &app.admin).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(&format!("/v1/users/{me}"))
        .as_(&key)
        .json(&json!({"password": "taken over by a key"}))
        .await
        .problem(StatusCode::FORBIDDEN);
    assert_eq!(
        app.me_status(&basic("admin", "taken over by a key")).await,
        StatusCode::UNAUTHORIZED
    );
    // The same key may still reset another user's password (the admin's job), and may
    // change its own user's other fields.
    let (ada, _) = app.user("ada").await;
    app.patch(&format!("/v1/users/{ada}"))
        .as_(&key)
        .json(&json!({"password": "ada's new password"}))
        .await
        .expect_status(StatusCode::OK);
    app.patch(&format!("/v1/users/{me}"))
        .as_(&key)
        .json(&json!({"email": "root@example.com"}))
        .await
        .expect_status(StatusCode::OK);
}
