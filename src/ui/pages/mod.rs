//! The console's pages, as maud templates compiled into the binary. maud escapes every value
//! it interpolates; nothing here builds HTML from strings.

use actix_web::http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use std::collections::HashMap;

use crate::domain::{KeyId, KeyRecord, KeyTarget, Timestamp, UserId, UserRecord};
use crate::store::AuditLine;

/// Which part of the console a page belongs to (for the navigation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Keys,
    AllKeys,
    Users,
    Audit,
    Account,
}

/// Whose keys a table lists, which says where its rows link.
pub enum Rows<'a> {
    /// One user's keys, whose pages are under this base (`/ui/keys`, `/ui/users/{id}/keys`).
    Of(&'a str),
    /// Everyone's: each row names its owner (from this map) and links under their page.
    Everyone(&'a std::collections::HashMap<crate::domain::UserId, String>),
}

/// What every signed-in page shows around its content.
pub struct Chrome {
    pub username: String,
    pub admin: bool,
    /// The session's form token, for the sign-out button.
    pub csrf: String,
    pub section: Section,
}

/// How a key table is ordered: by which date, which way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SortBy {
    Created,
    Expires,
    LastUsed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sort {
    pub by: SortBy,
    pub descending: bool,
}

impl Sort {
    /// `?sort=created|expires|last_used&order=asc|desc`; anything else: newest first.
    pub fn parse(sort: Option<&str>, order: Option<&str>) -> Sort {
        let by = match sort {
            Some("expires") => SortBy::Expires,
            Some("last_used") => SortBy::LastUsed,
            _ => SortBy::Created,
        };
        Sort {
            by,
            descending: order != Some("asc"),
        }
    }

    fn param(self) -> &'static str {
        match self.by {
            SortBy::Created => "created",
            SortBy::Expires => "expires",
            SortBy::LastUsed => "last_used",
        }
    }

    /// Orders `keys`; keys without the date (never expires, never used) come last
    /// descending and first ascending, as if their date were infinitely late... or early.
    pub fn apply(self, keys: &mut [KeyRecord]) {
        let date = |k: &KeyRecord| match self.by {
            SortBy::Created => Some(k.created_at),
            // Never expiring sorts as the latest expiry.
            SortBy::Expires => Some(k.expires_at.unwrap_or(Timestamp::from_millis(i64::MAX))),
            SortBy::LastUsed => k.last_used_at,
        };
        keys.sort_by(|a, b| {
            let order = date(a).cmp(&date(b)).then_with(|| a.created_at.cmp(&b.created_at));
            if self.descending { order.reverse() } else { order }
        });
    }
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

fn key_status(k: &KeyRecord, now: Timestamp) -> &'static str {
    if k.disabled {
        "disabled"
    } else if k.expires_at.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
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

/// A table of keys (`rows` says whose), `page` is where the sort links point, `empty` what
/// to say when there is none. On a phone each row is a card of labelled fields.
fn key_table(keys: &[KeyRecord], rows: &Rows, page: &str, sort: Sort, now: Timestamp, empty: &str) -> Markup {
    let href = |k: &KeyRecord| match rows {
        Rows::Of(base) => format!("{base}/{}", k.id),
        Rows::Everyone(_) => format!("/ui/users/{}/keys/{}", k.user_id, k.id),
    };
    let owner = |k: &KeyRecord| match rows {
        Rows::Everyone(names) => Some(names.get(&k.user_id).map_or("?", String::as_str).to_owned()),
        Rows::Of(_) => None,
    };
    let header = |label: &str, by: SortBy| {
        let active = sort.by == by;
        let next = if active && sort.descending { "asc" } else { "desc" };
        let param = Sort { by, descending: true }.param();
        let aria = active.then_some(if sort.descending { "descending" } else { "ascending" });
        html! {
            th scope="col" aria-sort=[aria] {
                a href={ (page) "?sort=" (param) "&order=" (next) } {
                    (label)
                    @if active { (PreEscaped(if sort.descending { " &#9660;" } else { " &#9650;" })) }
                }
            }
        }
    };
    html! {
        @if keys.is_empty() {
            p.muted id="no-keys" { (empty) }
        } @else {
            div.table-wrap {
                table.stack id="keys" {
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            @if let Rows::Everyone(_) = rows { th scope="col" { "Owner" } }
                            (header("Created", SortBy::Created))
                            (header("Expires", SortBy::Expires))
                            (header("Last used", SortBy::LastUsed))
                            th scope="col" { "Scopes" }
                            th scope="col" { "Status" }
                        }
                    }
                    tbody {
                        @for k in keys {
                            tr data-key-id=(k.id) {
                                td data-label="Name" { a href=(href(k)) { (k.name.as_deref().unwrap_or("(no name)")) } }
                                @if let Some(owner) = owner(k) { td data-label="Owner" { a href={ "/ui/users/" (k.user_id) } { (owner) } } }
                                td data-label="Created" { (time(k.created_at)) }
                                td data-label="Expires" { (time_or(k.expires_at, "never")) }
                                td data-label="Last used" { (time_or(k.last_used_at, "never")) }
                                td.wrap data-label="Scopes" { (scopes_text(k)) }
                                td data-label="Status" { span class={ "status " (key_status(k, now)) } { (key_status(k, now)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn scopes_text(k: &KeyRecord) -> String {
    k.scopes
        .as_ref()
        .map_or_else(|| "all (acts as its user)".to_owned(), |s| s.join(" "))
}

pub fn all_keys(
    chrome: &Chrome,
    keys: &[KeyRecord],
    owners: &std::collections::HashMap<crate::domain::UserId, String>,
    total: u64,
    sort: Sort,
) -> Markup {
    layout(
        "All keys",
        Some(chrome),
        html! {
            h1 { "All keys" }
            @if total > keys.len() as u64 {
                p.muted { "The " (keys.len()) " newest of " (total) " live keys." }
            }
            section.card {
                (key_table(keys, &Rows::Everyone(owners), "/ui/all-keys", sort, Timestamp::now(), "No keys yet."))
            }
        },
    )
}

/// The expiry choices of the create form after the server's default: the seed APIs'
/// phrases; a date field follows.
const EXPIRY_CHOICES: [(&str, &str); 6] = [
    ("1 day", "1 day"),
    ("1 week", "1 week"),
    ("One Month", "One Month (31 days)"),
    ("90 days", "90 days"),
    ("1 year", "1 year"),
    ("never", "Never"),
];

/// The create-key form's fields as submitted: parsed from the post, and shown again, with
/// the reason, when the domain refuses them. Nothing in it is a secret.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
pub struct KeyDraft {
    pub name: String,
    pub expires: String,
    pub expires_on: String,
    pub scopes: String,
}

/// A refused create form: what was typed, and why it was refused.
pub type Refused<'a> = Option<(&'a KeyDraft, &'a str)>;

/// The create-key form: the server's default lifetime (`never`, `90d`), and what was refused.
pub struct KeyForm<'a> {
    pub default_lifetime: String,
    pub refused: Refused<'a>,
}

fn create_key_form(action: &str, csrf: &str, form: &KeyForm) -> Markup {
    let refused = form.refused;
    let draft = refused.map(|(draft, _)| draft);
    let typed = |field: fn(&KeyDraft) -> &str| draft.map(field).filter(|v| !v.is_empty());
    let chosen = draft.map_or("", |d| d.expires.as_str());
    html! {
        section.card {
            h2 id="create-heading" { "Create a key" }
            @if let Some((_, reason)) = refused {
                p.error role="alert" id="create-error" { "The key was not created: " (reason) }
            }
            form method="post" action=(action) aria-labelledby="create-heading" {
                input type="hidden" name="csrf" value=(csrf);
                label for="key-name" { "Name" span.hint { "Something to recognise it by, e.g. the service that uses it." } }
                input type="text" id="key-name" name="name" maxlength="256" value=[typed(|d| &d.name)];
                label for="key-expires" { "Expires" }
                select id="key-expires" name="expires" {
                    option value="" selected[chosen.is_empty()] { "Server default: " (form.default_lifetime) }
                    @for (value, label) in EXPIRY_CHOICES {
                        option value=(value) selected[value == chosen] { (label) }
                    }
                }
                label for="key-expires-on" { "…or on a date" span.hint { "YYYY-MM-DD, e.g. 2027-01-31. Overrides the choice above; the key works until the end of that day (UTC)." } }
                input type="text" id="key-expires-on" name="expires_on" inputmode="numeric" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" placeholder="YYYY-MM-DD" maxlength="10" autocomplete="off" value=[typed(|d| &d.expires_on)];
                label for="key-scopes" { "Scopes" span.hint { "Space-separated, e.g. keys:read orders:write. Empty: the key can do what you can." } }
                input type="text" id="key-scopes" name="scopes" autocapitalize="none" spellcheck="false" value=[typed(|d| &d.scopes)];
                div.actions { button type="submit" id="create-key" { "Create key" } }
            }
        }
    }
}

/// How far back the "Recently revoked" list goes.
pub const REVOKED_SHOWN_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// One user's keys as a page shows them: the live ones (sorted), those revoked lately, and
/// the create form.
pub struct UserKeys<'a> {
    pub keys: Vec<KeyRecord>,
    pub revoked: Vec<(KeyRecord, Timestamp)>,
    pub sort: Sort,
    pub form: KeyForm<'a>,
}

/// A user's live keys, then the ones revoked in the last 30 days.
fn keys_and_revoked(all: &UserKeys, base: &str, page: &str) -> Markup {
    let now = Timestamp::now();
    let revoked = &all.revoked;
    let empty = if revoked.is_empty() {
        "No keys yet."
    } else {
        "No live keys."
    };
    html! {
        section.card { (key_table(&all.keys, &Rows::Of(base), page, all.sort, now, empty)) }
        @if !revoked.is_empty() {
            section.card {
                h2 id="revoked-heading" { "Recently revoked" span.hint { "The last 30 days. These keys no longer work." } }
                div.table-wrap {
                    table.stack id="revoked" aria-labelledby="revoked-heading" {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "Revoked" } th scope="col" { "Last used" } th scope="col" { "Id" } } }
                        tbody {
                            @for (k, at) in revoked.iter() {
                                tr {
                                    td data-label="Name" { (k.name.as_deref().unwrap_or("(no name)")) }
                                    td data-label="Created" { (time(k.created_at)) }
                                    td data-label="Revoked" { (time(*at)) }
                                    td data-label="Last used" { (time_or(k.last_used_at, "never")) }
                                    td data-label="Id" { code { (k.id) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn my_keys(chrome: &Chrome, all: &UserKeys, note: Option<&str>) -> Markup {
    layout(
        "My keys",
        Some(chrome),
        html! {
            h1 { "My keys" }
            (notice(note))
            (keys_and_revoked(all, "/ui/keys", "/ui/keys"))
            (create_key_form("/ui/keys", &chrome.csrf, &all.form))
        },
    )
}

/// The one page that ever shows a key.
pub fn new_key(chrome: &Chrome, key: &KeyRecord, secret: &str, base: &str, rotated: bool) -> Markup {
    layout(
        "New key",
        Some(chrome),
        html! {
            h1 { @if rotated { "Key rotated: here is the new key" } @else { "Your new key" } }
            section.card {
                p.warning role="alert" {
                    strong { "Copy this key now. " }
                    "keyward keeps only a hash of it, so this is the only time it is shown. If you lose it, revoke it and create another."
                }
                code.secret id="new-key" { (secret) }
                div.actions {
                    button type="button" data-copy="new-key" hidden { "Copy key" }
                    span id="copy-status" role="status" {}
                }
            }
            section.card {
                (key_facts(key, Timestamp::now()))
                div.actions {
                    a.button href={ (base) "/" (key.id) } { "Key details" }
                    a.button.secondary href=(list_page(base)) { "Back to keys" }
                }
            }
        },
    )
}

/// `/ui/keys` -> itself; `/ui/users/{id}/keys` -> the user's page.
fn list_page(base: &str) -> &str {
    base.strip_suffix("/keys")
        .filter(|b| b.starts_with("/ui/users/"))
        .unwrap_or(base)
}

fn key_facts(k: &KeyRecord, now: Timestamp) -> Markup {
    html! {
        dl.facts {
            dt { "Name" } dd { (k.name.as_deref().unwrap_or("(no name)")) }
            dt { "Id" } dd { code { (k.id) } }
            dt { "Status" } dd { span class={ "status " (key_status(k, now)) } { (key_status(k, now)) } }
            dt { "Created" } dd { (time(k.created_at)) }
            dt { "Expires" } dd { (time_or(k.expires_at, "never")) }
            dt { "Last used" } dd { (time_or(k.last_used_at, "never")) }
            dt { "Scopes" } dd { (scopes_text(k)) }
        }
    }
}

/// Grace periods offered when rotating: how long the old key keeps working.
const GRACE_CHOICES: [(&str, &str); 4] = [
    ("0", "Stop the old key now"),
    ("1h", "1 hour"),
    ("1d", "1 day"),
    ("7d", "7 days"),
];

pub fn key_detail(chrome: &Chrome, k: &KeyRecord, base: &str, owner: Option<&str>, note: Option<&str>) -> Markup {
    let now = Timestamp::now();
    let here = format!("{base}/{}", k.id);
    layout(
        "Key",
        Some(chrome),
        html! {
            p { a href=(list_page(base)) { "← " @if let Some(owner) = owner { "Keys of " (owner) } @else { "My keys" } } }
            h1 { "Key " (k.name.as_deref().unwrap_or("(no name)")) }
            (notice(note))
            section.card { (key_facts(k, now)) }
            div.grid {
            section.card {
                h2 id="rename-heading" { "Relabel" }
                form method="post" action={ (here) "/name" } aria-labelledby="rename-heading" {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label for="new-name" { "Name" }
                    input type="text" id="new-name" name="name" maxlength="256" value=[k.name.as_deref()] required;
                    div.actions { button type="submit" { "Save name" } }
                }
            }
            section.card {
                h2 id="rotate-heading" { "Rotate" }
                p { "Makes a new key with the same name, scopes and lifetime, shown once. The old key keeps working for the grace period you choose, then stops." }
                form method="post" action={ (here) "/rotate" } aria-labelledby="rotate-heading" {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label for="grace" { "Grace period for the old key" }
                    select id="grace" name="grace" {
                        @for (value, label) in GRACE_CHOICES {
                            option value=(value) { (label) }
                        }
                    }
                    div.actions { button type="submit" id="rotate-key" { "Rotate key" } }
                }
            }
            section.card {
                h2 { "Disable or revoke" }
                p { "A disabled key stops working until it is enabled again. A revoked key stops working for good, from the next request." }
                div.actions {
                    (state_toggle(&here, &chrome.csrf, k.disabled, "key"))
                    a.button.danger id="revoke-key" href={ (here) "/revoke" } { "Revoke key…" }
                }
            }
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

pub fn confirm_revoke(chrome: &Chrome, k: &KeyRecord, base: &str) -> Markup {
    let here = format!("{base}/{}", k.id);
    layout(
        "Revoke key",
        Some(chrome),
        html! {
            section.card.narrow {
                h1 { "Revoke key " (k.name.as_deref().unwrap_or("(no name)")) "?" }
                p { "Anything that uses this key gets 401 from its next request. This cannot be undone." }
                form method="post" action={ (here) "/revoke" } {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    div.actions {
                        button.danger type="submit" id="confirm-revoke" { "Yes, revoke it" }
                        a.button.secondary href=(here) { "Cancel" }
                    }
                }
            }
        },
    )
}

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

/// What the audit page knows of the users and keys its lines name, as they are now: live
/// users' usernames, and keys (revoked ones too).
pub struct AuditNames {
    pub users: HashMap<UserId, String>,
    pub keys: HashMap<KeyId, KeyTarget>,
}

/// Who did it: their username as it was, linked to their page while they exist.
fn audit_actor(line: &AuditLine, names: &AuditNames) -> Markup {
    let a = &line.record;
    html! {
        @match a.actor_id.filter(|id| names.users.contains_key(id)) {
            Some(id) => a href={ "/ui/users/" (id) } { (a.actor) },
            None if a.actor == "operator" => { (a.actor) " " span.muted { "(CLI)" } },
            None => (a.actor),
        }
    }
}

/// What it was done to: the user's or key's name as it was when the line was written (the
/// name now for lines written before keyward recorded it), linked while it exists.
fn audit_target(line: &AuditLine, names: &AuditNames) -> Markup {
    let a = &line.record;
    let Some(id) = a.target_id.as_deref() else {
        return html! {};
    };
    match a.target_type {
        Some("user") => {
            let live = UserId::parse(id).and_then(|id| names.users.get(&id).map(|now| (id, now)));
            let name = line.target_name.as_deref().or(live.map(|(_, now)| now.as_str()));
            html! {
                span.muted { "user " }
                @match (live, name) {
                    (Some((id, _)), Some(name)) => a href={ "/ui/users/" (id) } { (name) },
                    (None, Some(name)) => (name),
                    (_, None) => code { (id) },
                }
            }
        }
        _ => {
            let key = KeyId::parse(id).and_then(|kid| names.keys.get(&kid).map(|k| (kid, k)));
            let name = line
                .target_name
                .clone()
                .or_else(|| key.and_then(|(_, k)| k.name.clone()))
                .unwrap_or_else(|| "(no name)".to_owned());
            html! {
                span.muted { "key " }
                @match key {
                    Some((kid, k)) if !k.revoked => a href={ "/ui/users/" (k.owner) "/keys/" (kid) } { (name) },
                    Some(_) => { (name) " " span.muted { "(revoked)" } },
                    None => code { (id) },
                }
            }
        }
    }
}

pub fn audit(chrome: &Chrome, entries: &[AuditLine], names: &AuditNames, next: Option<&str>) -> Markup {
    layout(
        "Audit log",
        Some(chrome),
        html! {
            h1 { "Audit log" }
            section.card {
                @if entries.is_empty() {
                    p.muted { "Nothing yet." }
                } @else {
                    div.table-wrap {
                        table.stack id="audit" {
                            thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "From" } th scope="col" { "Detail" } } }
                            tbody {
                                @for line in entries {
                                    @let a = &line.record;
                                    tr {
                                        td data-label="When" { (time(a.at)) }
                                        td data-label="Who" { (audit_actor(line, names)) }
                                        td data-label="Action" { code { (a.action) } }
                                        td data-label="Target" { (audit_target(line, names)) }
                                        td data-label="From" { (a.source_ip.as_deref().unwrap_or("—")) }
                                        td.wrap data-label="Detail" { (a.detail.as_deref().unwrap_or("—")) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    p { a href={ "/ui/audit?cursor=" (next) } { "Older entries →" } }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeyDigest, KeyId, UserId};

    fn key(created: i64, expires: Option<i64>, used: Option<i64>) -> KeyRecord {
        KeyRecord {
            id: KeyId::generate().unwrap_or_else(|e| panic!("{e}")),
            user_id: UserId::nil(),
            name: Some(format!("k{created}")),
            digest: KeyDigest::of("x"),
            created_at: Timestamp::from_secs(created),
            updated_at: Timestamp::from_secs(created),
            expires_at: expires.map(Timestamp::from_secs),
            last_used_at: used.map(Timestamp::from_secs),
            disabled: false,
            scopes: None,
            meta: serde_json::json!({}),
            grants: Vec::new(),
        }
    }

    fn names(keys: &[KeyRecord]) -> Vec<&str> {
        keys.iter().filter_map(|k| k.name.as_deref()).collect()
    }

    #[test]
    fn sorting_by_each_date() {
        let mut keys = vec![
            key(2, None, Some(10)),
            key(1, Some(50), None),
            key(3, Some(40), Some(5)),
        ];
        Sort::parse(None, None).apply(&mut keys);
        assert_eq!(names(&keys), ["k3", "k2", "k1"], "newest first by default");
        Sort::parse(Some("expires"), Some("asc")).apply(&mut keys);
        assert_eq!(names(&keys), ["k3", "k1", "k2"], "never expiring last");
        Sort::parse(Some("last_used"), Some("desc")).apply(&mut keys);
        assert_eq!(names(&keys), ["k2", "k3", "k1"], "never used last");
        assert_eq!(Sort::parse(Some("bogus"), Some("sideways")), Sort::parse(None, None));
    }

    #[test]
    fn values_are_escaped() {
        let mut k = key(1, None, None);
        k.name = Some("<script>alert(1)</script>".into());
        let chrome = Chrome {
            username: "<b>ada</b>".into(),
            admin: false,
            csrf: "t".into(),
            section: Section::Keys,
        };
        let all = UserKeys {
            keys: vec![k],
            revoked: Vec::new(),
            sort: Sort::parse(None, None),
            form: KeyForm {
                default_lifetime: "never".into(),
                refused: None,
            },
        };
        let html = my_keys(&chrome, &all, None).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<b>ada</b>"));
    }

    #[test]
    fn human_times() {
        assert_eq!(
            when(Timestamp::from_millis(1_620_060_007_900)),
            "2021-05-03 16:40:07 UTC"
        );
    }
}
