//! Request bodies: JSON (and form-urlencoded where a route takes it), with SPEC.md's rules.
//! An empty body counts as `{}`; Content-Type matters only for a non-empty body; unknown
//! fields are refused by the wire types (`deny_unknown_fields`); over the limit is 413.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// A JSON body.
pub struct Json<T>(pub T);

/// A JSON or form-urlencoded body (seed 001 takes both).
pub struct JsonOrForm<T>(pub T);

fn read<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    allow_form: bool,
) -> Pin<Box<dyn Future<Output = Result<T, ApiError>>>> {
    let req = req.clone();
    let limit = req
        .app_data::<web::Data<super::AppState>>()
        .map_or(65_536, |s| s.body_limit);
    let bytes = web::Bytes::from_request(&req, payload);
    Box::pin(async move {
        let bytes = bytes.await.map_err(|e| {
            if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;
        parse(&req, &bytes, allow_form)
    })
}

fn parse<T: DeserializeOwned>(req: &HttpRequest, bytes: &[u8], allow_form: bool) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_str("{}").map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")));
    }
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match mime.as_deref() {
        // No type, or any JSON type: read as JSON.
        None | Some("") | Some("application/json") => parse_json(bytes),
        Some(m) if m.ends_with("+json") => parse_json(bytes),
        Some("application/x-www-form-urlencoded") if allow_form => {
            serde_urlencoded::from_bytes(bytes).map_err(|e| ApiError::BadRequest(format!("invalid form body: {e}")))
        }
        Some(_) => Err(ApiError::UnsupportedMediaType(allow_form)),
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read::<T>(req, payload, false);
        Box::pin(async move { body.await.map(Json) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonOrForm<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read::<T>(req, payload, true);
        Box::pin(async move { body.await.map(JsonOrForm) })
    }
}

/// For `Option<Option<T>>` fields: absent = `None`, `null` = `Some(None)`.
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(de).map(Some)
}
