//! `GET /metrics`: the Prometheus text of [`crate::metrics::Metrics`], guarded on the main
//! listener, public on `[metrics] bind` or with `[metrics] public = true`.

use actix_web::{HttpResponse, web};

use super::AppState;
use super::problem::{ApiError, Problem};
use crate::domain::Caller;

/// `GET /metrics` on the main listener: Prometheus text, for an admin or a key granted
/// `metrics:read` (Prometheus sends it as a bearer token).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, body = String, content_type = "text/plain"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn metrics(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    crate::domain::access::require_privileged(&caller, "metrics:read")?;
    Ok(public_metrics(state).await)
}

/// `GET /metrics` for anyone: on `[metrics] bind`, or with `[metrics] public = true`.
pub async fn public_metrics(state: web::Data<AppState>) -> HttpResponse {
    let metrics = state.keyward.metrics();
    metrics
        .active_keys
        .set(i64::try_from(state.keyward.active_key_count()).unwrap_or(i64::MAX));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
