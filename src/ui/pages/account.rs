//! Signing in, and the signed-in user's own account page.

use maud::{Markup, html};

use super::{Chrome, layout, notice};
use crate::domain::UserRecord;

/// The sign-in page; `first_admin_password` is where the generated admin password is, shown
/// until the admin has signed in once.
pub fn sign_in(csrf: &str, error: Option<&str>, note: Option<&str>, first_admin_password: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            section.card.narrow {
                h1 { "Sign in" }
                (notice(note))
                @if let Some(file) = first_admin_password {
                    div.hint-box id="first-sign-in" {
                        p { strong { "First time here?" } " Sign in as " code { "admin" } " with the password keyward generated on first start. It is in the file" }
                        p { code.path { (file) } }
                        p.muted { "on the server (readable by its owner only). Delete the file once you have the password, or change it on your account page." }
                    }
                }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                form method="post" action="/ui/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="username" { "Username or email" }
                    input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus;
                    label for="password" { "Password" }
                    input type="password" id="password" name="password" autocomplete="current-password" required;
                    div.actions { button type="submit" id="sign-in" { "Sign in" } }
                }
            }
        },
    )
}

pub fn account(chrome: &Chrome, user: &UserRecord) -> Markup {
    layout(
        "Account",
        Some(chrome),
        html! {
            h1 { "Your account" }
            section.card {
                dl.facts {
                    dt { "Username" } dd { (user.username) }
                    dt { "Email" } dd { (user.email.as_deref().unwrap_or("—")) }
                    dt { "Role" } dd { (user.role.as_str()) }
                }
            }
            section.card {
                h2 id="password-heading" { "Change your password" }
                p { "You will be signed out everywhere (sessions and access tokens); your keys keep working." }
                form method="post" action="/ui/account/password" aria-labelledby="password-heading" {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label for="current-password" { "Current password" }
                    input type="password" id="current-password" name="current_password" autocomplete="current-password" required;
                    label for="new-password" { "New password" span.hint { "At least 8 characters." } }
                    input type="password" id="new-password" name="new_password" autocomplete="new-password" minlength="8" required;
                    div.actions { button type="submit" { "Change password" } }
                }
            }
        },
    )
}
