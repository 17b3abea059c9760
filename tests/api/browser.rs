//! The console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver. A person signs in, creates a key, reads it off
//! the page, uses it, revokes it in the console (and sees it under "Recently revoked"),
//! reads the audit log by names, uses the keys page on a phone-sized screen and in dark
//! mode, and signs out. A screenshot of each page goes to `$KEYWARD_SCREENSHOTS` (README's
//! come from `docs/screenshots`), else to the target directory.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{eventually, skip, spawn_with};
use crate::webdriver::{self, Browser};

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

fn screenshot_dir() -> PathBuf {
    std::env::var_os("KEYWARD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"))
}

/// `2026-11-23 18:41:07 UTC`.
fn iso_to_the_second(text: &str) -> bool {
    let shape = "dddd-dd-dd dd:dd:dd UTC";
    text.len() == shape.len()
        && text
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == 'd' { c.is_ascii_digit() } else { c == s })
}

/// Whether the first element matching `css` is horizontally in the middle of the window.
async fn centred(browser: &Browser, css: &str) -> bool {
    let gaps = browser
        .script(&format!(
            "const r = document.querySelector({css:?}).getBoundingClientRect(); return [r.left, window.innerWidth - r.right];"
        ))
        .await;
    let (left, right) = (gaps[0].as_f64().unwrap(), gaps[1].as_f64().unwrap());
    left > 100.0 && (left - right).abs() < 20.0
}

