//! The native HTTP API under `/v1` (with health, JWKS and `/openapi.json`): routes, wire
//! types, and the glue to the domain. Handlers are thin: extract, validate into domain
//! types, make one domain call, map the result to a wire type. The plumbing they stand on
//! (state, extractors, bodies, problem+json) is `crate::web`'s, shared with the dialects and
//! the console; nothing outside `startup` names this module, but for the wire shapes the
//! CLI reads too (`import`: `keyward key import`; `limits`: a fixture key's limits).

mod audit;
mod auth;
mod health;
pub mod import;
mod keys;
pub mod limits;
pub mod openapi;
mod services;
mod users;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::web::AppState;

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
                .route("/keys/import", web::post().to(import::import_keys))
                .service(keys::scope("/keys"))
                .service(keys::scope("/users/{user_id}/keys"))
                .route("/users", web::post().to(users::create))
                .route("/users", web::get().to(users::list))
                .route("/users/{id}", web::get().to(users::get))
                .route("/users/{id}", web::patch().to(users::update))
                .route("/users/{id}", web::delete().to(users::delete))
                .route("/audit", web::get().to(audit::audit))
                .route("/verify", web::post().to(services::verify))
                .route("/forward-auth", web::get().to(services::forward_auth))
                .route("/revocations", web::get().to(services::revocations)),
        );
}

/// `GET /.well-known/jwks.json` (public): the Ed25519 keys that verify API keys offline,
/// with `keys.algorithm = "EdDSA"`; `{"keys": []}` with HS256.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "services", security(()), responses((status = 200, body = Jwks)))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    use base64::Engine;
    let keys = state
        .keyward
        .jwks()
        .into_iter()
        .map(|key| Jwk {
            kty: "OKP",
            crv: "Ed25519",
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.ed25519),
            kid: key.kid,
            alg: "EdDSA",
            use_: "sig",
        })
        .collect();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(Jwks { keys })
}

/// A JSON Web Key Set (RFC 7517).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// An Ed25519 public key as a JWK (RFC 8037).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Jwk {
    /// Always "OKP".
    pub kty: &'static str,
    /// Always "Ed25519".
    pub crv: &'static str,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    /// Always "EdDSA".
    pub alg: &'static str,
    /// Always "sig".
    #[serde(rename = "use")]
    pub use_: &'static str,
}
