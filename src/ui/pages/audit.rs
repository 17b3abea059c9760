//! The audit log page: who did what to which user or key, linked while they exist.

use std::collections::HashMap;

use maud::{Markup, html};

use super::{Chrome, layout, time};
use crate::domain::{AuditLine, KeyId, KeyTarget, UserId};

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
