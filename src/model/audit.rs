//! The audit trail's lines: who did what to which record, from where. Never a secret.

use super::{Timestamp, UserId};

/// One line of the audit trail as written.
///
/// Stored with the target's name as it is when the line is written (the key's name, the
/// user's username, read in the same transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: Timestamp,
    pub actor_id: Option<UserId>,
    /// The actor's username, `operator` for the CLI, or `anonymous`.
    pub actor: String,
    /// `key.create`, `key.rename`, `key.revoke`, `user.create`, `user.update`,
    /// `user.delete`, `user.password`, `login.failed`, `session.start`, `session.end`, …
    /// (every one in [`AuditRecord::ACTIONS`]).
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub source_ip: Option<String>,
    /// What changed: field names, and values that are no secret (`role=admin`).
    pub detail: Option<String>,
}

impl AuditRecord {
    /// Every action a line may name; a stored action outside it reads back as `other`.
    pub const ACTIONS: [&'static str; 17] = [
        "key.create",
        "key.import",
        "key.update",
        "key.limits",
        "key.rotate",
        "key.rename",
        "key.revoke",
        "key.disable",
        "key.enable",
        "user.create",
        "user.update",
        "user.delete",
        "user.password",
        "user.password_rehashed",
        "login.failed",
        "session.start",
        "session.end",
    ];

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The action of the closed set that `text` names, `other` for none.
    pub fn action_named(text: &str) -> &'static str {
        Self::ACTIONS.iter().find(|a| **a == text).copied().unwrap_or("other")
    }

    /// The target kind that `text` names (`key` or `user`).
    pub fn target_named(text: &str) -> &'static str {
        if text == "key" { "key" } else { "user" }
    }
}

/// An audit line as read back: its position, the record, and its target's name as it was.
#[derive(Clone, Debug)]
pub struct AuditLine {
    pub seq: i64,
    pub record: AuditRecord,
    pub target_name: Option<String>,
}
