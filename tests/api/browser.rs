//! The console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver. A person signs in, creates a key, reads it off
//! the page, uses it, revokes it in the console, and signs out. A screenshot of each page
//! goes to `$KEYWARD_SCREENSHOTS` (README's come from `docs/screenshots`), else to the
//! target directory.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, eventually, skip, spawn_app};
use crate::webdriver::{self, Browser};

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

fn screenshot_dir() -> PathBuf {
    std::env::var_os("KEYWARD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"))
}

#[tokio::test]
async fn a_person_manages_a_key_in_chromium() {
    if let Some(why) = webdriver::unavailable() {
        return skip("browser::a_person_manages_a_key_in_chromium", &why);
    }
    let app = spawn_app().await;
    // Some keys and a second user, so the pages show what they are for.
    app.create_key(
        &app.admin.clone(),
        json!({"name": "ci-deploy", "scopes": ["keys:read", "keys:verify"]}),
    )
    .await;
    app.create_key(&app.admin.clone(), json!({"name": "grafana", "expires": "90 days"}))
        .await;
    let (ada_id, ada) = app.user("ada").await;
    app.create_key(&ada, json!({"name": "ada's laptop", "expires": "One Month"}))
        .await;
    let shots = screenshot_dir();
    let browser = Browser::start().await;

    // Not signed in: the console sends the browser to the sign-in page.
    browser.goto(&app.url("/ui/keys")).await;
    assert!(browser.current_url().await.ends_with("/ui/login"));
    assert_eq!(browser.title().await, "Sign in · keyward");
    browser.screenshot(&shots, "1-sign-in").await;

    // Sign in with the keyboard: type, then Enter.
    browser.find("#username").await.type_text("admin").await;
    browser
        .find("#password")
        .await
        .type_text(&format!("{ADMIN_PASSWORD}{ENTER}"))
        .await;
    browser.wait_for_text("h1", |t| t == "My keys").await;
    let cookie = browser.cookie("keyward_session").await;
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert_eq!(
        browser.script("return document.cookie").await,
        "",
        "pages cannot read the cookies"
    );

    // Create a key with a name, a seed phrase for its expiry and a scope.
    browser.find("#key-name").await.type_text("laptop").await;
    browser
        .find("#key-expires option[value='One Month']")
        .await
        .click()
        .await;
    browser.find("#create-key").await.click().await;
    let key = browser.wait_for_text("#new-key", |t| !t.is_empty()).await;
    assert_eq!(key.split('.').count(), 3, "a JWT: {key}");
    let copy = browser.find("button[data-copy]").await;
    assert!(copy.displayed().await, "the copy button's script ran under the CSP");
    copy.click().await;
    browser.wait_for_text("#copy-status", |t| t.contains("clipboard")).await;
    browser.screenshot(&shots, "3-new-key").await;

    // The key works on the API.
    let me = app
        .request(Method::GET, "/v1/me")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    // The list shows it, sorted newest first, and never the key itself.
    browser.goto(&app.url("/ui/keys")).await;
    let first = browser.find("#keys tbody tr td a").await;
    assert_eq!(first.text().await, "laptop");
    assert!(!browser.source().await.contains(&key));
    browser.screenshot(&shots, "2-my-keys").await;

    // Its page, then revoke behind the confirmation.
    first.click().await;
    browser.wait_for_text("h1", |t| t == "Key laptop").await;
    browser.screenshot(&shots, "4-key").await;
    browser.find("#revoke-key").await.click().await;
    browser.find("#confirm-revoke").await;
    browser.screenshot(&shots, "5-revoke").await;
    browser.find("#confirm-revoke").await.click().await;
    browser.wait_for_text(".notice", |t| t.contains("revoked")).await;
    let me = app
        .request(Method::GET, "/v1/me")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // Admin pages.
    browser.goto(&app.url("/ui/all-keys")).await;
    browser.wait_for_text("#keys", |t| t.contains("ada's laptop")).await;
    browser.screenshot(&shots, "6-all-keys").await;
    browser.goto(&app.url("/ui/users")).await;
    browser.find("#users").await;
    browser.screenshot(&shots, "7-users").await;
    browser.goto(&app.url(&format!("/ui/users/{ada_id}"))).await;
    browser.wait_for_text("h1", |t| t == "User ada").await;
    browser.screenshot(&shots, "8-user").await;
    browser.goto(&app.url("/ui/audit")).await;
    browser.find("#audit").await;
    browser.screenshot(&shots, "9-audit").await;

    // On a phone-sized screen the page does not scroll sideways (the tables do).
    browser.resize(390, 844).await;
    browser.goto(&app.url("/ui/keys")).await;
    browser.find("#keys").await;
    assert_eq!(
        browser
            .script("return document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true
    );
    browser.screenshot(&shots, "10-phone").await;
    browser.resize(1280, 1000).await;

    // Sign out: back at the sign-in page, and the console is closed to this browser.
    browser.find("header.top form button").await.click().await;
    browser.wait_for_text(".notice", |t| t.contains("signed out")).await;
    assert!(browser.current_url().await.contains("/ui/login?signed_out=1"));
    browser.goto(&app.url("/ui/keys")).await;
    assert!(
        eventually(|| async { browser.current_url().await.ends_with("/ui/login") }).await,
        "signed out"
    );
    browser.quit().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    eprintln!("console screenshots in {}", shots.display());
}
