//! `/v1/keys` and `/v1/users/{id}/keys`: create, list, get, relabel, revoke.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{basic, eventually, spawn_app, spawn_with};

const KEY_FIELDS: [&str; 7] = [
    "id",
    "name",
    "user_id",
    "created_at",
    "updated_at",
    "expires_at",
    "last_used_at",
];

#[tokio::test]
async fn create_answers_201_with_location_and_the_key_once() {
    let app = spawn_app().await;
    let r = app
        .post("/v1/keys")
        .as_(&app.admin)
        .json(&json!({"name": "ci", "expires": "One Month"}))
        .await
        .expect_status(StatusCode::CREATED);
    let location = r.header("location").unwrap().to_owned();
    let created = r.json();
    for field in KEY_FIELDS {
        assert!(created.get(field).is_some(), "{field} in {created}");
    }
    let id = created["id"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert_eq!(location, format!("/v1/keys/{id}"));
    assert_eq!(created["name"], "ci");
    assert!(created["last_used_at"].is_null());
    let key = created["key"].as_str().unwrap();

    let fetched = app.get(&location).as_(&app.admin).await.json();
    assert_eq!(fetched["id"], id);
    assert!(fetched.get("key").is_none());
    assert!(!fetched.to_string().contains(key));
    let listed = app.get("/v1/keys").as_(&app.admin).await.text();
    assert!(!listed.contains(key));
}

#[tokio::test]
async fn the_key_is_a_jwt_with_the_documented_claims() {
    let app = spawn_app().await;
    let created = app.create_key(&app.admin, json!({"expires": 3600})).await;
    let key = created["key"].as_str().unwrap();
    let parts: Vec<&str> = key.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |s: &str| -> Value {
        use base64::Engine;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap()
    };
    let header = decode(parts[0]);
    let claims = decode(parts[1]);
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], "keyward");
    assert_eq!(claims["jti"], created["id"]);
    assert_eq!(claims["sub"], created["user_id"]);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
}

