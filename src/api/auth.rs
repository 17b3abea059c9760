//! Logging in, who am I, and changing one's own password.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::domain::{Caller, Password, Secret, Timestamp};
use crate::web::body::Json;
use crate::web::caller::client_ip;
use crate::web::problem::ApiError;
use crate::web::problem::Problem;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    username: String,
    #[schema(value_type = String)]
    password: Secret,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
}

/// `POST /v1/auth/token` (public): username or email and password for an access token.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenRequest, security(()),
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body): Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let source = client_ip(&req, &state);
    let (token, expires_in) = state
        .keyward
        .login(&body.username, &body.password, source, Timestamp::now())
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            access_token: token.reveal(),
            token_type: "Bearer",
            expires_in,
        }))
}

/// `GET /v1/me` (any credential): the caller and how they authenticated:
/// `{"user": {id, username, email, role, created_at}, "auth": {"method", "key_id"}}`.
///
/// Written by hand rather than through serde: this is the route every client calls to check
/// its key, and the benchmark's measure of the hot path.
#[utoipa::path(get, path = "/v1/me", tag = "auth", responses((status = 200, body = super::openapi::MeJson), (status = 401, body = Problem)))]
pub async fn me(caller: Caller) -> HttpResponse {
    let u = &caller.user;
    let mut body = String::with_capacity(256);
    body.push_str(r#"{"user":{"id":""#);
    u.id.write_to(&mut body);
    body.push_str(r#"","username":"#);
    push_json_string(&mut body, &u.username);
    body.push_str(r#","email":"#);
    match &u.email {
        Some(email) => push_json_string(&mut body, email),
        None => body.push_str("null"),
    }
    body.push_str(r#","role":""#);
    body.push_str(u.role.as_str());
    body.push_str(r#"","created_at":""#);
    u.created_at.write_rfc3339(&mut body);
    body.push_str(r#""},"auth":{"method":""#);
    body.push_str(caller.via.method());
    body.push_str(r#"","key_id":"#);
    match caller.via.key_id() {
        Some(id) => {
            body.push('"');
            id.write_to(&mut body);
            body.push('"');
        }
        None => body.push_str("null"),
    }
    body.push_str("}}");
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::HeaderValue::from_static("application/json"),
        ))
        .body(body)
}

/// Appends `text` as a JSON string, quoted and escaped. Names and emails rarely need
/// escaping: those that do not are copied as they are.
fn push_json_string(out: &mut String, text: &str) {
    let plain = text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push('"');
        out.push_str(text);
        out.push('"');
        return;
    }
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("null"),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String)]
    current_password: Secret,
    #[schema(value_type = String)]
    new_password: Secret,
}

/// `POST /v1/me/password` (access token or password, never a key): 204; ends the caller's
/// access tokens.
#[utoipa::path(post, path = "/v1/me/password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    Json(body): Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = Password::parse(body.new_password).map_err(|e| match e {
        crate::domain::Error::Invalid { reason, .. } => crate::domain::Error::Invalid {
            field: "new_password",
            reason,
        },
        other => other,
    })?;
    state
        .keyward
        .change_own_password(&caller, &body.current_password, new, Timestamp::now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
