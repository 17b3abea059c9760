//! Key pages: `/ui/keys` (the caller's) and `/ui/users/{user_id}/keys` (an admin's view of a
//! user's), the same handlers; the domain decides whose keys a caller may touch.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::lists::{ListQuery, keys_of};
use super::pages::{self, Chrome, KeyDraft, Refused, Section};
use super::session::{NoFields, Posted, Session, StateForm};
use super::{UiError, owner, page, page_with, see_other};
use crate::domain::limits::parse_rate_limit;
use crate::domain::{
    CreditsChange, Error, Expiry, Granularity, KeyName, KeyPatch, MintedKey, NewKeyRequest, Scopes, Timestamp, UserId,
    parse_grace,
};
use crate::model::{Credits, GivenDuration, RateLimits, Refill, RefillInterval};
use crate::web::AppState;
use crate::web::caller::key_id;
use crate::web::problem::status_of;

pub fn scope(path: &str) -> actix_web::Scope {
    web::scope(path)
        .route("", web::get().to(list))
        .route("", web::post().to(create))
        .route("/{key_id}", web::get().to(show))
        .route("/{key_id}/name", web::post().to(rename))
        .route("/{key_id}/state", web::post().to(set_state))
        .route("/{key_id}/rotate", web::post().to(rotate))
        .route("/{key_id}/ratelimits", web::post().to(change_limits::<RateLimitsForm>))
        .route("/{key_id}/credits", web::post().to(change_limits::<CreditsForm>))
        .route("/{key_id}/credits/add", web::post().to(change_limits::<AddCreditsForm>))
        .route("/{key_id}/revoke", web::get().to(confirm_revoke))
        .route("/{key_id}/revoke", web::post().to(revoke))
}

impl Session {
    pub fn chrome(&self, section: Section) -> Chrome {
        Chrome {
            username: self.caller.user.username.clone(),
            admin: self.caller.is_admin(),
            csrf: self.csrf(),
            section,
            now: self.now,
        }
    }
}

/// The section a key page belongs to: an admin's view of someone's keys is under Users.
fn section(owner: Option<UserId>) -> Section {
    if owner.is_some() { Section::Users } else { Section::Keys }
}

/// Where the keys of `owner` live in the console.
pub fn keys_base(owner: Option<UserId>) -> String {
    owner.map_or_else(|| "/ui/keys".to_owned(), |id| format!("/ui/users/{id}/keys"))
}

async fn list(req: HttpRequest, state: web::Data<AppState>, session: Session) -> Result<HttpResponse, UiError> {
    if let Some(owner) = owner(&req)? {
        return Ok(see_other(&format!("/ui/users/{owner}")));
    }
    Ok(page(my_keys_page(&req, &state, &session, None).await?))
}

/// The caller's keys, sorted as the query says, with the create form (as refused, if it was).
async fn my_keys_page(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    refused: Refused<'_>,
) -> Result<maud::Markup, UiError> {
    let query = ListQuery::from(req);
    let all = keys_of(state, session, None, query.sort(), refused).await?;
    Ok(pages::my_keys(&session.chrome(Section::Keys), &all, query.notice()))
}

/// A date from the form's date field: the key works until the end of that day, UTC.
fn end_of_day(date: &str) -> Result<Expiry, Error> {
    let bad = || Error::invalid("expires_on", "expected a date such as 2027-01-31");
    let shaped = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(bad());
    }
    Timestamp::parse_rfc3339(&format!("{date}T23:59:59Z"))
        .map(Expiry::At)
        .ok_or_else(bad)
}

