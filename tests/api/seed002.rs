//! Seed 002 conformance: the document's `curl -u user -X POST -H "Content-Type:
//! application/json" -d '{ "username": ... }'`, the list with the raw key in
//! `Authorization`, and delete.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{basic, spawn_app};

#[tokio::test]
async fn create_with_basic_list_with_the_raw_key_and_delete() {
    let app = spawn_app().await;
    let (uid, _) = app.user("myLdapUser").await;
    let login = basic("myLdapUser", "myLdapUser-password");

    let r = app
        .post("/api/v1/apikey")
        .authorization(&login)
        .header("Content-Type", "application/json")
        .body(r#"{ "username": "myLdapUser" }"#)
        .await
        .expect_status(StatusCode::OK);
    let created = r.json();
    assert_eq!(created["ok"], true);
    assert_eq!(created.as_object().unwrap().len(), 3);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();

    app.post("/api/v1/apikey")
        .authorization(&login)
        .json(&json!({ "username": "myLdapUser", "name": "myCustomApiKeyName" }))
        .await
        .expect_status(StatusCode::OK);
    // The email as the Basic username (the document's `curl -u user@domain`), userDomain ignored.
    app.post("/api/v1/apikey")
        .authorization(basic("myLdapUser@example.com", "myLdapUser-password"))
        .json(&json!({ "username": "myLdapUser", "userDomain": "example.com" }))
        .await
        .expect_status(StatusCode::OK);

    // "the Authorization header can be set with the value of an API key"
    let r = app
        .get("/api/v1/apikey")
        .header("Content-Type", "application/json")
        .authorization(&key)
        .await
        .expect_status(StatusCode::OK);
    let list = r.json();
    let list = list.as_array().expect("a bare JSON array");
    assert_eq!(list.len(), 3);
    assert_eq!(list[0], json!({"id": id, "userId": uid, "name": "key#1"}));
    assert_eq!(list[1]["name"], "myCustomApiKeyName");
    assert_eq!(list[2]["name"], "key#3");

    let r = app
        .delete(&format!("/api/v1/apikey/{id}"))
        .authorization(&login)
        .header("Content-Type", "application/json")
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(r.json(), json!({"result": "DELETED", "ok": true}));
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn username_is_required_and_only_oneself_unless_admin() {
    let app = spawn_app().await;
    let (_, ada) = app.user("ada").await;
    let (bob_id, _) = app.user("bob").await;
    app.post("/api/v1/apikey")
        .as_(&ada)
        .json(&json!({"name": "x"}))
        .await
        .problem(StatusCode::BAD_REQUEST);
    app.post("/api/v1/apikey")
        .as_(&ada)
        .json(&json!({"username": "bob"}))
        .await
        .problem(StatusCode::FORBIDDEN);
    let r = app
        .post("/api/v1/apikey")
        .as_(&app.admin)
        .json(&json!({"username": "bob"}))
        .await
        .expect_status(StatusCode::OK);
    let key = r.json()["key"].as_str().unwrap().to_owned();
    let me = app.get("/v1/me").authorization(&key).await.json();
    assert_eq!(me["user"]["id"], bob_id.as_str());
}

#[tokio::test]
async fn another_users_key_is_not_found() {
    let app = spawn_app().await;
    let (_, ada) = app.user("ada").await;
    let (_, bob) = app.user("bob").await;
    let made = app
        .post("/api/v1/apikey")
        .as_(&ada)
        .json(&json!({"username": "ada"}))
        .await
        .json();
    app.delete(&format!("/api/v1/apikey/{}", made["id"].as_str().unwrap()))
        .as_(&bob)
        .await
        .problem(StatusCode::NOT_FOUND);
    let list = app.get("/api/v1/apikey").as_(&bob).await.json();
    assert_eq!(list, json!([]));
    assert_eq!(app.me_status(made["key"].as_str().unwrap()).await, StatusCode::OK);
}

#[tokio::test]
async fn default_names_stay_distinct_under_concurrent_creates() {
    let app = std::sync::Arc::new(spawn_app().await);
    let creates: Vec<_> = (0..24)
        .map(|_| {
            let app = std::sync::Arc::clone(&app);
            tokio::spawn(async move {
                app.post("/api/v1/apikey")
                    .authorization(basic("admin", crate::helpers::ADMIN_PASSWORD))
                    .json(&json!({"username": "admin"}))
                    .await
                    .expect_status(StatusCode::OK);
            })
        })
        .collect();
    for c in creates {
        c.await.unwrap();
    }
    let listed: Value = app.get_json("/api/v1/apikey", &app.admin).await;
    let mut names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort_by_key(|n| n.trim_start_matches("key#").parse::<u32>().unwrap());
    let expected: Vec<String> = (1..=24).map(|n| format!("key#{n}")).collect();
    assert_eq!(names, expected);
}
