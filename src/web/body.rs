//! Request bodies: JSON (and form-urlencoded where a route takes it), with SPEC.md's rules.
//! An empty body counts as `{}`; Content-Type matters only for a non-empty body; unknown
//! fields are refused by the wire types (`deny_unknown_fields`); over the limit is 413.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

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
            parse_form(bytes).map_err(|e| ApiError::BadRequest(format!("invalid form body: {e}")))
        }
        Some(_) => Err(ApiError::UnsupportedMediaType(allow_form)),
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let bad = |what: String, e: &serde_json::Error| {
        ApiError::BadRequest(format!(
            "invalid JSON body: {what} at line {} column {}",
            e.line(),
            e.column()
        ))
    };
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let what = match e.inner().classify() {
            Category::Data => refusal(e.path(), &e.inner().to_string()),
            Category::Syntax | Category::Eof => "malformed".to_owned(),
            Category::Io => "could not be read".to_owned(),
        };
        bad(what, e.inner())
    })?;
    // Nothing but white space after the value.
    de.end().map_err(|e| bad("malformed".to_owned(), &e))?;
    Ok(value)
}

/// Reads `T` from form-urlencoded bytes (a body or a query string); the complaint is a
/// [`refusal`].
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize(de).map_err(|e| refusal(e.path(), &e.inner().to_string()))
}

/// What a wire type refused, fit to show: the field, from where the parser stood (never
/// from the submitted text), and what is wrong with it; never a submitted value (it may be a
/// secret, and the message is also logged). serde's own words say which kind of refusal it
/// is; a missing or repeated field, which is not where the parser stood, is the one it names.
fn refusal(path: &serde_path_to_error::Path, message: &str) -> String {
    let shown = |name: &str| {
        if name.len() <= 40 {
            format!("`{name}`")
        } else {
            "(name too long to show)".to_owned()
        }
    };
    let here = path.to_string();
    let named_in_message = || message.split('`').nth(1).unwrap_or("");
    for (kind, name) in [
        ("unknown field", None),
        ("missing field", Some(named_in_message)),
        ("duplicate field", Some(named_in_message)),
    ] {
        if message.starts_with(kind) {
            return match name {
                Some(name) => format!("{kind} {}", shown(name())),
                None => format!("{kind} {}", shown(&here)),
            };
        }
    }
    match path.iter().next() {
        Some(_) => format!("{} has the wrong type or value", shown(&here)),
        None => "the body has the wrong shape: expected an object of named fields".to_owned(),
    }
}

/// `?…` of a route, read as bodies are: unknown fields refused (`deny_unknown_fields`), a
/// bad field named.
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            parse_form(req.query_string().as_bytes())
                .map(Query)
                .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}"))),
        )
    }
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

    fn refused(content_type: &str, body: &str) -> String {
        match parse::<Sample>(&request(Some(content_type)), body.as_bytes(), true) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("{body}: {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_refusal_names_the_field_and_never_the_value() {
        let json = "application/json";
        let form = "application/x-www-form-urlencoded";
        for (content_type, body, says) in [
            (json, r#"{"name": "x", "user_id": "y"}"#, "unknown field `user_id`"),
            (json, r#"{"name": 5}"#, "`name` has the wrong type or value"),
            (json, r#"{"name": "a", "name": "b"}"#, "duplicate field `name`"),
            (json, r#"[]"#, "the body has the wrong shape"),
            (json, r#"{"name": "#, "malformed"),
            (json, r#"{} {}"#, "malformed"),
            (form, "name=x&colour=secret", "unknown field `colour`"),
        ] {
            let message = refused(content_type, body);
            assert!(message.contains(says), "{body}: {message}");
            assert!(!message.contains("secret") && !message.contains('5'), "{message}");
        }
        let long = format!(r#"{{"{}": 1}}"#, "x".repeat(41));
        assert!(refused(json, &long).contains("(name too long to show)"));
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Needs {
            username: String,
        }
        let missing = parse::<Needs>(&request(None), b"{\"other\": 1}", false).err();
        assert!(
            matches!(&missing, Some(ApiError::BadRequest(m)) if m.contains("missing field `username`")),
            "{missing:?}"
        );
    }

    #[test]
    fn empty_bodies_are_empty_objects_and_other_types_are_415() {
        assert!(parse::<Sample>(&request(Some("text/plain")), b"", false).is_ok());
        let err = parse::<Sample>(&request(Some("text/plain")), b"name=x", false).err();
        assert!(matches!(err, Some(ApiError::UnsupportedMediaType(false))));
        assert!(parse::<Sample>(&request(Some("application/x-www-form-urlencoded")), b"name=x", true).is_ok());
    }
}
