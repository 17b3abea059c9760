//! Bench helper (not shipped): how long a revocation made on one node takes to be refused on
//! the others. Creates `--count` keys on the writer node, waits until every reader accepts
//! them, then revokes them one at a time on the writer; from each 204 it polls every reader
//! (one request per millisecond or so) until the key is refused, and prints p50, p99 and max.
//!
//! cargo run --release --example propagation -- --writer URL --readers URL,URL --key ADMIN_KEY --count 200
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

async fn me(client: &reqwest::Client, node: &str, key: &str) -> StatusCode {
    client
        .get(format!("{node}/v1/me"))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap()
        .status()
}

/// Polls `node` until `key` is refused; the time from `since`.
async fn refused_after(client: &reqwest::Client, node: &str, key: &str, since: Instant) -> Duration {
    loop {
        if me(client, node, key).await == StatusCode::UNAUTHORIZED {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{node} never refused the key"
        );
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let writer = arg("--writer", "http://127.0.0.1:18181");
    let readers: Vec<String> = arg("--readers", "")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let admin = arg("--key", "");
    let count: usize = arg("--count", "200").parse().unwrap();
    let client = reqwest::Client::new();

    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        let made: serde_json::Value = client
            .post(format!("{writer}/v1/keys"))
            .header("X-API-Key", &admin)
            .json(&json!({"name": "propagation"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys.push((
            made["id"].as_str().unwrap().to_owned(),
            made["key"].as_str().unwrap().to_owned(),
        ));
    }
    for (_, key) in &keys {
        for node in &readers {
            while me(&client, node, key).await != StatusCode::OK {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let mut delays = Vec::with_capacity(count * readers.len());
    let mut acks = Vec::with_capacity(count);
    for (id, key) in &keys {
        let sent = Instant::now();
        let status = client
            .delete(format!("{writer}/v1/keys/{id}"))
            .header("X-API-Key", &admin)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::NO_CONTENT);
        let acknowledged = Instant::now();
        acks.push(acknowledged - sent);
        let polls = readers.iter().map(|node| {
            let (client, node, key) = (client.clone(), node.clone(), key.clone());
            async move { refused_after(&client, &node, &key, acknowledged).await }
        });
        delays.extend(futures_join(polls).await);
        // Let the nodes settle: each revocation is measured on its own.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    delays.sort();
    acks.sort();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    println!(
        "{} {} {} {} {}",
        ms(percentile(&delays, 0.50)),
        ms(percentile(&delays, 0.99)),
        ms(*delays.last().unwrap()),
        delays.len(),
        ms(percentile(&acks, 0.50)),
    );
}

/// Runs the polls at once.
async fn futures_join<F: std::future::Future<Output = Duration> + Send + 'static>(
    polls: impl Iterator<Item = F>,
) -> Vec<Duration> {
    let handles: Vec<_> = polls.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
