//! One line per request, and request metrics: method, path, status, latency, request id and
//! key id. Never a header value, so never a credential.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::AppState;
use crate::domain::KeyId;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: 128 bits that cannot be guessed, unless the client (or a proxy) sent a sane
/// `X-Request-Id` of its own. Each is blake3 keyed with a random per-process key over a
/// counter: as unpredictable as random bytes from the OS, without a system call per request.
pub struct RequestIds {
    key: [u8; 32],
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Never without entropy: fall back to the clock and the address of the key.
            let seed = format!("{:?}{:p}", std::time::SystemTime::now(), &key);
            key = *blake3::hash(seed.as_bytes()).as_bytes();
        }
        RequestIds {
            key,
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let hash = blake3::keyed_hash(&self.key, &n.to_le_bytes());
        crate::model::hex(&hash.as_bytes()[..16])
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// The key a request authenticated with, left in the request's extensions by the `Caller`
/// extractor for the log line.
#[derive(Clone, Copy)]
pub struct AuthenticatedKey(pub KeyId);

fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| text.to_owned())
}

pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // The state is borrowed, never cloned: a shared reference count would move between the
    // workers' cores on every request.
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(|| {
            req.app_data::<web::Data<AppState>>()
                .map_or_else(String::new, |s| s.request_ids.next())
        });
    let logging = log::log_enabled!(target: "keyward::access", log::Level::Info);
    let line_start = logging.then(|| format!("{} {}", req.method(), req.path()));
    let mut res = next.call(req).await?;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    // A limited key's accepted request: where its limits stand.
    let admitted = res
        .request()
        .extensions_mut()
        .remove::<super::ratelimit::AdmittedLimits>();
    if let Some(admitted) = admitted {
        super::ratelimit::set_admitted_headers(res.headers_mut(), &admitted.0);
    }
    let status = res.status();
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        let route = res.request().match_pattern();
        state
            .keyward
            .metrics()
            .requests
            .with_label_values(&[route.as_deref().unwrap_or("unmatched"), status.as_str()])
            .inc();
    }
    if let Some(line_start) = line_start {
        let key = res
            .request()
            .extensions()
            .get::<AuthenticatedKey>()
            .map(|k| k.0.to_string());
        log::info!(
            target: "keyward::access",
            "{line_start} {} {:.2}ms request_id={request_id} key_id={}",
            status.as_u16(),
            started.elapsed().as_secs_f64() * 1000.0,
            key.as_deref().unwrap_or("-")
        );
    }
    Ok(res)
}
