//! Just enough of the W3C WebDriver protocol to drive Debian's Chromium through
//! chromedriver, over the reqwest client the other tests already use.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one browser session in it; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// Why a browser could not be had (the test then says so and skips).
pub fn unavailable() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|p| !Path::new(p).exists())
        .map(|missing| format!("{missing} is missing (apt-get install chromium chromium-driver)"))
}

impl Browser {
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ready = match http.get(format!("{root}/status")).send().await {
                Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let answer: Value = http
            .post(format!("{root}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"));
        Browser {
            driver,
            base: format!("{root}/session/{session}"),
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// A command's value, or its error (a stale element while a page changes, say).
    async fn try_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            return Err(answer["value"].clone());
        }
        Ok(answer["value"].clone())
    }

    /// Waits up to 5 s for the first element matching `css` to have a text that `want`
    /// accepts (a click may still be loading the next page); returns the text.
    pub async fn wait_for_text(&self, css: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let found = self
                .try_call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Ok(element) = found
                && let Some(id) = element[ELEMENT].as_str()
            {
                match self
                    .try_call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
                    .await
                {
                    Ok(Value::String(text)) if want(&text) => return text,
                    other => last = other.unwrap_or_else(|e| e),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{css} never had the expected text; last: {last}");
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn title(&self) -> String {
        self.call(reqwest::Method::GET, "/title", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The first element matching a CSS selector, waiting up to 5 s for it to appear.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let answer: Value = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(id) = answer["value"][ELEMENT].as_str() {
                return Element {
                    browser: self,
                    id: id.to_owned(),
                };
            }
            assert!(Instant::now() < deadline, "no element {css}: {}", answer["value"]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's whole source, as the browser has it now.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Runs a script in the page (only for what WebDriver has no command for).
    pub async fn script(&self, code: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": code, "args": []})),
        )
        .await
    }

    /// A cookie as the browser keeps it (name, value, httpOnly, sameSite, secure, path).
    pub async fn cookie(&self, name: &str) -> Value {
        self.call(reqwest::Method::GET, &format!("/cookie/{name}"), None).await
    }

    /// Makes the page see the system's colour scheme as dark (or light): Chromium's own
    /// command, through chromedriver.
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setEmulatedMedia",
                "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}})),
        )
        .await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG of the viewport to `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        use base64::Engine;
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Browser {
    /// Ends the session, which closes Chromium.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.base).send().await;
        // Nothing left for `drop` to close.
        self.base.clear();
    }
}

/// A test that fails before `quit` still closes Chromium (a plain blocking DELETE: no
/// runtime is at hand in `drop`) and stops chromedriver.
impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if let Some((host, path)) = self.base.strip_prefix("http://").and_then(|rest| rest.split_once('/'))
            && let Ok(mut stream) = std::net::TcpStream::connect(host)
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request =
                format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    pub async fn click(&self) {
        self.browser
            .call(
                reqwest::Method::POST,
                &format!("/element/{}/click", self.id),
                Some(json!({})),
            )
            .await;
    }

    pub async fn type_text(&self, text: &str) {
        self.browser
            .call(
                reqwest::Method::POST,
                &format!("/element/{}/value", self.id),
                Some(json!({"text": text})),
            )
            .await;
    }

    pub async fn displayed(&self) -> bool {
        self.browser
            .call(reqwest::Method::GET, &format!("/element/{}/displayed", self.id), None)
            .await
            .as_bool()
            .unwrap()
    }

    pub async fn text(&self) -> String {
        self.browser
            .call(reqwest::Method::GET, &format!("/element/{}/text", self.id), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }
}