/// The domain's request from the create form.
fn key_request(draft: &KeyDraft) -> Result<NewKeyRequest, Error> {
    let name = match draft.name.trim() {
        "" => None,
        name => Some(KeyName::parse(name)?),
    };
    let expires = match (draft.expires_on.trim(), draft.expires.trim()) {
        ("", "") => None,
        ("", phrase) => Some(Expiry::parse(phrase).map_err(|e| Error::invalid("expires", e))?),
        (date, _) => Some(end_of_day(date)?),
    };
    let scopes: Vec<String> = draft
        .scopes
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(NewKeyRequest {
        name,
        expires,
        scopes: if scopes.is_empty() {
            None
        } else {
            Some(Scopes::parse(scopes)?)
        },
        meta: None,
        ..NewKeyRequest::default()
    })
}

/// The fields of a refused form that are valid on their own, to fill the form again; the
/// rest come back empty, so what was typed in the wrong field (a key, a password) is never
/// sent back.
fn accepted_fields(draft: &KeyDraft) -> KeyDraft {
    let keep = |text: &str, ok: bool| if ok { text.trim().to_owned() } else { String::new() };
    let scopes_ok = key_request(&KeyDraft {
        scopes: draft.scopes.clone(),
        ..KeyDraft::default()
    })
    .is_ok();
    KeyDraft {
        name: keep(&draft.name, KeyName::parse(draft.name.trim()).is_ok()),
        expires: keep(&draft.expires, Expiry::parse(&draft.expires).is_ok()),
        expires_on: keep(&draft.expires_on, end_of_day(draft.expires_on.trim()).is_ok()),
        scopes: keep(&draft.scopes, scopes_ok),
    }
}

/// `POST …/keys`: makes the key and shows it, this once. A refusal the person can fix (a
/// bad field, a conflict) shows the form again with what they typed and why.
async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<KeyDraft>,
) -> Result<HttpResponse, UiError> {
    let owner = owner(&req)?;
    let Posted { session, form } = posted;
    let minted = match key_request(&form) {
        Ok(request) => state.keyward.mint_key(&session.caller, owner, request).await,
        Err(e) => Err(e),
    };
    match minted {
        Ok(minted) => Ok(shown_once(&session, owner, &minted, false)),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let reason = e.to_string();
            let kept = accepted_fields(&form);
            let refused = Some((&kept, reason.as_str()));
            let markup = match owner {
                None => my_keys_page(&req, &state, &session, refused).await?,
                Some(id) => super::users::user_page(&req, &state, &session, id, refused).await?,
            };
            Ok(page_with(status_of(&e), markup))
        }
        Err(e) => Err(e.into()),
    }
}

/// The page that shows a new key, the only one that ever does.
fn shown_once(session: &Session, owner: Option<UserId>, minted: &MintedKey, rotated: bool) -> HttpResponse {
    page(pages::new_key(
        &session.chrome(section(owner)),
        &minted.record,
        minted.secret.reveal(),
        &keys_base(owner),
        rotated,
    ))
}

/// The owner's username for an admin's view of someone's key, `None` on one's own.
fn owner_name(state: &AppState, session: &Session, owner: Option<UserId>) -> Result<Option<String>, Error> {
    owner
        .map(|id| {
            state
                .keyward
                .key_owner(&session.caller, Some(id))
                .map(|u| u.username.clone())
        })
        .transpose()
}

/// The key page's chart: today and the 29 days before it.
const CHART_DAYS: std::time::Duration = std::time::Duration::from_secs(29 * 86_400);

