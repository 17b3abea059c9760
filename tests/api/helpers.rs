//! `spawn_app()` and route helpers that keep the tests short.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyward::Application;
use keyward::config::Settings;
use keyward::domain::{Clock, Secret, TestClock};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    /// Where requests go: `app.get(path)`, `app.post(path)`, … come from here.
    pub http: Http,
    /// An access token of the bootstrap admin.
    pub admin: String,
    pub settings: Settings,
    pub dir: tempfile::TempDir,
    /// The running server's domain, for counters tests cannot see over HTTP.
    pub keyward: keyward::domain::Keyward,
    /// The server's clock: move it on ([`TestApp::advance`]) instead of waiting.
    pub clock: TestClock,
    handle: actix_web::dev::ServerHandle,
    /// The PostgreSQL database of a run on that backend (dropped with the app).
    database: Option<crate::postgres::Database>,
}

impl std::ops::Deref for TestApp {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.http
    }
}

/// Settings for a test: port 0, a fresh database in `dir`, a known admin password.
pub fn test_settings(dir: &tempfile::TempDir) -> Settings {
    let mut s = Settings::defaults();
    s.server.bind = "127.0.0.1:0".parse().unwrap();
    s.server.workers = 2;
    s.database.path = dir.path().join("keyward.db");
    s.auth.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    change(&mut settings);
    // The core suite's second run (tests/api/on_postgres.rs): the same tests on PostgreSQL.
    let database = match on_postgres() {
        Some(server) if settings.database.url.is_none() => {
            let database = crate::postgres::Database::create(&server).await;
            settings.database.url = Some(Secret::new(&database.url));
            Some(database)
        }
        _ => None,
    };
    start_on(settings, dir, TestClock::default(), database).await
}

/// The server to run apps' databases on when this run is the core suite on PostgreSQL
/// (`KEYWARD_TEST_BACKEND=postgres`).
pub fn on_postgres() -> Option<String> {
    (std::env::var("KEYWARD_TEST_BACKEND").as_deref() == Ok("postgres"))
        .then(|| std::env::var("KEYWARD_TEST_POSTGRES").expect("KEYWARD_TEST_POSTGRES names the server"))
}

/// Starts a server on `settings` (its database may already exist), on a clock of its own.
pub async fn start(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    start_on(settings, dir, TestClock::default(), None).await
}

/// Starts a server on `settings` whose domain reads the time from `clock`.
async fn start_on(
    settings: Settings,
    dir: tempfile::TempDir,
    clock: TestClock,
    database: Option<crate::postgres::Database>,
) -> TestApp {
    let app = Application::build_with_clock(settings.clone(), Clock::Test(clock.clone()))
        .await
        .expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let keyward = app.keyward().clone();
    tokio::spawn(app.run_until_stopped());
    let mut test = TestApp {
        http: Http::new(&address),
        admin: String::new(),
        settings,
        dir,
        keyward,
        clock,
        handle,
        database,
    };
    // (Over TLS the plain client cannot log in; those tests speak TLS themselves.)
    if let Some(password) = test
        .settings
        .auth
        .admin_password
        .clone()
        .filter(|_| test.settings.server.tls.is_none())
    {
        test.admin = test.login("admin", password.reveal()).await;
    }
    test
}

impl TestApp {
    /// Stops this server and starts another on the same database and settings (and clock).
    pub async fn restart(self) -> TestApp {
        self.handle.stop(true).await;
        start_on(self.settings, self.dir, self.clock, self.database).await
    }

    /// Stops this server; its settings and directory (the database) are kept.
    pub async fn stop(self) -> (Settings, tempfile::TempDir) {
        self.handle.stop(true).await;
        (self.settings, self.dir)
    }

    pub async fn restart_with(self, change: impl FnOnce(&mut Settings)) -> TestApp {
        self.handle.stop(true).await;
        let mut settings = self.settings;
        change(&mut settings);
        start_on(settings, self.dir, self.clock, self.database).await
    }

