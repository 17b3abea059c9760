//! Protecting other services: `POST /v1/verify` (ask about a key) and
//! `GET /v1/forward-auth` (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::body::Json;
use super::problem::ApiError;
use crate::domain::{Caller, Timestamp, Via};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The key to check.
    key: String,
    /// Scopes the key must carry (a key without scopes acts as its user and has them all).
    scopes: Option<Vec<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    valid: bool,
    /// VALID, NOT_FOUND, EXPIRED, REVOKED, DISABLED or INSUFFICIENT_SCOPE
    code: &'static str,
    key_id: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
    scopes: Option<Vec<String>>,
    meta: Option<serde_json::Value>,
    expires_at: Option<String>,
}

/// `POST /v1/verify` (an admin, or a key with the explicit scope `keys:verify`).
#[utoipa::path(post, path = "/v1/verify", tag = "services", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse), (status = 401, body = crate::http::problem::Problem), (status = 403, body = crate::http::problem::Problem)))]
pub async fn verify(
    state: web::Data<AppState>,
    caller: Caller,
    Json(body): Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let scopes = body.scopes.unwrap_or_default();
    let v = state
        .keyward
        .verify_key(&caller, &body.key, &scopes, Timestamp::now())
        .await?;
    let key = v.key.as_ref();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(VerifyResponse {
            valid: v.code == crate::domain::VerifyCode::Valid,
            code: v.code.as_str(),
            key_id: key.map(|k| k.id.to_string()),
            user_id: key.map(|k| k.user_id.to_string()),
            username: v.username,
            scopes: key.and_then(|k| k.scopes.clone()),
            meta: key.map(|k| k.meta.clone()),
            expires_at: key.and_then(|k| k.expires_at.map(Timestamp::rfc3339)),
        }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForwardAuthQuery {
    /// Scopes the credential must carry, space-separated.
    scope: Option<String>,
}

/// `GET /v1/forward-auth?scope=…`: checks the original request's credential (any of the
/// four forms). 200 with `X-Auth-User`, `X-Auth-User-Id`, `X-Auth-Key-Id`, `X-Auth-Scopes`;
/// 401 with `WWW-Authenticate`; 403 with `error="insufficient_scope"`.
#[utoipa::path(get, path = "/v1/forward-auth", tag = "services", params(ForwardAuthQuery),
    responses((status = 200), (status = 401, body = crate::http::problem::Problem), (status = 403, body = crate::http::problem::Problem)))]
pub async fn forward_auth(caller: Caller, query: web::Query<ForwardAuthQuery>) -> Result<HttpResponse, ApiError> {
    for scope in query.scope.as_deref().unwrap_or("").split_whitespace() {
        caller.require_scope(scope)?;
    }
    let mut response = HttpResponse::Ok();
    response
        .insert_header(("X-Auth-User", caller.user.username.as_str()))
        .insert_header(("X-Auth-User-Id", caller.user.id.to_string()))
        .insert_header(("Cache-Control", "no-store"));
    if let Via::ApiKey { key_id, scopes, .. } = &caller.via {
        response.insert_header(("X-Auth-Key-Id", key_id.to_string()));
        if let Some(scopes) = scopes {
            response.insert_header(("X-Auth-Scopes", scopes.join(" ")));
        }
    }
    Ok(response.finish())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevocationsQuery {
    /// Unix seconds or an RFC 3339 time; revocations at or after it. Default: all.
    since: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Revocation {
    id: String,
    revoked_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RevocationList {
    revocations: Vec<Revocation>,
    /// Ask again with `since` = this.
    as_of: String,
}

/// `GET /v1/revocations?since=`: revoked key ids and times, for services that verify keys
/// offline (an admin, or a key with the explicit scope `keys:verify`).
#[utoipa::path(get, path = "/v1/revocations", tag = "services", params(RevocationsQuery),
    responses((status = 200, body = RevocationList), (status = 400, body = crate::http::problem::Problem), (status = 403, body = crate::http::problem::Problem)))]
pub async fn revocations(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<RevocationsQuery>,
) -> Result<HttpResponse, ApiError> {
    let now = Timestamp::now();
    let since = match query.since.as_deref() {
        None => Timestamp::from_millis(0),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .map(Timestamp::from_secs)
            .or_else(|| Timestamp::parse_rfc3339(text))
            .ok_or_else(|| crate::domain::Error::invalid("since", "expected unix seconds or an RFC 3339 time"))?,
    };
    let list = state.keyward.revocations(&caller, since).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(RevocationList {
            revocations: list
                .into_iter()
                .map(|(id, at)| Revocation {
                    id: id.to_string(),
                    revoked_at: at.iso_millis(),
                })
                .collect(),
            as_of: now.iso_millis(),
        }))
}