async fn show(req: HttpRequest, state: web::Data<AppState>, session: Session) -> Result<HttpResponse, UiError> {
    let owner = owner(&req)?;
    let key = state.keyward.get_key(&session.caller, owner, key_id(&req)).await?;
    let owner_name = owner_name(&state, &session, owner)?;
    let since = state.keyward.now().minus(CHART_DAYS);
    let usage = state
        .keyward
        .key_usage(&session.caller, owner, key.id, Some(since), None, Granularity::Day)
        .await?;
    Ok(page(pages::key_detail(
        &session.chrome(section(owner)),
        &key,
        &usage.buckets,
        &keys_base(owner),
        owner_name.as_deref(),
        ListQuery::from(&req).notice(),
    )))
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

async fn rename(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<RenameForm>,
) -> Result<HttpResponse, UiError> {
    let owner = owner(&req)?;
    let name = KeyName::parse(posted.form.name.trim())?;
    let key = state
        .keyward
        .rename_key(&posted.session.caller, owner, key_id(&req), Some(name))
        .await?;
    Ok(see_other(&format!("{}/{}?done=renamed", keys_base(owner), key.id)))
}

async fn set_state(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<StateForm>,
) -> Result<HttpResponse, UiError> {
    let owner = owner(&req)?;
    let disabled = posted.form.disabled;
    let key = state
        .keyward
        .set_key_disabled(&posted.session.caller, owner, key_id(&req), disabled)
        .await?;
    let done = if disabled { "disabled" } else { "enabled" };
    Ok(see_other(&format!("{}/{}?done={done}", keys_base(owner), key.id)))
}

#[derive(Deserialize)]
pub struct RateLimitsForm {
    /// One limit a line: `name limit duration` (`requests 100 1m`, `daily 5000 1 day`).
    #[serde(default)]
    ratelimits: String,
}

/// The rate limits typed into the form: one a line, `name limit duration`; blank lines are
/// skipped, no lines is none. A duration of digits only is seconds.
fn parse_ratelimits_text(text: &str) -> Result<RateLimits, Error> {
    let bad = || {
        Error::invalid(
            "ratelimits",
            "one limit a line: a name, a number of requests and a duration, e.g. \"requests 100 1m\"",
        )
    };
    let mut list = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(limit)) = (parts.next(), parts.next()) else {
            return Err(bad());
        };
        let limit: u64 = limit.parse().map_err(|_| bad())?;
        let duration = parts.collect::<Vec<_>>().join(" ");
        let given = match duration.parse::<u64>() {
            Ok(secs) => GivenDuration::Seconds(secs),
            Err(_) if duration.is_empty() => return Err(bad()),
            Err(_) => GivenDuration::Text(duration),
        };
        list.push(parse_rate_limit(name.to_owned(), limit, given)?);
    }
    Ok(RateLimits::parse(list)?)
}

/// A form that changes a key's limits: the change it asks for.
trait LimitsForm: serde::de::DeserializeOwned + 'static {
    fn patch(&self) -> Result<KeyPatch, Error>;
}

/// `POST …/{id}/ratelimits`, `…/credits`, `…/credits/add`: applies the form's change of
/// limits (only an admin loosens them) and goes back to the key's page.
async fn change_limits<F: LimitsForm>(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<F>,
) -> Result<HttpResponse, UiError> {
    let owner = owner(&req)?;
    let patch = posted.form.patch()?;
    let key = state
        .keyward
        .update_key(&posted.session.caller, owner, key_id(&req), patch)
        .await?;
    Ok(see_other(&format!("{}/{}?done=limits", keys_base(owner), key.id)))
}

impl LimitsForm for RateLimitsForm {
    fn patch(&self) -> Result<KeyPatch, Error> {
        Ok(KeyPatch {
            ratelimits: Some(parse_ratelimits_text(&self.ratelimits)?),
            ..KeyPatch::default()
        })
    }
}

#[derive(Deserialize)]
pub struct CreditsForm {
    /// Empty: unlimited.
    #[serde(default)]
    remaining: String,
    /// `""` (none), `daily` or `monthly`.
    #[serde(default)]
    refill_interval: String,
    #[serde(default)]
    refill_amount: String,
}

fn credits_number(text: &str) -> Result<u64, Error> {
    text.trim()
        .parse()
        .map_err(|_| Error::invalid("credits", "a whole number of credits, 0 or more"))
}

