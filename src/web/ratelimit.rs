//! The rate limit headers (draft-ietf-httpapi-ratelimit-headers, revision 08 and later:
//! structured fields with named policies): `RateLimit-Policy: "requests";q=100;w=60` says
//! what a limit is, `RateLimit: "requests";r=0;t=12` where it stands. Refusals name the limit
//! that refused; accepted requests with a limited key carry every limit.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;

use crate::domain::limits::{Admitted, RateStatus};

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Appends one member of a header: `"name";a=1;b=2` (after `, ` unless it is the first).
fn push_member(out: &mut String, name: &str, (a, x): (&str, u64), (b, y): (&str, u64)) {
    let mut digits = itoa::Buffer::new();
    if !out.is_empty() {
        out.push_str(", ");
    }
    out.push('"');
    out.push_str(name);
    out.push_str("\";");
    out.push_str(a);
    out.push_str(digits.format(x));
    out.push(';');
    out.push_str(b);
    out.push_str(digits.format(y));
}

/// Sets both headers for `limits` (none when empty). Names are tokens of `A-Z a-z 0-9 _ . -`,
/// safe inside a quoted string. Written with pushes, not `format!`: every answer to a limited
/// key carries them.
pub fn set_headers<'a>(headers: &mut HeaderMap, limits: impl IntoIterator<Item = RateStatus<'a>>) {
    let (mut policy, mut state) = (String::with_capacity(48), String::with_capacity(48));
    for l in limits {
        push_member(&mut policy, l.name, ("q=", u64::from(l.limit)), ("w=", l.window));
        push_member(&mut state, l.name, ("r=", l.remaining), ("t=", l.reset));
    }
    if policy.is_empty() {
        return;
    }
    // Handed over, not copied: a header value can hold the string's own buffer.
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(policy)) {
        headers.insert(RATELIMIT_POLICY, v);
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(state)) {
        headers.insert(RATELIMIT, v);
    }
}

/// What a limited key's accepted request leaves in the request's extensions, for the
/// response's headers (set by the request log middleware, which sees every response).
#[derive(Clone)]
pub struct AdmittedLimits(pub Admitted);
