//! Prometheus metrics (the `prometheus` crate): what an operator graphs and alerts on.
//! Held in one registry per server and passed down; no global registry.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The verification results, lowercased as the verify API names them.
pub const VERIFICATION_RESULTS: [&str; 5] = ["valid", "not_found", "expired", "revoked", "disabled"];

pub struct Metrics {
    registry: Registry,
    /// Requests by matched route pattern and status.
    pub requests: IntCounterVec,
    /// Key verifications by result.
    pub verifications: IntCounterVec,
    /// The counters of `verifications`, resolved once (in `VERIFICATION_RESULTS` order):
    /// `with_label_values` hashes and locks, too slow for every request.
    pub verification_by_result: [IntCounter; 5],
    /// Time to verify a presented key, in seconds.
    pub verification_seconds: Histogram,
    /// Keys that can authenticate now (set at scrape).
    pub active_keys: IntGauge,
    /// Failed password logins.
    pub logins_failed: IntCounter,
    /// Jobs per database write transaction (group commit).
    pub write_batch_size: Histogram,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("keyward".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["route", "status"],
        )?;
        let verifications = IntCounterVec::new(
            Opts::new("key_verifications_total", "API key verifications by result"),
            &["result"],
        )?;
        let verification_seconds = Histogram::with_opts(
            HistogramOpts::new("key_verification_seconds", "Time to verify a presented API key").buckets(vec![
                0.000_000_5,
                0.000_001,
                0.000_002,
                0.000_005,
                0.000_01,
                0.000_05,
                0.000_1,
                0.001,
                0.01,
            ]),
        )?;
        let active_keys = IntGauge::new("active_keys", "API keys that can authenticate now")?;
        let logins_failed = IntCounter::new("logins_failed_total", "Failed password logins")?;
        let write_batch_size = Histogram::with_opts(
            HistogramOpts::new("db_write_batch_size", "Writes committed together in one transaction")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(verifications.clone()))?;
        registry.register(Box::new(verification_seconds.clone()))?;
        registry.register(Box::new(active_keys.clone()))?;
        registry.register(Box::new(logins_failed.clone()))?;
        registry.register(Box::new(write_batch_size.clone()))?;
        let verification_by_result = VERIFICATION_RESULTS.map(|result| verifications.with_label_values(&[result]));
        Ok(Metrics {
            registry,
            requests,
            verifications,
            verification_by_result,
            verification_seconds,
            active_keys,
            logins_failed,
            write_batch_size,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::warn!("encoding metrics failed: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
