//! The rate limit headers (draft-ietf-httpapi-ratelimit-headers, revision 08 and later:
//! structured fields with named policies): `RateLimit-Policy: "requests";q=100;w=60` says
//! what a limit is, `RateLimit: "requests";r=0;t=12` where it stands. Refusals name the limit
//! that refused; accepted requests with a limited key carry every limit.

use std::fmt::{self, Write};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use arrayvec::ArrayString;

use crate::domain::limits::{Admitted, KeyLimits, RateStatus};

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The two parameters of a member, each a prefix (`q=`) and its number.
type Params = ((&'static str, u64), (&'static str, u64));

/// Writes a header's value for `limits`: one member `"name";a=1;b=2` per limit, separated by
/// `, `, with the parameters `member` picks. Names are tokens of `A-Z a-z 0-9 _ . -`, safe
/// inside a quoted string. Fails only when `out` is full.
fn write_members<'a>(
    out: &mut impl Write,
    limits: impl IntoIterator<Item = RateStatus<'a>>,
    member: fn(&RateStatus<'a>) -> Params,
) -> fmt::Result {
    let mut digits = itoa::Buffer::new();
    for (i, l) in limits.into_iter().enumerate() {
        let ((a, x), (b, y)) = member(&l);
        if i > 0 {
            out.write_str(", ")?;
        }
        out.write_char('"')?;
        out.write_str(l.name)?;
        out.write_str("\";")?;
        out.write_str(a)?;
        out.write_str(digits.format(x))?;
        out.write_char(';')?;
        out.write_str(b)?;
        out.write_str(digits.format(y))?;
    }
    Ok(())
}

/// A header's value for `limits` (none when there are none). Written on the stack when it
/// fits (a few limits always do), so the value is the one allocation; in a `String` when not.
fn header_value<'a>(
    limits: impl IntoIterator<Item = RateStatus<'a>> + Clone,
    member: fn(&RateStatus<'a>) -> Params,
) -> Option<HeaderValue> {
    let mut small = ArrayString::<512>::new();
    let text = match write_members(&mut small, limits.clone(), member) {
        Ok(()) => &*small,
        Err(_) => {
            let mut text = String::new();
            write_members(&mut text, limits, member).ok()?;
            return HeaderValue::from_str(&text).ok();
        }
    };
    if text.is_empty() {
        return None;
    }
    HeaderValue::from_str(text).ok()
}

/// `RateLimit-Policy`'s value for `limits`: what each is.
fn policy_value<'a>(limits: impl IntoIterator<Item = RateStatus<'a>> + Clone) -> Option<HeaderValue> {
    header_value(limits, |l| (("q=", u64::from(l.limit)), ("w=", l.window)))
}

/// `RateLimit`'s value for `limits`: where each stands.
fn state_value<'a>(limits: impl IntoIterator<Item = RateStatus<'a>> + Clone) -> Option<HeaderValue> {
    header_value(limits, |l| (("r=", l.remaining), ("t=", l.reset)))
}

/// Sets a header to `value`, if there is one.
fn insert(headers: &mut HeaderMap, name: HeaderName, value: Option<HeaderValue>) {
    if let Some(value) = value {
        headers.insert(name, value);
    }
}

/// Sets both headers for `limits` (a refusal: the limit that refused).
pub fn set_headers<'a>(headers: &mut HeaderMap, limits: impl IntoIterator<Item = RateStatus<'a>> + Clone) {
    insert(headers, RATELIMIT_POLICY, policy_value(limits.clone()));
    insert(headers, RATELIMIT, state_value(limits));
}

/// Sets both headers for a limited key's accepted request: every answer to that key
/// carries them. `RateLimit-Policy` says only what the limits are, so its value is made
/// once per payer's state (the key's, or its user's when only the user has rate limits)
/// and shared by its answers; `RateLimit` is written for each.
pub fn set_admitted_headers(headers: &mut HeaderMap, admitted: &Admitted) {
    let mut rated = admitted.rated();
    let Some(first) = rated.next() else {
        return;
    };
    let render = |limits: &KeyLimits| policy_value(limits.statuses(admitted.at));
    let policy = match rated.next() {
        // Kept with the state (made per answer only if the slot held another type).
        None => first.rendered(render).cloned().unwrap_or_else(|| render(first)),
        // A key and its user both with rate limits (rare): one list of both, per answer.
        Some(_) => policy_value(admitted.rates()),
    };
    insert(headers, RATELIMIT_POLICY, policy);
    insert(headers, RATELIMIT, state_value(admitted.rates()));
}

/// What a limited key's accepted request leaves in the request's extensions, for the
/// response's headers (set by the request log middleware, which sees every response).
#[derive(Clone)]
pub struct AdmittedLimits(pub Admitted);

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, remaining: u64) -> RateStatus<'_> {
        RateStatus {
            name,
            limit: 100,
            window: 60,
            remaining,
            reset: 12,
        }
    }

    #[test]
    fn values_that_do_not_fit_on_the_stack_are_written_whole() -> Result<(), String> {
        let long = "n".repeat(64);
        let limits: Vec<RateStatus> = (0..20).map(|i| status(&long, i)).collect();
        let value = state_value(limits.iter().cloned()).ok_or("no value")?;
        let text = value.to_str().map_err(|e| e.to_string())?;
        assert!(text.len() > 512, "{}", text.len());
        assert_eq!(text.matches(&format!("\"{long}\";r=")).count(), 20);
        assert!(text.ends_with(";r=19;t=12"), "{text}");
        let one = policy_value([status("requests", 0)]).ok_or("no value")?;
        assert_eq!(one.to_str().map_err(|e| e.to_string())?, "\"requests\";q=100;w=60");
        assert!(state_value(Vec::<RateStatus>::new()).is_none());
        Ok(())
    }
}
