//! A real nginx with `auth_request` in front of a tiny upstream, asking keyward's
//! forward-auth: a valid key passes, a revoked one gets 401, one without the scope 403.

use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Http, TestApp, eventually, skip, spawn_app};

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx runs as one process (`master_process off`): killing it leaves no worker behind.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx in front of an upstream that greets `X-User`, asking keyward's forward-auth at
/// `forward` (a path and query) for every request; `extra` goes in the protected location.
/// The guard, the directory it runs in, and a client for it.
fn start_nginx(nginx: &str, app: &TestApp, forward: &str, extra: &str) -> (Nginx, tempfile::TempDir, Http) {
    let keyward_port = app.address.rsplit(':').next().unwrap().to_owned();
    let (front, upstream) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = format!(
        r#"
user root;
daemon off;
master_process off;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{}}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{upstream};
        location / {{ return 200 "upstream says hello to $http_x_user\n"; }}
    }}
    server {{
        listen 127.0.0.1:{front};
        location = /_keyward {{
            internal;
            proxy_pass http://127.0.0.1:{keyward_port}{forward};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location / {{
            auth_request /_keyward;
            auth_request_set $keyward_user $upstream_http_x_auth_user;
            proxy_set_header X-User $keyward_user;
            {extra}
            proxy_pass http://127.0.0.1:{upstream};
        }}
    }}
}}
"#
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(nginx)
        .args(["-e", &format!("{d}/error.log"), "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Nginx(child), dir, Http::new(&format!("http://127.0.0.1:{front}")))
}

#[tokio::test]
async fn nginx_auth_request_lets_valid_keys_through() {
    let Some(nginx) = nginx_binary() else {
        return skip(
            "nginx::nginx_auth_request_lets_valid_keys_through",
            "nginx is not installed (apt-get install nginx)",
        );
    };
    let app = spawn_app().await;
    let (_nginx, dir, nginx) = start_nginx(nginx, &app, "/v1/forward-auth?scope=billing:read", "");
    assert!(
        eventually(|| async { nginx.get("/report").try_send().await.is_ok() }).await,
        "nginx did not start: {}",
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );

    let (_, ada) = app.user("ada").await;
    let good = app.create_key(&ada, json!({"scopes": ["billing:read"]})).await;
    let narrow = app.create_key(&ada, json!({"scopes": ["keys:read"]})).await;
    let good_key = good["key"].as_str().unwrap();

    let r = nginx
        .get("/report")
        .api_key(good_key)
        .await
        .expect_status(StatusCode::OK);
    assert_eq!(r.text(), "upstream says hello to ada\n");
    nginx
        .get("/report")
        .as_(narrow["key"].as_str().unwrap())
        .await
        .expect_status(StatusCode::FORBIDDEN);
    nginx.get("/report").await.expect_status(StatusCode::UNAUTHORIZED);

    app.delete(&format!("/v1/keys/{}", good["id"].as_str().unwrap()))
        .as_(&ada)
        .await;
    assert_eq!(
        nginx.get("/report").api_key(good_key).await.status(),
        StatusCode::UNAUTHORIZED,
        "revoked: refused on the very next request"
    );
}

/// The README's nginx way for rate limits: `limited=403` makes keyward answer a refused key
/// with 403 (nginx turns a 429 from `auth_request` into a 500), and `add_header … always`
/// passes `Retry-After` and `RateLimit` on to the client.
#[tokio::test]
async fn nginx_passes_a_rate_limit_refusal_on_as_403_with_its_headers() {
    let Some(nginx) = nginx_binary() else {
        return skip(
            "nginx::nginx_passes_a_rate_limit_refusal_on_as_403_with_its_headers",
            "nginx is not installed (apt-get install nginx)",
        );
    };
    let app = spawn_app().await;
    let extra = "auth_request_set $keyward_retry $upstream_http_retry_after;
            auth_request_set $keyward_ratelimit $upstream_http_ratelimit;
            add_header Retry-After $keyward_retry always;
            add_header RateLimit $keyward_ratelimit always;";
    let (_limited, dir, limited) = start_nginx(nginx, &app, "/v1/forward-auth?scope=billing:read&limited=403", extra);
    let (_plain, _plain_dir, plain) = start_nginx(nginx, &app, "/v1/forward-auth?scope=billing:read", "");
    for front in [&limited, &plain] {
        assert!(
            eventually(|| async { front.get("/report").try_send().await.is_ok() }).await,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
    }
    let made = app
        .post("/v1/keys")
        .as_(&app.admin)
        .json(&json!({"scopes": ["billing:read"], "ratelimits": [{"name": "requests", "limit": 2, "duration": "1h"}]}))
        .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let key = made.json()["key"].as_str().unwrap().to_owned();

    let r = limited.get("/report").api_key(&key).await.expect_status(StatusCode::OK);
    assert_eq!(r.text(), "upstream says hello to admin\n");
    // Without limited=403, nginx makes the refusal a 500.
    plain.get("/report").api_key(&key).await.expect_status(StatusCode::OK);
    let r = plain.get("/report").api_key(&key).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let r = limited.get("/report").api_key(&key).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert!(r.header("ratelimit").unwrap().starts_with(r#""requests";r=0;t="#));
}
