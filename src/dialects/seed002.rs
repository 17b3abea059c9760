//! Seed 002 (`seeds/002_*.txt`): `/api/v1/apikey`.
//!
//! Quirks kept from the document: create takes `{username, userDomain?, name?}` (the
//! document's `curl -u`, so Basic user:password works, as does any credential); default
//! names are `key#N`; the list is a bare JSON array; ids are ours (24 hex), not UUIDs.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::domain::{Caller, Error, KeyName, NewKeyRequest};
use crate::web::AppState;
use crate::web::body::Json;
use crate::web::caller::{KeyWriter, key_id};
use crate::web::problem::ApiError;

pub fn scope() -> actix_web::Scope {
    web::scope("/api/v1/apikey")
        .route("", web::post().to(create))
        .route("", web::get().to(list))
        .route("/{key_id}", web::delete().to(delete))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    username: Option<String>,
    /// Accepted and ignored: keyward has no user domains.
    #[serde(rename = "userDomain")]
    #[allow(dead_code)]
    user_domain: Option<String>,
    name: Option<String>,
}

#[derive(Serialize)]
struct Created<'a> {
    ok: bool,
    id: String,
    key: &'a str,
}

#[derive(Serialize)]
struct Listed {
    id: String,
    #[serde(rename = "userId")]
    user_id: String,
    name: Option<String>,
}

#[derive(Serialize)]
struct Deleted {
    result: &'static str,
    ok: bool,
}

/// `POST /api/v1/apikey` → `{"ok": true, "id", "key"}`.
async fn create(
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
    Json(body): Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let username = body
        .username
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::invalid("username", "is required"))?;
    let owner = state.keyward.user_id_by_login(&caller, &username)?;
    // Without a name: `key#N`, N counted when the key is stored (race-free).
    let request = NewKeyRequest {
        name: body.name.as_deref().map(KeyName::parse).transpose()?,
        numbered: true,
        ..NewKeyRequest::default()
    };
    let minted = state.keyward.mint_key(&caller, Some(owner), request).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Created {
            ok: true,
            id: minted.record.id.to_string(),
            key: minted.secret.reveal(),
        }))
}

/// `GET /api/v1/apikey` → `[{"id", "userId", "name"}]`, the caller's keys.
async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let keys = state.keyward.all_keys(&caller, None).await?;
    let listed: Vec<Listed> = keys
        .iter()
        .map(|k| Listed {
            id: k.id.to_string(),
            user_id: k.user_id.to_string(),
            name: k.name.clone(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(listed))
}

/// `DELETE /api/v1/apikey/{id}` → `{"result": "DELETED", "ok": true}`.
async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    KeyWriter(caller): KeyWriter,
) -> Result<HttpResponse, ApiError> {
    state.keyward.revoke_key(&caller, None, key_id(&req)).await?;
    Ok(HttpResponse::Ok().json(Deleted {
        result: "DELETED",
        ok: true,
    }))
}
