//! Prometheus metrics (the `prometheus` crate): what an operator graphs and alerts on.
//! Held in one registry per server and passed down; no global registry.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto;
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The verification results, lowercased as the verify API names them.
pub const VERIFICATION_RESULTS: [&str; 5] = ["valid", "not_found", "expired", "revoked", "disabled"];

pub struct Metrics {
    registry: Registry,
    /// Requests by matched route pattern and status.
    pub requests: IntCounterVec,
    /// Key verifications by result, and the time each took.
    pub verifications: std::sync::Arc<Verifications>,
    /// Keys that can authenticate now (set at scrape).
    pub active_keys: IntGauge,
    /// Failed password logins.
    pub logins_failed: IntCounter,
    /// Jobs per database write transaction (group commit).
    pub write_batch_size: Histogram,
    /// Requests of limited keys refused, by reason (`LIMIT_REFUSALS`).
    limit_refusals: IntCounterVec,
}

/// Why a limited key's request was refused, as `keyward_limit_refusals_total{reason}` says.
pub const LIMIT_REFUSALS: [&str; 2] = ["rate_limited", "usage_exceeded"];

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("keyward".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["route", "status"],
        )?;
        let verifications = std::sync::Arc::new(Verifications::new()?);
        let active_keys = IntGauge::new("active_keys", "API keys that can authenticate now")?;
        let logins_failed = IntCounter::new("logins_failed_total", "Failed password logins")?;
        let write_batch_size = Histogram::with_opts(
            HistogramOpts::new("db_write_batch_size", "Writes committed together in one transaction")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(SharedCollector(std::sync::Arc::clone(&verifications))))?;
        registry.register(Box::new(active_keys.clone()))?;
        registry.register(Box::new(logins_failed.clone()))?;
        registry.register(Box::new(write_batch_size.clone()))?;
        let limit_refusals = IntCounterVec::new(
            Opts::new(
                "limit_refusals_total",
                "Requests of keys with rate limits or credits refused, by reason",
            ),
            &["reason"],
        )?;
        for reason in LIMIT_REFUSALS {
            limit_refusals.with_label_values(&[reason]);
        }
        registry.register(Box::new(limit_refusals.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            verifications,
            active_keys,
            logins_failed,
            write_batch_size,
            limit_refusals,
        })
    }

    /// Counts a refusal of a limited key's request; `reason` indexes [`LIMIT_REFUSALS`].
    pub fn count_refusal(&self, reason: usize) {
        if let Some(label) = LIMIT_REFUSALS.get(reason) {
            self.limit_refusals.with_label_values(&[label]).inc();
        }
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

/// Upper bounds of the verification time histogram, in seconds.
const VERIFICATION_BUCKETS: [f64; 9] = [
    0.000_000_5,
    0.000_001,
    0.000_002,
    0.000_005,
    0.000_01,
    0.000_05,
    0.000_1,
    0.001,
    0.01,
];

/// How many parts the verification counts are kept in.
const SHARDS: usize = 16;

/// Key verifications (`keyward_key_verifications_total{result}` and
/// `keyward_key_verification_seconds`), counted on every key presented. Each thread counts
/// in a part of its own, on its own cache lines, and a scrape sums the parts: counters shared
/// by every core would cost each request a cache line moving between cores.
pub struct Verifications {
    shards: Box<[VerificationShard]>,
    descs: [Desc; 2],
}

#[repr(align(128))]
#[derive(Default)]
struct VerificationShard {
    results: [AtomicU64; 5],
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; VERIFICATION_BUCKETS.len() + 1],
    nanos: AtomicU64,
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

impl Verifications {
    fn new() -> Result<Self, prometheus::Error> {
        let no_labels = std::collections::HashMap::new;
        Ok(Verifications {
            shards: (0..SHARDS).map(|_| VerificationShard::default()).collect(),
            descs: [
                Desc::new(
                    "key_verifications_total".into(),
                    "API key verifications by result".into(),
                    vec!["result".into()],
                    no_labels(),
                )?,
                Desc::new(
                    "key_verification_seconds".into(),
                    "Time to verify a presented API key".into(),
                    Vec::new(),
                    no_labels(),
                )?,
            ],
        })
    }

    /// Counts one verification with result `result` (an index into `VERIFICATION_RESULTS`)
    /// that took `took`.
    pub fn record(&self, result: usize, took: Duration) {
        let shard = &self.shards[SHARD.with(|s| *s)];
        if let Some(counter) = shard.results.get(result) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        let bucket = VERIFICATION_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(VERIFICATION_BUCKETS.len());
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard
            .nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn sum(&self, field: impl Fn(&VerificationShard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| field(s).load(Ordering::Relaxed)).sum()
    }
}

impl Collector for Verifications {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let mut counters = proto::MetricFamily::default();
        counters.set_name(self.descs[0].fq_name.clone());
        counters.set_help(self.descs[0].help.clone());
        counters.set_field_type(proto::MetricType::COUNTER);
        counters.set_metric(
            VERIFICATION_RESULTS
                .iter()
                .enumerate()
                .map(|(i, result)| {
                    let mut label = proto::LabelPair::default();
                    label.set_name("result".into());
                    label.set_value((*result).into());
                    let mut counter = proto::Counter::default();
                    counter.set_value(self.sum(|s| &s.results[i]) as f64);
                    let mut metric = proto::Metric::from_label(vec![label]);
                    metric.set_counter(counter);
                    metric
                })
                .collect(),
        );

        let mut histogram = proto::Histogram::default();
        let mut cumulative = 0;
        let buckets = VERIFICATION_BUCKETS
            .iter()
            .enumerate()
            .map(|(i, bound)| {
                cumulative += self.sum(|s| &s.buckets[i]);
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(cumulative);
                bucket
            })
            .collect();
        histogram.set_bucket(buckets);
        histogram.set_sample_count(cumulative + self.sum(|s| &s.buckets[VERIFICATION_BUCKETS.len()]));
        histogram.set_sample_sum(self.sum(|s| &s.nanos) as f64 / 1e9);
        let mut metric = proto::Metric::default();
        metric.set_histogram(histogram);
        let mut seconds = proto::MetricFamily::default();
        seconds.set_name(self.descs[1].fq_name.clone());
        seconds.set_help(self.descs[1].help.clone());
        seconds.set_field_type(proto::MetricType::HISTOGRAM);
        seconds.set_metric(vec![metric]);
        vec![counters, seconds]
    }
}

/// A collector the registry and the hot path share.
struct SharedCollector<C>(std::sync::Arc<C>);

impl<C: Collector> Collector for SharedCollector<C> {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        self.0.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifications_from_many_threads_add_up_in_the_exposition() -> Result<(), prometheus::Error> {
        let metrics = Metrics::new()?;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10 {
                        metrics.verifications.record(0, Duration::from_nanos(300));
                    }
                    metrics.verifications.record(1, Duration::from_millis(20));
                });
            }
        });
        let text = metrics.render();
        for line in [
            "keyward_key_verifications_total{result=\"valid\"} 40",
            "keyward_key_verifications_total{result=\"not_found\"} 4",
            "keyward_key_verification_seconds_bucket{le=\"0.0000005\"} 40",
            "keyward_key_verification_seconds_bucket{le=\"0.01\"} 40",
            "keyward_key_verification_seconds_bucket{le=\"+Inf\"} 44",
            "keyward_key_verification_seconds_count 44",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        Ok(())
    }
}