#[tokio::test]
async fn never_expiring_keys_have_null_expires_at_and_exp_a_century_out() {
    let app = spawn_app().await;
    let created = app.create_key(&app.admin, json!({"expires": "never"})).await;
    assert!(created["expires_at"].is_null());
    let payload = created["key"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let span = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(
        (36524 * 86400..=36525 * 86400).contains(&span),
        "100 calendar years, got {span} s"
    );
}

#[tokio::test]
async fn expires_accepts_the_grammar_and_refuses_the_rest() {
    let app = spawn_app().await;
    for ok in [
        json!("One Month"),
        json!("1 week"),
        json!("90 days"),
        json!("1 year"),
        json!("NEVER"),
        json!(60),
        json!("3600"),
        json!("2099-01-01T00:00:00Z"),
    ] {
        assert_eq!(
            app.post("/v1/keys")
                .as_(&app.admin)
                .json(&json!({"expires": ok}))
                .await
                .status(),
            StatusCode::CREATED,
            "{ok}"
        );
    }
    for bad in [
        json!("soon"),
        json!(0),
        json!(-5),
        json!(1.5),
        json!("2001-01-01T00:00:00Z"),
        json!(true),
    ] {
        let body = app
            .post("/v1/keys")
            .as_(&app.admin)
            .json(&json!({"expires": bad}))
            .await
            .problem(StatusCode::BAD_REQUEST);
        assert!(body["detail"].as_str().unwrap().starts_with("expires"), "{bad}: {body}");
    }
}

#[tokio::test]
async fn max_lifetime_refuses_never_and_longer() {
    let app = spawn_with(|s| s.keys.max_lifetime = Some(std::time::Duration::from_secs(7 * 24 * 3600))).await;
    // The default lifetime is never, which the maximum refuses: an explicit expiry is needed.
    for bad in [json!({}), json!({"expires": "never"}), json!({"expires": "One Month"})] {
        app.post("/v1/keys")
            .as_(&app.admin)
            .json(&bad)
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    app.post("/v1/keys")
        .as_(&app.admin)
        .json(&json!({"expires": "1 week"}))
        .await
        .expect_status(StatusCode::CREATED);
}

#[tokio::test]
async fn a_key_cannot_make_a_key_that_outlives_it() {
    let app = spawn_app().await;
    let parent = app.create_key(&app.admin, json!({"expires": "1 week"})).await;
    let key = parent["key"].as_str().unwrap();
    for bad in [json!({"expires": "never"}), json!({"expires": "One Month"}), json!({})] {
        app.post("/v1/keys")
            .as_(key)
            .json(&bad)
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    app.post("/v1/keys")
        .as_(key)
        .json(&json!({"expires": "1 day"}))
        .await
        .expect_status(StatusCode::CREATED);
}

#[tokio::test]
async fn revocation_is_immediate_for_every_credential_form() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
    let r = app
        .delete(&format!("/v1/keys/{id}"))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert_eq!(r.content_length(), Some(0));
    for auth in [key.clone(), format!("Bearer {key}"), basic("x", &key)] {
        assert_eq!(app.me_status(&auth).await, StatusCode::UNAUTHORIZED);
    }
    app.get("/v1/me")
        .api_key(&key)
        .await
        .expect_status(StatusCode::UNAUTHORIZED);
    // Gone from the list and the count, and a second delete is 404.
    let list = app.get("/v1/keys").as_(&app.admin).await.json();
    assert_eq!(list["total"], 0);
    app.delete(&format!("/v1/keys/{id}"))
        .as_(&app.admin)
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_can_revoke_itself() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    app.delete(&format!("/v1/keys/{id}"))
        .as_(&key)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn relabel_changes_the_name_only() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    let r = app
        .patch(&format!("/v1/keys/{id}"))
        .as_(&app.admin)
        .json(&json!({"name": "renamed"}))
        .await
        .expect_status(StatusCode::OK);
    let body = r.json();
    assert_eq!(body["name"], "renamed");
    assert_eq!(body["id"], id);
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
    app.patch(&format!("/v1/keys/{id}"))
        .as_(&app.admin)
        .json(&json!({"user_id": "x"}))
        .await
        .problem(StatusCode::BAD_REQUEST);
    app.patch(&format!("/v1/keys/{id}"))
        .as_(&app.admin)
        .json(&json!({"name": ""}))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn lists_page_with_limit_and_cursor() {
    let app = spawn_app().await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(app.create_key(&app.admin, json!({"name": format!("k{i}")})).await["id"].clone());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/keys?limit=2".to_owned();
    loop {
        let page = app.get(&path).as_(&app.admin).await.json();
        assert_eq!(page["total"], 5);
        assert!(page["data"].as_array().unwrap().len() <= 2);
        seen.extend(page["data"].as_array().unwrap().iter().map(|k| k["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/keys?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, made);
    for bad in [
        "/v1/keys?limit=0",
        "/v1/keys?limit=501",
        "/v1/keys?cursor=nope",
        "/v1/keys?cursor=000000000000000000000000",
        "/v1/keys?colour=red",
    ] {
        app.get(bad).as_(&app.admin).await.problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn last_used_at_appears_within_two_seconds_of_a_use() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
    let seen = eventually(|| async {
        let k = app.get(&format!("/v1/keys/{id}")).as_(&app.admin).await.json();
        k["last_used_at"].is_string()
    })
    .await;
    assert!(seen);
}

#[tokio::test]
async fn an_expired_key_fails() {
    let app = spawn_app().await;
    let created = app.create_key(&app.admin, json!({"expires": 1})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    app.advance(std::time::Duration::from_secs(2));
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn someone_elses_keys_are_not_found() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let (_, bob) = app.user("bob").await;
    let ada_key = app.create_key(&ada, json!({"name": "ada's"})).await;
    let kid = ada_key["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/v1/keys/{kid}")),
        (Method::PATCH, format!("/v1/keys/{kid}")),
        (Method::DELETE, format!("/v1/keys/{kid}")),
        (Method::GET, format!("/v1/users/{ada_id}/keys")),
        (Method::POST, format!("/v1/users/{ada_id}/keys")),
        (Method::GET, format!("/v1/users/{ada_id}/keys/{kid}")),
        (Method::DELETE, format!("/v1/users/{ada_id}/keys/{kid}")),
    ] {
        app.call(method.clone(), &path)
            .as_(&bob)
            .json(&json!({"name": "x"}))
            .await
            .problem(StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.me_status(ada_key["key"].as_str().unwrap()).await,
        StatusCode::OK,
        "untouched"
    );
    app.get("/v1/keys/not-even-an-id")
        .as_(&bob)
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn users_keys_routes_for_oneself_and_for_an_admin() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let path = format!("/v1/users/{ada_id}/keys");
    app.post(&path)
        .as_(&ada)
        .json(&json!({"name": "own"}))
        .await
        .expect_status(StatusCode::CREATED);
    let r = app
        .post(&path)
        .as_(&app.admin)
        .json(&json!({"name": "from admin"}))
        .await
        .expect_status(StatusCode::CREATED);
    assert_eq!(r.header("location").unwrap().rsplit_once('/').unwrap().0, path);
    let made = r.json();
    assert_eq!(made["user_id"], ada_id.as_str());
    let list = app.get(&path).as_(&ada).await.json();
    assert_eq!(list["total"], 2);
    let kid = made["id"].as_str().unwrap();
    app.patch(&format!("{path}/{kid}"))
        .as_(&app.admin)
        .json(&json!({"name": "relabelled"}))
        .await
        .expect_status(StatusCode::OK);
    app.delete(&format!("{path}/{kid}"))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert_eq!(
        app.me_status(made["key"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    // The admin's own /v1/keys does not show ada's keys.
    let own = app.get("/v1/keys").as_(&app.admin).await.json();
    assert_eq!(own["total"], 0);
}

/// Makes every write that touches `column` of a key named `poison` (or renames one to it)
/// fail inside the database, as a full disk or a crash between two statements would.
fn poison_updates(app: &crate::helpers::TestApp, column: &str) {
    let db = rusqlite::Connection::open(app.db_path()).unwrap();
    db.execute_batch(&format!(
        "CREATE TRIGGER poison BEFORE UPDATE OF {column} ON keys \
         WHEN NEW.name = 'poison' OR OLD.name = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
    ))
    .unwrap();
}

#[tokio::test]
async fn a_patch_of_several_fields_is_one_transaction() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    poison_updates(&app, "name");
    let r = app
        .patch(&format!("/v1/keys/{id}"))
        .as_(&app.admin)
        .json(&json!({"disabled": true, "name": "poison"}))
        .await;
    assert!(!r.status().is_success(), "{}", r.status());
    // Neither half happened.
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
    let now = app.get_json(&format!("/v1/keys/{id}"), &app.admin).await;
    assert_eq!(now["disabled"], false);
    assert_eq!(now["name"], "test");
}

#[tokio::test]
async fn a_rotation_is_one_transaction() {
    let app = spawn_app().await;
    let made = app.create_key(&app.admin, json!({"name": "poison"})).await;
    let (id, key) = (made["id"].as_str().unwrap(), made["key"].as_str().unwrap());
    poison_updates(&app, "expires_at");
    let before = app.get_json("/v1/keys", &app.admin).await["total"].clone();
    let r = app
        .post(&format!("/v1/keys/{id}/rotate"))
        .as_(&app.admin)
        .json(&json!({"grace": "1h"}))
        .await;
    assert!(!r.status().is_success(), "{}", r.status());
    assert_eq!(
        app.get_json("/v1/keys", &app.admin).await["total"],
        before,
        "no second key was left behind"
    );
    assert_eq!(app.me_status(key).await, StatusCode::OK);
}

#[tokio::test]
async fn a_rotation_grace_is_never_shorter_than_asked() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let (id, _) = app.admin_key().await;
        let asked = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        app.post(&format!("/v1/keys/{id}/rotate"))
            .as_(&app.admin)
            .json(&json!({"grace": "3s"}))
            .await
            .expect_status(StatusCode::CREATED);
        let db = rusqlite::Connection::open(app.db_path()).unwrap();
        let stored: i64 = db
            .query_row("SELECT expires_at FROM keys WHERE id = ?1", [&id], |r| r.get(0))
            .unwrap();
        assert!(
            stored >= asked + 3000,
            "the old key ends {} ms short",
            asked + 3000 - stored
        );
    }
}

#[tokio::test]
async fn a_reader_key_is_refused_on_write_routes_before_its_body_is_read() {
    let app = spawn_app().await;
    let (id, _) = app.admin_key().await;
    let reader = app.create_key(&app.admin, json!({"scopes": ["keys:read"]})).await;
    let reader = reader["key"].as_str().unwrap();
    for (method, path, body) in [
        (Method::PATCH, format!("/v1/keys/{id}"), "{}"),
        (Method::PATCH, format!("/v1/keys/{id}"), "not json at all"),
        (Method::PATCH, format!("/api/apikey/{id}"), ""),
        (Method::POST, "/v1/keys".to_owned(), "{\"bogus\": 1}"),
        (Method::POST, format!("/v1/keys/{id}/rotate"), ""),
        (Method::DELETE, format!("/api/v1/apikey/{id}"), ""),
    ] {
        assert_eq!(
            app.call(method.clone(), &path)
                .as_(reader)
                .header("Content-Type", "application/json")
                .body(body)
                .await
                .status(),
            StatusCode::FORBIDDEN,
            "{method} {path} {body}"
        );
    }
    assert_eq!(
        app.get_json(&format!("/v1/keys/{id}"), &app.admin).await["name"],
        "test"
    );
}
