//! Seed 001 conformance: the document's curl requests (form-urlencoded bodies with
//! `--data-urlencode`, and its `Content-Type: application/x-www-form-urlencoded` header even
//! on GET and DELETE), checked for status, fields, types and exact messages.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

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
        .post("/api/apikey")
        .as_(&token)
        .header("Content-Type", FORM)
        .body("expires=One%20Month&label=Test%20123")
        .await
        .expect_status(StatusCode::OK);
    let added = r.json();
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
        .get("/api/apikey")
        .as_(&token)
        .header("Content-Type", FORM)
        .await
        .expect_status(StatusCode::OK);
    let list = r.json();
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
        .get(&format!("/api/apikey/{id}"))
        .as_(&token)
        .header("Content-Type", FORM)
        .await
        .expect_status(StatusCode::OK);
    let one = r.json();
    assert_eq!(one.as_object().unwrap().len(), 1);
    assert_shape(&one["apiKey"]);

    let r = app
        .patch(&format!("/api/apikey/{id}"))
        .as_(&token)
        .header("Content-Type", FORM)
        .body("label=Test%201234")
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"code": "UPDATED", "message": "APIKey has been updated"})
    );
    let one = app.get(&format!("/api/apikey/{id}")).as_(&token).await.json();
    assert_eq!(one["apiKey"]["label"], "Test 1234");

    assert_eq!(app.me_status(&format!("Bearer {api_key}")).await, StatusCode::OK);
    let r = app
        .delete(&format!("/api/apikey/{id}"))
        .as_(&token)
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(
        r.json(),
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
    app.post("/api/apikey")
        .as_(&token)
        .json(&json!({"label": "Test 1234", "expires": "Never"}))
        .await
        .expect_status(StatusCode::OK);
    let list = app.get("/api/apikey").as_(&token).await.json();
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
    let body = app
        .post("/api/apikey")
        .as_(&token)
        .header("Content-Type", FORM)
        .body("expires=Fortnight&label=x")
        .await
        .problem(StatusCode::BAD_REQUEST);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("expires") && detail.contains("One Month"), "{detail}");
    app.post("/api/apikey")
        .as_(&token)
        .header("Content-Type", FORM)
        .body("label=x&colour=red")
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn another_users_key_is_not_found() {
    let app = spawn_app().await;
    let (_, ada) = app.user("ada").await;
    let (_, bob) = app.user("bob").await;
    app.post("/api/apikey").as_(&ada).json(&json!({"label": "ada's"})).await;
    let list = app.get("/api/apikey").as_(&ada).await.json();
    let id = list["apiKeys"][0]["_id"].as_str().unwrap();
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        app.call(method, &format!("/api/apikey/{id}"))
            .as_(&bob)
            .json(&json!({"label": "mine now"}))
            .await
            .problem(StatusCode::NOT_FOUND);
    }
    let bobs = app.get("/api/apikey").as_(&bob).await.json();
    assert_eq!(bobs, json!({"apiKeys": [], "total": 0}));
}
