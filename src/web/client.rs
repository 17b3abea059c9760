//! The client as far as it can be believed: its address and whether it came over HTTPS. The
//! peer's own, unless the peer is a trusted proxy (`server.trusted_proxies`): only then are
//! `X-Forwarded-For` and `X-Forwarded-Proto` read. The one place that decides whom to trust.

use std::net::IpAddr;

use actix_web::HttpRequest;

use super::AppState;

/// Whether `ip` is one of the configured proxies.
fn trusted(state: &AppState, ip: IpAddr) -> bool {
    state.trusted_proxies.iter().any(|net| net.contains(ip))
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted(state, peer) {
        return Some(peer);
    }
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let Some(forwarded) = forwarded else {
        return Some(peer);
    };
    let mut nearest = peer;
    // Walk from the nearest hop outwards while the hops are our own proxies.
    for hop in forwarded.split(',').map(|s| s.trim().parse::<IpAddr>()).rev() {
        match hop {
            Ok(ip) if trusted(state, ip) => nearest = ip,
            Ok(ip) => return Some(ip),
            Err(_) => return Some(nearest),
        }
    }
    Some(nearest)
}

/// Whether the client reached us over HTTPS: our own TLS, or a trusted proxy's
/// `X-Forwarded-Proto: https` (anyone else's is ignored).
pub fn over_https(req: &HttpRequest, state: &AppState) -> bool {
    if req.app_config().secure() {
        return true;
    }
    let from_proxy = req.peer_addr().is_some_and(|peer| trusted(state, peer.ip()));
    from_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}
