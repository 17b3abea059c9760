//! The console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver. A person signs in, creates a key, reads it off
//! the page, uses it, revokes it in the console (and sees it under "Recently revoked"),
//! reads the audit log by names, uses the keys page on a phone-sized screen and in dark
//! mode, and signs out. A screenshot of each page goes to `$KEYWARD_SCREENSHOTS` (README's
//! come from `docs/screenshots`), else to the target directory.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::helpers::{eventually, skip, spawn_with};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// WebDriver's Enter key.
const ENTER: char = '\u{E007}';

/// Why a browser could not be had (the test then says so and skips).
fn unavailable() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|p| !Path::new(p).exists())
        .map(|missing| format!("{missing} is missing (apt-get install chromium chromium-driver)"))
}

/// Headless Chromium, driven by chromedriver through fantoccini; the page's actions as a
/// person takes them, each waiting up to 5 s for its element (a click may still be loading
/// the next page).
struct Chromium {
    client: Client,
    /// chromedriver, leading its own process group with Chromium in it.
    driver: Child,
    _profile: tempfile::TempDir,
}

impl std::ops::Deref for Chromium {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A test that fails before `quit` still stops chromedriver and Chromium.
impl Drop for Chromium {
    fn drop(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            let group = rustix::process::Pid::from_child(&self.driver);
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            let _ = self.driver.wait();
        }
    }
}

/// Chromium's own command, through chromedriver: `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, <Url as std::str::FromStr>::Err> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.0.to_string()))
    }
}

