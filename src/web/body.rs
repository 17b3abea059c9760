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
        Some("application/x-www-form-urlencoded") if allow_form => serde_urlencoded::from_bytes(bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid form body: {}", describe(&e.to_string())))),
        Some(_) => Err(ApiError::UnsupportedMediaType(allow_form)),
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let at = format!(" at line {} column {}", e.line(), e.column());
        ApiError::BadRequest(format!("invalid JSON body: {}{at}", describe(&e.to_string())))
    })
}

/// A parser's complaint, fit to show: field names are kept, submitted values never (they
/// may be secrets, and the message is also logged).
pub fn describe(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    for keep in ["unknown field", "missing field", "duplicate field"] {
        if message.starts_with(keep) {
            let name = message.split('`').nth(1).unwrap_or("");
            return if name.len() <= 40 {
                format!("{keep} `{name}`")
            } else {
                format!("{keep} (name too long to show)")
            };
        }
    }
    if message.starts_with("invalid type")
        || message.starts_with("invalid value")
        || message.starts_with("invalid length")
    {
        return "a field has the wrong type or value".to_owned();
    }
    if message.contains("EOF")
        || message.starts_with("expected")
        || message.starts_with("trailing")
        || message.starts_with("key must")
    {
        return "malformed".to_owned();
    }
    "could not be read".to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: Option<String>,
        expires: Option<serde_json::Value>,
    }

    fn request(content_type: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::post();
        if let Some(ct) = content_type {
            r = r.insert_header((header::CONTENT_TYPE, ct));
        }
        r.to_http_request()
    }

    proptest::proptest! {
        /// Whatever the bytes and declared type, a body parses or is a 4xx; never a panic.
        #[test]
        fn any_body_parses_or_is_a_client_error(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            content_type in proptest::option::of("(application/json|application/x-www-form-urlencoded|text/plain|application/merge-patch\\\\+json)(; charset=utf-8)?"),
            allow_form in proptest::bool::ANY,
        ) {
            let req = request(content_type.as_deref());
            if let Err(e) = parse::<Sample>(&req, &bytes, allow_form) {
                use actix_web::ResponseError;
                proptest::prop_assert!(e.status_code().is_client_error());
            }
        }

        #[test]
        fn form_shaped_bodies_parse_or_are_400(body in "([a-z_]{1,8}=[%A-Za-z0-9+ ]{0,10}&?){0,4}") {
            let req = request(Some("application/x-www-form-urlencoded"));
            if let Err(e) = parse::<Sample>(&req, body.as_bytes(), true) {
                use actix_web::ResponseError;
                proptest::prop_assert_eq!(e.status_code(), StatusCode::BAD_REQUEST);
            }
        }
    }

    #[test]
    fn empty_bodies_are_empty_objects_and_other_types_are_415() {
        assert!(parse::<Sample>(&request(Some("text/plain")), b"", false).is_ok());
        let err = parse::<Sample>(&request(Some("text/plain")), b"name=x", false).err();
        assert!(matches!(err, Some(ApiError::UnsupportedMediaType(false))));
        assert!(parse::<Sample>(&request(Some("application/x-www-form-urlencoded")), b"name=x", true).is_ok());
    }
}
