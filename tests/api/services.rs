//! Scopes, metadata, disabling keys, the verify API and forward-auth.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn scopes_are_enforced_on_native_and_dialect_routes() {
    let app = spawn_app().await;
    let (_, ada) = app.user("ada").await;
    let reader = app.create_key(&ada, json!({"scopes": ["keys:read"]})).await;
    assert_eq!(reader["scopes"], json!(["keys:read"]));
    let key = reader["key"].as_str().unwrap();
    app.get("/v1/keys").as_(key).await.expect_status(StatusCode::OK);
    app.get("/api/v1/apikey")
        .authorization(key)
        .await
        .expect_status(StatusCode::OK);
    for (method, path) in [
        (Method::POST, "/v1/keys"),
        (Method::POST, "/api/apikey"),
        (Method::DELETE, "/api/v1/apikey/000000000000000000000000"),
    ] {
        let r = app.call(method, path).as_(key).await;
        let www = r.header("www-authenticate").unwrap().to_owned();
        r.problem(StatusCode::FORBIDDEN);
        assert_eq!(
            www,
            r#"Bearer realm="keyward", error="insufficient_scope", scope="keys:write""#
        );
    }
    // An admin's key without users:admin cannot use admin routes.
    let admin_reader = app.create_key(&app.admin, json!({"scopes": ["keys:read"]})).await;
    app.get("/v1/users")
        .as_(admin_reader["key"].as_str().unwrap())
        .await
        .problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_key_cannot_mint_wider_scopes_than_its_own() {
    let app = spawn_app().await;
    let parent = app
        .create_key(&app.admin, json!({"scopes": ["keys:write", "billing:read"]}))
        .await;
    let key = parent["key"].as_str().unwrap();
    for body in [
        json!({"scopes": ["billing:write"]}),
        json!({}),
        json!({"scopes": ["keys:write", "users:admin"]}),
    ] {
        app.post("/v1/keys")
            .as_(key)
            .json(&body)
            .await
            .problem(StatusCode::FORBIDDEN);
    }
    app.post("/v1/keys")
        .as_(key)
        .json(&json!({"scopes": ["billing:read"]}))
        .await
        .expect_status(StatusCode::CREATED);
}

#[tokio::test]
async fn meta_is_stored_and_limited() {
    let app = spawn_app().await;
    let made = app
        .create_key(&app.admin, json!({"meta": {"team": "billing", "tier": 2}}))
        .await;
    let got = app
        .get(&format!("/v1/keys/{}", made["id"].as_str().unwrap()))
        .as_(&app.admin)
        .await
        .json();
    assert_eq!(got["meta"], json!({"team": "billing", "tier": 2}));
    for bad in [
        json!({"meta": "text"}),
        json!({"meta": {"blob": "x".repeat(5000)}}),
        json!({"scopes": []}),
        json!({"scopes": ["has space"]}),
    ] {
        app.post("/v1/keys")
            .as_(&app.admin)
            .json(&bad)
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn a_disabled_key_fails_at_once_and_works_again_when_enabled() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    let path = format!("/v1/keys/{id}");
    let r = app.patch(&path).as_(&app.admin).json(&json!({"disabled": true})).await;
    assert_eq!(r.json()["disabled"], true);
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    app.patch(&path).as_(&app.admin).json(&json!({"disabled": false})).await;
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
}

async fn verify(app: &crate::helpers::TestApp, as_: &str, key: &str, scopes: Value) -> Value {
    let r = app
        .post("/v1/verify")
        .as_(as_)
        .json(&json!({"key": key, "scopes": scopes}))
        .await
        .expect_status(StatusCode::OK);
    r.json()
}

#[tokio::test]
async fn verify_reports_every_code() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let admin = app.admin.clone();
    let good = app
        .create_key(&ada, json!({"scopes": ["billing:read"], "meta": {"plan": "pro"}}))
        .await;
    let v = verify(&app, &admin, good["key"].as_str().unwrap(), json!(["billing:read"])).await;
    assert_eq!(v["code"], "VALID");
    assert_eq!(v["valid"], true);
    assert_eq!(v["user_id"], ada_id.as_str());
    assert_eq!(v["username"], "ada");
    assert_eq!(v["scopes"], json!(["billing:read"]));
    assert_eq!(v["meta"], json!({"plan": "pro"}));
    assert_eq!(
        verify(&app, &admin, good["key"].as_str().unwrap(), json!(["billing:write"])).await["code"],
        "INSUFFICIENT_SCOPE"
    );
    assert_eq!(
        verify(&app, &admin, "eyJhbGciOiJIUzI1NiJ9.e30.nope-nope-nope", json!([])).await["code"],
        "NOT_FOUND"
    );

    let revoked = app.create_key(&ada, json!({})).await;
    app.delete(&format!("/v1/keys/{}", revoked["id"].as_str().unwrap()))
        .as_(&ada)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    let v = verify(&app, &admin, revoked["key"].as_str().unwrap(), json!([])).await;
    assert_eq!(v["code"], "REVOKED");
    assert!(v["user_id"].is_null());

    let disabled = app.create_key(&ada, json!({})).await;
    app.patch(&format!("/v1/keys/{}", disabled["id"].as_str().unwrap()))
        .as_(&ada)
        .json(&json!({"disabled": true}))
        .await;
    assert_eq!(
        verify(&app, &admin, disabled["key"].as_str().unwrap(), json!([])).await["code"],
        "DISABLED"
    );

    let short = app.create_key(&ada, json!({"expires": 1})).await;
    let key = short["key"].as_str().unwrap().to_owned();
    app.advance(std::time::Duration::from_secs(2));
    assert_eq!(verify(&app, &admin, &key, json!([])).await["code"], "EXPIRED");

    // Who may ask: an admin, or a key with the explicit scope; not a user's plain key.
    let plain = app.create_key(&ada, json!({})).await;
    app.post("/v1/verify")
        .as_(plain["key"].as_str().unwrap())
        .json(&json!({"key": "x"}))
        .await
        .problem(StatusCode::FORBIDDEN);
    // Only an admin grants keys:verify, here to a key of ada's.
    let r = app
        .post(&format!("/v1/users/{ada_id}/keys"))
        .as_(&admin)
        .json(&json!({"scopes": ["keys:verify"]}))
        .await
        .expect_status(StatusCode::CREATED);
    let verifier = r.json();
    assert_eq!(
        verify(
            &app,
            verifier["key"].as_str().unwrap(),
            good["key"].as_str().unwrap(),
            json!([])
        )
        .await["code"],
        "VALID"
    );
}

