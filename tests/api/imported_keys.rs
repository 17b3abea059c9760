//! Imported keys: keys keyward did not mint, given as a SHA-256 (hex, base64, base64url) or
//! in plaintext, working like minted ones in every credential form and dialect, and dying
//! at once when revoked.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{TestApp, basic, spawn_app};

fn sha256(key: &str) -> [u8; 32] {
    sha2::Sha256::digest(key.as_bytes()).into()
}

async fn import(app: &TestApp, keys: Value) -> crate::helpers::Reply {
    app.post("/v1/keys/import")
        .as_(&app.admin)
        .json(&json!({ "keys": keys }))
        .await
}

/// Every way a client may present `key`: all must authenticate on `/v1/me`.
async fn works_in_every_form(app: &TestApp, key: &str) {
    for authorization in [format!("Bearer {key}"), key.to_owned(), basic("anyone", key)] {
        assert_eq!(app.me_status(&authorization).await, StatusCode::OK, "{authorization}");
    }
    let r = app.get("/v1/me").api_key(key).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json()["auth"]["method"], "api_key");
}

#[tokio::test]
async fn imported_keys_work_in_every_encoding_and_credential_form() {
    let app = spawn_app().await;
    let (ada_id, _) = app.user("ada").await;
    let keys = [
        "sk_live_hex_0123456789abcdef",
        "sk_live_b64_0123456789abcdef",
        "sk_live_b64url_0123456789abcd",
        "plain_key_0123456789abcdef",
        // A key from another issuer may itself look like a JWT.
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
    ];
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let r = import(
        &app,
        json!([
            {"username": "ada", "name": "hex", "hash": {"algorithm": "sha256", "encoding": "hex", "value": hex::encode(sha256(keys[0]))}},
            {"user_id": ada_id, "name": "base64", "hash": {"algorithm": "sha256", "encoding": "base64", "value": b64.encode(sha256(keys[1]))}},
            {"username": "ada", "name": "base64url", "hash": {"algorithm": "sha256", "encoding": "base64url", "value": b64url.encode(sha256(keys[2]))}},
            {"username": "ada", "name": "plain", "key": keys[3], "id": "0123456789abcdef01234567", "scopes": ["billing:read"], "meta": {"from": "legacy"}},
            {"username": "ada", "name": "jwt-shaped", "key": keys[4], "expires_at": "2099-01-01T00:00:00Z"},
        ]),
    )
    .await
    .expect_status(StatusCode::CREATED);
    let ids = r.json()["ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids[3], "0123456789abcdef01234567", "ids come back in input order");
    for key in keys {
        works_in_every_form(&app, key).await;
    }
    // Listed like minted keys, with what was given.
    let ada = app.login("ada", "ada-password").await;
    let list = app.get_json("/v1/keys", &ada).await;
    assert_eq!(list["total"], 5);
    let plain = app.get_json("/v1/keys/0123456789abcdef01234567", &ada).await;
    assert_eq!(plain["name"], "plain");
    assert_eq!(plain["scopes"], json!(["billing:read"]));
    assert_eq!(plain["meta"], json!({"from": "legacy"}));
    assert_eq!(plain["user_id"], ada_id.as_str());
    let jwt = app
        .get_json(&format!("/v1/keys/{}", ids[4].as_str().unwrap()), &ada)
        .await;
    assert_eq!(jwt["expires_at"], "2099-01-01T00:00:00Z");
    // Each key is audited as `key.import` (it read back as `other` once).
    let imports = app.audit_lines("key.import").await;
    assert_eq!(imports.len(), 5, "{imports:?}");
    assert!(
        imports.iter().any(|e| e["target_id"] == "0123456789abcdef01234567"),
        "{imports:?}"
    );
}

#[tokio::test]
async fn an_imported_key_works_on_the_dialects_verify_and_forward_auth() {
    let app = spawn_app().await;
    let (ada_id, _) = app.user("ada").await;
    let key = "legacy_key_for_ada_0001";
    let r = import(&app, json!([{"username": "ada", "name": "legacy", "key": key}]))
        .await
        .expect_status(StatusCode::CREATED);
    let id = r.json()["ids"][0].as_str().unwrap().to_owned();

    let s000 = app.get(&format!("/1/users/{ada_id}/apiKeys")).api_key(key).await.json();
    assert_eq!(s000["data"][0]["key_id"], id.as_str());
    assert_eq!(s000["data"][0]["description"], "legacy");
    let s001 = app.get("/api/apikey").as_(key).await.json();
    assert_eq!(s001["apiKeys"][0]["_id"], id.as_str());
    assert_eq!(
        s001["apiKeys"][0]["hash"],
        hex::encode(sha256(key)),
        "seed 001 shows an imported key's hash as its 64-hex SHA-256"
    );
    let s002 = app.get("/api/v1/apikey").authorization(key).await.json();
    assert_eq!(s002[0]["id"], id.as_str());

    let v = app
        .post("/v1/verify")
        .as_(&app.admin)
        .json(&json!({"key": key}))
        .await
        .expect_status(StatusCode::OK)
        .json();
    assert_eq!(v["code"], "VALID");
    assert_eq!(v["key_id"], id.as_str());
    let r = app
        .get("/v1/forward-auth")
        .api_key(key)
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(r.header("x-auth-key-id"), Some(id.as_str()));
}

#[tokio::test]
async fn an_imported_key_relabels_rotates_and_dies_at_once_when_revoked() {
    let app = spawn_app().await;
    app.user("ada").await;
    let ada = app.login("ada", "ada-password").await;
    let (first, second) = ("legacy_key_number_one", "legacy_key_number_two");
    let r = import(
        &app,
        json!([{"username": "ada", "name": "one", "key": first}, {"username": "ada", "name": "two", "key": second}]),
    )
    .await
    .expect_status(StatusCode::CREATED);
    let ids: Vec<String> = r.json()["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();

    let renamed = app
        .patch(&format!("/v1/keys/{}", ids[0]))
        .as_(first)
        .json(&json!({"name": "renamed"}))
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(renamed.json()["name"], "renamed");

    app.delete(&format!("/v1/keys/{}", ids[0]))
        .as_(&ada)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert_eq!(app.me_status(first).await, StatusCode::UNAUTHORIZED);
    let v = app
        .post("/v1/verify")
        .as_(&app.admin)
        .json(&json!({"key": first}))
        .await
        .json();
    assert_eq!(v["code"], "REVOKED");

    let rotated = app
        .post(&format!("/v1/keys/{}/rotate", ids[1]))
        .as_(&ada)
        .json(&json!({}))
        .await
        .expect_status(StatusCode::CREATED)
        .json();
    let new_key = rotated["key"].as_str().unwrap();
    assert_eq!(new_key.split('.').count(), 3, "the new key is a keyward JWT");
    assert_eq!(app.me_status(new_key).await, StatusCode::OK);
}

#[tokio::test]
async fn an_import_is_all_or_nothing_and_refuses_taken_ids() {
    let app = spawn_app().await;
    app.user("ada").await;
    let ok = json!({"username": "ada", "name": "fine", "key": "a_fine_legacy_key_01"});
    // One bad entry: nothing stored, and the entry is named.
    let r = import(
        &app,
        json!([ok, {"username": "nobody", "name": "x", "key": "another_legacy_key_1"}]),
    )
    .await;
    let p = r.problem(StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("entry 1"), "{p}");
    assert_eq!(app.me_status("a_fine_legacy_key_01").await, StatusCode::UNAUTHORIZED);
    for bad in [
        json!({"username": "ada", "name": "x"}),
        json!({"username": "ada", "name": "x", "key": "short"}),
        json!({"username": "ada", "name": "x", "hash": {"algorithm": "md5", "encoding": "hex", "value": "00"}}),
        json!({"username": "ada", "name": "x", "hash": {"algorithm": "sha256", "encoding": "hex", "value": "abcd"}}),
        json!({"username": "ada", "name": "x", "key": "a_fine_legacy_key_02", "id": "nothex"}),
        json!({"username": "ada", "name": "x", "key": "a_fine_legacy_key_02", "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"username": "ada", "name": "x", "key": "a_fine_legacy_key_02", "color": "red"}),
    ] {
        import(&app, json!([bad])).await.problem(StatusCode::BAD_REQUEST);
    }
    import(&app, json!([])).await.problem(StatusCode::BAD_REQUEST);

    let (taken, _) = app.admin_key().await;
    let r = import(
        &app,
        json!([ok, {"username": "ada", "name": "clash", "key": "another_legacy_key_2", "id": taken}]),
    )
    .await;
    r.problem(StatusCode::CONFLICT);
    assert_eq!(app.me_status("a_fine_legacy_key_01").await, StatusCode::UNAUTHORIZED);
    // The same key twice is a conflict too.
    import(&app, json!([ok])).await.expect_status(StatusCode::CREATED);
    import(&app, json!([ok])).await.problem(StatusCode::CONFLICT);
}

#[tokio::test]
async fn only_admins_import_keys() {
    let app = spawn_app().await;
    let (_, ada) = app.user("ada").await;
    let r = app
        .post("/v1/keys/import")
        .as_(&ada)
        .json(&json!({"keys": [{"username": "ada", "name": "x", "key": "a_fine_legacy_key_01"}]}))
        .await;
    r.problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn imported_keys_survive_a_restart() {
    let app = spawn_app().await;
    app.user("ada").await;
    import(
        &app,
        json!([{"username": "ada", "name": "x", "key": "a_fine_legacy_key_01"}]),
    )
    .await
    .expect_status(StatusCode::CREATED);
    let app = app.restart().await;
    works_in_every_form(&app, "a_fine_legacy_key_01").await;
}

#[tokio::test]
async fn an_imported_key_shows_in_the_console() {
    let app = spawn_app().await;
    let r = import(
        &app,
        json!([{"username": "admin", "name": "legacy in the console", "key": "legacy_console_key_01"}]),
    )
    .await
    .expect_status(StatusCode::CREATED);
    let id = r.json()["ids"][0].as_str().unwrap().to_owned();
    let console = crate::console::Console::new(&app);
    console.sign_in("admin", crate::helpers::ADMIN_PASSWORD).await;
    let list = console.get("/ui/keys").await;
    assert!(list.body.contains("legacy in the console") && list.body.contains(&id));
    let page = console.get(&format!("/ui/keys/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("legacy_console_key_01"), "the key is never shown");
}