/// The credits typed into the form: `None` (unlimited) when `remaining` is empty.
fn parse_credits_form(form: &CreditsForm) -> Result<Option<Credits>, Error> {
    if form.remaining.trim().is_empty() {
        return Ok(None);
    }
    let refill = match form.refill_interval.trim() {
        "" => None,
        interval => Some(Refill {
            interval: RefillInterval::parse(interval)?,
            amount: credits_number(&form.refill_amount)?,
        }),
    };
    Ok(Some(Credits::new(credits_number(&form.remaining)?, refill)?))
}

impl LimitsForm for CreditsForm {
    fn patch(&self) -> Result<KeyPatch, Error> {
        Ok(KeyPatch {
            credits: Some(CreditsChange::Set(parse_credits_form(self)?)),
            ..KeyPatch::default()
        })
    }
}

#[derive(Deserialize)]
pub struct AddCreditsForm {
    #[serde(default)]
    add: String,
}

impl LimitsForm for AddCreditsForm {
    fn patch(&self) -> Result<KeyPatch, Error> {
        Ok(KeyPatch {
            credits: Some(CreditsChange::Add(Credits::addition(credits_number(&self.add)?)?)),
            ..KeyPatch::default()
        })
    }
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace: String,
}

async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<RotateForm>,
) -> Result<HttpResponse, UiError> {
    let owner = owner(&req)?;
    let Posted { session, form } = posted;
    let grace = parse_grace(&form.grace)?;
    let minted = state
        .keyward
        .rotate_key(&session.caller, owner, key_id(&req), grace)
        .await?;
    Ok(shown_once(&session, owner, &minted, true))
}

async fn confirm_revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, UiError> {
    let owner = owner(&req)?;
    let key = state.keyward.get_key(&session.caller, owner, key_id(&req)).await?;
    Ok(page(pages::confirm_revoke(
        &session.chrome(section(owner)),
        &key,
        &keys_base(owner),
    )))
}

async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<NoFields>,
) -> Result<HttpResponse, UiError> {
    let owner = owner(&req)?;
    state
        .keyward
        .revoke_key(&posted.session.caller, owner, key_id(&req))
        .await?;
    let back = owner.map_or_else(|| "/ui/keys".to_owned(), |id| format!("/ui/users/{id}"));
    Ok(see_other(&format!("{back}?done=revoked")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_from_the_form() {
        assert!(matches!(end_of_day("2027-01-31"), Ok(Expiry::At(t)) if t.rfc3339() == "2027-01-31T23:59:59Z"));
        for bad in ["2027-1-31", "31/01/2027", "2027-01-3x", "", "2027-13-01"] {
            assert!(end_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rate_limits_are_read_one_a_line() {
        let limits = parse_ratelimits_text("requests 100 1m\n\n  daily 5000 1 day\nburst 10 1\n");
        let limits = limits.unwrap_or_else(|e| panic!("{e}"));
        let seen: Vec<(&str, u32, u64)> = limits
            .as_slice()
            .iter()
            .map(|l| (l.name(), l.limit(), l.seconds()))
            .collect();
        assert_eq!(seen, [("requests", 100, 60), ("daily", 5000, 86_400), ("burst", 10, 1)]);
        assert!(parse_ratelimits_text("").is_ok_and(|l| l.is_empty()));
        for bad in [
            "requests",
            "requests many 1m",
            "requests 100",
            "requests 100 never",
            "a b c d",
        ] {
            assert!(parse_ratelimits_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_split_on_spaces_and_commas() {
        let form = KeyDraft {
            name: " ci ".into(),
            expires: "One Month".into(),
            expires_on: String::new(),
            scopes: "keys:read, orders:write  ".into(),
        };
        let request = key_request(&form).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.name.as_ref().map(KeyName::as_str), Some("ci"));
        assert_eq!(
            request.scopes.as_ref().map(Scopes::as_slice),
            Some(&["keys:read".to_owned(), "orders:write".to_owned()][..])
        );
        assert_eq!(request.expires, Some(Expiry::After(Duration::from_secs(31 * 86_400))));
    }
}
