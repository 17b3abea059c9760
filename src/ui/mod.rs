//! The web console at `/ui`: server-rendered pages over the same domain calls as the API.
//!
//! A session cookie (HttpOnly, SameSite=Strict, Path=/ui, Secure over HTTPS) names a session
//! kept in the database; every form carries the session's CSRF token and a post without it
//! is 403. Every page is sent with a strict Content-Security-Policy (scripts and styles only
//! from this origin, nothing inline), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`
//! and `Cache-Control: no-store`. The console holds no rules of its own: what a user may do
//! is what the domain lets their caller do over HTTP.

mod auth;
mod keys;
mod lists;
mod pages;
mod session;
mod users;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, ResponseError, web};

use crate::domain::Error;
/// The `{user_id}` of `/ui/users/{user_id}/…`, read as the API reads it.
pub(crate) use crate::web::caller::owner;
use crate::web::problem::{RetryAfter, status_of};

/// Scripts, styles and forms from this origin only; no inline code, no frames, no plugins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console's handlers share beside [`crate::web::AppState`].
pub struct UiState {
    /// Mark cookies `Secure` on every request (configured, or the server speaks TLS itself).
    pub secure_cookie: bool,
    /// Max-Age of the session cookie.
    pub session_ttl: std::time::Duration,
    /// Where a generated admin password is written (the sign-in page points there until the
    /// admin has signed in once).
    pub admin_password_file: std::path::PathBuf,
}

/// Registers `/ui` and everything under it.
pub fn routes(cfg: &mut web::ServiceConfig, state: web::Data<UiState>) {
    cfg.service(
        web::scope("/ui")
            .app_data(state)
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::REFERRER_POLICY, "no-referrer"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add(("Cross-Origin-Opener-Policy", "same-origin"))
                    .add((header::CACHE_CONTROL, "no-store")),
            )
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/assets/console.css", web::get().to(stylesheet))
            .route("/assets/console.js", web::get().to(script))
            .route("/login", web::get().to(auth::login_page))
            .route("/login", web::post().to(auth::login))
            .route("/logout", web::post().to(auth::logout))
            .route("/account", web::get().to(auth::account))
            .route("/account/password", web::post().to(auth::change_password))
            .service(keys::scope("/keys"))
            .service(keys::scope("/users/{user_id}/keys"))
            .route("/all-keys", web::get().to(users::all_keys))
            .route("/users", web::get().to(users::list))
            .route("/users", web::post().to(users::create))
            .route("/users/{user_id}", web::get().to(users::show))
            .route("/users/{user_id}/state", web::post().to(users::set_state))
            .route("/users/{user_id}/password", web::post().to(users::reset_password))
            .route("/users/{user_id}/delete", web::get().to(users::confirm_delete))
            .route("/users/{user_id}/delete", web::post().to(users::delete))
            .route("/audit", web::get().to(users::audit))
            .default_service(web::to(not_found)),
    );
}

async fn home(session: Option<session::Session>) -> HttpResponse {
    see_other(if session.is_some() { "/ui/keys" } else { "/ui/login" })
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", include_str!("assets/console.css"))
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", include_str!("assets/console.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

async fn not_found() -> HttpResponse {
    UiError::Domain(Error::NotFound).error_response()
}

/// 303 See Other: where a form post leads, and where sign-in is needed.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Every way a console request fails, rendered as a page with the API's status codes.
#[derive(thiserror::Error)]
pub enum UiError {
    #[error(transparent)]
    Domain(#[from] Error),
    /// No session: pages send the browser to sign in.
    #[error("sign in first")]
    SignInRequired,
    /// A post without this session's form token (or without a session at all).
    #[error("this form has expired or did not come from this console; reload the page and try again")]
    Csrf,
    #[error("{0}")]
    BadForm(String),
}

impl From<crate::domain::ModelError> for UiError {
    fn from(e: crate::domain::ModelError) -> Self {
        UiError::Domain(e.into())
    }
}

/// The public message only, as for `ApiError`.
impl std::fmt::Debug for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {self}", self.status_code().as_u16())
    }
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::Domain(e) => status_of(e),
            UiError::SignInRequired => StatusCode::SEE_OTHER,
            UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::BadForm(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let UiError::SignInRequired = self {
            return see_other("/ui/login");
        }
        if let UiError::Domain(Error::Internal(cause)) = self {
            log::error!("internal error: {cause}");
        }
        let status = self.status_code();
        let mut response = HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(pages::error(status, &self.to_string()).into_string());
        if let UiError::Domain(Error::Throttled { retry_after }) = self {
            RetryAfter::new(*retry_after).set(response.headers_mut());
        }
        response
    }
}

/// A rendered page with status 200.
pub(crate) fn page(markup: maud::Markup) -> HttpResponse {
    page_with(StatusCode::OK, markup)
}

/// A rendered page with `status` (a form shown again after a refusal).
pub(crate) fn page_with(status: StatusCode, markup: maud::Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}
