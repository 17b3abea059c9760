//! Seed 000 (`seeds/000_*.txt`, "Users - API Key Management"): `/1/users/{user_id}/apiKeys`.
//!
//! Quirks kept from the document: create answers 200 (not 201) and is the only response
//! with `api_key`; `created_at`/`last_auth` are unix seconds; delete is 204 with no body.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::domain::{Caller, KeyName, KeyRecord, NewKeyRequest, Timestamp, UserRecord};
use crate::web::AppState;
use crate::web::body::Json;
use crate::web::caller::{KeyWriter, Owner, key_id};
use crate::web::problem::ApiError;

pub fn scope() -> actix_web::Scope {
    web::scope("/1/users/{user_id}/apiKeys")
        .route("", web::post().to(create))
        .route("", web::get().to(list))
        .route("/{key_id}", web::get().to(get))
        .route("/{key_id}", web::delete().to(delete))
}

/// The document's key object.
#[derive(Serialize)]
struct ApiKey<'a> {
    user_id: String,
    description: Option<String>,
    created_at: i64,
    key_id: String,
    api_key: Option<&'a str>,
    last_auth: Option<i64>,
    email: Option<String>,
}

impl<'a> ApiKey<'a> {
    fn new(key: &KeyRecord, owner: &UserRecord, api_key: Option<&'a str>) -> Self {
        ApiKey {
            user_id: key.user_id.to_string(),
            description: key.name.clone(),
            created_at: key.created_at.secs(),
            key_id: key.id.to_string(),
            api_key,
            last_auth: key.last_used_at.map(Timestamp::secs),
            email: owner.email.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    description: Option<String>,
}

#[derive(Serialize)]
struct List<'a> {
    data: Vec<ApiKey<'a>>,
}

/// `POST /1/users/{user_id}/apiKeys` → 200 with the key (`api_key`) this once.
async fn create(
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    Owner(owner): Owner,
    Json(body): Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = state.keyward.key_owner(&caller, owner)?;
    let request = NewKeyRequest {
        name: body.description.as_deref().map(KeyName::parse).transpose()?,
        expires: None,
        scopes: None,
        meta: None,
        ..NewKeyRequest::default()
    };
    let minted = state.keyward.mint_key(&caller, owner, request).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ApiKey::new(&minted.record, &user, Some(minted.secret.reveal()))))
}

/// `GET /1/users/{user_id}/apiKeys` → `{"data": [...]}`.
async fn list(state: web::Data<AppState>, caller: Caller, Owner(owner): Owner) -> Result<HttpResponse, ApiError> {
    let user = state.keyward.key_owner(&caller, owner)?;
    let keys = state.keyward.all_keys(&caller, owner).await?;
    Ok(HttpResponse::Ok().json(List {
        data: keys.iter().map(|k| ApiKey::new(k, &user, None)).collect(),
    }))
}

/// `GET /1/users/{user_id}/apiKeys/{key_id}` → the key object, `api_key: null`.
async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    Owner(owner): Owner,
) -> Result<HttpResponse, ApiError> {
    let user = state.keyward.key_owner(&caller, owner)?;
    let key = state.keyward.get_key(&caller, owner, key_id(&req)).await?;
    Ok(HttpResponse::Ok().json(ApiKey::new(&key, &user, None)))
}

/// `DELETE /1/users/{user_id}/apiKeys/{key_id}` → 204, no body.
async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    Owner(owner): Owner,
) -> Result<HttpResponse, ApiError> {
    state.keyward.revoke_key(&caller, owner, key_id(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}