#[tokio::test]
async fn forward_auth_answers_as_proxies_expect() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let made = app
        .create_key(&ada, json!({"scopes": ["billing:read", "keys:read"]}))
        .await;
    let key = made["key"].as_str().unwrap();
    let r = app
        .get("/v1/forward-auth?scope=billing:read")
        .api_key(key)
        .await
        .expect_status(StatusCode::OK);
    let h = r.headers();
    assert_eq!(h.get("x-auth-user").unwrap(), "ada");
    assert_eq!(h.get("x-auth-user-id").unwrap(), ada_id.as_str());
    assert_eq!(h.get("x-auth-key-id").unwrap(), made["id"].as_str().unwrap());
    assert_eq!(h.get("x-auth-scopes").unwrap(), "billing:read keys:read");

    let r = app
        .get("/v1/forward-auth?scope=billing:write")
        .api_key(key)
        .await
        .expect_status(StatusCode::FORBIDDEN);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains(r#"scope="billing:write""#)
    );
    let r = app
        .get("/v1/forward-auth")
        .await
        .expect_status(StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").is_some());
    // An access token works too (it acts as its user), in the Bearer form.
    app.get("/v1/forward-auth?scope=anything")
        .as_(&ada)
        .await
        .expect_status(StatusCode::OK);
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_the_grace_period_only() {
    let app = spawn_app().await;
    let old = app
        .create_key(
            &app.admin,
            json!({"name": "ci", "scopes": ["keys:read"], "meta": {"team": "ops"}, "expires": "30 days"}),
        )
        .await;
    let old_key = old["key"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("/v1/keys/{}/rotate", old["id"].as_str().unwrap()))
        .as_(&app.admin)
        .json(&json!({"grace": "2s"}))
        .await
        .expect_status(StatusCode::CREATED);
    let new = r.json();
    assert_eq!(new["name"], "ci");
    assert_eq!(new["scopes"], json!(["keys:read"]));
    assert_eq!(new["meta"], json!({"team": "ops"}));
    assert_ne!(new["id"], old["id"]);
    let new_key = new["key"].as_str().unwrap();
    assert_eq!(app.me_status(new_key).await, StatusCode::OK);
    assert_eq!(app.me_status(&old_key).await, StatusCode::OK, "within the grace period");
    app.advance(std::time::Duration::from_secs(3));
    assert_eq!(app.me_status(&old_key).await, StatusCode::UNAUTHORIZED, "after it");
    assert_eq!(app.me_status(new_key).await, StatusCode::OK);

    // Without a grace period the old key stops at once.
    let (id, key) = app.admin_key().await;
    app.post(&format!("/v1/keys/{id}/rotate"))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::CREATED);
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    app.post(&format!("/v1/keys/{id}/rotate"))
        .as_(&app.admin)
        .json(&json!({"grace": "soon"}))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_revocation_list_has_revoked_ids_since_a_time() {
    let app = spawn_app().await;
    let (a, _) = app.admin_key().await;
    let (b, _) = app.admin_key().await;
    app.delete(&format!("/v1/keys/{a}")).as_(&app.admin).await;
    let all = app.get("/v1/revocations?since=0").as_(&app.admin).await.json();
    let ids: Vec<&str> = all["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str()]);
    let since = all["as_of"].as_str().unwrap().to_owned();
    app.advance(std::time::Duration::from_millis(1100));
    app.delete(&format!("/v1/keys/{b}")).as_(&app.admin).await;
    let later = app
        .get(&format!("/v1/revocations?since={since}"))
        .as_(&app.admin)
        .await
        .json();
    let ids: Vec<&str> = later["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b.as_str()]);
    let (_, ada) = app.user("ada").await;
    app.get("/v1/revocations")
        .as_(&ada)
        .await
        .problem(StatusCode::FORBIDDEN);
}

/// Verifies `key` the way any service could: only the JWKS document and a generic JWT
/// library (jsonwebtoken, used here without any of keyward's code).
fn verify_offline(jwks: &Value, key: &str) -> Option<Value> {
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).ok()?;
    let header = jsonwebtoken::decode_header(key).ok()?;
    let jwk = jwks.find(header.kid.as_deref()?)?;
    let decoding = jsonwebtoken::DecodingKey::from_jwk(jwk).ok()?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["keyward"]);
    jsonwebtoken::decode::<Value>(key, &decoding, &validation)
        .ok()
        .map(|d| d.claims)
}

#[tokio::test]
async fn eddsa_keys_verify_offline_with_the_jwks_alone() {
    let app = crate::helpers::spawn_with(|s| s.keys.eddsa = true).await;
    let made = app.create_key(&app.admin, json!({"name": "offline"})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    assert_eq!(app.me_status(&key).await, StatusCode::OK, "keyward itself accepts it");

    let jwks = app.get("/.well-known/jwks.json").await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    let claims = verify_offline(&jwks, &key).expect("verifies offline");
    assert_eq!(claims["jti"], made["id"]);
    assert_eq!(claims["sub"], made["user_id"]);
    // An edited key does not verify offline either.
    let mut parts: Vec<String> = key.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    assert!(verify_offline(&jwks, &parts.join(".")).is_none());

    // Rotating the signing key: new keys get the new kid, old keys stay valid and published.
    let db = app.db_path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .current_dir(db.parent().unwrap())
        .env("KEYWARD__DATABASE__PATH", &db)
        .env("KEYWARD__KEYS__ALGORITHM", "EdDSA")
        .args(["signing-key", "rotate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let app = app.restart().await;
    let newer = app.create_key(&app.admin, json!({})).await;
    let newer_key = newer["key"].as_str().unwrap();
    let jwks = app.get("/.well-known/jwks.json").await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_ne!(
        jsonwebtoken::decode_header(&key).unwrap().kid,
        jsonwebtoken::decode_header(newer_key).unwrap().kid
    );
    assert!(verify_offline(&jwks, &key).is_some() && verify_offline(&jwks, newer_key).is_some());
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
    assert_eq!(app.me_status(newer_key).await, StatusCode::OK);
}

#[tokio::test]
async fn with_hs256_the_jwks_is_empty() {
    let app = spawn_app().await;
    let jwks = app.get("/.well-known/jwks.json").await.json();
    assert_eq!(jwks, json!({"keys": []}));
}

#[tokio::test]
async fn a_key_whose_scopes_cannot_be_read_is_refused_not_given_full_rights() {
    let app = spawn_app().await;
    let scoped = app
        .create_key(&app.admin, json!({"name": "reader", "scopes": ["keys:read"]}))
        .await;
    let (id, key) = (
        scoped["id"].as_str().unwrap().to_owned(),
        scoped["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
    let app = app
        .restart_with(|settings| {
            let db = rusqlite::Connection::open(&settings.database.path).unwrap();
            db.execute("UPDATE keys SET scopes = 'not json [' WHERE id = ?1", [&id])
                .unwrap();
        })
        .await;
    assert_eq!(app.me_status(&key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.post("/v1/keys").as_(&key).json(&json!({})).await.status(),
        StatusCode::UNAUTHORIZED,
        "never the user's full rights"
    );
    // Listed with no scopes at all (not null, which would mean "acts as its user").
    let listed = app.get_json(&format!("/v1/keys/{id}"), &app.admin).await;
    assert_eq!(listed["scopes"], json!([]));
}

#[tokio::test]
async fn only_an_admin_grants_privileged_scopes_and_ungranted_ones_are_not_honoured() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let (_, bob) = app.user("bob").await;
    let bobs = app.create_key(&bob, json!({"name": "bob's"})).await;
    let bobs_key = bobs["key"].as_str().unwrap().to_owned();

    // A user cannot make themself a verifier, a user admin or a metrics reader, on create,
    // by PATCH, or through a key's rotation.
    for scope in ["keys:verify", "users:admin", "metrics:read"] {
        let body = app
            .post("/v1/keys")
            .as_(&ada)
            .json(&json!({"scopes": [scope, "billing:read"]}))
            .await
            .problem(StatusCode::FORBIDDEN);
        assert!(body["detail"].as_str().unwrap().contains(scope), "{body}");
    }
    let plain = app.create_key(&ada, json!({"scopes": ["billing:read"]})).await;
    let plain_id = plain["id"].as_str().unwrap();
    app.patch(&format!("/v1/keys/{plain_id}"))
        .as_(&ada)
        .json(&json!({"scopes": ["billing:read", "keys:verify"]}))
        .await
        .problem(StatusCode::FORBIDDEN);

    // A key that holds keys:verify without a recorded grant (as keys made before grants
    // were recorded do) is not a verifier, and rotating it does not make it one.
    let r = app
        .post(&format!("/v1/users/{ada_id}/keys"))
        .as_(&app.admin)
        .json(&json!({"name": "verifier", "scopes": ["keys:verify"]}))
        .await
        .expect_status(StatusCode::CREATED);
    let granted = r.json();
    let (granted_id, granted_key) = (
        granted["id"].as_str().unwrap().to_owned(),
        granted["key"].as_str().unwrap().to_owned(),
    );
    let can_verify = |key: String| {
        let app = &app;
        let bobs_key = bobs_key.clone();
        async move {
            app.post("/v1/verify")
                .as_(&key)
                .json(&json!({"key": bobs_key}))
                .await
                .status()
        }
    };
    assert_eq!(can_verify(granted_key.clone()).await, StatusCode::OK);
    let app = app
        .restart_with(|settings| {
            let db = rusqlite::Connection::open(&settings.database.path).unwrap();
            db.execute("UPDATE keys SET grants = NULL WHERE id = ?1", [&granted_id])
                .unwrap();
        })
        .await;
    let ada = app.login("ada", "ada-password").await;
    let status = app
        .post("/v1/verify")
        .as_(&granted_key)
        .json(&json!({"key": bobs_key}))
        .await
        .status();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an ungranted keys:verify is not honoured"
    );
    app.get("/v1/revocations")
        .as_(&granted_key)
        .await
        .problem(StatusCode::FORBIDDEN);
    let r = app
        .post(&format!("/v1/keys/{granted_id}/rotate"))
        .as_(&ada)
        .await
        .expect_status(StatusCode::CREATED);
    let rotated = r.json();
    let (rotated_id, rotated_key) = (
        rotated["id"].as_str().unwrap().to_owned(),
        rotated["key"].as_str().unwrap().to_owned(),
    );
    let status = app
        .post("/v1/verify")
        .as_(&rotated_key)
        .json(&json!({"key": bobs_key}))
        .await
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN, "a user's rotation grants nothing");

    // An admin grants it again; a user's later rotation keeps that grant.
    app.patch(&format!("/v1/users/{ada_id}/keys/{rotated_id}"))
        .as_(&app.admin)
        .json(&json!({"scopes": ["keys:verify"]}))
        .await
        .expect_status(StatusCode::OK);
    let status = app
        .post("/v1/verify")
        .as_(&rotated_key)
        .json(&json!({"key": bobs_key}))
        .await
        .status();
    assert_eq!(status, StatusCode::OK);
    let r = app.post(&format!("/v1/keys/{rotated_id}/rotate")).as_(&ada).await;
    let again = r.json();
    let status = app
        .post("/v1/verify")
        .as_(again["key"].as_str().unwrap())
        .json(&json!({"key": bobs_key}))
        .await
        .status();
    assert_eq!(status, StatusCode::OK);
    let updates = app.audit_lines("key.update").await;
    assert!(
        updates
            .iter()
            .any(|a| a["detail"].as_str().unwrap_or("").contains("granted=keys:verify")),
        "the grant is in the audit trail"
    );
}
