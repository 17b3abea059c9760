//! Seed 001 conformance: the document's curl requests (form-urlencoded bodies with
//! `--data-urlencode`, and its `Content-Type: application/x-www-form-urlencoded` header even
//! on GET and DELETE), checked for status, fields, types and exact messages.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{problem, spawn_app};

const FORM: &str = "application/x-www-form-urlencoded";
const FIELDS: [&str; 9] = [
    "label",
    "isNever",
    "_id",
    "user",
    "hash",
    "expireAt",
    "createdAt",
    "updatedAt",
    "__v",
];

fn is_iso_millis(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.'
}

fn assert_shape(k: &Value) {
    let obj = k.as_object().unwrap();
    assert_eq!(obj.len(), FIELDS.len(), "{k}");
    for f in FIELDS {
        assert!(obj.contains_key(f), "{f} missing in {k}");
    }
    assert!(k["isNever"].is_boolean());
    assert_eq!(k["__v"], 0);
    for t in ["expireAt", "createdAt", "updatedAt"] {
        assert!(is_iso_millis(&k[t]), "{t}: {}", k[t]);
    }
    let hash = k["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 128);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    for id in ["_id", "user"] {
        let s = k[id].as_str().unwrap();
        assert_eq!(s.len(), 24);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn create_list_get_edit_delete_as_the_document_shows() {
    let app = spawn_app().await;
    let (uid, token) = app.user("ada").await;

    let r = app
        .bearer(Method::POST, "/api/apikey", &token)
        .header("Content-Type", FORM)
        .body("expires=One%20Month&label=Test%20123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let added: Value = r.json().await.unwrap();
    assert_eq!(added["code"], "ADDED");
    assert_eq!(added["message"], "Added new API Key");
    assert_eq!(added.as_object().unwrap().len(), 3);
    let api_key = added["api_key"].as_str().unwrap().to_owned();
    let c = claims(&api_key);
    assert_eq!(c["sub"], uid.as_str());
    assert_eq!(c["iss"], "keyward");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        31 * 86400,
        "One Month is 31 days, as the document's token shows"
    );
    assert!(c["jti"].is_string());

    let r = app
        .bearer(Method::GET, "/api/apikey", &token)
        .header("Content-Type", FORM)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["total"], 1);
    let key = &list["apiKeys"][0];
    assert_shape(key);
    assert_eq!(key["label"], "Test 123");
    assert_eq!(key["isNever"], false);
    assert_eq!(key["user"], uid.as_str());
    assert_eq!(key["_id"], c["jti"]);
    // hash: blake3 XOF of the key, whose first half is the plain blake3 hash.
    assert_eq!(
        &key["hash"].as_str().unwrap()[..64],
        blake3::hash(api_key.as_bytes()).to_hex().as_str()
    );
    let id = key["_id"].as_str().unwrap().to_owned();

    let r = app
        .bearer(Method::GET, &format!("/api/apikey/{id}"), &token)
        .header("Content-Type", FORM)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let one: Value = r.json().await.unwrap();
    assert_eq!(one.as_object().unwrap().len(), 1);
    assert_shape(&one["apiKey"]);

    let r = app
        .bearer(Method::PATCH, &format!("/api/apikey/{id}"), &token)
        .header("Content-Type", FORM)
        .body("label=Test%201234")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"code": "UPDATED", "message": "APIKey has been updated"})
    );
    let one: Value = app
        .bearer(Method::GET, &format!("/api/apikey/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["apiKey"]["label"], "Test 1234");

    assert_eq!(app.me_status(&format!("Bearer {api_key}")).await, StatusCode::OK);
    let r = app
        .bearer(Method::DELETE, &format!("/api/apikey/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"code": "REMOVED", "message": "APIKey has been removed"})
    );
    assert_eq!(
        app.me_status(&format!("Bearer {api_key}")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn never_keys_are_marked_and_expire_a_century_out() {
    let app = spawn_app().await;
    let (_, token) = app.user("ada").await;
    let r = app
        .bearer(Method::POST, "/api/apikey", &token)
        .json(&json!({"label": "Test 1234", "expires": "Never"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = app
        .bearer(Method::GET, "/api/apikey", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &list["apiKeys"][0];
    assert_eq!(key["isNever"], true);
    let created_year: i32 = key["createdAt"].as_str().unwrap()[..4].parse().unwrap();
    let expire_year: i32 = key["expireAt"].as_str().unwrap()[..4].parse().unwrap();
    assert_eq!(expire_year - created_year, 100);
    assert_eq!(
        key["createdAt"].as_str().unwrap()[4..],
        key["expireAt"].as_str().unwrap()[4..]
    );
}

#[tokio::test]
async fn an_unknown_expires_phrase_is_a_clear_400() {
    let app = spawn_app().await;
    let (_, token) = app.user("ada").await;
    let r = app
        .bearer(Method::POST, "/api/apikey", &token)
        .header("Content-Type", FORM)
        .body("expires=Fortnight&label=x")
        .send()
        .await
        .unwrap();
    let body = problem(r, StatusCode::BAD_REQUEST).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("expires") && detail.contains("One Month"), "{detail}");
    let r = app
        .bearer(Method::POST, "/api/apikey", &token)
        .header("Content-Type", FORM)
        .body("label=x&colour=red")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn another_users_key_is_not_found() {
    let app = spawn_app().await;
    let (_, ada) = app.user("ada").await;
    let (_, bob) = app.user("bob").await;
    app.bearer(Method::POST, "/api/apikey", &ada)
        .json(&json!({"label": "ada's"}))
        .send()
        .await
        .unwrap();
    let list: Value = app
        .bearer(Method::GET, "/api/apikey", &ada)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["apiKeys"][0]["_id"].as_str().unwrap();
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let r = app
            .bearer(method, &format!("/api/apikey/{id}"), &bob)
            .json(&json!({"label": "mine now"}))
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::NOT_FOUND).await;
    }
    let bobs: Value = app
        .bearer(Method::GET, "/api/apikey", &bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bobs, json!({"apiKeys": [], "total": 0}));
}
