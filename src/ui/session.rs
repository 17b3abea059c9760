//! The console's session cookie, the [`Session`] extractor, and [`Posted`], the one way a
//! form reaches a handler: only with this session's CSRF token.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;

use super::{UiError, UiState};
use crate::domain::sessions::{csrf_matches, csrf_token};
use crate::domain::{Caller, Error, Secret, Timestamp};
use crate::web::AppState;
use crate::web::client::{client_ip, over_https};

/// The session cookie: the token whose hash names the session.
pub const SESSION_COOKIE: &str = "keyward_session";
/// The sign-in form's own token, so a sign-in cannot be posted from another site either.
pub const SIGN_IN_COOKIE: &str = "keyward_sign_in";

/// A signed-in browser: the caller its session stands for, and the session token.
pub struct Session {
    pub caller: Caller,
    token: Secret,
    /// When the request was checked, by the domain's clock.
    pub now: Timestamp,
}

impl Session {
    /// The CSRF token every form of this session carries.
    pub fn csrf(&self) -> String {
        csrf_token(&self.token)
    }

    pub fn token(&self) -> &Secret {
        &self.token
    }
}

fn states(req: &HttpRequest) -> Result<(web::Data<AppState>, web::Data<UiState>), UiError> {
    match (
        req.app_data::<web::Data<AppState>>(),
        req.app_data::<web::Data<UiState>>(),
    ) {
        (Some(app), Some(ui)) => Ok((app.clone(), ui.clone())),
        _ => Err(Error::internal("console state missing").into()),
    }
}

impl FromRequest for Session {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Session, UiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.cookie(SESSION_COOKIE).map(|c| Secret::new(c.value()));
        let states = states(req);
        let source = states.as_ref().ok().and_then(|(app, _)| client_ip(req, app));
        Box::pin(async move {
            let (app, _) = states?;
            let token = token.ok_or(UiError::SignInRequired)?;
            let caller = app
                .keyward
                .session(&token, source)
                .await?
                .ok_or(UiError::SignInRequired)?;
            let now = app.keyward.now();
            Ok(Session { caller, token, now })
        })
    }
}

/// A form post: the session, and the form `T`, read only once the `csrf` field has been
/// found to be this session's token. Without a session or the token: 403, before `T` is
/// even parsed.
pub struct Posted<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for Posted<T> {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Posted<T>, UiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = Session::from_request(req, &mut Payload::None);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            // No session: the form cannot be checked, so it is refused like a forged one.
            let session = match session.await {
                Err(UiError::SignInRequired) => return Err(UiError::Csrf),
                other => other?,
            };
            let body = body
                .await
                .map_err(|_| UiError::BadForm("the form could not be read".into()))?;
            if !form_token_matches(&body, session.token()) {
                return Err(UiError::Csrf);
            }
            let form = parse_form(&body)?;
            Ok(Posted { session, form })
        })
    }
}

/// The form of a post that carries nothing but its token (sign out, revoke, delete).
#[derive(serde::Deserialize)]
pub struct NoFields {}

/// The form of the buttons that disable or enable a key or a user.
#[derive(serde::Deserialize)]
pub struct StateForm {
    pub disabled: bool,
}

/// Whether the urlencoded `body` has a `csrf` field that is `token`'s form token.
pub fn form_token_matches(body: &[u8], token: &Secret) -> bool {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut presented = fields.iter().filter(|(name, _)| name == "csrf");
    match (presented.next(), presented.next()) {
        (Some((_, value)), None) => csrf_matches(token, value),
        _ => false,
    }
}

/// Reads an urlencoded form; a complaint names fields, never values.
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, UiError> {
    crate::web::body::parse_form(body).map_err(|e| UiError::BadForm(format!("the form is invalid: {e}")))
}

/// A cookie for `/ui` with the console's flags: HttpOnly, SameSite=Strict, and Secure over
/// HTTPS (or when configured so).
pub fn cookie(
    req: &HttpRequest,
    name: &'static str,
    value: String,
    path: &'static str,
    max_age: std::time::Duration,
) -> Cookie<'static> {
    let secure = states(req).is_ok_and(|(app, ui)| ui.secure_cookie || over_https(req, &app));
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish()
}

/// The session cookie for a new session.
pub fn session_cookie(req: &HttpRequest, token: &Secret) -> Cookie<'static> {
    let ttl = states(req).map_or(std::time::Duration::from_secs(3600), |(_, ui)| ui.session_ttl);
    cookie(req, SESSION_COOKIE, token.reveal().to_owned(), "/ui", ttl)
}

/// A cookie that tells the browser to forget `name` at once.
pub fn removal(req: &HttpRequest, name: &'static str, path: &'static str) -> Cookie<'static> {
    cookie(req, name, String::new(), path, std::time::Duration::ZERO)
}
