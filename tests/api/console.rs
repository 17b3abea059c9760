//! The web console over HTTP, as a browser without JavaScript would use it: sign-in, the
//! session cookie's flags, CSRF refusals, security headers, the one-time key page, and the
//! same ownership rules as the API.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use scraper::{ElementRef, Html, Selector};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, Http, spawn_app, spawn_with};

/// A browser without JavaScript on `/ui`: it keeps cookies (reqwest's cookie store) and
/// follows no redirect, so a test sees each 303 and where it points.
pub struct Console {
    http: Http,
    jar: Arc<Jar>,
}

/// One answer of the console, its HTML read with `scraper`.
pub struct Page {
    pub status: StatusCode,
    headers: HeaderMap,
    pub body: String,
}

impl Page {
    fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// The elements matching `css`, each handed to `read`.
    fn select<T>(&self, css: &str, read: impl Fn(ElementRef) -> T) -> Vec<T> {
        let selector = Selector::parse(css).unwrap_or_else(|e| panic!("{css}: {e:?}"));
        self.html().select(&selector).map(read).collect()
    }

    /// What `read` makes of the first element matching `css`, which must be there.
    fn first<T>(&self, css: &str, read: impl Fn(ElementRef) -> T) -> T {
        let found = self.select(css, read).into_iter().next();
        found.unwrap_or_else(|| panic!("no {css} in {}", self.body))
    }

    /// Whether an element matches `css`.
    pub fn has(&self, css: &str) -> bool {
        !self.select(css, |_| ()).is_empty()
    }

