//! Hostile tokens: every one refused with 401 (or 431/400 for size), never a 5xx, in every
//! credential form. Tokens that need keyward's own signing key (wrong issuer, not yet
//! valid, string `exp`, another HMAC) are covered beside the signer in `src/domain/tokens.rs`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Http, basic, spawn_app};

fn part(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

fn decode(s: &str) -> Value {
    serde_json::from_slice(&B64.decode(s).unwrap()).unwrap()
}

/// Every way of presenting `token`; each must be refused.
async fn assert_refused_everywhere(app: &crate::helpers::TestApp, token: &str, what: &str) {
    // Basic: a fresh username each time, so the password throttle (429) stays out of it.
    let probe = format!(
        "probe{}",
        token.len() * 31 + token.bytes().map(usize::from).sum::<usize>()
    );
    for auth in [format!("Bearer {token}"), token.to_owned(), basic(&probe, token)] {
        let r = app.get("/v1/me").authorization(&auth).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{what} as {}",
            &auth[..auth.len().min(12)]
        );
    }
    assert_eq!(
        app.get("/v1/me").api_key(token).await.status(),
        StatusCode::UNAUTHORIZED,
        "{what} as X-API-Key"
    );
}

#[tokio::test]
async fn forged_and_edited_tokens_are_refused() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key().await;
    let parts: Vec<&str> = key.split('.').collect();
    let (header, claims, sig) = (decode(parts[0]), decode(parts[1]), parts[2]);

    let mut cases: Vec<(String, String)> = Vec::new();
    let mut none = header.clone();
    none["alg"] = json!("none");
    cases.push((
        "alg none, no signature".into(),
        format!("{}.{}.", part(&none), parts[1]),
    ));
    cases.push((
        "alg none, signature kept".into(),
        format!("{}.{}.{sig}", part(&none), parts[1]),
    ));
    for alg in ["RS256", "ES256", "HS384", "HS512", "EdDSA"] {
        let mut h = header.clone();
        h["alg"] = json!(alg);
        cases.push((format!("alg {alg}"), format!("{}.{}.{sig}", part(&h), parts[1])));
    }
    let mut no_kid = header.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    cases.push(("no kid".into(), format!("{}.{}.{sig}", part(&no_kid), parts[1])));
    for (field, value) in [
        ("exp", json!(claims["exp"].as_i64().unwrap() + 1)),
        ("exp", json!(claims["exp"].to_string())),
        ("sub", json!("000000000000000000000000")),
        ("jti", json!("000000000000000000000000")),
        ("iss", json!("someone-else")),
    ] {
        let mut c = claims.clone();
        c[field] = value.clone();
        cases.push((
            format!("edited {field} = {value}"),
            format!("{}.{}.{sig}", parts[0], part(&c)),
        ));
    }
    cases.push(("two segments".into(), format!("{}.{}", parts[0], parts[1])));
    cases.push(("four segments".into(), format!("{key}.{sig}")));
    cases.push((
        "signature flipped".into(),
        format!("{}.{}.{}", parts[0], parts[1], sig.chars().rev().collect::<String>()),
    ));
    cases.push(("trailing space inside".into(), format!("{key}x")));
    cases.push(("empty".into(), ".".into()));

    for (what, token) in &cases {
        assert_refused_everywhere(&app, token, what).await;
    }
    assert_eq!(app.me_status(&key).await, StatusCode::OK, "the real key still works");
}

#[tokio::test]
async fn an_access_token_is_never_a_key_and_a_key_never_an_access_token() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key().await;
    // The access token in every key-only form.
    for auth in [app.admin.clone(), basic("admin", &app.admin)] {
        assert_eq!(app.me_status(&auth).await, StatusCode::UNAUTHORIZED);
    }
    app.get("/v1/me")
        .api_key(&app.admin)
        .await
        .expect_status(StatusCode::UNAUTHORIZED);
    // A key's header and claims re-labelled as an access token (typ at+jwt, an audience).
    let parts: Vec<&str> = key.split('.').collect();
    let mut h = decode(parts[0]);
    h["typ"] = json!("at+jwt");
    let mut c = decode(parts[1]);
    c["aud"] = json!("keyward:access");
    c["ep"] = json!(0);
    let forged = format!("{}.{}.{}", part(&h), part(&c), parts[2]);
    assert_eq!(
        app.me_status(&format!("Bearer {forged}")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_huge_header_is_refused_without_a_5xx() {
    let app = spawn_app().await;
    let huge = "a".repeat(200 * 1024);
    let result = app
        .get("/v1/me")
        .authorization(format!("Bearer {huge}"))
        .try_send()
        .await;
    match result {
        Ok(r) => assert!(
            [
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                StatusCode::BAD_REQUEST,
                StatusCode::UNAUTHORIZED
            ]
            .contains(&r.status()),
            "{}",
            r.status()
        ),
        // The server may also close the connection on a header it will not read.
        Err(e) => assert!(!e.is_status(), "{e}"),
    }
    // And it still serves (on a new connection: the refused one is closed).
    let fresh = Http::new(&app.address);
    fresh.get("/healthz").await.expect_status(StatusCode::OK);
}
