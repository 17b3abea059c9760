//! The console's pages, as maud templates compiled into the binary, one file per family:
//! [`account`] (sign-in, account), [`keys`], [`users`], [`audit`]; this file holds what they
//! share: the layout around every page, the navigation, times as people read them, notices,
//! the error page. maud escapes every value it interpolates; nothing here builds HTML from
//! strings.

mod account;
mod audit;
mod chart;
mod keys;
mod users;

use actix_web::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use crate::domain::Timestamp;

pub use account::{account, sign_in};
pub use audit::{AuditNames, audit};
pub use keys::{
    KeyDraft, KeyForm, REVOKED_SHOWN_FOR, Refused, Sort, UserKeys, all_keys, confirm_revoke, key_detail, my_keys,
    new_key,
};
pub use users::{UserDraft, confirm_delete_user, user_detail, users};

/// Which part of the console a page belongs to (for the navigation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Keys,
    AllKeys,
    Users,
    Audit,
    Account,
}

/// What every signed-in page shows around its content.
pub struct Chrome {
    pub username: String,
    pub admin: bool,
    /// The session's form token, for the sign-out button.
    pub csrf: String,
    pub section: Section,
    /// When the page is drawn, by the domain's clock (for "in 3 days", "expired").
    pub now: Timestamp,
}

/// A time as people read it, ISO 8601 to the second: `2026-11-23 18:41:07 UTC`.
fn when(t: Timestamp) -> String {
    format!("{} UTC", t.rfc3339().trim_end_matches('Z').replace('T', " "))
}

/// [`when`] in a `<time>` element that carries the machine-readable instant.
fn time(t: Timestamp) -> Markup {
    html! { time datetime=(t.rfc3339()) { (when(t)) } }
}

/// An optional time, or `none` (never expires, never used).
fn time_or(t: Option<Timestamp>, none: &str) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.muted { (none) } },
    }
}

fn layout(title: &str, chrome: Option<&Chrome>, content: Markup) -> Markup {
    let current = |section: Section| chrome.is_some_and(|c| c.section == section).then_some("page");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · keyward" }
                link rel="stylesheet" href="/ui/assets/console.css";
                script src="/ui/assets/console.js" defer {}
            }
            body {
                a.skip href="#content" { "Skip to content" }
                header.top {
                    a.brand href="/ui" { "keyward" }
                    @if let Some(chrome) = chrome {
                        nav aria-label="Main" {
                            a href="/ui/keys" aria-current=[current(Section::Keys)] { "My keys" }
                            @if chrome.admin {
                                a href="/ui/all-keys" aria-current=[current(Section::AllKeys)] { "All keys" }
                                a href="/ui/users" aria-current=[current(Section::Users)] { "Users" }
                                a href="/ui/audit" aria-current=[current(Section::Audit)] { "Audit log" }
                            }
                            a.who href="/ui/account" aria-current=[current(Section::Account)] title="Your account" { "Signed in as " strong { (chrome.username) } }
                            form method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(chrome.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="content" { (content) }
            }
        }
    }
}

fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { (text) }
        }
    }
}

pub fn error(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    layout(
        title,
        None,
        html! {
            section.card.narrow {
                h1 { (status.as_u16()) " " (title) }
                p.error role="alert" { (message) }
                p { a href="/ui" { "Back to the console" } }
            }
        },
    )
}

/// The button that disables a key or user, or enables it again (posts to `{here}/state`).
fn state_toggle(here: &str, csrf: &str, disabled: bool, what: &str) -> Markup {
    html! {
        form.inline method="post" action={ (here) "/state" } {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="disabled" value=(!disabled);
            button.secondary type="submit" { @if disabled { "Enable " } @else { "Disable " } (what) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_times() {
        assert_eq!(
            when(Timestamp::from_millis(1_620_060_007_900)),
            "2021-05-03 16:40:07 UTC"
        );
    }
}
