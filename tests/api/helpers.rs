//! `spawn_app()` and route helpers that keep the tests short.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyward::Application;
use keyward::config::Settings;
use keyward::domain::{Clock, Secret, TestClock};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// An access token of the bootstrap admin.
    pub admin: String,
    pub settings: Settings,
    pub dir: tempfile::TempDir,
    /// The running server's domain, for counters tests cannot see over HTTP.
    pub keyward: keyward::domain::Keyward,
    /// The server's clock: move it on ([`TestApp::advance`]) instead of waiting.
    pub clock: TestClock,
    handle: actix_web::dev::ServerHandle,
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
    start(settings, dir).await
}

/// Starts a server on `settings` (its database may already exist), on a clock of its own.
pub async fn start(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    start_on(settings, dir, TestClock::default()).await
}

/// Starts a server on `settings` whose domain reads the time from `clock`.
async fn start_on(settings: Settings, dir: tempfile::TempDir, clock: TestClock) -> TestApp {
    let app = Application::build_with_clock(settings.clone(), Clock::Test(clock.clone()))
        .await
        .expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let keyward = app.keyward().clone();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut test = TestApp {
        address,
        client,
        admin: String::new(),
        settings,
        dir,
        keyward,
        clock,
        handle,
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
        start_on(self.settings, self.dir, self.clock).await
    }

    pub async fn restart_with(self, change: impl FnOnce(&mut Settings)) -> TestApp {
        self.handle.stop(true).await;
        let mut settings = self.settings;
        change(&mut settings);
        start_on(settings, self.dir, self.clock).await
    }

    /// Moves the server's clock on by `by`: what a key's expiry or a rotation's grace
    /// waits for has passed, with no sleep. (The clock only moves forward.)
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn db_path(&self) -> PathBuf {
        self.settings.database.path.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn bearer(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .request(Method::POST, "/v1/auth/token")
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login of {username}");
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a key with `body` as `token`; returns the whole 201 body.
    pub async fn create_key(&self, token: &str, body: Value) -> Value {
        let r = self
            .bearer(Method::POST, "/v1/keys", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "create key");
        r.json().await.unwrap()
    }

    /// A fresh key of the admin: (id, key).
    pub async fn admin_key(&self) -> (String, String) {
        let k = self.create_key(&self.admin.clone(), json!({"name": "test"})).await;
        (
            k["id"].as_str().unwrap().to_owned(),
            k["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a user as the admin and logs them in: (user id, access token).
    pub async fn user(&self, username: &str) -> (String, String) {
        let password = format!("{username}-password");
        let r = self
            .bearer(Method::POST, "/v1/users", &self.admin)
            .json(&json!({"username": username, "password": password, "email": format!("{username}@example.com")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "create user {username}");
        let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        (id, self.login(username, &password).await)
    }

    /// `GET path` as `token`: the JSON body of the 200.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let r = self.bearer(Method::GET, path, token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// `GET /v1/me` with a raw `Authorization` value; the status.
    pub async fn me_status(&self, authorization: &str) -> StatusCode {
        self.request(Method::GET, "/v1/me")
            .header("Authorization", authorization)
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// The body of a problem response, checking its shape.
pub async fn problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(),
        "{body}"
    );
    body
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

fn serve(dir: &std::path::Path, admin_password: Option<&str>, env: &[(&str, &str)]) -> (Server, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
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
