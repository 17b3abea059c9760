//! Admin pages: users and the audit log. The domain refuses non-admins (403), as on the API.

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::lists::{ListQuery, keys_of};
use super::pages::{self, Refused, Section};
use super::session::{NoFields, Posted, Session, StateForm};
use super::{UiError, owner, page, page_with, see_other};
use crate::domain::{Email, Error, KeyId, NewUserRequest, Password, Role, Secret, UserId, UserUpdate, Username};
use crate::web::AppState;
use crate::web::problem::status_of;

/// Users shown per page.
const PAGE_SIZE: u32 = 100;

#[derive(Deserialize)]
struct CursorQuery {
    cursor: Option<String>,
}

fn cursor(req: &HttpRequest) -> Option<String> {
    serde_urlencoded::from_str::<CursorQuery>(req.query_string())
        .ok()
        .and_then(|q| q.cursor)
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>, session: Session) -> Result<HttpResponse, UiError> {
    Ok(page(users_page(&req, &state, &session, None).await?))
}

/// The users page (with the create form, as refused if it was).
async fn users_page(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    refused: Option<&pages::UserDraft<'_>>,
) -> Result<maud::Markup, UiError> {
    let page_of_users = state
        .keyward
        .list_users(&session.caller, cursor(req).as_deref(), Some(PAGE_SIZE))
        .await?;
    let next = page_of_users.next_cursor.map(|c| c.to_string());
    Ok(pages::users(
        &session.chrome(Section::Users),
        &page_of_users.users,
        next.as_deref(),
        ListQuery::from(req).notice(),
        refused,
    ))
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    password: Option<Secret>,
    #[serde(default)]
    role: String,
}

impl CreateForm {
    fn request(&self) -> Result<NewUserRequest, Error> {
        Ok(NewUserRequest {
            username: Username::parse(self.username.trim())?,
            password: Password::parse(self.password.clone().unwrap_or_else(|| Secret::new("")))?,
            email: match self.email.trim() {
                "" => None,
                email => Some(Email::parse(email)?),
            },
            role: match self.role.trim() {
                "" => Role::User,
                role => Role::parse(role)?,
            },
        })
    }
}

/// `POST /ui/users`. A refusal the admin can fix (a bad field, a taken name) shows the form
/// again with the reason and the valid fields; never the password.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<CreateForm>,
) -> Result<HttpResponse, UiError> {
    let Posted { session, form } = posted;
    let created = match form.request() {
        Ok(request) => state.keyward.create_user(&session.caller, request).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(user) => Ok(see_other(&format!("/ui/users/{}?done=user-created", user.id))),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let reason = e.to_string();
            let username = form.username.trim();
            let email = form.email.trim();
            let draft = pages::UserDraft {
                username: Username::parse(username).is_ok().then_some(username),
                email: Email::parse(email).is_ok().then_some(email),
                admin: form.role.trim() == "admin",
                reason: &reason,
            };
            let markup = users_page(&req, &state, &session, Some(&draft)).await?;
            Ok(page_with(status_of(&e), markup))
        }
        Err(e) => Err(e.into()),
    }
}

/// The `{user_id}` of the path, which every route here has.
fn user_id(req: &HttpRequest) -> Result<UserId, UiError> {
    owner(req)?.ok_or(UiError::Domain(Error::NotFound))
}

pub async fn show(req: HttpRequest, state: web::Data<AppState>, session: Session) -> Result<HttpResponse, UiError> {
    let id = user_id(&req)?;
    Ok(page(user_page(&req, &state, &session, id, None).await?))
}

/// A user's page with their keys (and the create form, as refused if it was).
pub async fn user_page(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    id: UserId,
    refused: Refused<'_>,
) -> Result<maud::Markup, UiError> {
    let user = state.keyward.get_user(&session.caller, id)?;
    let query = ListQuery::from(req);
    let all = keys_of(state, session, Some(id), query.sort(), refused).await?;
    Ok(pages::user_detail(
        &session.chrome(Section::Users),
        &user,
        &all,
        query.notice(),
    ))
}

