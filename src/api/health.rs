//! Liveness and readiness: public, no credential.

use actix_web::{HttpResponse, web};

use crate::web::AppState;

/// 200 while the process serves.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = String)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// 200 only while the database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses((status = 200, body = String), (status = 503, body = String)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.keyward.ready().await {
        HttpResponse::Ok().content_type("text/plain").body("ready")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("database not answering")
    }
}