#[tokio::test]
async fn a_person_manages_a_key_in_chromium() {
    if let Some(why) = webdriver::unavailable() {
        return skip("browser::a_person_manages_a_key_in_chromium", &why);
    }
    // As after `cargo run`: the admin password was generated into a file.
    let mut app = spawn_with(|s| s.auth.admin_password = None).await;
    let password_file = app.dir.path().join("keyward-admin-password");
    let password = std::fs::read_to_string(&password_file).unwrap().trim().to_owned();
    app.admin = app.login("admin", &password).await;
    // Some keys and a second user, so the pages show what they are for.
    app.create_key(
        &app.admin.clone(),
        json!({"name": "ci-deploy", "scopes": ["keys:read", "keys:verify"]}),
    )
    .await;
    app.create_key(&app.admin.clone(), json!({"name": "grafana", "expires": "90 days"}))
        .await;
    let (ada_id, ada) = app.user("ada").await;
    let adas = app
        .create_key(&ada, json!({"name": "ada's laptop", "expires": "One Month"}))
        .await;
    let adas_id = adas["id"].as_str().unwrap().to_owned();
    let shots = screenshot_dir();
    let browser = Browser::start().await;

    // Not signed in: the console sends the browser to the sign-in page.
    browser.goto(&app.url("/ui/keys")).await;
    assert!(browser.current_url().await.ends_with("/ui/login"));
    assert_eq!(browser.title().await, "Sign in · keyward");
    assert!(
        centred(&browser, "section.card.narrow").await,
        "the sign-in card sits in the middle"
    );
    // The admin has never signed in here: the page says where the password is.
    let hint = browser.find("#first-sign-in").await.text().await;
    assert!(hint.contains(password_file.to_str().unwrap()), "{hint}");
    browser.screenshot(&shots, "1-sign-in").await;

    // Sign in with the keyboard: type, then Enter.
    browser.find("#username").await.type_text("admin").await;
    browser
        .find("#password")
        .await
        .type_text(&format!("{password}{ENTER}"))
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

    // The expiry choices say what the server's default is; a date is typed as ISO text.
    let default = browser.find("#key-expires option[value='']").await.text().await;
    assert_eq!(default, "Server default: never");
    assert_eq!(
        browser
            .script("const f = document.getElementById('key-expires-on'); return [f.type, f.placeholder];")
            .await,
        json!(["text", "YYYY-MM-DD"])
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

    // Its page (times in ISO, to the second), then revoke behind the confirmation.
    first.click().await;
    browser.wait_for_text("h1", |t| t == "Key laptop").await;
    let created = browser.find("dl.facts time").await.text().await;
    assert!(iso_to_the_second(&created), "{created}");
    browser.screenshot(&shots, "4-key").await;
    browser.find("#revoke-key").await.click().await;
    browser.find("#confirm-revoke").await;
    assert!(
        centred(&browser, "section.card.narrow").await,
        "the confirmation sits in the middle"
    );
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
    // The revoked key is not gone without a trace: it is under "Recently revoked".
    let revoked = browser.wait_for_text("#revoked tbody", |t| t.contains("laptop")).await;
    assert!(revoked.contains("UTC"), "with when: {revoked}");
    browser.screenshot(&shots, "2-my-keys").await;

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
    // The audit log by names, as they were, linked to what still exists; and what changed.
    browser.goto(&app.url("/ui/audit")).await;
    browser.find("#audit").await;
    let links = browser
        .script("return [...document.querySelectorAll('#audit tbody a')].map(a => a.textContent + ' -> ' + a.getAttribute('href'))")
        .await;
    let links: Vec<&str> = links.as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    for want in [
        format!("ada -> /ui/users/{ada_id}"),
        format!("ada's laptop -> /ui/users/{ada_id}/keys/{adas_id}"),
    ] {
        assert!(links.contains(&want.as_str()), "{want} in {links:?}");
    }
    let audit = browser.find("#audit tbody").await.text().await;
    assert!(audit.contains("laptop (revoked)"), "{audit}");
    assert!(
        audit.contains("expires_at=") && audit.contains("scopes=keys:read keys:verify"),
        "{audit}"
    );
    browser.screenshot(&shots, "9-audit").await;

    // On a phone-sized screen nothing scrolls sideways: each key is a card that shows every
    // column's information under the column's name.
    browser.resize(390, 844).await;
    browser.goto(&app.url("/ui/keys")).await;
    browser.find("#keys").await;
    let phone = browser
        .script(
            "const w = window.innerWidth;
             const cells = [...document.querySelectorAll('#keys tbody tr:first-child td')];
             const seen = cells.filter(td => {
               const r = td.getBoundingClientRect();
               return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= w
                 && td.textContent.trim() !== ''
                 && getComputedStyle(td, '::before').content === JSON.stringify(td.dataset.label);
             }).map(td => td.dataset.label);
             return {width: w, page: document.documentElement.scrollWidth,
               table: document.querySelector('#keys').closest('.table-wrap').scrollWidth, seen};",
        )
        .await;
    let width = phone["width"].as_u64().unwrap();
    assert!(width <= 400, "a phone-sized window: {phone}");
    assert!(
        phone["page"].as_u64().unwrap() <= width && phone["table"].as_u64().unwrap() <= width,
        "{phone}"
    );
    assert_eq!(
        phone["seen"],
        json!(["Name", "Created", "Expires", "Last used", "Scopes", "Status"]),
        "every column of a key, on the screen"
    );
    browser.screenshot(&shots, "10-phone").await;

    // Dark mode follows the system's setting.
    let background = "return getComputedStyle(document.body).backgroundColor";
    let light = browser.script(background).await;
    browser.prefer_dark(true).await;
    let dark = browser.script(background).await;
    assert_ne!(light, dark, "a dark page when the system prefers dark");
    browser.screenshot(&shots, "11-phone-dark").await;
    browser.prefer_dark(false).await;
    browser.resize(1280, 1000).await;

    // Sign out: back at the sign-in page, and the console is closed to this browser.
    browser.find("header.top form button").await.click().await;
    browser.wait_for_text(".notice", |t| t.contains("signed out")).await;
    assert!(browser.current_url().await.contains("/ui/login?signed_out=1"));
    assert_eq!(
        browser.script("return document.getElementById('first-sign-in')").await,
        serde_json::Value::Null,
        "no more hint once the admin has signed in"
    );
    browser.goto(&app.url("/ui/keys")).await;
    assert!(
        eventually(|| async { browser.current_url().await.ends_with("/ui/login") }).await,
        "signed out"
    );
    browser.quit().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    eprintln!("console screenshots in {}", shots.display());
}