    /// The text of the first element matching `css`, as a person reads it.
    pub fn text(&self, css: &str) -> String {
        let text = self.first(css, |e| e.text().collect::<String>());
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The HTML of the first element matching `css`, the element's own tags included.
    pub fn outer_html(&self, css: &str) -> String {
        self.first(css, |e| e.html())
    }

    /// The `value` of the first field matching `css`, as the form fills it in.
    pub fn value(&self, css: &str) -> String {
        self.first(css, |e| e.attr("value").unwrap_or_default().to_owned())
    }

    /// The links inside `css`, as `text -> href`.
    pub fn links(&self, css: &str) -> Vec<String> {
        self.select(&format!("{css} a[href]"), |a| {
            format!("{} -> {}", a.text().collect::<String>(), a.attr("href").unwrap())
        })
    }

    /// The hidden CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        self.value("form input[name=csrf]")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// The key shown on the one-time page.
    pub fn new_key(&self) -> String {
        self.text("#new-key")
    }

    /// The Set-Cookie line for `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

impl Console {
    pub fn new(server: &Http) -> Console {
        Console::with_headers(server, HeaderMap::new())
    }

    /// A console whose every request carries `name: value` (a proxy's `X-Forwarded-Proto`).
    pub fn with_header(server: &Http, name: &'static str, value: &'static str) -> Console {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().unwrap());
        Console::with_headers(server, headers)
    }

    fn with_headers(server: &Http, headers: HeaderMap) -> Console {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(Arc::clone(&jar))
            .default_headers(headers)
            .build()
            .unwrap();
        Console {
            http: Http {
                address: server.address.clone(),
                client,
            },
            jar,
        }
    }

    /// The sign-in page: every cookie of the console is sent there (the sign-in form's
    /// is for that page only).
    fn sign_in_page(&self) -> Url {
        self.http.url("/ui/login").parse().unwrap()
    }

    /// The cookies this browser holds, as its `Cookie` header: `a=1; b=2`.
    pub fn cookies(&self) -> String {
        self.jar
            .cookies(&self.sign_in_page())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The value of the cookie `name`, if this browser holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    /// Takes on cookies that were another browser's (a `Cookie` header's worth).
    pub fn replay(&self, cookies: &str) {
        for pair in cookies.split("; ").filter(|p| !p.is_empty()) {
            self.jar.add_cookie_str(pair, &self.sign_in_page());
        }
    }

    async fn page(call: crate::helpers::Call) -> Page {
        let reply = call.await;
        Page {
            status: reply.status(),
            headers: reply.headers().clone(),
            body: reply.text(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Console::page(self.http.get(path)).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Console::page(self.http.post(path).form(form)).await
    }

    /// Posts `form` with the token of the form on page `from`.
    pub async fn submit(&self, from: &str, to: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf();
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(to, &fields).await
    }

    /// Fills in and sends the sign-in form, whatever the answer.
    pub async fn try_sign_in(&self, username: &str, password: &str) -> Page {
        let form = [("username", username), ("password", password)];
        self.submit("/ui/login", "/ui/login", &form).await
    }

    /// Signs in, which must succeed.
    pub async fn sign_in(&self, username: &str, password: &str) -> Page {
        let page = self.try_sign_in(username, password).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "sign-in of {username}: {}",
            page.body
        );
        assert_eq!(page.location(), "/ui/keys");
        page
    }

    /// Creates a key on the console; returns (the one-time page, key id, key).
    async fn create_key(&self, name: &str) -> (Page, String, String) {
        let page = self
            .submit(
                "/ui/keys",
                "/ui/keys",
                &[("name", name), ("expires", "One Month"), ("scopes", "")],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let key = page.new_key();
        let details = page.first("a[href^='/ui/keys/']", |a| a.attr("href").unwrap().to_owned());
        let id = details.trim_start_matches("/ui/keys/").to_owned();
        (page, id, key)
    }
}

#[tokio::test]
async fn pages_need_a_session_and_sign_in_gives_a_strict_cookie() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    let page = console.get("/ui/keys").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/ui/login");
    assert_eq!(console.get("/ui").await.location(), "/ui/login");

    let login = console.get("/ui/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.has("form input[name=username]") && login.has("form input[name=password]"));
    let sign_in_cookie = login.set_cookie("keyward_sign_in").unwrap();
    assert!(sign_in_cookie.contains("HttpOnly") && sign_in_cookie.contains("SameSite=Strict"));

    let page = console.sign_in("admin", ADMIN_PASSWORD).await;
    let cookie = page.set_cookie("keyward_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP without a proxy: {cookie}");
    let keys = console.get("/ui/keys").await;
    assert_eq!(keys.status, StatusCode::OK);
    assert_eq!(keys.text("header .who"), "Signed in as admin");

    // Sign in by email, too.
    let (_, _) = app.user("ada").await;
    let ada = Console::new(&app);
    ada.sign_in("ada@example.com", "ada-password").await;
    assert_eq!(ada.get("/ui/keys").await.text("header .who strong"), "ada");
}

#[tokio::test]
async fn the_cookie_is_secure_behind_https_or_when_configured() {
    let app = spawn_with(|s| s.ui.secure_cookie = true).await;
    let console = Console::new(&app);
    let page = console.sign_in("admin", ADMIN_PASSWORD).await;
    assert!(page.set_cookie("keyward_session").unwrap().contains("Secure"));

    // A proxy's X-Forwarded-Proto counts only from trusted_proxies.
    let app = spawn_app().await;
    let console = Console::with_header(&app, "x-forwarded-proto", "https");
    let page = console.sign_in("admin", ADMIN_PASSWORD).await;
    assert!(!page.set_cookie("keyward_session").unwrap().contains("Secure"));
    let app =
        spawn_with(|s| s.server.trusted_proxies = vec![keyward::config::IpNet::parse("127.0.0.1").unwrap()]).await;
    let console = Console::with_header(&app, "x-forwarded-proto", "https");
    let page = console.sign_in("admin", ADMIN_PASSWORD).await;
    assert!(page.set_cookie("keyward_session").unwrap().contains("Secure"));
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    let mut pages = vec![console.get("/ui/login").await];
    console.sign_in("admin", ADMIN_PASSWORD).await;
    let (created, id, _) = console.create_key("headers").await;
    pages.push(created);
    for path in [
        "/ui/keys".to_owned(),
        format!("/ui/keys/{id}"),
        format!("/ui/keys/{id}/revoke"),
        "/ui/users".to_owned(),
        "/ui/audit".to_owned(),
        "/ui/account".to_owned(),
        "/ui/all-keys".to_owned(),
        "/ui/nowhere".to_owned(),
    ] {
        pages.push(console.get(&path).await);
    }
    pages.push(console.post("/ui/keys", &[("name", "no token")]).await);
    for page in &pages {
        let csp = page.header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(page.header("x-frame-options"), "DENY");
        assert_eq!(page.header("referrer-policy"), "no-referrer");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("cache-control"), "no-store");
        assert!(page.header("content-type").starts_with("text/html"));
        // No inline script: the only script is the external file.
        let scripts = page.select("script", |s| {
            (
                s.attr("src").map(str::to_owned),
                s.attr("defer").is_some(),
                s.inner_html(),
            )
        });
        assert_eq!(
            scripts,
            [(Some("/ui/assets/console.js".to_owned()), true, String::new())],
            "{}",
            page.body
        );
    }
    assert_eq!(pages.last().unwrap().status, StatusCode::FORBIDDEN);
    assert_eq!(pages[pages.len() - 2].status, StatusCode::NOT_FOUND);
    let script = console.get("/ui/assets/console.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.header("content-type").starts_with("text/javascript"));
    assert!(script.body.contains("clipboard"));
}

#[tokio::test]
async fn posts_without_this_sessions_token_are_403_and_change_nothing() {
    let app = spawn_app().await;
    let (ada_id, _) = app.user("ada").await;
    let console = Console::new(&app);
    console.sign_in("admin", ADMIN_PASSWORD).await;
    let (_, id, key) = console.create_key("target").await;
    let other = Console::new(&app);
    other.sign_in("admin", ADMIN_PASSWORD).await;
    let foreign_token = other.get("/ui/keys").await.csrf();

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/ui/keys".into(), vec![("name", "forged")]),
        (format!("/ui/keys/{id}/name"), vec![("name", "forged")]),
        (format!("/ui/keys/{id}/state"), vec![("disabled", "true")]),
        (format!("/ui/keys/{id}/rotate"), vec![("grace", "0")]),
        (format!("/ui/keys/{id}/revoke"), vec![]),
        (
            "/ui/users".into(),
            vec![("username", "mallory"), ("password", "mallory-password")],
        ),
        (format!("/ui/users/{ada_id}/state"), vec![("disabled", "true")]),
        (
            format!("/ui/users/{ada_id}/password"),
            vec![("password", "taken-over-123")],
        ),
        (format!("/ui/users/{ada_id}/delete"), vec![]),
        (format!("/ui/users/{ada_id}/keys"), vec![("name", "forged")]),
        (
            "/ui/account/password".into(),
            vec![("current_password", ADMIN_PASSWORD), ("new_password", "taken-over-123")],
        ),
        ("/ui/logout".into(), vec![]),
    ];
    for (path, fields) in &posts {
        for token in [None, Some("0".repeat(64)), Some(foreign_token.clone())] {
            let mut form = fields.clone();
            if let Some(token) = &token {
                form.push(("csrf", token));
            }
            let page = console.post(path, &form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} with {token:?}");
            assert!(page.body.contains("did not come from this console"));
        }
    }
    // Without any session, a post is refused the same way.
    let stranger = Console::new(&app);
    assert_eq!(
        stranger.post("/ui/keys", &[("name", "x")]).await.status,
        StatusCode::FORBIDDEN
    );
    // A sign-in without the sign-in form's token is refused too.
    let page = stranger
        .post("/ui/login", &[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    // Nothing happened: the key works under its name, ada is active, the session lives.
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::OK);
    let keys: Value = app.get_json("/v1/keys", &app.admin).await;
    assert_eq!(keys["total"], 1, "{keys}");
    assert_eq!(keys["data"][0]["name"], "target");
    let adas = app.get_json(&format!("/v1/users/{ada_id}/keys"), &app.admin).await;
    assert_eq!(adas["total"], 0, "{adas}");
    app.login("ada", "ada-password").await;
    let users: Value = app.get_json("/v1/users", &app.admin).await;
    assert_eq!(users["total"], 2, "no mallory: {users}");
    assert_eq!(console.get("/ui/keys").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_key_is_shown_once_and_works_until_revoked_in_the_console() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    console.sign_in("admin", ADMIN_PASSWORD).await;
    let (page, id, key) = console.create_key("deploy bot").await;
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page.body.contains("only time it is shown"));
    assert!(page.body.contains(r#"data-copy="new-key""#));
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::OK);

    // The table lists it with its dates and status; no page but the first shows the key.
    let list = console.get("/ui/keys").await;
    assert!(list.body.contains("deploy bot") && list.body.contains(&id));
    assert_eq!(
        list.text(&format!("#keys tr[data-key-id='{id}'] .status.active")),
        "active"
    );
    let mut seen = vec![list];
    for path in [
        format!("/ui/keys/{id}"),
        format!("/ui/keys/{id}/revoke"),
        "/ui/users".into(),
        "/ui/audit".into(),
        "/ui/keys?sort=last_used&order=asc".into(),
    ] {
        seen.push(console.get(&path).await);
    }
    for page in &seen {
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains(&key), "the key leaked into a page");
        assert!(!page.body.contains(&key[key.len() - 20..]), "part of the key leaked");
        assert!(!page.body.contains(ADMIN_PASSWORD));
    }

    // Relabel, disable, enable, then revoke behind its confirmation page.
    let renamed = console
        .submit(
            &format!("/ui/keys/{id}"),
            &format!("/ui/keys/{id}/name"),
            &[("name", "deploy bot 2")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);
    assert!(
        console
            .get(&format!("/ui/keys/{id}"))
            .await
            .body
            .contains("deploy bot 2")
    );
    let disabled = console
        .submit(
            &format!("/ui/keys/{id}"),
            &format!("/ui/keys/{id}/state"),
            &[("disabled", "true")],
        )
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::UNAUTHORIZED);
    console
        .submit(
            &format!("/ui/keys/{id}"),
            &format!("/ui/keys/{id}/state"),
            &[("disabled", "false")],
        )
        .await;
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::OK);
    let confirm = console.get(&format!("/ui/keys/{id}/revoke")).await;
    assert!(confirm.body.contains("cannot be undone"));
    let revoked = console
        .submit(&format!("/ui/keys/{id}/revoke"), &format!("/ui/keys/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(revoked.location(), "/ui/keys?done=revoked");
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::UNAUTHORIZED);
    // Gone from the live keys, not without a trace: it is under "Recently revoked".
    let list = console.get("/ui/keys").await;
    // The first card holds the live keys.
    let (live, revoked) = (list.outer_html("main section.card"), list.outer_html("#revoked"));
    assert!(!live.contains(&id) && live.contains("No live keys."), "{live}");
    assert!(revoked.contains(&id) && revoked.contains("deploy bot 2"), "{revoked}");
    assert_eq!(
        console.get(&format!("/ui/keys/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_first_sign_in_page_says_where_the_generated_password_is() {
    let app = spawn_with(|s| s.auth.admin_password = None).await;
    let file = app.dir.path().join("keyward-admin-password");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let console = Console::new(&app);
    let page = console.get("/ui/login").await;
    assert!(page.has("#first-sign-in"), "{}", page.body);
    assert!(page.text("#first-sign-in").contains(file.to_str().unwrap()));
    assert!(!page.body.contains(&password), "where it is, never what it is");
    // Once the admin has signed in, the page no longer says it.
    console.sign_in("admin", &password).await;
    let page = console.get("/ui/account").await;
    let out = console.post("/ui/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!console.get("/ui/login").await.has("#first-sign-in"));
    // Nor does it with a configured password: there is no file.
    let configured = spawn_app().await;
    assert!(!Console::new(&configured).get("/ui/login").await.has("#first-sign-in"));
}

#[tokio::test]
async fn the_audit_page_names_users_and_keys_as_they_were_and_links_them() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.user("ada").await;
    let made = app
        .create_key(&ada, json!({"name": "first name", "scopes": ["keys:read"]}))
        .await;
    let kid = made["id"].as_str().unwrap();
    app.patch(&format!("/v1/keys/{kid}"))
        .as_(&ada)
        .json(&json!({"name": "second name"}))
        .await;
    let gone = app.create_key(&ada, json!({"name": "short lived"})).await;
    app.delete(&format!("/v1/keys/{}", gone["id"].as_str().unwrap()))
        .as_(&ada)
        .await;
    let admin = Console::new(&app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let page = admin.get("/ui/audit").await;
    let (links, text) = (page.links("#audit"), page.text("#audit"));
    let key_link = format!("/ui/users/{ada_id}/keys/{kid}");
    assert!(links.contains(&format!("ada -> /ui/users/{ada_id}")), "{links:?}");
    assert!(
        links.contains(&format!("first name -> {key_link}")),
        "the name at creation: {links:?}"
    );
    assert!(
        links.contains(&format!("second name -> {key_link}")),
        "the name after the rename"
    );
    assert!(text.contains("short lived (revoked)"), "{text}");
    assert!(text.contains("expires_at=never, scopes=keys:read"), "what was set");
    assert!(text.contains("role=user, email=ada@example.com"), "what was set");
    assert!(!page.body.contains("ada-password"));
}

#[tokio::test]
async fn create_form_takes_phrases_dates_and_scopes_and_rotation_keeps_a_grace() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    console.sign_in("admin", ADMIN_PASSWORD).await;
    let page = console
        .submit(
            "/ui/keys",
            "/ui/keys",
            &[
                ("name", "dated"),
                ("expires", "never"),
                ("expires_on", "2099-01-31"),
                ("scopes", "keys:read, orders:write"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let key = page.new_key();
    let me = app
        .post("/v1/verify")
        .as_(&app.admin)
        .json(&json!({"key": key}))
        .await
        .json();
    assert_eq!(me["expires_at"], "2099-01-31T23:59:59Z", "{me}");
    assert_eq!(me["scopes"], json!(["keys:read", "orders:write"]));

    // A refusal shows the form again: the reason, the valid fields as typed, the bad one empty.
    let bad = console
        .submit(
            "/ui/keys",
            "/ui/keys",
            &[
                ("name", "kept name"),
                ("expires", "fortnightly"),
                ("scopes", "keys:read"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text("#create-error").contains("expires:"), "{}", bad.body);
    assert!(bad.value("#key-name") == "kept name" && bad.value("#key-scopes") == "keys:read");
    assert!(!bad.body.contains("fortnightly"), "the refused value is not sent back");
    let bad = console
        .submit("/ui/keys", "/ui/keys", &[("expires_on", "31/01/2099")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Rotation: a new key shown once; the old one works through its grace period.
    let (_, id, old) = console.create_key("rotating").await;
    let rotated = console
        .submit(
            &format!("/ui/keys/{id}"),
            &format!("/ui/keys/{id}/rotate"),
            &[("grace", "1h")],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert!(rotated.body.contains("Key rotated"));
    let new = rotated.new_key();
    assert_ne!(new, old);
    assert_eq!(app.me_status(&format!("Bearer {new}")).await, StatusCode::OK);
    assert_eq!(app.me_status(&format!("Bearer {old}")).await, StatusCode::OK);
    let (_, id, old) = console.create_key("rotating now").await;
    console
        .submit(
            &format!("/ui/keys/{id}"),
            &format!("/ui/keys/{id}/rotate"),
            &[("grace", "0")],
        )
        .await;
    assert_eq!(app.me_status(&format!("Bearer {old}")).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_users_keys_are_not_found_in_the_console_either() {
    let app = spawn_app().await;
    app.user("ada").await;
    app.user("bob").await;
    let ada = Console::new(&app);
    ada.sign_in("ada", "ada-password").await;
    let (_, ada_key_id, ada_key) = ada.create_key("ada's").await;
    let ada_id = app.keyward.find_user("ada").unwrap().id.to_string();

    let bob = Console::new(&app);
    bob.sign_in("bob", "bob-password").await;
    let csrf = bob.get("/ui/keys").await.csrf();
    for path in [
        format!("/ui/keys/{ada_key_id}"),
        format!("/ui/keys/{ada_key_id}/revoke"),
    ] {
        assert_eq!(bob.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    for (path, fields) in [
        (format!("/ui/keys/{ada_key_id}/name"), vec![("name", "mine now")]),
        (format!("/ui/keys/{ada_key_id}/state"), vec![("disabled", "true")]),
        (format!("/ui/keys/{ada_key_id}/rotate"), vec![("grace", "0")]),
        (format!("/ui/keys/{ada_key_id}/revoke"), vec![]),
    ] {
        let mut form = fields;
        form.push(("csrf", &csrf));
        assert_eq!(bob.post(&path, &form).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Admin pages are not bob's (403); the admin's URLs to ada's key are 404 for him, as
    // on the API.
    for path in [
        "/ui/users".to_owned(),
        "/ui/audit".to_owned(),
        "/ui/all-keys".to_owned(),
        format!("/ui/users/{ada_id}"),
    ] {
        assert_eq!(bob.get(&path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let detail = format!("/ui/users/{ada_id}/keys/{ada_key_id}");
    assert_eq!(bob.get(&detail).await.status, StatusCode::NOT_FOUND);
    let page = bob.post(&format!("{detail}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!bob.get("/ui/keys").await.body.contains(&ada_key_id));
    assert_eq!(app.me_status(&format!("Bearer {ada_key}")).await, StatusCode::OK);

    // The admin sees ada's keys on her page and may revoke them there.
    let admin = Console::new(&app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let everyone = admin.get("/ui/all-keys").await.links("#keys");
    let ada_page = format!("/ui/users/{ada_id}");
    assert!(
        everyone.contains(&format!("ada's -> {ada_page}/keys/{ada_key_id}")),
        "{everyone:?}"
    );
    assert!(everyone.contains(&format!("ada -> {ada_page}")), "{everyone:?}");
    let user_page = admin.get(&format!("/ui/users/{ada_id}")).await;
    assert!(user_page.body.contains(&ada_key_id));
    let detail = format!("/ui/users/{ada_id}/keys/{ada_key_id}");
    assert_eq!(admin.get(&detail).await.status, StatusCode::OK);
    let revoked = admin.submit(&detail, &format!("{detail}/revoke"), &[]).await;
    assert_eq!(revoked.location(), format!("/ui/users/{ada_id}?done=revoked"));
    assert_eq!(
        app.me_status(&format!("Bearer {ada_key}")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn sign_out_and_password_changes_end_sessions_on_the_server() {
    let app = spawn_app().await;
    let (ada_id, _) = app.user("ada").await;
    let ada = Console::new(&app);
    ada.sign_in("ada", "ada-password").await;
    let stolen = ada.cookies();
    let ada_session = ada.cookie("keyward_session");
    assert!(ada_session.is_some());
    let out = ada.submit("/ui/keys", "/ui/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/ui/login?signed_out=1");
    assert!(out.set_cookie("keyward_session").unwrap().contains("Max-Age=0"));
    // The old cookie, replayed, is worth nothing: the session is gone from the database.
    let replay = Console::new(&app);
    replay.replay(&stolen);
    assert_eq!(replay.cookie("keyward_session"), ada_session, "the old cookie is sent");
    assert_eq!(replay.get("/ui/keys").await.location(), "/ui/login");

    // An admin's password reset ends ada's sessions.
    ada.sign_in("ada", "ada-password").await;
    let admin = Console::new(&app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let page = admin
        .submit(
            &format!("/ui/users/{ada_id}"),
            &format!("/ui/users/{ada_id}/password"),
            &[("password", "a-new-password")],
        )
        .await;
    assert_eq!(page.location(), format!("/ui/users/{ada_id}?done=password"));
    assert_eq!(ada.get("/ui/keys").await.location(), "/ui/login");
    ada.sign_in("ada", "a-new-password").await;

    // Ada changes her own password on her account page: the current one is needed, and
    // the change signs her out.
    let wrong = ada
        .submit(
            "/ui/account",
            "/ui/account/password",
            &[("current_password", "not it"), ("new_password", "third-password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let changed = ada
        .submit(
            "/ui/account",
            "/ui/account/password",
            &[
                ("current_password", "a-new-password"),
                ("new_password", "third-password"),
            ],
        )
        .await;
    assert_eq!(changed.location(), "/ui/login?password_changed=1");
    assert_eq!(ada.get("/ui/keys").await.location(), "/ui/login");
    ada.sign_in("ada", "third-password").await;
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled_like_a_sign_in() {
    let app = spawn_app().await;
    app.user("ada").await;
    let ada = Console::new(&app);
    ada.sign_in("ada", "ada-password").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let page = ada
            .submit(
                "/ui/account",
                "/ui/account/password",
                &[("current_password", "a guess"), ("new_password", "taken-over-123")],
            )
            .await;
        statuses.push(page.status);
    }
    assert_eq!(statuses[..5], [StatusCode::BAD_REQUEST; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    let failed = app.audit_lines("login.failed").await;
    let ada = failed.iter().filter(|e| e["actor"] == "ada").count();
    assert_eq!(ada, 5, "{failed:?}");
}

#[tokio::test]
async fn failed_sign_ins_share_the_apis_throttle() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let page = console.try_sign_in("admin", "wrong password").await;
        assert!(!page.body.contains("wrong password"), "the password is not echoed");
        statuses.push(page.status);
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    let blocked = console.try_sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(blocked.body.contains("Try again in") && blocked.has("#sign-in"));
    assert!(!blocked.header("retry-after").is_empty());
    // The API sees the same block for this account and address.
    let r = app
        .post("/v1/auth/token")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .await
        .expect_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // Failed sign-ins are in the audit trail.
    let failed = app.audit_lines("login.failed").await;
    assert!(failed.len() >= 5, "{failed:?}");
}

#[tokio::test]
async fn admins_manage_users_in_the_console() {
    let app = spawn_app().await;
    let admin = Console::new(&app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let created = admin
        .submit(
            "/ui/users",
            "/ui/users",
            &[
                ("username", "carol"),
                ("email", "carol@example.com"),
                ("password", "carol-password"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let carol_page = created.location().split('?').next().unwrap().to_owned();
    assert!(admin.get("/ui/users").await.body.contains("carol@example.com"));
    // Taken: the form comes back with the reason and the name, never the password.
    let taken = admin
        .submit(
            "/ui/users",
            "/ui/users",
            &[
                ("username", "Carol"),
                ("email", "c2@example.com"),
                ("password", "second-password"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.has("#create-user-error"), "{}", taken.body);
    assert!(taken.value("#new-username") == "Carol" && taken.value("#new-email") == "c2@example.com");
    assert!(taken.has("#new-role option[value=admin][selected]"));
    assert!(!taken.body.contains("second-password"));
    let token = app.login("carol", "carol-password").await;

    admin
        .submit(&carol_page, &format!("{carol_page}/state"), &[("disabled", "true")])
        .await;
    assert_eq!(
        app.me_status(&format!("Bearer {token}")).await,
        StatusCode::UNAUTHORIZED
    );
    admin
        .submit(&carol_page, &format!("{carol_page}/state"), &[("disabled", "false")])
        .await;
    app.login("carol", "carol-password").await;

    // A key made for carol by the admin, then carol deleted: the key dies with her.
    let page = admin
        .submit(&carol_page, &format!("{carol_page}/keys"), &[("name", "for carol")])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let key = page.new_key();
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::OK);
    let confirm = admin.get(&format!("{carol_page}/delete")).await;
    assert!(confirm.body.contains("Delete user carol?"));
    let deleted = admin
        .submit(&format!("{carol_page}/delete"), &format!("{carol_page}/delete"), &[])
        .await;
    assert_eq!(deleted.location(), "/ui/users?done=user-deleted");
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::UNAUTHORIZED);

    // The domain's rules hold here too: the admin cannot delete themself (409).
    let me = app.keyward.find_user("admin").unwrap().id.to_string();
    let page = admin
        .submit(&format!("/ui/users/{me}"), &format!("/ui/users/{me}/delete"), &[])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    // The audit log page shows what happened, never a secret.
    let audit = admin.get("/ui/audit").await;
    for action in [
        "user.create",
        "user.update",
        "user.delete",
        "key.create",
        "session.start",
    ] {
        assert!(audit.body.contains(action), "{action}");
    }
    assert!(!audit.body.contains("carol-password"));
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let app = spawn_with(|s| s.ui.enabled = false).await;
    let console = Console::new(&app);
    assert_eq!(console.get("/ui/login").await.status, StatusCode::NOT_FOUND);
    assert_eq!(console.get("/ui/keys").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.me_status(&format!("Bearer {}", app.admin)).await, StatusCode::OK);
}

#[tokio::test]
async fn the_api_ignores_the_session_cookie() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    console.sign_in("admin", ADMIN_PASSWORD).await;
    let session = console.cookie("keyward_session").unwrap();
    let r = app
        .get("/v1/me")
        .header("cookie", format!("keyward_session={session}"))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a cookie is no API credential (no CSRF there)"
    );
}

/// The key page shows a key's limits and changes them with forms, by the API's rules: an
/// owner tightens, only an admin loosens or adds credits.
#[tokio::test]
async fn the_key_page_shows_and_edits_limits_by_the_same_rules() {
    let app = spawn_app().await;
    let (ada, _) = app.user("ada").await;
    let r = app
        .post(&format!("/v1/users/{ada}/keys"))
        .as_(&app.admin)
        .json(&json!({"name": "metered",
                      "ratelimits": [{"name": "requests", "limit": 100, "duration": "1m"}],
                      "credits": {"remaining": 500, "refill": {"interval": "monthly", "amount": 500}}}))
        .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let key = r.json()["key"].as_str().unwrap().to_owned();
    let console = Console::new(&app);
    console.sign_in("ada", "ada-password").await;
    let here = format!("/ui/keys/{id}");
    let page = console.get(&here).await;
    assert!(page.body.contains("requests: 100 per 1m"), "{}", page.body);
    assert!(page.body.contains("500 left, refilled monthly to 500"));
    assert_eq!(page.text("#ratelimits"), "requests 100 1m");
    assert_eq!(page.value("#remaining"), "500");
    assert!(!page.has("#add-credits"), "adding is an admin's");

    // Tighter: saved, and enforced at once.
    let saved = console
        .submit(
            &here,
            &format!("{here}/ratelimits"),
            &[("ratelimits", "requests 1 1h\n")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location(), format!("{here}?done=limits"));
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::OK);
    assert_eq!(
        app.me_status(&format!("Bearer {key}")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let saved = console
        .submit(
            &here,
            &format!("{here}/credits"),
            &[("remaining", "40"), ("refill_interval", ""), ("refill_amount", "")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    // Looser: refused, nothing changed.
    for (to, form) in [
        (format!("{here}/ratelimits"), vec![("ratelimits", "")]),
        (format!("{here}/credits"), vec![("remaining", "41")]),
        (format!("{here}/credits/add"), vec![("add", "5")]),
    ] {
        let refused = console.submit(&here, &to, &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{to}");
    }
    let page = console.get(&here).await;
    assert!(
        page.body.contains("requests: 1 per 1h") && page.body.contains("40 left"),
        "{}",
        page.body
    );

    // The admin loosens and adds.
    let admin = Console::new(&app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let theirs = format!("/ui/users/{ada}/keys/{id}");
    let added = admin
        .submit(&theirs, &format!("{theirs}/credits/add"), &[("add", "1000")])
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let cleared = admin
        .submit(&theirs, &format!("{theirs}/ratelimits"), &[("ratelimits", "")])
        .await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    let page = admin.get(&theirs).await;
    assert!(
        page.body.contains("1040 left") && page.text("#ratelimits").is_empty(),
        "{}",
        page.body
    );
    assert_eq!(app.me_status(&format!("Bearer {key}")).await, StatusCode::OK);
}

#[tokio::test]
async fn the_key_page_charts_30_days_of_use_and_all_keys_sort_by_uses_today() {
    let app = spawn_app().await;
    let quiet = app.create_key(&app.admin, json!({"name": "quiet"})).await;
    let busy = app
        .create_key(
            &app.admin,
            json!({"name": "busy", "ratelimits": [{"name": "r", "limit": 3, "duration": "1h"}]}),
        )
        .await;
    let (quiet_id, busy_id) = (quiet["id"].as_str().unwrap(), busy["id"].as_str().unwrap());
    let busy_key = format!("Bearer {}", busy["key"].as_str().unwrap());
    for _ in 0..5 {
        app.me_status(&busy_key).await;
    }
    app.me_status(&format!("Bearer {}", quiet["key"].as_str().unwrap()))
        .await;

    let console = Console::new(&app);
    console.sign_in("admin", ADMIN_PASSWORD).await;
    let page = console.get(&format!("/ui/keys/{busy_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let chart = page.outer_html("#usage svg");
    assert!(
        chart.contains(r#"role="img""#) && chart.contains("3 uses and 2 refused in the last 30 days"),
        "{chart}"
    );
    assert_eq!(chart.matches("<g>").count(), 30, "a bar a day: {chart}");
    assert_eq!(chart.matches(r#"class="refused""#).count(), 1, "{chart}");
    assert!(page.text("#usage figcaption").contains("busiest day 5"));

    // Most used first, then the other way round; the counts are shown.
    let rows = |page: &Page| {
        page.select("#keys tr[data-key-id]", |r| {
            r.value().attr("data-key-id").unwrap().to_owned()
        })
    };
    let most = console.get("/ui/all-keys?sort=uses&order=desc").await;
    let order = rows(&most);
    let (b, q) = (
        order.iter().position(|id| id == busy_id).unwrap(),
        order.iter().position(|id| id == quiet_id).unwrap(),
    );
    assert!(b < q, "{order:?}");
    assert_eq!(most.text(&format!("tr[data-key-id='{busy_id}'] td.uses")), "3");
    assert_eq!(most.text(&format!("tr[data-key-id='{quiet_id}'] td.uses")), "1");
    let least = rows(&console.get("/ui/all-keys?sort=uses&order=asc").await);
    assert!(least.iter().position(|id| id == quiet_id) < least.iter().position(|id| id == busy_id));
    // The same once written to the database.
    app.keyward.flush_usage().await.unwrap();
    let most = console.get("/ui/all-keys?sort=uses&order=desc").await;
    assert_eq!(most.text(&format!("tr[data-key-id='{busy_id}'] td.uses")), "3");
}
