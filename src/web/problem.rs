//! The one place that turns errors into responses: RFC 9457 `application/problem+json`.
//! Bodies carry the public message only; causes go to the log.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::Error;

/// Every way a request can fail over HTTP: a domain refusal, or one the HTTP layer makes
/// itself (body too large, wrong media type, unreadable body or query).
#[derive(thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] Error),
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body must be JSON{}", if *.0 { " or form-urlencoded" } else { "" })]
    UnsupportedMediaType(bool),
    #[error("{0}")]
    BadRequest(String),
}

impl From<crate::domain::ModelError> for ApiError {
    fn from(e: crate::domain::ModelError) -> Self {
        ApiError::Domain(e.into())
    }
}

/// The public message only: actix logs `Debug` of errors at debug level, and causes of
/// internal errors are logged once, in `error_response`.
impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {self}", self.status_code().as_u16())
    }
}

/// RFC 9457 problem details.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Domain(e) => status_of(e),
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.response_with(self.status_code())
    }
}

impl ApiError {
    /// The problem response of this error, with its headers, under `status` instead of its
    /// own (forward-auth's `limited=403` for nginx).
    pub fn response_with(&self, status: StatusCode) -> HttpResponse {
        if let ApiError::Domain(Error::Internal(cause)) = self {
            log::error!("internal error: {cause}");
        }
        let kind = match self {
            ApiError::Domain(Error::RateLimited { .. }) => RATE_LIMITED,
            ApiError::Domain(Error::UsageExceeded { .. }) => USAGE_EXCEEDED,
            _ => "about:blank",
        };
        let mut response = problem_response_of(kind, status, self.to_string());
        let headers = response.headers_mut();
        match self {
            ApiError::Domain(Error::Unauthenticated { presented }) => {
                let value = if *presented {
                    r#"Bearer realm="keyward", error="invalid_token""#
                } else {
                    r#"Bearer realm="keyward""#
                };
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            ApiError::Domain(Error::WrongPassword) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="keyward""#),
                );
            }
            ApiError::Domain(Error::InvalidRequest(_)) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="keyward", error="invalid_request""#),
                );
            }
            ApiError::Domain(Error::InsufficientScope(scope)) => {
                let value = format!(r#"Bearer realm="keyward", error="insufficient_scope", scope="{scope}""#);
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::Domain(Error::Throttled { retry_after } | Error::Stale { retry_after }) => {
                RetryAfter::new(*retry_after).set(headers)
            }
            ApiError::Domain(Error::RateLimited { limit, retry_after }) => {
                RetryAfter::new(*retry_after).set(headers);
                super::ratelimit::set_headers(headers, [limit.status()]);
            }
            ApiError::Domain(Error::UsageExceeded {
                retry_after: Some(retry_after),
            }) => RetryAfter::new(*retry_after).set(headers),
            _ => {}
        }
        response
    }
}

/// `Retry-After` for a refusal that lifts after a while: whole seconds, at least 1 (0 would
/// invite the retry at once). The one place the header is written, for the API, the
/// dialects and the console alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(u64);

impl RetryAfter {
    pub fn new(wait: Duration) -> RetryAfter {
        RetryAfter(wait.as_secs().max(1))
    }

    /// The seconds the header says, for a message that says them too.
    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn set(self, headers: &mut HeaderMap) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(self.0));
    }
}

/// The status of a domain refusal, for the API and the web console alike.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::Unauthenticated { .. } | Error::WrongPassword => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::InsufficientScope(_) => StatusCode::FORBIDDEN,
        Error::Invalid { .. } | Error::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Throttled { .. } | Error::RateLimited { .. } | Error::UsageExceeded { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        Error::Unavailable(_) | Error::Stale { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The problem `type` of a request refused by one of its key's rate limits.
pub const RATE_LIMITED: &str = "urn:keyward:problem:rate-limited";
/// The problem `type` of a request refused because its key has no credits left.
pub const USAGE_EXCEEDED: &str = "urn:keyward:problem:usage-exceeded";

/// A problem+json response with the status's own title.
pub fn problem_response(status: StatusCode, detail: String) -> HttpResponse {
    problem_response_of("about:blank", status, detail)
}

/// A problem+json response of the given `type`.
fn problem_response_of(kind: &'static str, status: StatusCode, detail: String) -> HttpResponse {
    let body = Problem {
        kind,
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
    };
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "application/problem+json"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(serde_json::to_string(&body).unwrap_or_default())
}
