//! Protecting other services: `POST /v1/verify` (ask about a key) and
//! `GET /v1/forward-auth` (nginx `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::limits::{CreditsLeftJson, RateLimitStatusJson, statuses_json};
use crate::domain::{Caller, Error, Timestamp, Via};
use crate::web::AppState;
use crate::web::body::{Json, Query};
use crate::web::problem::ApiError;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The key to check.
    key: String,
    /// Scopes the key must carry (a key without scopes acts as its user and has them all).
    scopes: Option<Vec<String>>,
    /// Credits this use costs (default 1; 0 only checks that one is left). Rate limits
    /// count every verify as one request.
    cost: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    valid: bool,
    /// VALID, NOT_FOUND, EXPIRED, REVOKED, DISABLED, INSUFFICIENT_SCOPE, RATE_LIMITED or
    /// USAGE_EXCEEDED
    code: &'static str,
    key_id: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
    scopes: Option<Vec<String>>,
    meta: Option<serde_json::Value>,
    expires_at: Option<String>,
    /// For a key with rate limits: where each stands after this check.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratelimits: Option<Vec<RateLimitStatusJson>>,
    /// For a key with credits: what is left after this check.
    #[serde(skip_serializing_if = "Option::is_none")]
    credits: Option<CreditsLeftJson>,
}

/// `POST /v1/verify` (an admin, or a key with the explicit scope `keys:verify`).
#[utoipa::path(post, path = "/v1/verify", tag = "services", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse), (status = 401, body = crate::web::problem::Problem), (status = 403, body = crate::web::problem::Problem)))]
pub async fn verify(
    state: web::Data<AppState>,
    caller: Caller,
    Json(body): Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let scopes = body.scopes.unwrap_or_default();
    let v = state
        .keyward
        .verify_key(&caller, &body.key, &scopes, body.cost.unwrap_or(1))
        .await?;
    let key = v.key.as_ref();
    let now = state.keyward.now();
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
            ratelimits: v
                .limits
                .as_ref()
                .filter(|l| l.charges.has_rate_limits())
                .map(|l| statuses_json(l.rates(), now)),
            credits: v
                .limits
                .as_ref()
                .and_then(|l| l.credits)
                .map(|remaining| CreditsLeftJson { remaining }),
        }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForwardAuthQuery {
    /// Scopes the credential must carry, space-separated.
    scope: Option<String>,
    /// `403`: answer a key refused by its rate limits or credits with 403 instead of 429
    /// (nginx's `auth_request` passes on only 401 and 403), with the same headers.
    limited: Option<u16>,
}

/// `GET /v1/forward-auth?scope=…`: checks the original request's credential (any of the
/// four forms). 200 with `X-Auth-User`, `X-Auth-User-Id`, `X-Auth-Key-Id`, `X-Auth-Scopes`;
/// 401 with `WWW-Authenticate`; 403 with `error="insufficient_scope"`.
#[utoipa::path(get, path = "/v1/forward-auth", tag = "services", params(ForwardAuthQuery),
    responses((status = 200), (status = 401, body = crate::web::problem::Problem), (status = 403, body = crate::web::problem::Problem)))]
pub async fn forward_auth(
    caller: Result<Caller, ApiError>,
    query: Query<ForwardAuthQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = match caller {
        Ok(caller) => caller,
        Err(refused @ ApiError::Domain(Error::RateLimited { .. } | Error::UsageExceeded { .. }))
            if query.limited == Some(403) =>
        {
            return Ok(refused.response_with(actix_web::http::StatusCode::FORBIDDEN));
        }
        Err(other) => return Err(other),
    };
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
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevocationsQuery {
    /// The `next` of the previous answer; omitted: from the beginning of the feed.
    after: Option<String>,
    /// Entries per answer, 1 to 1000 (default 1000).
    limit: Option<u32>,
    /// The older form: unix seconds or an RFC 3339 time; revoked keys at or after it.
    since: Option<String>,
}

/// One entry of the feed: a key's state after a change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedEntryJson {
    id: String,
    /// `revoked`, `disabled`, `enabled` or `shortened`
    state: &'static str,
    at: String,
    /// The new end of a `shortened` key; null otherwise.
    not_after: Option<String>,
}

/// `GET /v1/revocations?after=`: the feed in commit order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RevocationFeedJson {
    revocations: Vec<FeedEntryJson>,
    /// Ask again with `after` = this.
    next: String,
    /// More entries are waiting: ask again at once.
    more: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Revocation {
    id: String,
    revoked_at: String,
}

/// `GET /v1/revocations?since=`: the older form, revoked keys only.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RevocationList {
    revocations: Vec<Revocation>,
    /// Ask again with `since` = this.
    as_of: String,
}

/// The answer of `GET /v1/revocations`: the feed, or with `since` the older list.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RevocationsAnswer {
    Feed(RevocationFeedJson),
    Since(RevocationList),
}

/// Most revocations one answer of the older form holds.
const SINCE_LIMIT: u32 = 10_000;

/// `GET /v1/revocations?after=&limit=`: for services that verify keys offline, every change
/// that ends or limits a key, in commit order (an admin, or a key granted `keys:verify`).
/// `?since=` keeps the older answer for older clients.
#[utoipa::path(get, path = "/v1/revocations", tag = "services", params(RevocationsQuery),
    responses((status = 200, body = RevocationsAnswer, description = "the feed; with `since`, the older list"),
        (status = 400, body = crate::web::problem::Problem, content_type = "application/problem+json"),
        (status = 401, body = crate::web::problem::Problem, content_type = "application/problem+json"),
        (status = 403, body = crate::web::problem::Problem, content_type = "application/problem+json")))]
pub async fn revocations(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<RevocationsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let body = match query.since {
        None => {
            let feed = state
                .keyward
                .revocation_feed(&caller, query.after.as_deref(), query.limit)
                .await?;
            RevocationsAnswer::Feed(RevocationFeedJson {
                revocations: feed
                    .entries
                    .iter()
                    .map(|e| FeedEntryJson {
                        id: e.id.to_string(),
                        state: e.state.as_str(),
                        at: e.at.rfc3339(),
                        not_after: e.not_after.map(Timestamp::rfc3339),
                    })
                    .collect(),
                next: feed.next,
                more: feed.more,
            })
        }
        Some(since) => {
            if query.after.is_some() || query.limit.is_some() {
                return Err(
                    crate::domain::Error::invalid("since", "goes alone; use after and limit without it").into(),
                );
            }
            let now = state.keyward.now();
            let since = since
                .parse::<i64>()
                .ok()
                .map(Timestamp::from_secs)
                .or_else(|| Timestamp::parse_rfc3339(&since))
                .ok_or_else(|| crate::domain::Error::invalid("since", "expected unix seconds or an RFC 3339 time"))?;
            let list = state.keyward.revocations(&caller, since, SINCE_LIMIT).await?;
            // A full answer may have left some out: the next one starts at the last time
            // it holds (repeating a few), never at "now".
            let as_of = match list.last() {
                Some((_, at)) if list.len() >= SINCE_LIMIT as usize => *at,
                _ => now,
            };
            RevocationsAnswer::Since(RevocationList {
                revocations: list
                    .into_iter()
                    .map(|(id, at)| Revocation {
                        id: id.to_string(),
                        revoked_at: at.iso_millis(),
                    })
                    .collect(),
                as_of: as_of.iso_millis(),
            })
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
