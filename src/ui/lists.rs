//! What the list pages share: the `?sort=&order=&done=` query, and a user's keys as the key
//! pages and the user pages show them.

use actix_web::HttpRequest;
use serde::Deserialize;

use super::UiError;
use super::pages::{self, KeyForm, Refused, Sort, UserKeys};
use super::session::Session;
use crate::domain::UserId;
use crate::web::AppState;

/// `?sort=&order=&done=` of list pages. Unknown values fall back to defaults.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    pub sort: Option<String>,
    pub order: Option<String>,
    pub done: Option<String>,
}

impl ListQuery {
    pub fn from(req: &HttpRequest) -> ListQuery {
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
    }

    pub fn sort(&self) -> Sort {
        Sort::parse(self.sort.as_deref(), self.order.as_deref())
    }

    /// The message for `?done=`: a fixed text per action, never the query's own words.
    pub fn notice(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "revoked" => "The key was revoked. It no longer works.",
            "renamed" => "The key's name was saved.",
            "limits" => "The key's limits were saved.",
            "disabled" => "The key is disabled. It does not work until you enable it.",
            "enabled" => "The key is enabled again.",
            "user-created" => "The user was created.",
            "user-disabled" => "The user is disabled: they cannot sign in and their keys do not work.",
            "user-enabled" => "The user is enabled again.",
            "password" => "The password was set. Their sessions and access tokens have ended.",
            "user-deleted" => "The user was deleted and their keys revoked.",
            _ => return None,
        })
    }
}

/// The keys of `owner` (the caller's for `None`) as a page shows them: live ones sorted,
/// those revoked lately, and the create form (as refused, if it was).
pub async fn keys_of<'a>(
    state: &AppState,
    session: &Session,
    owner: Option<UserId>,
    sort: Sort,
    refused: Refused<'a>,
) -> Result<UserKeys<'a>, UiError> {
    let kw = &state.keyward;
    let mut keys = kw.all_keys(&session.caller, owner).await?;
    sort.apply(&mut keys);
    let revoked = kw
        .recently_revoked_keys(&session.caller, owner, pages::REVOKED_SHOWN_FOR)
        .await?;
    Ok(UserKeys {
        keys,
        revoked,
        sort,
        form: KeyForm {
            default_lifetime: kw.default_key_lifetime().text(),
            refused,
        },
        now: session.now,
    })
}
