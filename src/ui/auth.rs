//! Sign in and sign out.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::session::{self, NoFields, Posted, SESSION_COOKIE, SIGN_IN_COOKIE, Session};
use super::{UiError, UiState, pages, see_other};
use crate::domain::sessions::{csrf_token, random_token};
use crate::domain::{Error, Secret};
use crate::web::AppState;
use crate::web::client::client_ip;
use crate::web::problem::RetryAfter;

/// How long a sign-in form may sit open before it must be reloaded.
const SIGN_IN_FORM_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: Option<Secret>,
}

#[derive(Deserialize)]
pub struct Query {
    signed_out: Option<String>,
    password_changed: Option<String>,
}

/// `GET /ui/login`: the form, with a fresh sign-in token (or the browser's, if it has one).
pub async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    ui: web::Data<UiState>,
    session: Option<Session>,
    query: Option<web::Query<Query>>,
) -> Result<HttpResponse, UiError> {
    if session.is_some() {
        return Ok(see_other("/ui/keys"));
    }
    let notice = query.and_then(|q| {
        let q = q.into_inner();
        if q.password_changed.is_some() {
            Some("Your password was changed. Sign in with the new one.")
        } else {
            q.signed_out.map(|_| "You are signed out.")
        }
    });
    let first = first_sign_in_hint(&state, &ui).await;
    sign_in_form(&req, None, notice, first.as_deref(), actix_web::http::StatusCode::OK)
}

/// Where the generated admin password is, while that file exists and the admin has never
/// signed in to the console (a first-time reader of the README is looking for it).
async fn first_sign_in_hint(state: &AppState, ui: &UiState) -> Option<String> {
    let file = &ui.admin_password_file;
    if !file.is_file() {
        return None;
    }
    match state.keyward.has_signed_in_to_the_console("admin").await {
        Ok(false) => Some(file.display().to_string()),
        _ => None,
    }
}

/// The sign-in page with `error` or `notice` (and where the first admin password is, when
/// `first` says); sets the sign-in token cookie when needed.
fn sign_in_form(
    req: &HttpRequest,
    error: Option<&str>,
    notice: Option<&str>,
    first: Option<&str>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, UiError> {
    let existing = req
        .cookie(SIGN_IN_COOKIE)
        .map(|c| Secret::new(c.value()))
        .filter(|t| t.reveal().len() == 64);
    let (token, fresh) = match existing {
        Some(token) => (token, false),
        None => (random_token()?, true),
    };
    let mut response = HttpResponse::build(status);
    response.content_type("text/html; charset=utf-8");
    if fresh {
        response.cookie(session::cookie(
            req,
            SIGN_IN_COOKIE,
            token.reveal().to_owned(),
            "/ui/login",
            SIGN_IN_FORM_TTL,
        ));
    }
    Ok(response.body(pages::sign_in(&csrf_token(&token), error, notice, first).into_string()))
}

/// `POST /ui/login`: username (or email) and password -> a session. Failures count toward
/// the same throttle as the API's password checks.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    ui: web::Data<UiState>,
    body: web::Bytes,
) -> Result<HttpResponse, UiError> {
    let sign_in_token = req.cookie(SIGN_IN_COOKIE).map(|c| Secret::new(c.value()));
    if !sign_in_token.is_some_and(|t| session::form_token_matches(&body, &t)) {
        return Err(UiError::Csrf);
    }
    let form: SignInForm = session::parse_form(&body)?;
    // The hint for a first sign-in, looked up only when the form is shown again.
    let first = || first_sign_in_hint(&state, &ui);
    let password = form.password.unwrap_or_else(|| Secret::new(""));
    let login = form.username.trim();
    if login.is_empty() || password.reveal().is_empty() {
        return sign_in_form(
            &req,
            Some("Enter your username (or email) and password."),
            None,
            first().await.as_deref(),
            actix_web::http::StatusCode::BAD_REQUEST,
        );
    }
    let source = client_ip(&req, &state);
    match state.keyward.start_session(login, &password, source).await {
        Ok((token, _)) => {
            let mut response = see_other("/ui/keys");
            response
                .add_cookie(&session::session_cookie(&req, &token))
                .map_err(Error::internal)?;
            response
                .add_cookie(&session::removal(&req, SIGN_IN_COOKIE, "/ui/login"))
                .map_err(Error::internal)?;
            Ok(response)
        }
        Err(Error::WrongPassword | Error::Unauthenticated { .. }) => sign_in_form(
            &req,
            Some("Wrong username or password."),
            None,
            first().await.as_deref(),
            actix_web::http::StatusCode::UNAUTHORIZED,
        ),
        Err(Error::Throttled { retry_after }) => {
            let wait = RetryAfter::new(retry_after);
            let mut response = sign_in_form(
                &req,
                Some(&format!(
                    "Too many failed sign-ins for this account. Try again in {} seconds.",
                    wait.secs()
                )),
                None,
                first().await.as_deref(),
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            )?;
            wait.set(response.headers_mut());
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /ui/logout`: ends the session in the database, then forgets the cookie.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<NoFields>,
) -> Result<HttpResponse, UiError> {
    let session = posted.session;
    state.keyward.end_session(&session.caller, session.token()).await?;
    let mut response = see_other("/ui/login?signed_out=1");
    response
        .add_cookie(&session::removal(&req, SESSION_COOKIE, "/ui"))
        .map_err(Error::internal)?;
    Ok(response)
}

/// `GET /ui/account`: who you are, and the password form.
pub async fn account(session: Session) -> HttpResponse {
    super::page(pages::account(
        &session.chrome(pages::Section::Account),
        &session.caller.user,
    ))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: Option<Secret>,
    new_password: Option<Secret>,
}

/// `POST /ui/account/password`: the domain's own password change, which ends every session
/// and access token of the user, this one included.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<PasswordForm>,
) -> Result<HttpResponse, UiError> {
    let Posted { session, form } = posted;
    let empty = || Secret::new("");
    let new = crate::domain::Password::parse(form.new_password.unwrap_or_else(empty))?;
    state
        .keyward
        .change_own_password(&session.caller, &form.current_password.unwrap_or_else(empty), new)
        .await?;
    let mut response = see_other("/ui/login?password_changed=1");
    response
        .add_cookie(&session::removal(&req, SESSION_COOKIE, "/ui"))
        .map_err(Error::internal)?;
    Ok(response)
}
