//! `POST /v1/keys/import` (admins): keys keyward did not mint, given as a SHA-256 hash or
//! in plaintext, stored all or none. The wire types are shared with `keyward key import`,
//! which reads the same objects, one a line.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::domain::{
    Error, HashEncoding, ImportKeyRequest, KeyId, KeyName, KeyOwner, LiteralKey, Meta, Scopes, Sha256Hash, Timestamp,
    UserId,
};
use crate::web::AppState;
use crate::web::body::Json;
use crate::web::caller::Admin;
use crate::web::problem::ApiError;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeysRequest {
    /// 1 to 1000 keys, stored all or none.
    keys: Vec<ImportKeyJson>,
}

/// One key to import: its owner (`user_id` or `username`), `name`, and either `hash` or
/// the plaintext `key`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeyJson {
    user_id: Option<String>,
    /// The owner's username (or email), instead of `user_id`.
    username: Option<String>,
    name: String,
    /// The key's SHA-256 as the system it comes from stores it.
    hash: Option<ImportedHashJson>,
    /// The key itself (16 to 512 printable ASCII characters); only its SHA-256 is kept.
    key: Option<String>,
    /// 24 lowercase hex characters; omitted: a new one. 409 if taken.
    id: Option<String>,
    /// RFC 3339; omitted or `null`: never expires.
    expires_at: Option<String>,
    scopes: Option<Vec<String>>,
    meta: Option<serde_json::Value>,
    disabled: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportedHashJson {
    /// Only `sha256`.
    algorithm: String,
    /// `hex`, `base64` or `base64url` (padding optional).
    encoding: String,
    value: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportedKeysJson {
    /// The keys' ids, in the order given.
    ids: Vec<String>,
}

impl ImportKeyJson {
    /// The domain's request: every value checked, the plaintext (if given) hashed.
    pub fn parse(self) -> Result<ImportKeyRequest, Error> {
        let owner = match (self.user_id, self.username) {
            (Some(id), None) => {
                KeyOwner::Id(UserId::parse(&id).ok_or_else(|| Error::invalid("user_id", "no such user"))?)
            }
            (None, Some(login)) => KeyOwner::Login(login),
            _ => {
                return Err(Error::invalid(
                    "user_id",
                    "give the owner as one of user_id or username",
                ));
            }
        };
        let sha256 = match (self.hash, self.key) {
            (Some(hash), None) => {
                if hash.algorithm != "sha256" {
                    return Err(Error::invalid("hash", "algorithm must be sha256"));
                }
                let encoding = HashEncoding::parse(&hash.encoding)
                    .ok_or_else(|| Error::invalid("hash", "encoding must be hex, base64 or base64url"))?;
                Sha256Hash::parse(encoding, &hash.value)?
            }
            (None, Some(key)) => LiteralKey::parse(&key)?.sha256(),
            _ => return Err(Error::invalid("hash", "give one of hash or key")),
        };
        Ok(ImportKeyRequest {
            owner,
            name: KeyName::parse(&self.name)?,
            sha256,
            id: self
                .id
                .map(|id| KeyId::parse(&id).ok_or_else(|| Error::invalid("id", "must be 24 lowercase hex characters")))
                .transpose()?,
            expires_at: self
                .expires_at
                .map(|t| {
                    Timestamp::parse_rfc3339(&t).ok_or_else(|| Error::invalid("expires_at", "must be an RFC 3339 time"))
                })
                .transpose()?,
            scopes: self.scopes.map(Scopes::parse).transpose()?,
            meta: self.meta.map(Meta::parse).transpose()?,
            disabled: self.disabled.unwrap_or(false),
        })
    }
}

/// Parses every entry, naming the first bad one.
pub fn parse_import(keys: Vec<ImportKeyJson>) -> Result<Vec<ImportKeyRequest>, Error> {
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| k.parse().map_err(|e| e.at_entry("keys", i)))
        .collect()
}

/// Admins: imports keys keyward did not mint; they then work like minted ones.
#[utoipa::path(post, path = "/v1/keys/import", tag = "keys", request_body = ImportKeysRequest,
    responses((status = 201, body = ImportedKeysJson), (status = 409, body = crate::web::problem::Problem)))]
pub async fn import_keys(
    state: web::Data<AppState>,
    Admin(caller): Admin,
    Json(body): Json<ImportKeysRequest>,
) -> Result<HttpResponse, ApiError> {
    let ids = state.keyward.import_keys(&caller, parse_import(body.keys)?).await?;
    Ok(HttpResponse::Created().json(ImportedKeysJson {
        ids: ids.iter().map(KeyId::to_string).collect(),
    }))
}
