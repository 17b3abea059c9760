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

/// The two parameters of a member, each a prefix (`q=`) and its number.
type Params = ((&'static str, u64), (&'static str, u64));

/// A header's value for `limits`: one member per limit, with the parameters `member` picks.
fn header_text<'a>(limits: impl IntoIterator<Item = RateStatus<'a>>, member: fn(&RateStatus<'a>) -> Params) -> String {
    let mut text = String::with_capacity(48);
    for l in limits {
        let (a, b) = member(&l);
        push_member(&mut text, l.name, a, b);
    }
    text
}

/// `RateLimit-Policy`'s value for `limits`: what each is.
fn policy_text<'a>(limits: impl IntoIterator<Item = RateStatus<'a>>) -> String {
    header_text(limits, |l| (("q=", u64::from(l.limit)), ("w=", l.window)))
}

/// `RateLimit`'s value for `limits`: where each stands.
fn state_text<'a>(limits: impl IntoIterator<Item = RateStatus<'a>>) -> String {
    header_text(limits, |l| (("r=", l.remaining), ("t=", l.reset)))
}

/// Sets a header to `value` (none when empty). Names are tokens of `A-Z a-z 0-9 _ . -`,
/// safe inside a quoted string. Handed over, not copied: a header value can hold the bytes'
/// own buffer.
fn insert(headers: &mut HeaderMap, name: HeaderName, value: Bytes) {
    if value.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(value) {
        headers.insert(name, v);
    }
}

/// Sets both headers for `limits` (a refusal: the limit that refused). Written with pushes,
/// not `format!`.
pub fn set_headers<'a>(headers: &mut HeaderMap, limits: impl IntoIterator<Item = RateStatus<'a>> + Clone) {
    insert(headers, RATELIMIT_POLICY, Bytes::from(policy_text(limits.clone())));
    insert(headers, RATELIMIT, Bytes::from(state_text(limits)));
}

/// Sets both headers for a limited key's accepted request: every answer to that key
/// carries them. `RateLimit-Policy` says only what the limits are, so it is rendered once
/// per payer's state (the key's, or its user's when only the user has rate limits) and
/// shared by its answers; `RateLimit` is written for each.
pub fn set_admitted_headers(headers: &mut HeaderMap, admitted: &Admitted) {
    let mut rated = admitted.rated();
    let Some(first) = rated.next() else {
        return;
    };
    let policy = match rated.next() {
        None => first.rendered(|limits| Bytes::from(policy_text(limits.statuses(admitted.at)))),
        // A key and its user both with rate limits (rare): one list of both, per answer.
        Some(_) => Bytes::from(policy_text(admitted.rates())),
    };
    insert(headers, RATELIMIT_POLICY, policy);
    insert(headers, RATELIMIT, Bytes::from(state_text(admitted.rates())));
}

/// What a limited key's accepted request leaves in the request's extensions, for the
/// response's headers (set by the request log middleware, which sees every response).
#[derive(Clone)]
pub struct AdmittedLimits(pub Admitted);
