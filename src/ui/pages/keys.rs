//! Key pages: the caller's keys, everyone's (admins), one key, the page that shows a new key
//! once, and the revoke confirmation; the key table and the create form that user pages
//! show too.

use maud::{Markup, PreEscaped, html};

use super::{Chrome, layout, notice, state_toggle, time, time_or};
use crate::domain::{KeyRecord, Timestamp, UsageCounts};
use crate::model::GivenDuration;

/// Whose keys a table lists, which says where its rows link.
pub enum Rows<'a> {
    /// One user's keys, whose pages are under this base (`/ui/keys`, `/ui/users/{id}/keys`).
    Of(&'a str),
    /// Everyone's: each row names its owner (from this map) and links under their page.
    Everyone(&'a std::collections::HashMap<crate::domain::UserId, String>),
}

/// How a key table is ordered: by which date, which way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SortBy {
    Created,
    Expires,
    LastUsed,
    /// Uses in the last 24 hours (the all-keys page).
    Uses,
}

/// Keys' uses in the last 24 hours, where a table shows them.
pub type Uses = std::collections::HashMap<crate::domain::KeyId, i64>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sort {
    pub by: SortBy,
    pub descending: bool,
}

impl Sort {
    /// `?sort=created|expires|last_used|uses&order=asc|desc`; anything else: newest first.
    pub fn parse(sort: Option<&str>, order: Option<&str>) -> Sort {
        let by = match sort {
            Some("expires") => SortBy::Expires,
            Some("last_used") => SortBy::LastUsed,
            Some("uses") => SortBy::Uses,
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
            SortBy::Uses => "uses",
        }
    }

    /// Orders `keys`; keys without the date (never expires, never used) come last
    /// descending and first ascending, as if their date were infinitely late... or early.
    pub fn apply(self, keys: &mut [KeyRecord]) {
        self.apply_with(keys, &Uses::new());
    }

