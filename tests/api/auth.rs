//! Logging in, the four credential forms, and which credential works where.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, basic, spawn_app};

#[tokio::test]
async fn login_returns_a_bearer_access_token() {
    let app = spawn_app().await;
    let r = app
        .post("/v1/auth/token")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .await
        .expect_status(StatusCode::OK);
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_401_alike() {
    let app = spawn_app().await;
    for (user, pass) in [("admin", "wrong password"), ("nobody", ADMIN_PASSWORD)] {
        let r = app
            .post("/v1/auth/token")
            .json(&json!({"username": user, "password": pass}))
            .await;
        let www = r.header("www-authenticate").map(str::to_owned);
        let body = r.problem(StatusCode::UNAUTHORIZED);
        assert_eq!(www.as_deref(), Some(r#"Bearer realm="keyward""#));
        assert_eq!(body["detail"], "wrong username or password");
        assert!(!body.to_string().contains(pass));
    }
}

#[tokio::test]
async fn unknown_users_cost_the_same_argon2_work_as_known_ones() {
    let app = spawn_app().await;
    let before = app.keyward.password_verification_count();
    for user in ["admin", "ghost"] {
        app.post("/v1/auth/token")
            .json(&json!({"username": user, "password": "not the password"}))
            .await
            .expect_status(StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.keyward.password_verification_count(), before + 2);
}

#[tokio::test]
async fn every_credential_form_authenticates() {
    let app = spawn_app().await;
    let (key_id, key) = app.admin_key().await;
    let cases = [
        (format!("Bearer {}", app.admin), "access_token", Value::Null),
        (format!("Bearer {key}"), "api_key", json!(key_id)),
        (key.clone(), "api_key", json!(key_id)),
        (basic("admin", ADMIN_PASSWORD), "password", Value::Null),
        (basic("anything", &key), "api_key", json!(key_id)),
    ];
    for (authorization, method, kid) in cases {
        let r = app.get("/v1/me").authorization(&authorization).await;
        assert_eq!(r.status(), StatusCode::OK, "{method}");
        let me = r.json();
        assert_eq!(me["auth"]["method"], method);
        assert_eq!(me["auth"]["key_id"], kid);
        assert_eq!(me["user"]["username"], "admin");
        assert_eq!(me["user"]["role"], "admin");
        assert!(
            me["user"]["created_at"].is_string() && me["user"]["id"].is_string() && me["user"].get("email").is_some()
        );
    }
    let r = app.get("/v1/me").api_key(&key).await.expect_status(StatusCode::OK);
    assert_eq!(r.json()["auth"]["method"], "api_key");
}

#[tokio::test]
async fn basic_accepts_the_email_as_username() {
    let app = spawn_app().await;
    let (_, _) = app.user("ada").await;
    assert_eq!(
        app.me_status(&basic("ada@example.com", "ada-password")).await,
        StatusCode::OK
    );
    assert_eq!(app.me_status(&basic("ADA", "ada-password")).await, StatusCode::OK);
}

#[tokio::test]
async fn an_access_token_is_refused_where_a_key_is_expected() {
    let app = spawn_app().await;
    assert_eq!(app.me_status(&app.admin).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me_status(&basic("admin", &app.admin)).await,
        StatusCode::UNAUTHORIZED
    );
    app.get("/v1/me")
        .api_key(&app.admin)
        .await
        .expect_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_never_passes_as_an_access_token() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    // Presented as Bearer it is checked as a key: revoke it, and Bearer fails too.
    app.delete(&format!("/v1/keys/{id}"))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::UNAUTHORIZED);
    // A key cannot change a password, which needs a login.
}

#[tokio::test]
async fn no_credential_is_401_with_a_plain_challenge() {
    let app = spawn_app().await;
    let r = app.get("/v1/me").await;
    assert_eq!(r.header("www-authenticate").unwrap(), r#"Bearer realm="keyward""#);
    r.problem(StatusCode::UNAUTHORIZED);
    for garbage in ["Bearer", "Bearer a.b.c", "Basic !!!", "Digest x y", "not-a-key"] {
        assert_eq!(app.me_status(garbage).await, StatusCode::UNAUTHORIZED, "{garbage}");
    }
}

#[tokio::test]
async fn changing_ones_password_ends_access_tokens_but_needs_a_login() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key().await;
    let body = json!({"current_password": ADMIN_PASSWORD, "new_password": "a brand new password"});

    app.post("/v1/me/password")
        .as_(&key)
        .json(&body)
        .await
        .problem(StatusCode::FORBIDDEN);
    let wrong = json!({"current_password": "not it at all", "new_password": "a brand new password"});
    app.post("/v1/me/password")
        .as_(&app.admin)
        .json(&wrong)
        .await
        .problem(StatusCode::BAD_REQUEST);
    let short = json!({"current_password": ADMIN_PASSWORD, "new_password": "short"});
    let r = app.post("/v1/me/password").as_(&app.admin).json(&short).await;
    assert!(
        r.problem(StatusCode::BAD_REQUEST)["detail"]
            .as_str()
            .unwrap()
            .contains("new_password")
    );

    app.post("/v1/me/password")
        .as_(&app.admin)
        .json(&body)
        .await
        .expect_status(StatusCode::NO_CONTENT);
    assert_eq!(
        app.me_status(&format!("Bearer {}", app.admin)).await,
        StatusCode::UNAUTHORIZED,
        "old access token ends"
    );
    assert_eq!(
        app.me_status(&basic("admin", ADMIN_PASSWORD)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status(&basic("admin", "a brand new password")).await,
        StatusCode::OK
    );
    assert_eq!(
        app.me_status(&key).await,
        StatusCode::OK,
        "keys are not access tokens: they live on"
    );
}

#[tokio::test]
async fn repeated_bad_passwords_are_throttled_with_retry_after() {
    let app = spawn_app().await;
    let mut last = StatusCode::OK;
    let mut retry_after = None;
    for _ in 0..8 {
        let r = app
            .post("/v1/auth/token")
            .json(&json!({"username": "admin", "password": "guessing-wrong"}))
            .await;
        last = r.status();
        retry_after = r.header("retry-after").map(str::to_owned);
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn two_different_credentials_are_refused_and_one_key_repeated_is_not() {
    let app = spawn_app().await;
    let (_, good) = app.admin_key().await;
    let (revoked_id, revoked) = app.admin_key().await;
    app.delete(&format!("/v1/keys/{revoked_id}"))
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::NO_CONTENT);

    let two_authorizations = app
        .get("/v1/me")
        .authorization(format!("Bearer {good}"))
        .authorization(format!("Bearer {revoked}"));
    let two_api_keys = app.get("/v1/me").api_key(good.as_str()).api_key(revoked.as_str());
    // A valid Authorization must not mask a revoked X-API-Key.
    let one_of_each = app
        .get("/v1/me")
        .authorization(format!("Bearer {good}"))
        .api_key(revoked.as_str());
    for request in [two_authorizations, two_api_keys, one_of_each] {
        let r = request.await;
        let www = r.header("www-authenticate").map(str::to_owned);
        r.problem(StatusCode::BAD_REQUEST);
        assert_eq!(
            www.as_deref(),
            Some(r#"Bearer realm="keyward", error="invalid_request""#)
        );
    }

    let same_key_twice = app
        .get("/v1/me")
        .authorization(format!("Bearer {good}"))
        .api_key(good.as_str())
        .basic("anything", &good);
    same_key_twice.await.expect_status(StatusCode::OK);
}

async fn login_status(
    app: &crate::helpers::TestApp,
    login: &str,
    password: &str,
    from: &str,
) -> (StatusCode, Option<u64>) {
    let r = app
        .post("/v1/auth/token")
        .header("X-Forwarded-For", from)
        .json(&json!({"username": login, "password": password}))
        .await;
    let retry = r.header("retry-after").map(|v| v.parse::<u64>().unwrap());
    (r.status(), retry)
}

#[tokio::test]
async fn the_username_and_the_email_of_one_account_share_one_count() {
    let app = crate::helpers::spawn_with(|s| {
        s.server.trusted_proxies = vec![keyward::config::IpNet::parse("127.0.0.1").unwrap()];
    })
    .await;
    app.user("ada").await;
    for _ in 0..keyward::domain::credentials::FREE_FAILURES {
        assert_eq!(
            login_status(&app, "ada", "wrong guess", "10.1.1.1").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // The email is the same account: blocked too, even with the right password.
    assert_eq!(
        login_status(&app, "ada@example.com", "ada-password", "10.1.1.1")
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_status(&app, "ada@example.com", "ada-password", "10.1.1.2")
            .await
            .0,
        StatusCode::OK,
        "from elsewhere the owner gets in"
    );
}

#[tokio::test]
async fn guesses_spread_over_many_addresses_slow_the_account_down() {
    let app = crate::helpers::spawn_with(|s| {
        s.server.trusted_proxies = vec![keyward::config::IpNet::parse("127.0.0.1").unwrap()];
    })
    .await;
    app.user("ada").await;
    for n in 0..keyward::domain::credentials::ACCOUNT_FREE_FAILURES {
        let from = format!("10.2.0.{n}");
        assert_eq!(
            login_status(&app, "ada", "wrong guess", &from).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // One more attempt passes (and fails); the next, from yet another address, waits.
    assert_eq!(
        login_status(&app, "ada", "wrong guess", "10.2.1.1").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, retry) = login_status(&app, "ada", "wrong guess", "10.2.1.2").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.unwrap() >= 1);
    // Other accounts are untouched.
    assert_eq!(
        login_status(&app, "admin", ADMIN_PASSWORD, "10.2.1.3").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_logins_are_one_audit_line_per_address_and_minute() {
    let app = spawn_app().await;
    let before = app.get_json("/v1/audit?limit=500", &app.admin).await["total"]
        .as_u64()
        .unwrap();
    for n in 0..12 {
        let (status, _) = login_status(&app, &format!("nobody-{n}"), "some password", "10.9.9.9").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let audit = app.get_json("/v1/audit?limit=500", &app.admin).await;
    let added = audit["total"].as_u64().unwrap() - before;
    assert!(
        added <= 2,
        "{added} lines for 12 attempts (one a minute, at most two if a minute turned)"
    );
    let counted: u64 = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "login.failed" && a["actor"] == "anonymous")
        .map(|a| {
            let detail = a["detail"].as_str().unwrap();
            assert!(!detail.contains("nobody"), "{detail}");
            detail.split_whitespace().next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(counted, 12);
}