pub async fn set_state(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<StateForm>,
) -> Result<HttpResponse, UiError> {
    let id = user_id(&req)?;
    let disabled = posted.form.disabled;
    let update = UserUpdate {
        disabled: Some(disabled),
        ..UserUpdate::default()
    };
    state.keyward.update_user(&posted.session.caller, id, update).await?;
    let done = if disabled { "user-disabled" } else { "user-enabled" };
    Ok(see_other(&format!("/ui/users/{id}?done={done}")))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: Option<Secret>,
}

pub async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<PasswordForm>,
) -> Result<HttpResponse, UiError> {
    let id = user_id(&req)?;
    let Posted { session, form } = posted;
    let update = UserUpdate {
        password: Some(Password::parse(form.password.unwrap_or_else(|| Secret::new("")))?),
        ..UserUpdate::default()
    };
    state.keyward.update_user(&session.caller, id, update).await?;
    // An admin resetting their own password has just ended their own session.
    if id == session.caller.user.id {
        return Ok(see_other("/ui/login"));
    }
    Ok(see_other(&format!("/ui/users/{id}?done=password")))
}

pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, UiError> {
    let id = user_id(&req)?;
    let user = state.keyward.get_user(&session.caller, id)?;
    Ok(page(pages::confirm_delete_user(&session.chrome(Section::Users), &user)))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<NoFields>,
) -> Result<HttpResponse, UiError> {
    let id = user_id(&req)?;
    state.keyward.delete_user(&posted.session.caller, id).await?;
    Ok(see_other("/ui/users?done=user-deleted"))
}

/// Keys shown on the all-keys page: the newest this many.
const ALL_KEYS_SHOWN: u32 = 500;

/// `GET /ui/all-keys`: the newest keys of every user, with their owners.
pub async fn all_keys(req: HttpRequest, state: web::Data<AppState>, session: Session) -> Result<HttpResponse, UiError> {
    let page_of_keys = state
        .keyward
        .newest_keys_of_everyone(&session.caller, Some(ALL_KEYS_SHOWN))
        .await?;
    let mut keys = page_of_keys.keys;
    let owners = keys
        .iter()
        .map(|k| k.user_id)
        .collect::<std::collections::HashSet<_>>()
        .into_iter()
        .filter_map(|id| {
            state
                .keyward
                .key_owner(&session.caller, Some(id))
                .ok()
                .map(|u| (id, u.username.clone()))
        })
        .collect();
    let uses = state.keyward.uses_in_last_day(&session.caller, &keys).await?;
    let sort = ListQuery::from(&req).sort();
    sort.apply_with(&mut keys, &uses);
    Ok(page(pages::all_keys(
        &session.chrome(Section::AllKeys),
        &keys,
        &owners,
        &uses,
        page_of_keys.total,
        sort,
    )))
}

pub async fn audit(req: HttpRequest, state: web::Data<AppState>, session: Session) -> Result<HttpResponse, UiError> {
    let kw = &state.keyward;
    let entries = kw
        .list_audit(&session.caller, cursor(&req).as_deref(), Some(PAGE_SIZE))
        .await?;
    let lines = &entries.entries;
    let target = |kind: &'static str| {
        lines
            .iter()
            .filter(move |l| l.record.target_type == Some(kind))
            .filter_map(|l| l.record.target_id.as_deref())
    };
    let key_ids: HashSet<KeyId> = target("key").filter_map(KeyId::parse).collect();
    let keys = kw
        .audit_key_targets(&session.caller, key_ids.into_iter().collect())
        .await?;
    let user_ids: HashSet<UserId> = lines
        .iter()
        .filter_map(|l| l.record.actor_id)
        .chain(target("user").filter_map(UserId::parse))
        .chain(keys.values().map(|k| k.owner))
        .collect();
    // Live users only: a deleted one has no page to link to.
    let users = user_ids
        .into_iter()
        .filter_map(|id| kw.get_user(&session.caller, id).ok().map(|u| (id, u.username)))
        .collect();
    Ok(page(pages::audit(
        &session.chrome(Section::Audit),
        lines,
        &pages::AuditNames { users, keys },
        entries.next_cursor.as_deref(),
    )))
}
