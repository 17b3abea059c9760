//! Logging in, who am I, and changing one's own password.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::body::Json;
use super::caller::client_ip;
use super::problem::ApiError;
use super::{AppState, users::UserJson};
use crate::domain::{Caller, Password, Secret, Timestamp};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    username: String,
    password: Secret,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
}

/// `POST /v1/auth/token` (public): username or email and password for an access token.
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

#[derive(Serialize)]
struct MeResponse {
    user: MeUser,
    auth: MeAuth,
}

#[derive(Serialize)]
struct MeUser {
    id: String,
    username: String,
    email: Option<String>,
    role: &'static str,
    created_at: String,
}

#[derive(Serialize)]
struct MeAuth {
    method: &'static str,
    key_id: Option<String>,
}

/// `GET /v1/me` (any credential): the caller and how they authenticated.
pub async fn me(caller: Caller) -> HttpResponse {
    let u = UserJson::from(&*caller.user);
    HttpResponse::Ok().json(MeResponse {
        user: MeUser {
            id: u.id,
            username: u.username,
            email: u.email,
            role: u.role,
            created_at: u.created_at,
        },
        auth: MeAuth {
            method: caller.via.method(),
            key_id: caller.via.key_id().map(|k| k.to_string()),
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: Secret,
    new_password: Secret,
}

/// `POST /v1/me/password` (access token or password, never a key): 204; ends the caller's
/// access tokens.
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
