//! A real nginx with `auth_request` in front of a tiny upstream, asking keyward's
//! forward-auth: a valid key passes, a revoked one gets 401, one without the scope 403.

use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Http, eventually, skip, spawn_app};

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

struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let keyward_port = app.address.rsplit(':').next().unwrap().to_owned();
    let (front, upstream) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = format!(
        r#"
user root;
worker_processes 1;
daemon off;
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
            proxy_pass http://127.0.0.1:{keyward_port}/v1/forward-auth?scope=billing:read;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location / {{
            auth_request /_keyward;
            auth_request_set $keyward_user $upstream_http_x_auth_user;
            proxy_set_header X-User $keyward_user;
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
    let _nginx = Nginx(child);
    let nginx = Http::new(&format!("http://127.0.0.1:{front}"));
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
