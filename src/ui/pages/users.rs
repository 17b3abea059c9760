//! Admin pages about users: the list with the create form, one user with their keys, and
//! the delete confirmation.

use maud::{Markup, html};

use super::keys::{UserKeys, create_key_form, keys_and_revoked};
use super::{Chrome, layout, notice, state_toggle, time};
use crate::domain::UserRecord;

/// A refused create-user form: the username and email to show again (each only if valid,
/// never the password), the role, and why.
pub struct UserDraft<'a> {
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
    pub admin: bool,
    pub reason: &'a str,
}

pub fn users(
    chrome: &Chrome,
    users: &[UserRecord],
    next: Option<&str>,
    note: Option<&str>,
    refused: Option<&UserDraft>,
) -> Markup {
    layout(
        "Users",
        Some(chrome),
        html! {
            h1 { "Users" }
            (notice(note))
            section.card {
                div.table-wrap {
                    table.stack id="users" {
                        thead { tr { th scope="col" { "Username" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Created" } } }
                        tbody {
                            @for u in users {
                                tr {
                                    td data-label="Username" { a href={ "/ui/users/" (u.id) } { (u.username) } }
                                    td data-label="Email" { (u.email.as_deref().unwrap_or("—")) }
                                    td data-label="Role" { (u.role.as_str()) }
                                    td data-label="Status" { span class={ "status " (user_status(u)) } { (user_status(u)) } }
                                    td data-label="Created" { (time(u.created_at)) }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    p { a href={ "/ui/users?cursor=" (next) } { "Next page →" } }
                }
            }
            section.card {
                h2 id="new-user-heading" { "Create a user" }
                @if let Some(refused) = refused {
                    p.error role="alert" id="create-user-error" { "The user was not created: " (refused.reason) }
                }
                form method="post" action="/ui/users" aria-labelledby="new-user-heading" {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label for="new-username" { "Username" }
                    input type="text" id="new-username" name="username" autocomplete="off" autocapitalize="none" spellcheck="false" required value=[refused.and_then(|r| r.username)];
                    label for="new-email" { "Email" span.hint { "Optional; they can sign in with it too." } }
                    input type="email" id="new-email" name="email" autocomplete="off" value=[refused.and_then(|r| r.email)];
                    label for="new-password" { "Password" span.hint { "At least 8 characters. Tell it to them by a safe channel." } }
                    input type="password" id="new-password" name="password" autocomplete="new-password" minlength="8" required;
                    label for="new-role" { "Role" }
                    select id="new-role" name="role" {
                        option value="user" { "user" }
                        option value="admin" selected[refused.is_some_and(|r| r.admin)] { "admin" }
                    }
                    div.actions { button type="submit" { "Create user" } }
                }
            }
        },
    )
}

fn user_status(u: &UserRecord) -> &'static str {
    if u.disabled { "disabled" } else { "active" }
}

pub fn user_detail(chrome: &Chrome, u: &UserRecord, all: &UserKeys, note: Option<&str>) -> Markup {
    let here = format!("/ui/users/{}", u.id);
    let keys_base = format!("{here}/keys");
    let yourself = u.username == chrome.username;
    layout(
        "User",
        Some(chrome),
        html! {
            p { a href="/ui/users" { "← Users" } }
            h1 { "User " (u.username) }
            (notice(note))
            section.card {
                dl.facts {
                    dt { "Username" } dd { (u.username) }
                    dt { "Email" } dd { (u.email.as_deref().unwrap_or("—")) }
                    dt { "Role" } dd { (u.role.as_str()) }
                    dt { "Status" } dd { span class={ "status " (user_status(u)) } { (user_status(u)) } }
                    dt { "Created" } dd { (time(u.created_at)) }
                    dt { "Id" } dd { code { (u.id) } }
                }
                @if yourself {
                    p.muted { "This is you: an admin cannot disable or delete themself." }
                } @else {
                    div.actions {
                        (state_toggle(&here, &chrome.csrf, u.disabled, "user"))
                        a.button.danger href={ (here) "/delete" } { "Delete user…" }
                    }
                }
            }
            h2 { "Keys of " (u.username) }
            (keys_and_revoked(all, &keys_base, &here))
            section.card {
                h2 id="reset-heading" { "Reset password" }
                p { "Signs them out everywhere: their sessions and access tokens end. Their keys keep working." }
                form method="post" action={ (here) "/password" } aria-labelledby="reset-heading" {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label for="reset-password" { "New password" span.hint { "At least 8 characters." } }
                    input type="password" id="reset-password" name="password" autocomplete="new-password" minlength="8" required;
                    div.actions { button type="submit" { "Set password" } }
                }
            }
            (create_key_form(&keys_base, &chrome.csrf, &all.form))
        },
    )
}

pub fn confirm_delete_user(chrome: &Chrome, u: &UserRecord) -> Markup {
    let here = format!("/ui/users/{}", u.id);
    layout(
        "Delete user",
        Some(chrome),
        html! {
            section.card.narrow {
                h1 { "Delete user " (u.username) "?" }
                p { "Their keys are revoked and their sessions end at once. The audit log keeps their history. This cannot be undone." }
                form method="post" action={ (here) "/delete" } {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    div.actions {
                        button.danger type="submit" { "Yes, delete " (u.username) }
                        a.button.secondary href=(here) { "Cancel" }
                    }
                }
            }
        },
    )
}
