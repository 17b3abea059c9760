//! Who is asking: the [`Caller`] extractor (the four credential forms) and the client's
//! address. A handler that takes `Caller` is protected; one without it is public, visibly.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};

use super::access_log::AuthenticatedKey;
use super::problem::ApiError;
use crate::api::AppState;
use crate::domain::credentials::{Authentication, Presented};
use crate::domain::{Caller, Error, Timestamp, UserId};

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
        let now = Timestamp::now();
        match state.keyward.authenticate_now(presented, now) {
            // Keys and access tokens: decided from memory, no allocation of a future.
            Authentication::Done(result) => {
                let result = result.map(|mut caller| {
                    caller.source = client_ip(req, state);
                    // Only the request log reads it; skip the allocation when it is off.
                    if let Some(key_id) = caller.via.key_id()
                        && log::log_enabled!(target: "keyward::access", log::Level::Info)
                    {
                        req.extensions_mut().insert(AuthenticatedKey(key_id));
                    }
                    caller
                });
                CallerFuture::Ready(Some(result.map_err(ApiError::from)))
            }
            Authentication::NeedsPassword { username, password } => {
                let source = client_ip(req, state);
                let state = state.clone();
                CallerFuture::Password(Box::pin(async move {
                    Ok(state
                        .keyward
                        .authenticate_password(&username, &password, source, now)
                        .await?)
                }))
            }
        }
    }
}

/// Resolves at once for keys and access tokens; waits on argon2 for passwords.
pub enum CallerFuture {
    Ready(Option<Result<Caller, ApiError>>),
    Password(Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>),
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
            CallerFuture::Password(future) => future.as_mut().poll(cx),
        }
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = |ip: IpAddr| state.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(peer) {
        return Some(peer);
    }
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let Some(forwarded) = forwarded else {
        return Some(peer);
    };
    let mut chain = forwarded.split(',').map(|s| s.trim().parse::<IpAddr>());
    let mut nearest = peer;
    // Walk from the nearest hop outwards while the hops are our own proxies.
    let hops: Vec<_> = chain.by_ref().collect();
    for hop in hops.into_iter().rev() {
        match hop {
            Ok(ip) if trusted(ip) => nearest = ip,
            Ok(ip) => return Some(ip),
            Err(_) => return Some(nearest),
        }
    }
    Some(nearest)
}

/// The `{user_id}` of a `/v1/users/{user_id}/...` path: `None` on the caller's own routes.
/// A malformed id is `NotFound`, as for an id that does not exist.
pub struct Owner(pub Option<UserId>);

impl FromRequest for Owner {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Owner, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(match req.match_info().get("user_id") {
            None => Ok(Owner(None)),
            Some(text) => UserId::parse(text)
                .map(|id| Owner(Some(id)))
                .ok_or(ApiError::Domain(Error::NotFound)),
        })
    }
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
            if !caller.is_admin() {
                return Err(Error::Forbidden("this route is for admins only".into()).into());
            }
            Ok(Admin(caller))
        })
    }
}
