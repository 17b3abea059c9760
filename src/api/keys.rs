//! `/v1/keys` and `/v1/users/{user_id}/keys`: the same handlers; [`Owner`] says whose keys.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::PageQuery;
use super::limits::{
    CreditsJson, CreditsRequest, RateLimitJson, credits_json, parse_credits_change, parse_new_credits,
    parse_ratelimits, ratelimits_json,
};
use crate::domain::{
    Caller, Error, Expiry, Granularity, KeyName, KeyPatch, KeyRecord, KeyUsage, Meta, MintedKey, NewKeyRequest,
    Outcome, Scopes, Timestamp, parse_grace,
};
use crate::web::AppState;
use crate::web::body::{Json, Query};
use crate::web::caller::{KeyWriter, Owner, key_id};
use crate::web::problem::ApiError;

pub fn scope(path: &str) -> actix_web::Scope {
    web::scope(path)
        .route("", web::post().to(create))
        .route("", web::get().to(list))
        .route("/{key_id}", web::get().to(get))
        .route("/{key_id}", web::patch().to(update))
        .route("/{key_id}", web::delete().to(revoke))
        .route("/{key_id}/rotate", web::post().to(rotate))
        .route("/{key_id}/usage", web::get().to(usage))
}

/// The key object of the native API. Never holds the key itself.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyJson {
    pub id: String,
    pub name: Option<String>,
    pub user_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    /// `null`: the key acts as its user.
    pub scopes: Option<Vec<String>>,
    pub meta: serde_json::Value,
    pub disabled: bool,
    /// Named rate limits (empty: none).
    pub ratelimits: Vec<RateLimitJson>,
    /// `null`: unlimited. `remaining` as of now.
    pub credits: Option<CreditsJson>,
}

impl From<&KeyRecord> for KeyJson {
    fn from(k: &KeyRecord) -> Self {
        KeyJson {
            id: k.id.to_string(),
            name: k.name.clone(),
            user_id: k.user_id.to_string(),
            created_at: k.created_at.rfc3339(),
            updated_at: k.updated_at.rfc3339(),
            expires_at: k.expires_at.map(Timestamp::rfc3339),
            last_used_at: k.last_used_at.map(Timestamp::rfc3339),
            scopes: k.scopes.clone(),
            meta: k.meta.clone(),
            disabled: k.disabled,
            ratelimits: ratelimits_json(&k.ratelimits),
            credits: credits_json(k.credits.as_ref()),
        }
    }
}

/// The create response: the key object plus the key itself, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKeyJson<'a> {
    #[serde(flatten)]
    key: KeyJson,
    #[serde(rename = "key")]
    secret: &'a str,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    name: Option<String>,
    expires: Option<serde_json::Value>,
    /// Omitted: the key acts as its user. Otherwise only these scopes.
    scopes: Option<Vec<String>>,
    /// A JSON object of at most 4 KiB, returned with the key.
    meta: Option<serde_json::Value>,
    /// Up to 10 named rate limits; a request made with a key cannot make a key with looser
    /// limits than its own.
    ratelimits: Option<Vec<RateLimitJson>>,
    /// `{remaining, refill?}`; omitted or `null`: unlimited.
    credits: Option<CreditsRequest>,
}

/// Reads `expires` as the native API takes it: a number of seconds or a string of the
/// `expires` grammar.
pub fn parse_expires(value: Option<&serde_json::Value>) -> Result<Option<Expiry>, Error> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(secs) => Expiry::from_seconds(secs)
                .map(Some)
                .map_err(|e| Error::invalid("expires", e)),
            None => Err(Error::invalid(
                "expires",
                "a number of seconds must be a whole number of at least 1",
            )),
        },
        Some(serde_json::Value::String(s)) => Expiry::parse(s).map(Some).map_err(|e| Error::invalid("expires", e)),
        Some(_) => Err(Error::invalid("expires", crate::domain::EXPIRES_ACCEPTS)),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    data: Vec<KeyJson>,
    total: u64,
    next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = CreatedKeyJson), (status = 400, body = crate::web::problem::Problem), (status = 401, body = crate::web::problem::Problem),
        (status = 403, body = crate::web::problem::Problem), (status = 409, description = "Made with a key whose credits cannot cover the new key's, or whose scopes or limits changed while the request was checked", body = crate::web::problem::Problem)))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    Owner(owner): Owner,
    Json(body): Json<CreateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = NewKeyRequest {
        name: body.name.as_deref().map(KeyName::parse).transpose()?,
        expires: parse_expires(body.expires.as_ref())?,
        scopes: body.scopes.map(Scopes::parse).transpose()?,
        meta: body.meta.map(Meta::parse).transpose()?,
        ratelimits: parse_ratelimits(body.ratelimits)?,
        credits: parse_new_credits(body.credits)?,
        ..NewKeyRequest::default()
    };
    let minted = state.keyward.mint_key(&caller, owner, request).await?;
    Ok(created(req.path().trim_end_matches('/'), &minted))
}

