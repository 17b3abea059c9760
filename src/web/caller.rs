//! Who is asking and about whose records: the [`Caller`] extractor (the four credential
//! forms), [`Admin`] and [`KeyWriter`] that refuse early, and what the path names ([`Owner`],
//! [`key_id`]), for the native API, the dialects and the console alike. A handler that takes
//! `Caller` is protected; one without it is public, visibly.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};

use super::AppState;
use super::access_log::AuthenticatedKey;
use super::client::client_ip;
use super::problem::ApiError;
use super::ratelimit::AdmittedLimits;
use crate::domain::credentials::{Authentication, Presented};
use crate::domain::{Caller, Error, KeyId, UserId, access};

/// Made once, not parsed from a string on every request.
const X_API_KEY: actix_web::http::header::HeaderName = actix_web::http::header::HeaderName::from_static("x-api-key");

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = CallerFuture;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Borrowed, not cloned: a reference count every worker touches on every request
        // would move between cores. (The password path, which waits, takes its own clone.)
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return CallerFuture::Ready(Some(Err(Error::internal("application state missing").into())));
        };
        let headers = req.headers();
        let presented = Presented::from_headers(
            headers
                .get_all(actix_web::http::header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
            headers.get_all(X_API_KEY).map(|v| v.as_bytes()),
        );
        match state.keyward.authenticate_now(presented) {
            // Keys and access tokens: decided from memory, no allocation of a future.
            Authentication::Done(result) => {
                let result = result.map(|caller| admitted(req, state, caller));
                CallerFuture::Ready(Some(result.map_err(ApiError::from)))
            }
            Authentication::Admitted(caller, limits) => {
                req.extensions_mut().insert(AdmittedLimits(limits));
                CallerFuture::Ready(Some(Ok(admitted(req, state, caller))))
            }
            // A limited key whose credits must be reserved first (once per block).
            Authentication::NeedsCredits(caller, pending) => {
                let caller = admitted(req, state, caller);
                let state = state.clone();
                let req = req.clone();
                CallerFuture::Waiting(Box::pin(async move {
                    let limits = state.keyward.finish_spend(pending).await?;
                    req.extensions_mut().insert(AdmittedLimits(limits));
                    Ok(caller)
                }))
            }
            Authentication::NeedsPassword { username, password } => {
                let source = client_ip(req, state);
                let state = state.clone();
                CallerFuture::Waiting(Box::pin(async move {
                    Ok(state
                        .keyward
                        .authenticate_password(&username, &password, source)
                        .await?)
                }))
            }
        }
    }
}

/// The caller as a request knows it: with the client's address, and the key it used noted
/// for the request log.
fn admitted(req: &HttpRequest, state: &AppState, mut caller: Caller) -> Caller {
    caller.source = client_ip(req, state);
    // Only the request log reads it; skip the allocation when it is off.
    if let Some(key_id) = caller.via.key_id()
        && log::log_enabled!(target: "keyward::access", log::Level::Info)
    {
        req.extensions_mut().insert(AuthenticatedKey(key_id));
    }
    caller
}

/// Resolves at once for keys and access tokens; waits on argon2 for passwords, and on a
/// reservation for a limited key whose block of credits ran out.
pub enum CallerFuture {
    Ready(Option<Result<Caller, ApiError>>),
    Waiting(Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>),
}

impl Future for CallerFuture {
    type Output = Result<Caller, ApiError>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            CallerFuture::Ready(result) => std::task::Poll::Ready(
                result
                    .take()
                    .unwrap_or_else(|| Err(Error::internal("caller future polled after completion").into())),
            ),
            CallerFuture::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

/// The `{user_id}` of a `…/users/{user_id}/…` path (native, seed 000 and console routes):
/// `None` on the caller's own routes. A malformed id is `NotFound`, as for an id that does
/// not exist.
pub fn owner(req: &HttpRequest) -> Result<Option<UserId>, Error> {
    match req.match_info().get("user_id") {
        None => Ok(None),
        Some(text) => UserId::parse(text).map(Some).ok_or(Error::NotFound),
    }
}

/// [`owner`] as an extractor.
pub struct Owner(pub Option<UserId>);

impl FromRequest for Owner {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Owner, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(owner(req).map(Owner).map_err(ApiError::from))
    }
}

/// The `{key_id}` segment of a key route (native, dialects and console alike). A malformed
/// one names no key: it stands for [`KeyId::nil`], the id of no key, so the domain answers
/// it exactly as it answers an id that does not exist (404, after the same checks of the
/// caller's rights).
pub fn key_id(req: &HttpRequest) -> KeyId {
    req.match_info()
        .get("key_id")
        .and_then(KeyId::parse)
        .unwrap_or(KeyId::nil())
}

/// A caller whose credential may write keys (`keys:write`): a key without it gets 403
/// before the body is read, so a reader learns nothing from a write route. (The domain
/// checks again.)
pub struct KeyWriter(pub Caller);

impl FromRequest for KeyWriter {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<KeyWriter, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            caller.require_scope("keys:write")?;
            Ok(KeyWriter(caller))
        })
    }
}

/// A caller who is an admin; anyone else gets 403 before the body is even read. (The domain
/// checks again: this only makes the refusal come first.)
pub struct Admin(pub Caller);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            access::require_admin_role(&caller)?;
            Ok(Admin(caller))
        })
    }
}
