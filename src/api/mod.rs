//! The native HTTP API under `/v1`: routes, wire types, and the glue to the domain.
//! Handlers are thin: extract, validate into domain types, make one domain call, map the
//! result to a wire type.

mod auth;
mod health;
mod keys;
pub mod openapi;
mod services;
mod users;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::config::IpNet;
use crate::domain::Keyward;
use crate::web::problem::{self, ApiError, problem_response};
use crate::web::{access_log, body};
pub use keys::KeyJson;

/// What every handler shares.
pub struct AppState {
    pub keyward: Keyward,
    pub request_ids: access_log::RequestIds,
    pub trusted_proxies: Vec<IpNet>,
    pub body_limit: usize,
    /// Longest time to receive a request's body.
    pub request_timeout: std::time::Duration,
}

/// `?limit=&cursor=` of the list routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Registers the native routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // `/v1/me` first, outside the `/v1` scope: it is the route every client calls to check
    // its key (and the benchmark's), so it is matched before any other.
    cfg.route("/v1/me", web::get().to(auth::me))
        .route("/healthz", web::get().to(health::healthz))
        .route("/openapi.json", web::get().to(openapi::document))
        .route("/.well-known/jwks.json", web::get().to(jwks))
        .route("/readyz", web::get().to(health::readyz))
        .service(
            web::scope("/v1")
                .route("/auth/token", web::post().to(auth::token))
                .route("/me/password", web::post().to(auth::change_password))
                .service(keys::scope("/keys"))
                .service(keys::scope("/users/{user_id}/keys"))
                .route("/users", web::post().to(users::create))
                .route("/users", web::get().to(users::list))
                .route("/users/{id}", web::get().to(users::get))
                .route("/users/{id}", web::patch().to(users::update))
                .route("/users/{id}", web::delete().to(users::delete))
                .route("/audit", web::get().to(users::audit))
                .route("/verify", web::post().to(services::verify))
                .route("/forward-auth", web::get().to(services::forward_auth))
                .route("/revocations", web::get().to(services::revocations)),
        );
}

/// Problem responses for what actix refuses before a handler runs.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::BadRequest(format!("invalid query: {}", body::describe(&e.to_string()))).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::Domain(crate::domain::Error::NotFound).into()));
}

/// The `{key_id}` segment of a key route (native and dialects alike); the domain reads a
/// malformed one as not found.
pub fn key_id(req: &actix_web::HttpRequest) -> &str {
    req.match_info().get("key_id").unwrap_or_default()
}

/// `GET /metrics` on the main listener: Prometheus text, for an admin or a key granted
/// `metrics:read` (Prometheus sends it as a bearer token).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, body = String, content_type = "text/plain"),
    (status = 401, body = problem::Problem, content_type = "application/problem+json"),
    (status = 403, body = problem::Problem, content_type = "application/problem+json")))]
pub async fn metrics(state: web::Data<AppState>, caller: crate::domain::Caller) -> Result<HttpResponse, ApiError> {
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

/// `GET /.well-known/jwks.json` (public): the Ed25519 keys that verify API keys offline,
/// with `keys.algorithm = "EdDSA"`; `{"keys": []}` with HS256.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "services", security(()), responses((status = 200, body = Object)))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.keyward.jwks())
}

/// Unknown routes: 404 as problem+json.
pub async fn not_found() -> HttpResponse {
    problem_response(StatusCode::NOT_FOUND, "no such route".into())
}