/// 201 with `Location` under `collection` and the key, shown this once (never cached).
fn created(collection: &str, minted: &MintedKey) -> HttpResponse {
    let body = CreatedKeyJson {
        key: KeyJson::from(&minted.record),
        secret: minted.secret.reveal(),
    };
    HttpResponse::Created()
        .insert_header(("Location", format!("{collection}/{}", minted.record.id)))
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(super::PageQuery),
    responses((status = 200, body = KeyList), (status = 400, body = crate::web::problem::Problem), (status = 401, body = crate::web::problem::Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    Owner(owner): Owner,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .keyward
        .list_keys(&caller, owner, query.cursor.as_deref(), query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(KeyList {
        data: page.keys.iter().map(KeyJson::from).collect(),
        total: page.total,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

#[utoipa::path(get, path = "/v1/keys/{key_id}", tag = "keys", params(("key_id" = String, Path)),
    responses((status = 200, body = KeyJson), (status = 404, body = crate::web::problem::Problem)))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    Owner(owner): Owner,
) -> Result<HttpResponse, ApiError> {
    let key = state.keyward.get_key(&caller, owner, key_id(&req)).await?;
    Ok(HttpResponse::Ok().json(KeyJson::from(&key)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    name: Option<String>,
    /// Disable (`true`) or enable (`false`) the key without deleting it.
    disabled: Option<bool>,
    /// Replace the key's scopes; `null`: it acts as its user again. The same rules as on
    /// create: a key gives only scopes it holds, and privileged ones need an admin.
    #[serde(default, deserialize_with = "crate::web::body::double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    scopes: Option<Option<Vec<String>>>,
    /// Replace the rate limits; `[]` or `null`: none. Only an admin raises or removes one.
    #[serde(default, deserialize_with = "crate::web::body::double_option")]
    #[schema(value_type = Option<Vec<RateLimitJson>>)]
    ratelimits: Option<Option<Vec<RateLimitJson>>>,
    /// Set (`{remaining, refill?}`), clear (`null`: unlimited) or add to (`{add}`) the
    /// credits. Only an admin raises them.
    #[serde(default, deserialize_with = "crate::web::body::double_option")]
    #[schema(value_type = Option<CreditsRequest>)]
    credits: Option<Option<CreditsRequest>>,
}

/// `PATCH /v1/keys/{id}`: every field given changes, in one transaction.
#[utoipa::path(patch, path = "/v1/keys/{key_id}", tag = "keys", params(("key_id" = String, Path)), request_body = UpdateKeyRequest,
    responses((status = 200, body = KeyJson), (status = 400, body = crate::web::problem::Problem), (status = 403, body = crate::web::problem::Problem), (status = 404, body = crate::web::problem::Problem), (status = 409, body = crate::web::problem::Problem)))]
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    Owner(owner): Owner,
    Json(body): Json<UpdateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let patch = KeyPatch {
        name: body.name.as_deref().map(KeyName::parse).transpose()?.map(Some),
        disabled: body.disabled,
        scopes: body.scopes.map(|s| s.map(Scopes::parse).transpose()).transpose()?,
        ratelimits: body.ratelimits.map(parse_ratelimits).transpose()?,
        credits: parse_credits_change(body.credits)?,
    };
    let key = state.keyward.update_key(&caller, owner, key_id(&req), patch).await?;
    Ok(HttpResponse::Ok().json(KeyJson::from(&key)))
}

#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "keys", params(("key_id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::web::problem::Problem)))]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    Owner(owner): Owner,
) -> Result<HttpResponse, ApiError> {
    state.keyward.revoke_key(&caller, owner, key_id(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// How long the old key keeps working: a duration such as "1h" or "7 days", or seconds.
    /// Omitted or 0: the old key stops at once.
    #[schema(value_type = Option<String>)]
    grace: Option<serde_json::Value>,
}

/// `POST /v1/keys/{id}/rotate {grace}`: a new key with the same name, scopes and meta (201,
/// shown once); the old one keeps working until the grace period ends.
#[utoipa::path(post, path = "/v1/keys/{key_id}/rotate", tag = "keys", params(("key_id" = String, Path)), request_body = RotateKeyRequest,
    responses((status = 201, body = CreatedKeyJson), (status = 400, body = crate::web::problem::Problem), (status = 404, body = crate::web::problem::Problem), (status = 409, body = crate::web::problem::Problem)))]
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    Owner(owner): Owner,
    Json(body): Json<RotateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    // A number is seconds, as in the string form; anything else fails the grammar.
    let grace = match body.grace {
        None | Some(serde_json::Value::Null) => std::time::Duration::ZERO,
        Some(serde_json::Value::String(s)) => parse_grace(&s)?,
        Some(other) => parse_grace(&other.to_string())?,
    };
    let minted = state.keyward.rotate_key(&caller, owner, key_id(&req), grace).await?;
    // `…/keys/{id}/rotate` -> the collection `…/keys`.
    let base = req.path().trim_end_matches("/rotate");
    Ok(created(base.rsplit_once('/').map_or(base, |(b, _)| b), &minted))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// RFC 3339; default `to` minus 30 days. Widened to the start of its bucket.
    from: Option<String>,
    /// RFC 3339, exclusive; default now. Widened to the end of its bucket.
    to: Option<String>,
    /// `hour` (default) or `day` (UTC).
    granularity: Option<String>,
}

/// A key's uses and refusals in one hour or day.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageBucketJson {
    /// RFC 3339, the start of the hour or day (UTC).
    start: String,
    valid: i64,
    rate_limited: i64,
    usage_exceeded: i64,
    expired: i64,
    disabled: i64,
    revoked: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyUsageJson {
    key_id: String,
    /// `hour` or `day`.
    granularity: &'static str,
    /// Every bucket of the window, oldest first; hours without uses are zeros.
    buckets: Vec<UsageBucketJson>,
}

impl From<&KeyUsage> for KeyUsageJson {
    fn from(u: &KeyUsage) -> Self {
        KeyUsageJson {
            key_id: u.key_id.to_string(),
            granularity: u.granularity.name(),
            buckets: u
                .buckets
                .iter()
                .map(|(start, c)| UsageBucketJson {
                    start: start.rfc3339(),
                    valid: c.get(Outcome::Valid),
                    rate_limited: c.get(Outcome::RateLimited),
                    usage_exceeded: c.get(Outcome::UsageExceeded),
                    expired: c.get(Outcome::Expired),
                    disabled: c.get(Outcome::Disabled),
                    revoked: c.get(Outcome::Revoked),
                })
                .collect(),
        }
    }
}

/// An RFC 3339 time from the query; a `+` of an offset left unescaped arrives as a space.
fn instant(field: &'static str, text: Option<&str>) -> Result<Option<Timestamp>, Error> {
    text.map(|t| {
        Timestamp::parse_rfc3339(&t.replace(' ', "+")).ok_or_else(|| Error::invalid(field, "must be an RFC 3339 time"))
    })
    .transpose()
}

/// `GET /v1/keys/{id}/usage`: the key's successful uses and refusals by reason, per hour or
/// day (the owner or an admin; a revoked key's too).
#[utoipa::path(get, path = "/v1/keys/{key_id}/usage", tag = "keys", params(("key_id" = String, Path), UsageQuery),
    responses((status = 200, body = KeyUsageJson), (status = 400, body = crate::web::problem::Problem), (status = 404, body = crate::web::problem::Problem)))]
pub async fn usage(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    Owner(owner): Owner,
    query: Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let granularity = match query.granularity.as_deref() {
        None => Granularity::Hour,
        Some(text) => {
            Granularity::parse(text).ok_or_else(|| Error::invalid("granularity", "must be `hour` or `day`"))?
        }
    };
    let from = instant("from", query.from.as_deref())?;
    let to = instant("to", query.to.as_deref())?;
    let usage = state
        .keyward
        .key_usage(&caller, owner, key_id(&req), from, to, granularity)
        .await?;
    Ok(HttpResponse::Ok().json(KeyUsageJson::from(&usage)))
}