    /// Moves the server's clock on by `by`: what a key's expiry or a rotation's grace
    /// waits for has passed, with no sleep. (The clock only moves forward.)
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn db_path(&self) -> PathBuf {
        self.settings.database.path.clone()
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .post("/v1/auth/token")
            .json(&json!({"username": username, "password": password}))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login of {username}");
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a key with `body` as `token`; returns the whole 201 body.
    pub async fn create_key(&self, token: &str, body: Value) -> Value {
        let r = self.post("/v1/keys").as_(token).json(&body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "create key");
        r.json()
    }

    /// A fresh key of the admin: (id, key).
    pub async fn admin_key(&self) -> (String, String) {
        let k = self.create_key(&self.admin, json!({"name": "test"})).await;
        (
            k["id"].as_str().unwrap().to_owned(),
            k["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a user as the admin and logs them in: (user id, access token).
    pub async fn user(&self, username: &str) -> (String, String) {
        let password = format!("{username}-password");
        let r = self
            .post("/v1/users")
            .as_(&self.admin)
            .json(&json!({"username": username, "password": password, "email": format!("{username}@example.com")}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "create user {username}");
        let id = r.json()["id"].as_str().unwrap().to_owned();
        (id, self.login(username, &password).await)
    }

    /// `GET path` as `token`: the JSON body of the 200.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let r = self.get(path).as_(token).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json()
    }

    /// The audit trail's lines (the newest 500, as the admin reads them) of one `action`,
    /// newest first.
    pub async fn audit_lines(&self, action: &str) -> Vec<Value> {
        let audit = self.get_json("/v1/audit?limit=500", &self.admin).await;
        let lines = audit["data"].as_array().unwrap();
        lines.iter().filter(|l| l["action"] == action).cloned().collect()
    }

    /// `GET /v1/me` with a raw `Authorization` value; the status.
    pub async fn me_status(&self, authorization: &str) -> StatusCode {
        self.get("/v1/me").authorization(authorization).await.status()
    }
}

/// A server's address and a client for it (one that does not follow redirects): where
/// requests start, as `app.get("/v1/keys").as_(&token).await`.
#[derive(Clone)]
pub struct Http {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub client: reqwest::Client,
}

impl Http {
    pub fn new(address: &str) -> Http {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Http {
            address: address.to_owned(),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn call(&self, method: Method, path: &str) -> Call {
        Call(self.client.request(method, self.url(path)))
    }

    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call {
        self.call(Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Call {
        self.call(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.call(Method::DELETE, path)
    }

    pub fn options(&self, path: &str) -> Call {
        self.call(Method::OPTIONS, path)
    }
}

/// A request being written; `.await` sends it and reads the whole answer into a [`Reply`].
#[must_use = "a call is sent by .await"]
pub struct Call(RequestBuilder);

impl Call {
    /// As the holder of `token` (an access token or a key): `Authorization: Bearer <token>`.
    pub fn as_(self, token: &str) -> Call {
        Call(self.0.bearer_auth(token))
    }

    /// A raw `Authorization` value: a bare key, `Basic …`, anything.
    pub fn authorization(self, value: impl AsRef<str>) -> Call {
        self.header("Authorization", value)
    }

    /// The key in `X-API-Key`.
    pub fn api_key(self, key: &str) -> Call {
        self.header("X-API-Key", key)
    }

    /// Basic credentials; the password may be a key.
    pub fn basic(self, user: &str, password: &str) -> Call {
        Call(self.0.basic_auth(user, Some(password)))
    }

    pub fn header(self, name: &str, value: impl AsRef<str>) -> Call {
        Call(self.0.header(name, value.as_ref()))
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Call {
        Call(self.0.json(body))
    }

    pub fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Call {
        Call(self.0.form(form))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Call {
        Call(self.0.body(body))
    }

    /// Sends it; the transport's error, for the tests that expect one.
    pub async fn try_send(self) -> reqwest::Result<Reply> {
        let r = self.0.send().await?;
        let (status, headers, content_length) = (r.status(), r.headers().clone(), r.content_length());
        let body = r.bytes().await?.to_vec();
        Ok(Reply {
            status,
            headers,
            content_length,
            body,
        })
    }
}

impl std::future::IntoFuture for Call {
    type Output = Reply;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.try_send().await.unwrap() })
    }
}

/// A whole answer: status, headers and body, read.
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    content_length: Option<u64>,
    body: Vec<u8>,
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Checks the status (the body shows if it is not the one expected); the reply, to read on.
    pub fn expect_status(self, status: StatusCode) -> Reply {
        assert_eq!(self.status, status, "{}", self.text());
        self
    }

    /// The first value of header `name`, if there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The body of a problem response, checking its status and shape.
    pub fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status);
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        let body = self.json();
        assert_eq!(body["status"], status.as_u16());
        assert!(
            body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(),
            "{body}"
        );
        body
    }
}

/// Polls `check` until it is true or 5 s pass.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A server process that is killed if the test ends early.
pub struct Server(Child);

impl Server {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits up to `limit` for the process to exit; its exit code, `None` if it did not.
    pub fn wait_for_exit(&mut self, limit: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl From<Child> for Server {
    fn from(child: Child) -> Self {
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on a port from the OS, in `dir`, with the admin password
/// [`ADMIN_PASSWORD`]; returns the process and its base URL. Its log goes to `dir/server.log`.
pub fn start_binary(dir: &std::path::Path, env: &[(&str, &str)]) -> (Server, String) {
    serve(dir, Some(ADMIN_PASSWORD), env)
}

/// Starts the binary as `cargo run --release` would: nothing configured, so a new database
/// gets a generated admin password in `dir/keyward-admin-password`.
pub fn start_binary_as_shipped(dir: &std::path::Path) -> (Server, String) {
    serve(dir, None, &[])
}

/// As [`start_binary`], with arguments (`serve --fixtures FILE`).
pub fn start_binary_with_args(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Server, String) {
    serve_with(dir, Some(ADMIN_PASSWORD), args, env)
}

fn serve(dir: &std::path::Path, admin_password: Option<&str>, env: &[(&str, &str)]) -> (Server, String) {
    serve_with(dir, admin_password, &[], env)
}

fn serve_with(
    dir: &std::path::Path,
    admin_password: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Server, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command.args(args);
    command.env_remove("KEYWARD_ADMIN_PASSWORD");
    if let Some(password) = admin_password {
        command.env("KEYWARD_ADMIN_PASSWORD", password);
    }
    let mut child = command
        .current_dir(dir)
        .env("KEYWARD__SERVER__BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let log = dir.join("server.log");
    let mut log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let url = loop {
        let line = lines.next().expect("the server logs where it serves").unwrap();
        writeln!(log_file, "{line}").unwrap();
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep copying the log (to `server.log` in `dir`) so the server never blocks on a pipe.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = writeln!(log_file, "{line}");
        }
    });
    (Server(child), url)
}

/// Whether this run is CI's (`CI=true`, as CI services set it): there a test that cannot run
/// fails rather than skips.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Says that `test` did not run because `why` (a missing tool, and how to install it), where
/// `cargo test` shows it: straight to the process's standard error, which the test harness
/// does not capture (it captures `eprintln!`, shown only for failures or with --nocapture).
/// Under CI this is a failure instead. The caller returns after it.
pub fn skip(test: &str, why: &str) {
    assert!(
        !under_ci(),
        "{test} could not run: {why}; under CI=true a skipped test is a failure"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// The standard output of a command that succeeded (its standard error in the failure).
pub fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}
