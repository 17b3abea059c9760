//! Logging: env_logger, filtered by `[log] level`, which `RUST_LOG` overrides.
//!
//! Nothing logs a header, a body, a key or a password: the request log line
//! (`keyward::access`, see `web::access_log`) is method, path, status, time, request id and
//! key id only.

/// Starts logging once; later calls (tests) are ignored.
pub fn init(level: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    let _ = builder.format_timestamp_millis().try_init();
}
