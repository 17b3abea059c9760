//! Bench helper (not shipped): fills a database with N keys through keyward's own domain
//! calls, fast, and writes the plaintext of the first `--plain` keys and some access tokens
//! for the load generator; with `--limited M`, also M keys with one rate limit and credits
//! (to `limited.txt`), so high that the bench never reaches them.
//!
//! cargo run --release --example seed -- --db PATH --keys N --plain 10000 --limited 1000 --out DIR
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use keyward::Application;
use keyward::config::Settings;
use keyward::domain::credentials::Presented;
use keyward::domain::{NewKeyRequest, Secret};
use keyward::model::{Credits, GivenDuration, RateLimits};

const ADMIN_PASSWORD: &str = "bench admin password";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let db = PathBuf::from(arg("--db", "bench.db"));
    let total: usize = arg("--keys", "10000").parse().unwrap();
    let plain: usize = arg("--plain", "10000").parse().unwrap();
    let out = PathBuf::from(arg("--out", "."));
    let limited: usize = arg("--limited", "0").parse().unwrap();

    let mut settings = Settings::defaults();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.database.path = db;
    settings.auth.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    let app = Application::build(settings).await.expect("keyward starts");
    let kw = app.keyward().clone();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("admin:{ADMIN_PASSWORD}")
        )
    );
    let caller = kw
        .authenticate(Presented::from_headers(Some(basic.as_bytes()), None), None)
        .await
        .expect("admin logs in");

    let started = Instant::now();
    let mut keys_file = std::fs::File::create(out.join("keys.txt")).unwrap();
    let mut made = 0usize;
    let mut written = 0usize;
    let mut in_flight = tokio::task::JoinSet::new();
    while made < total || !in_flight.is_empty() {
        while made < total && in_flight.len() < 512 {
            let (kw, caller) = (kw.clone(), caller.clone());
            in_flight.spawn(async move {
                let request = NewKeyRequest {
                    name: Some(keyward::domain::KeyName::parse("bench").unwrap()),
                    ..NewKeyRequest::default()
                };
                kw.mint_key(&caller, None, request).await.expect("mint")
            });
            made += 1;
        }
        if let Some(done) = in_flight.join_next().await {
            let minted = done.unwrap();
            if written < plain {
                writeln!(keys_file, "{}", minted.secret.reveal()).unwrap();
                written += 1;
            }
        }
        if made.is_multiple_of(100_000) && made > 0 && in_flight.len() == 512 {
            eprintln!("seed: {made} keys");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "seed: {total} keys in {secs:.1} s ({:.0} keys/s, in-process)",
        total as f64 / secs
    );

    let mut limited_file = std::fs::File::create(out.join("limited.txt")).unwrap();
    for _ in 0..limited {
        let request = NewKeyRequest {
            name: Some(keyward::domain::KeyName::parse("bench limited").unwrap()),
            ratelimits: RateLimits::parse(vec![
                keyward::domain::limits::parse_rate_limit(
                    "requests".into(),
                    1_000_000,
                    GivenDuration::Text("1s".into()),
                )
                .unwrap(),
            ])
            .unwrap(),
            credits: Some(Credits::new(1_000_000_000_000, None).unwrap()),
            ..NewKeyRequest::default()
        };
        let minted = kw.mint_key(&caller, None, request).await.expect("mint");
        writeln!(limited_file, "{}", minted.secret.reveal()).unwrap();
    }

    let mut tokens = std::fs::File::create(out.join("tokens.txt")).unwrap();
    for _ in 0..20 {
        let (token, _) = kw.login("admin", &Secret::new(ADMIN_PASSWORD), None).await.unwrap();
        writeln!(tokens, "{}", token.reveal()).unwrap();
    }
}
