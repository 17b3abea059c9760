//! Seed 001 (`seeds/001_*.txt`, "API Key"): `/api/apikey`.
//!
//! Quirks kept from the document: bodies may be form-urlencoded (its curl examples) or JSON;
//! times are `YYYY-MM-DDTHH:MM:SS.sssZ`; a `Never` key has `isNever: true` and an `expireAt`
//! 100 years out; `hash` is 128 hex chars; `__v` is always 0; answers are 200 with
//! `code`/`message`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::domain::{Caller, Error, Expiry, KeyName, KeyPatch, KeyRecord, NewKeyRequest};
use crate::web::AppState;
use crate::web::body::JsonOrForm;
use crate::web::caller::{KeyWriter, key_id};
use crate::web::problem::ApiError;

pub fn scope() -> actix_web::Scope {
    web::scope("/api/apikey")
        .route("", web::get().to(list))
        .route("", web::post().to(create))
        .route("/{key_id}", web::get().to(get))
        .route("/{key_id}", web::patch().to(update))
        .route("/{key_id}", web::delete().to(delete))
}

/// The document's key object.
#[derive(Serialize)]
struct ApiKey {
    label: Option<String>,
    #[serde(rename = "isNever")]
    is_never: bool,
    #[serde(rename = "_id")]
    id: String,
    user: String,
    hash: String,
    #[serde(rename = "expireAt")]
    expire_at: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(rename = "updatedAt")]
    updated_at: String,
    #[serde(rename = "__v")]
    version: u8,
}

impl From<&KeyRecord> for ApiKey {
    fn from(k: &KeyRecord) -> Self {
        ApiKey {
            label: k.name.clone(),
            is_never: k.expires_at.is_none(),
            id: k.id.to_string(),
            user: k.user_id.to_string(),
            hash: k.digest.hex(),
            expire_at: k.expires_at.unwrap_or_else(|| k.created_at.never_expiry()).iso_millis(),
            created_at: k.created_at.iso_millis(),
            updated_at: k.updated_at.iso_millis(),
            version: 0,
        }
    }
}

#[derive(Serialize)]
struct Outcome {
    code: &'static str,
    message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    label: Option<String>,
    expires: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    label: Option<String>,
}

#[derive(Serialize)]
struct List {
    #[serde(rename = "apiKeys")]
    api_keys: Vec<ApiKey>,
    total: usize,
}

#[derive(Serialize)]
struct One {
    #[serde(rename = "apiKey")]
    api_key: ApiKey,
}

fn label(text: Option<&str>) -> Result<Option<KeyName>, Error> {
    text.map(KeyName::parse)
        .transpose()
        .map_err(|e| rename_field(e.into(), "label"))
}

fn rename_field(e: Error, field: &'static str) -> Error {
    match e {
        Error::Invalid { reason, .. } => Error::Invalid { field, reason },
        other => other,
    }
}

/// `GET /api/apikey` → `{"apiKeys": [...], "total": N}`.
async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let keys = state.keyward.all_keys(&caller, None).await?;
    Ok(HttpResponse::Ok().json(List {
        total: keys.len(),
        api_keys: keys.iter().map(ApiKey::from).collect(),
    }))
}

/// `POST /api/apikey` (`label`, `expires`) → `ADDED` with the key.
async fn create(
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    JsonOrForm(body): JsonOrForm<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let expires = body
        .expires
        .as_deref()
        .map(Expiry::parse)
        .transpose()
        .map_err(|e| Error::invalid("expires", e))?;
    let request = NewKeyRequest {
        name: label(body.label.as_deref())?,
        expires,
        scopes: None,
        meta: None,
        ..NewKeyRequest::default()
    };
    let minted = state.keyward.mint_key(&caller, None, request).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Outcome {
            code: "ADDED",
            message: "Added new API Key",
            api_key: Some(minted.secret.reveal().to_owned()),
        }))
}

/// `GET /api/apikey/{id}` → `{"apiKey": {...}}`.
async fn get(req: HttpRequest, state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let key = state.keyward.get_key(&caller, None, key_id(&req)).await?;
    Ok(HttpResponse::Ok().json(One {
        api_key: ApiKey::from(&key),
    }))
}

/// `PATCH /api/apikey/{id}` (`label`) → `UPDATED`.
async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    JsonOrForm(body): JsonOrForm<UpdateRequest>,
) -> Result<HttpResponse, ApiError> {
    let patch = KeyPatch {
        name: label(body.label.as_deref())?.map(Some),
        ..KeyPatch::default()
    };
    state.keyward.update_key(&caller, None, key_id(&req), patch).await?;
    Ok(HttpResponse::Ok().json(Outcome {
        code: "UPDATED",
        message: "APIKey has been updated",
        api_key: None,
    }))
}

/// `DELETE /api/apikey/{id}` → `REMOVED`.
async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
) -> Result<HttpResponse, ApiError> {
    state.keyward.revoke_key(&caller, None, key_id(&req)).await?;
    Ok(HttpResponse::Ok().json(Outcome {
        code: "REMOVED",
        message: "APIKey has been removed",
        api_key: None,
    }))
}