impl Chromium {
    async fn start() -> Chromium {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        // As root Chromium needs --no-sandbox; on a closed network it must not phone home.
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        });
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities.as_object().unwrap().clone());
        // chromedriver takes a moment to listen.
        let deadline = Instant::now() + Duration::from_secs(5);
        let client = loop {
            match builder.connect(&format!("http://127.0.0.1:{port}")).await {
                Ok(client) => break client,
                Err(e) => assert!(Instant::now() < deadline, "no browser session: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Chromium {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The first element matching `css`, once there is one.
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.element(css).await.send_keys(text).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap()
    }

    /// Waits for the first element matching `css` to have a text that `want` accepts;
    /// returns the text.
    async fn wait_for_text(&self, css: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = String::new();
        while Instant::now() < deadline {
            // A page that changes meanwhile may leave a stale element: try again.
            if let Ok(element) = self.find(Locator::Css(css)).await {
                match element.text().await {
                    Ok(text) if want(&text) => return text,
                    Ok(text) => last = text,
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{css} never had the expected text; last: {last}");
    }

    async fn url(&self) -> String {
        self.current_url().await.unwrap().to_string()
    }

    /// Runs a script in the page (only for what WebDriver has no command for).
    async fn script(&self, code: &str) -> Value {
        self.execute(code, Vec::new()).await.unwrap()
    }

    /// Makes the page see the system's colour scheme as dark (or light).
    async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.issue_cmd(Cdp(json!({"cmd": "Emulation.setEmulatedMedia",
            "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}})))
            .await
            .unwrap();
    }

    /// Saves a PNG of the viewport to `dir/name.png`.
    async fn screenshot_to(&self, dir: &Path, name: &str) {
        let png = self.screenshot().await.unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the session, which closes Chromium.
    async fn quit(mut self) {
        self.client.clone().close().await.unwrap();
        self.driver.kill().unwrap();
        self.driver.wait().unwrap();
    }
}

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
async fn centred(browser: &Chromium, css: &str) -> bool {
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
    if let Some(why) = unavailable() {
        return skip("browser::a_person_manages_a_key_in_chromium", &why);
    }
    // As after `cargo run`: the admin password was generated into a file.
    let mut app = spawn_with(|s| s.auth.admin_password = None).await;
    let password_file = app.dir.path().join("keyward-admin-password");
    let password = std::fs::read_to_string(&password_file).unwrap().trim().to_owned();
    app.admin = app.login("admin", &password).await;
    // Some keys and a second user, so the pages show what they are for.
    app.create_key(
        &app.admin,
        json!({"name": "ci-deploy", "scopes": ["keys:read", "keys:verify"]}),
    )
    .await;
    app.create_key(&app.admin, json!({"name": "grafana", "expires": "90 days"}))
        .await;
    let (ada_id, ada) = app.user("ada").await;
    let adas = app
        .create_key(&ada, json!({"name": "ada's laptop", "expires": "One Month"}))
        .await;
    let adas_id = adas["id"].as_str().unwrap().to_owned();
    let shots = screenshot_dir();
    let browser = Chromium::start().await;

    // Not signed in: the console sends the browser to the sign-in page.
    browser.goto(&app.url("/ui/keys")).await.unwrap();
    assert!(browser.url().await.ends_with("/ui/login"));
    assert_eq!(browser.title().await.unwrap(), "Sign in · keyward");
    assert!(
        centred(&browser, "section.card.narrow").await,
        "the sign-in card sits in the middle"
    );
    // The admin has never signed in here: the page says where the password is.
    let hint = browser.text("#first-sign-in").await;
    assert!(hint.contains(password_file.to_str().unwrap()), "{hint}");
    browser.screenshot_to(&shots, "1-sign-in").await;

    // Sign in with the keyboard: type, then Enter.
    browser.type_into("#username", "admin").await;
    browser.type_into("#password", &format!("{password}{ENTER}")).await;
    browser.wait_for_text("h1", |t| t == "My keys").await;
    let cookie = browser.get_named_cookie("keyward_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true), "{cookie}");
    assert_eq!(
        cookie.same_site().map(|s| s.to_string()).as_deref(),
        Some("Strict"),
        "{cookie}"
    );
    assert_eq!(
        browser.script("return document.cookie").await,
        "",
        "pages cannot read the cookies"
    );

    // The expiry choices say what the server's default is; a date is typed as ISO text.
    let default = browser.text("#key-expires option[value='']").await;
    assert_eq!(default, "Server default: never");
    assert_eq!(
        browser
            .script("const f = document.getElementById('key-expires-on'); return [f.type, f.placeholder];")
            .await,
        json!(["text", "YYYY-MM-DD"])
    );

    // Create a key with a name, a seed phrase for its expiry and a scope.
    browser.type_into("#key-name", "laptop").await;
    browser.click("#key-expires option[value='One Month']").await;
    browser.click("#create-key").await;
    let key = browser.wait_for_text("#new-key", |t| !t.is_empty()).await;
    assert_eq!(key.split('.').count(), 3, "a JWT: {key}");
    let copy = browser.element("button[data-copy]").await;
    assert!(
        copy.is_displayed().await.unwrap(),
        "the copy button's script ran under the CSP"
    );
    copy.click().await.unwrap();
    browser.wait_for_text("#copy-status", |t| t.contains("clipboard")).await;
    browser.screenshot_to(&shots, "3-new-key").await;

    // The key works on the API.
    app.get("/v1/me").as_(&key).await.expect_status(StatusCode::OK);

    // The list shows it, sorted newest first, and never the key itself.
    browser.goto(&app.url("/ui/keys")).await.unwrap();
    let first = browser.element("#keys tbody tr td a").await;
    assert_eq!(first.text().await.unwrap(), "laptop");
    assert!(!browser.source().await.unwrap().contains(&key));

    // Its page (times in ISO, to the second), then revoke behind the confirmation.
    first.click().await.unwrap();
    browser.wait_for_text("h1", |t| t == "Key laptop").await;
    let created = browser.text("dl.facts time").await;
    assert!(iso_to_the_second(&created), "{created}");
    browser.screenshot_to(&shots, "4-key").await;
    browser.click("#revoke-key").await;
    browser.element("#confirm-revoke").await;
    assert!(
        centred(&browser, "section.card.narrow").await,
        "the confirmation sits in the middle"
    );
    browser.screenshot_to(&shots, "5-revoke").await;
    browser.click("#confirm-revoke").await;
    browser.wait_for_text(".notice", |t| t.contains("revoked")).await;
    app.get("/v1/me")
        .as_(&key)
        .await
        .expect_status(StatusCode::UNAUTHORIZED);
    // The revoked key is not gone without a trace: it is under "Recently revoked".
    let revoked = browser.wait_for_text("#revoked tbody", |t| t.contains("laptop")).await;
    assert!(revoked.contains("UTC"), "with when: {revoked}");
    browser.screenshot_to(&shots, "2-my-keys").await;

    // Admin pages.
    browser.goto(&app.url("/ui/all-keys")).await.unwrap();
    browser.wait_for_text("#keys", |t| t.contains("ada's laptop")).await;
    browser.screenshot_to(&shots, "6-all-keys").await;
    browser.goto(&app.url("/ui/users")).await.unwrap();
    browser.element("#users").await;
    browser.screenshot_to(&shots, "7-users").await;
    browser.goto(&app.url(&format!("/ui/users/{ada_id}"))).await.unwrap();
    browser.wait_for_text("h1", |t| t == "User ada").await;
    browser.screenshot_to(&shots, "8-user").await;
    // The audit log by names, as they were, linked to what still exists; and what changed.
    browser.goto(&app.url("/ui/audit")).await.unwrap();
    browser.element("#audit").await;
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
    let audit = browser.text("#audit tbody").await;
    assert!(audit.contains("laptop (revoked)"), "{audit}");
    assert!(
        audit.contains("expires_at=") && audit.contains("scopes=keys:read keys:verify"),
        "{audit}"
    );
    browser.screenshot_to(&shots, "9-audit").await;

    // On a phone-sized screen nothing scrolls sideways: each key is a card that shows every
    // column's information under the column's name.
    browser.set_window_size(390, 844).await.unwrap();
    browser.goto(&app.url("/ui/keys")).await.unwrap();
    browser.element("#keys").await;
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
    browser.screenshot_to(&shots, "10-phone").await;

    // Dark mode follows the system's setting.
    let background = "return getComputedStyle(document.body).backgroundColor";
    let light = browser.script(background).await;
    browser.prefer_dark(true).await;
    let dark = browser.script(background).await;
    assert_ne!(light, dark, "a dark page when the system prefers dark");
    browser.screenshot_to(&shots, "11-phone-dark").await;
    browser.prefer_dark(false).await;
    browser.set_window_size(1280, 1000).await.unwrap();

    // Sign out: back at the sign-in page, and the console is closed to this browser.
    browser.click("header.top form button").await;
    browser.wait_for_text(".notice", |t| t.contains("signed out")).await;
    assert!(browser.url().await.contains("/ui/login?signed_out=1"));
    assert_eq!(
        browser.script("return document.getElementById('first-sign-in')").await,
        Value::Null,
        "no more hint once the admin has signed in"
    );
    browser.goto(&app.url("/ui/keys")).await.unwrap();
    assert!(
        eventually(|| async { browser.url().await.ends_with("/ui/login") }).await,
        "signed out"
    );
    browser.quit().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    eprintln!("console screenshots in {}", shots.display());
}