    /// [`Self::apply`], with the keys' recent uses to sort by (a key not in `uses`: none).
    pub fn apply_with(self, keys: &mut [KeyRecord], uses: &Uses) {
        let date = |k: &KeyRecord| match self.by {
            SortBy::Created => Some(k.created_at.millis()),
            // Never expiring sorts as the latest expiry.
            SortBy::Expires => Some(k.expires_at.map_or(i64::MAX, Timestamp::millis)),
            SortBy::LastUsed => k.last_used_at.map(Timestamp::millis),
            SortBy::Uses => Some(uses.get(&k.id).copied().unwrap_or(0)),
        };
        keys.sort_by(|a, b| {
            let order = date(a).cmp(&date(b)).then_with(|| a.created_at.cmp(&b.created_at));
            if self.descending { order.reverse() } else { order }
        });
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

/// A table of keys (`rows` says whose), `page` is where the sort links point, `empty` what
/// to say when there is none. On a phone each row is a card of labelled fields.
fn key_table(keys: &[KeyRecord], rows: &Rows, page: &str, sort: Sort, now: Timestamp, empty: &str) -> Markup {
    key_table_with(keys, rows, page, sort, now, empty, None)
}

/// [`key_table`], with a column of the keys' uses in the last 24 hours when `uses` is given.
fn key_table_with(
    keys: &[KeyRecord],
    rows: &Rows,
    page: &str,
    sort: Sort,
    now: Timestamp,
    empty: &str,
    uses: Option<&Uses>,
) -> Markup {
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
                            @if uses.is_some() { (header("Uses (24 h)", SortBy::Uses)) }
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
                                @if let Some(uses) = uses { td.uses data-label="Uses (24 h)" { (uses.get(&k.id).copied().unwrap_or(0)) } }
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
    uses: &Uses,
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
                (key_table_with(keys, &Rows::Everyone(owners), "/ui/all-keys", sort, chrome.now, "No keys yet.", Some(uses)))
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

pub(super) fn create_key_form(action: &str, csrf: &str, form: &KeyForm) -> Markup {
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
    /// When they were read, by the domain's clock.
    pub now: Timestamp,
}

/// A user's live keys, then the ones revoked in the last 30 days.
pub(super) fn keys_and_revoked(all: &UserKeys, base: &str, page: &str) -> Markup {
    let now = all.now;
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
                (key_facts(key, chrome.now))
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
            dt { "Rate limits" } dd { (ratelimits_text(k)) }
            dt { "Credits" } dd { (credits_text(k)) }
        }
    }
}

/// A key's rate limits as a sentence: `requests: 100 per 1m; burst: 10 per 1 s`.
fn ratelimits_text(k: &KeyRecord) -> String {
    if k.ratelimits.is_empty() {
        return "none".to_owned();
    }
    k.ratelimits
        .as_slice()
        .iter()
        .map(|l| format!("{}: {} per {}", l.name(), l.limit(), given_text(l.given())))
        .collect::<Vec<_>>()
        .join("; ")
}

fn given_text(given: &GivenDuration) -> String {
    match given {
        GivenDuration::Text(t) => t.clone(),
        GivenDuration::Seconds(s) => format!("{s} s"),
    }
}

/// A key's credits as a sentence: `9500 left, refilled monthly to 10000`, or `unlimited`.
fn credits_text(k: &KeyRecord) -> String {
    match k.credits {
        None => "unlimited".to_owned(),
        Some(c) => match c.refill {
            None => format!("{} left", c.remaining),
            Some(r) => format!("{} left, refilled {} to {}", c.remaining, r.interval.as_str(), r.amount),
        },
    }
}

/// The rate limits as the form takes them back: one a line, `name limit duration`.
fn ratelimits_lines(k: &KeyRecord) -> String {
    k.ratelimits
        .as_slice()
        .iter()
        .map(|l| match l.given() {
            GivenDuration::Text(t) => format!("{} {} {t}", l.name(), l.limit()),
            GivenDuration::Seconds(s) => format!("{} {} {s}", l.name(), l.limit()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The card that changes a key's limits: its rate limits, its credits, and for an admin,
/// credits added. Only an admin loosens either; the domain refuses anyone else.
fn limits_card(chrome: &Chrome, k: &KeyRecord, here: &str) -> Markup {
    let refill = k.credits.and_then(|c| c.refill);
    let interval = refill.map(|r| r.interval.as_str());
    html! {
        section.card {
            h2 id="limits-heading" { "Limits" }
            p { "Rate limits apply to every request made with the key: up to the limit at once, refilled evenly over the duration. Each request costs one credit. "
                @if chrome.admin { "As an admin you may set any limits." } @else { "You may only tighten them: an admin raises them." } }
            form method="post" action={ (here) "/ratelimits" } aria-labelledby="limits-heading" {
                input type="hidden" name="csrf" value=(chrome.csrf);
                label for="ratelimits" { "Rate limits, one a line: name, requests, duration (e.g. " code { "requests 100 1m" } ")" }
                textarea id="ratelimits" name="ratelimits" rows="3" { (ratelimits_lines(k)) }
                div.actions { button type="submit" id="save-ratelimits" { "Save rate limits" } }
            }
            form method="post" action={ (here) "/credits" } {
                input type="hidden" name="csrf" value=(chrome.csrf);
                label for="remaining" { "Credits left (empty: unlimited)" }
                input type="number" id="remaining" name="remaining" min="0" value=[k.credits.map(|c| c.remaining)];
                label for="refill-interval" { "Refill" }
                select id="refill-interval" name="refill_interval" {
                    option value="" selected[interval.is_none()] { "none" }
                    option value="daily" selected[interval == Some("daily")] { "daily (UTC)" }
                    option value="monthly" selected[interval == Some("monthly")] { "monthly (UTC)" }
                }
                label for="refill-amount" { "Refill to" }
                input type="number" id="refill-amount" name="refill_amount" min="0" value=[refill.map(|r| r.amount)];
                div.actions { button type="submit" id="save-credits" { "Save credits" } }
            }
            @if chrome.admin && k.credits.is_some() {
                form method="post" action={ (here) "/credits/add" } {
                    input type="hidden" name="csrf" value=(chrome.csrf);
                    label for="add-credits" { "Add credits" }
                    input type="number" id="add-credits" name="add" min="1" required;
                    div.actions { button type="submit" id="add-credits-button" { "Add" } }
                }
            }
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

/// A key's page: its facts, its use over the last 30 days (`usage`, a bucket a day), and the
/// forms that change it.
pub fn key_detail(
    chrome: &Chrome,
    k: &KeyRecord,
    usage: &[(Timestamp, UsageCounts)],
    base: &str,
    owner: Option<&str>,
    note: Option<&str>,
) -> Markup {
    let now = chrome.now;
    let here = format!("{base}/{}", k.id);
    layout(
        "Key",
        Some(chrome),
        html! {
            p { a href=(list_page(base)) { "← " @if let Some(owner) = owner { "Keys of " (owner) } @else { "My keys" } } }
            h1 { "Key " (k.name.as_deref().unwrap_or("(no name)")) }
            (notice(note))
            section.card { (key_facts(k, now)) }
            section.card {
                h2 id="usage-heading" { "Last 30 days" }
                (super::chart::usage_chart(usage))
            }
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
            (limits_card(chrome, k, &here))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeyDigest, KeyId, UserId};
    use crate::ui::pages::Section;

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
            ratelimits: crate::model::RateLimits::none(),
            credits: None,
            credits_period: None,
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
            now: Timestamp::from_secs(1_000),
        };
        let all = UserKeys {
            keys: vec![k],
            revoked: Vec::new(),
            sort: Sort::parse(None, None),
            form: KeyForm {
                default_lifetime: "never".into(),
                refused: None,
            },
            now: Timestamp::from_secs(1_000),
        };
        let html = my_keys(&chrome, &all, None).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<b>ada</b>"));
    }
}
