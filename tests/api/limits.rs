//! Limits: bodies refused before they are read, a full or read-only database refusing
//! writes with 503 while reads go on, bounded argon2 work, and throttling by client address.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app, spawn_with};

#[tokio::test]
async fn an_announced_huge_body_is_refused_before_it_is_sent() {
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n",
        app.admin
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // Not one byte of the gigabyte is sent: the answer must come anyway.
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn a_full_database_refuses_writes_with_503_and_reads_go_on() {
    let app = spawn_with(|s| s.database.max_size = Some(160 * 1024)).await;
    let (_, key) = app.admin_key().await;
    let mut refused = None;
    for i in 0..5000 {
        let r = app
            .post("/v1/keys")
            .as_(&app.admin)
            .json(&json!({"name": format!("filler {i} {}", "x".repeat(200))}))
            .await;
        if r.status() != StatusCode::CREATED {
            refused = Some(r);
            break;
        }
    }
    let body = refused
        .expect("the database fills up")
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["detail"].as_str().unwrap().contains("full"), "{body}");
    assert!(!body.to_string().contains("SQLITE"), "no SQL in the body");
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
    app.get("/v1/keys?limit=5")
        .as_(&app.admin)
        .await
        .expect_status(StatusCode::OK);
    app.get("/readyz").await.expect_status(StatusCode::OK);
}

#[tokio::test]
async fn a_read_only_database_serves_reads_and_refuses_writes() {
    let app = spawn_app().await;
    let (id, key) = app.admin_key().await;
    let app = app.restart_with(|s| s.database.read_only = true).await;
    assert_eq!(app.me_status(&key).await, StatusCode::OK);
    let list = app.get("/v1/keys").as_(&app.admin).await.json();
    assert_eq!(list["total"], 1);
    for (method, path) in [
        (Method::POST, "/v1/keys".to_owned()),
        (Method::DELETE, format!("/v1/keys/{id}")),
    ] {
        let body = app
            .call(method, &path)
            .as_(&app.admin)
            .await
            .problem(StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["detail"].as_str().unwrap().contains("read-only"), "{body}");
    }
    assert_eq!(
        app.me_status(&key).await,
        StatusCode::OK,
        "a refused revoke changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_parallel_logins_are_answered_with_bounded_argon2_work() {
    let app = spawn_app().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let http = app.http.clone();
        tasks.spawn(async move {
            http.post("/v1/auth/token")
                .json(&json!({"username": format!("nobody{i}"), "password": "not a password"}))
                .await
                .status()
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let peak = app.keyward.password_peak_concurrency();
    assert!((1..=8).contains(&peak), "at most 8 argon2 hashes at once, saw {peak}");
}

async fn fail_login(app: &crate::helpers::TestApp, forwarded_for: &str) -> StatusCode {
    app.post("/v1/auth/token")
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({"username": "admin", "password": "not the password"}))
        .await
        .status()
}

#[tokio::test]
async fn throttling_believes_x_forwarded_for_only_from_trusted_proxies() {
    // Untrusted peer: the header is ignored, so changing it does not escape the throttle.
    let app = spawn_app().await;
    for i in 0..5 {
        assert_eq!(fail_login(&app, &format!("10.0.0.{i}")).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(fail_login(&app, "10.0.0.99").await, StatusCode::TOO_MANY_REQUESTS);

    // Behind a trusted proxy: each client address has its own count.
    let app =
        spawn_with(|s| s.server.trusted_proxies = vec![keyward::config::IpNet::parse("127.0.0.1").unwrap()]).await;
    for _ in 0..5 {
        assert_eq!(fail_login(&app, "10.0.0.1").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(fail_login(&app, "10.0.0.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        fail_login(&app, "10.0.0.2").await,
        StatusCode::UNAUTHORIZED,
        "another client is not locked out"
    );
    let ok = app
        .post("/v1/auth/token")
        .header("X-Forwarded-For", "10.0.0.3")
        .json(&json!({"username": "admin", "password": crate::helpers::ADMIN_PASSWORD}))
        .await;
    assert_eq!(ok.status(), StatusCode::OK, "the right password from elsewhere works");
}

/// Reads what the server sends on `tcp` until it closes the connection (or 5 s pass).
async fn read_until_closed(tcp: &mut tokio::net::TcpStream) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408_and_the_connection_closes() {
    let app = spawn_with(|s| s.server.request_timeout = Duration::from_secs(1)).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.admin
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // One byte now and then, never the whole body.
    let (mut read_half, mut write_half) = tcp.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if write_half.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), read_half.read_to_end(&mut got))
        .await
        .is_ok();
    trickle.abort();
    let answer = String::from_utf8_lossy(&got);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed, "the connection is closed after the 408");

    // A handler that answers without reading the body does not wait for the rest of it.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "the connection is closed, not left to drain the body");

    // Slow chunked bodies too.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{{\r\n",
        app.admin
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (answer, closed) = read_until_closed(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed);
    // The server still answers everyone else (on a new connection: the test client's
    // pooled one may just have reached its keep-alive end).
    let r = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn connections_past_max_connections_wait_their_turn() {
    let app = spawn_with(|s| {
        s.server.workers = 1;
        s.server.max_connections = 1;
        // No login at start: the test client would keep that connection open.
        s.auth.admin_password = None;
    })
    .await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // `first` stays open (keep-alive): a second connection is not served meanwhile.
    let mut second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    second.write_all(request).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf))
            .await
            .is_err(),
        "served past max_connections"
    );
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}
