//! Secret hygiene: after a full run against the built binary, with debug logging, no key,
//! password, access token or configured secret appears in the log or in any error body.

use reqwest::StatusCode;
use serde_json::json;

use crate::console::Console;
use crate::helpers::{ADMIN_PASSWORD, Http, basic, start_binary};

const SECRET: &str = "configured master secret, thirty-two bytes or more";

#[tokio::test]
async fn no_secret_reaches_the_log_or_an_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = start_binary(dir.path(), &[("RUST_LOG", "debug"), ("KEYWARD__AUTH__SECRET", SECRET)]);
    let http = Http::new(&url);
    let admin = basic("admin", ADMIN_PASSWORD);
    let mut secrets: Vec<String> = vec![
        ADMIN_PASSWORD.into(),
        SECRET.into(),
        "ada's password".into(),
        "wrong guess 123".into(),
    ];
    let mut error_bodies = Vec::new();

    http.post("/v1/users")
        .authorization(&admin)
        .json(&json!({"username": "ada", "password": "ada's password"}))
        .await
        .expect_status(StatusCode::CREATED);
    let token = http
        .post("/v1/auth/token")
        .json(&json!({"username": "ada", "password": "ada's password"}))
        .await
        .json();
    let token = token["access_token"].as_str().unwrap().to_owned();
    secrets.push(token.clone());
    let made = http
        .post("/v1/keys")
        .as_(&token)
        .json(&json!({"name": "k"}))
        .await
        .json();
    let key = made["key"].as_str().unwrap().to_owned();
    secrets.push(key.clone());
    let added = http
        .post("/api/apikey")
        .as_(&token)
        .form(&[("label", "x"), ("expires", "One Month")])
        .await
        .json();
    secrets.push(added["api_key"].as_str().unwrap().to_owned());

    // Uses in every form, and failures that carry secrets in headers and bodies.
    let attempts = vec![
        http.get("/v1/me").authorization(&key),
        http.get("/v1/me").api_key(&key),
        http.get("/v1/me").authorization(basic("ada", "ada's password")),
        http.get("/v1/me").authorization(basic("ada", "wrong guess 123")),
        http.get("/v1/me").authorization(format!("Bearer {key}x")),
        http.post("/v1/auth/token")
            .json(&json!({"username": "ada", "password": "wrong guess 123"})),
        http.post("/v1/auth/token")
            .json(&json!({"username": "ada", "password": "wrong guess 123", "extra": key})),
        http.post("/v1/keys")
            .as_(&token)
            .json(&json!({"name": key, "expires": "never", "key": key})),
        http.post("/v1/keys").as_(&token).json(&json!({"expires": key})),
        http.post("/v1/me/password")
            .api_key(&key)
            .json(&json!({"current_password": "ada's password", "new_password": "wrong guess 123"})),
        http.post("/v1/me/password")
            .as_(&token)
            .json(&json!({"current_password": "wrong guess 123", "new_password": "wrong guess 123"})),
        http.post("/v1/users")
            .as_(&token)
            .json(&json!({"username": "eve", "password": "wrong guess 123"})),
        http.patch(&format!("/v1/keys/{}", made["id"].as_str().unwrap()))
            .as_(&token)
            .json(&json!({"name": 5, "secret": SECRET})),
        http.post("/api/apikey")
            .as_(&token)
            .form(&[("label", "x"), ("expires", ADMIN_PASSWORD)]),
    ];
    for call in attempts {
        let r = call.await;
        if !r.status().is_success() {
            error_bodies.push(r.text());
        }
    }
    http.delete(&format!("/v1/keys/{}", made["id"].as_str().unwrap()))
        .as_(&token)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    error_bodies.push(http.get("/v1/me").api_key(&key).await.text());

    // The web console: a failed and a good sign-in, forms carrying secrets, sign-out.
    let browser = Console::new(&http);
    let page = browser.try_sign_in("ada", "wrong guess 123").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    error_bodies.push(page.body);
    secrets.push(browser.cookie("keyward_sign_in").unwrap());
    browser.sign_in("ada", "ada's password").await;
    secrets.push(browser.cookie("keyward_session").unwrap());
    let csrf = browser.get("/ui/keys").await.csrf();
    for form in [
        vec![("csrf", csrf.as_str()), ("name", "x"), ("expires", ADMIN_PASSWORD)],
        vec![("csrf", csrf.as_str()), ("name", "x"), ("expires_on", SECRET)],
        vec![("csrf", key.as_str()), ("name", "x")],
    ] {
        let page = browser.post("/ui/keys", &form).await;
        assert!(page.status.is_client_error());
        error_bodies.push(page.body);
    }
    let page = browser.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    drop(server);

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("GET /v1/me"), "the log has the requests");
    assert!(error_bodies.len() >= 10);
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the log: {}",
            log.lines().find(|l| l.contains(secret.as_str())).unwrap_or_default()
        );
        // JSON escaping would turn ' into ' unchanged, so a plain search is enough.
        for body in &error_bodies {
            assert!(!body.contains(secret.as_str()), "a secret is in an error body: {body}");
        }
    }
    // Nor a part of one: the signature of a key.
    let signature = key.rsplit('.').next().unwrap();
    assert!(!log.contains(signature));
}
