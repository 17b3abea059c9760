//! Secret hygiene: after a full run against the built binary, with debug logging, no key,
//! password, access token or configured secret appears in the log or in any error body.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, basic, start_binary};

const SECRET: &str = "configured master secret, thirty-two bytes or more";

#[tokio::test]
async fn no_secret_reaches_the_log_or_an_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = start_binary(dir.path(), &[("RUST_LOG", "debug"), ("KEYWARD__AUTH__SECRET", SECRET)]);
    let client = reqwest::Client::new();
    let admin = basic("admin", ADMIN_PASSWORD);
    let mut secrets: Vec<String> = vec![
        ADMIN_PASSWORD.into(),
        SECRET.into(),
        "ada's password".into(),
        "wrong guess 123".into(),
    ];
    let mut error_bodies = Vec::new();

    let send = |method: Method, path: &str| client.request(method, format!("{url}{path}"));
    let r = send(Method::POST, "/v1/users")
        .header("Authorization", &admin)
        .json(&json!({"username": "ada", "password": "ada's password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let token: Value = send(Method::POST, "/v1/auth/token")
        .json(&json!({"username": "ada", "password": "ada's password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    secrets.push(token.clone());
    let made: Value = send(Method::POST, "/v1/keys")
        .bearer_auth(&token)
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = made["key"].as_str().unwrap().to_owned();
    secrets.push(key.clone());
    let added: Value = send(Method::POST, "/api/apikey")
        .bearer_auth(&token)
        .form(&[("label", "x"), ("expires", "One Month")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(added["api_key"].as_str().unwrap().to_owned());

    // Uses in every form, and failures that carry secrets in headers and bodies.
    let attempts = vec![
        send(Method::GET, "/v1/me").header("Authorization", &key),
        send(Method::GET, "/v1/me").header("X-API-Key", &key),
        send(Method::GET, "/v1/me").header("Authorization", basic("ada", "ada's password")),
        send(Method::GET, "/v1/me").header("Authorization", basic("ada", "wrong guess 123")),
        send(Method::GET, "/v1/me").header("Authorization", format!("Bearer {key}x")),
        send(Method::POST, "/v1/auth/token").json(&json!({"username": "ada", "password": "wrong guess 123"})),
        send(Method::POST, "/v1/auth/token")
            .json(&json!({"username": "ada", "password": "wrong guess 123", "extra": key})),
        send(Method::POST, "/v1/keys")
            .bearer_auth(&token)
            .json(&json!({"name": key, "expires": "never", "key": key})),
        send(Method::POST, "/v1/keys")
            .bearer_auth(&token)
            .json(&json!({"expires": key})),
        send(Method::POST, "/v1/me/password")
            .header("X-API-Key", &key)
            .json(&json!({"current_password": "ada's password", "new_password": "wrong guess 123"})),
        send(Method::POST, "/v1/me/password")
            .bearer_auth(&token)
            .json(&json!({"current_password": "wrong guess 123", "new_password": "wrong guess 123"})),
        send(Method::POST, "/v1/users")
            .bearer_auth(&token)
            .json(&json!({"username": "eve", "password": "wrong guess 123"})),
        send(Method::PATCH, &format!("/v1/keys/{}", made["id"].as_str().unwrap()))
            .bearer_auth(&token)
            .json(&json!({"name": 5, "secret": SECRET})),
        send(Method::POST, "/api/apikey")
            .bearer_auth(&token)
            .form(&[("label", "x"), ("expires", ADMIN_PASSWORD)]),
    ];
    for request in attempts {
        let r = request.send().await.unwrap();
        if !r.status().is_success() {
            error_bodies.push(r.text().await.unwrap());
        }
    }
    let r = send(Method::DELETE, &format!("/v1/keys/{}", made["id"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(Method::GET, "/v1/me")
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    error_bodies.push(r.text().await.unwrap());

    // The web console: a failed and a good sign-in, forms carrying secrets, sign-out.
    let field = |page: &str, cookie: &str| -> (String, String) {
        let at = page.find(r#"name="csrf" value=""#).unwrap() + 19;
        (page[at..at + 64].to_owned(), cookie.to_owned())
    };
    let cookie_of = |r: &reqwest::Response, name: &str| -> String {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_owned())
            .unwrap()
    };
    let r = send(Method::GET, "/ui/login").send().await.unwrap();
    let sign_in_cookie = cookie_of(&r, "keyward_sign_in");
    let (csrf, _) = field(&r.text().await.unwrap(), &sign_in_cookie);
    secrets.push(sign_in_cookie.split('=').nth(1).unwrap().to_owned());
    let r = send(Method::POST, "/ui/login")
        .header("cookie", &sign_in_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "ada"),
            ("password", "wrong guess 123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    error_bodies.push(r.text().await.unwrap());
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .post(format!("{url}/ui/login"))
        .header("cookie", &sign_in_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "ada"),
            ("password", "ada's password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = cookie_of(&r, "keyward_session");
    secrets.push(session.split('=').nth(1).unwrap().to_owned());
    let page = send(Method::GET, "/ui/keys")
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (csrf, _) = field(&page, &session);
    for form in [
        vec![("csrf", csrf.as_str()), ("name", "x"), ("expires", ADMIN_PASSWORD)],
        vec![("csrf", csrf.as_str()), ("name", "x"), ("expires_on", SECRET)],
        vec![("csrf", key.as_str()), ("name", "x")],
    ] {
        let r = send(Method::POST, "/ui/keys")
            .header("cookie", &session)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error());
        error_bodies.push(r.text().await.unwrap());
    }
    let r = no_redirects
        .post(format!("{url}/ui/logout"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
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
