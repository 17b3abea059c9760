//! HTTP plumbing that the native API (`api/`), the dialects and the console (`ui/`) share:
//! the app state, who is asking ([`caller`]), the client's address ([`client`]),
//! request bodies, problem+json (with the one `Retry-After`), the request log, the body
//! deadline and `/metrics`. It serves no route of the API and never names `api`, `dialects`
//! or `ui`: they depend on it, not it on them.

pub mod access_log;
pub mod body;
pub mod caller;
pub mod client;
pub mod deadline;
pub mod metrics;
pub mod problem;
pub mod ratelimit;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::config::IpNet;
use crate::domain::Keyward;
use problem::{ApiError, problem_response};

/// What every handler shares.
pub struct AppState {
    pub keyward: Keyward,
    pub request_ids: access_log::RequestIds,
    pub trusted_proxies: Vec<IpNet>,
    pub body_limit: usize,
    /// Longest time to receive a request's body.
    pub request_timeout: std::time::Duration,
}

/// Problem responses for what actix refuses before a handler runs.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    // Queries are read by `body::Query`, which names a bad field itself.
    cfg.app_data(
        web::PathConfig::default().error_handler(|_, _| ApiError::Domain(crate::domain::Error::NotFound).into()),
    );
}

/// Unknown routes: 404 as problem+json.
pub async fn not_found() -> HttpResponse {
    problem_response(StatusCode::NOT_FOUND, "no such route".into())
}
