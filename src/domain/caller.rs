//! Who is asking: [`Caller`] (a user and how they proved it) and [`Via`]. What a caller
//! may do is decided in `access.rs`.

use std::sync::Arc;

use super::{AuditRecord, KeyId, Timestamp, UserId, UserRecord};

/// How a caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    AccessToken,
    /// A web console session (cookie); only the console accepts it.
    Session,
    ApiKey {
        key_id: KeyId,
        expires_at: Option<Timestamp>,
        /// `None`: the key acts as its user.
        scopes: Option<Arc<[String]>>,
        /// The key has rate limits or credits of its own (its user's are not counted).
        limited: bool,
    },
    Password,
}

impl Via {
    /// The name `/v1/me` reports.
    pub fn method(&self) -> &'static str {
        match self {
            Via::AccessToken => "access_token",
            Via::Session => "session",
            Via::ApiKey { .. } => "api_key",
            Via::Password => "password",
        }
    }

    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            Via::ApiKey { key_id, .. } => Some(*key_id),
            _ => None,
        }
    }
}

/// An authenticated request's user and how they authenticated.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: Arc<UserRecord>,
    pub via: Via,
    /// The client's address, for throttling and the audit trail (set by the protocol).
    pub source: Option<std::net::IpAddr>,
}

impl Caller {
    pub(crate) fn audit(
        &self,
        action: &'static str,
        target: Option<(&'static str, String)>,
        now: Timestamp,
    ) -> AuditRecord {
        let operator = self.user.id == UserId::nil();
        AuditRecord {
            at: now,
            actor_id: (!operator).then_some(self.user.id),
            actor: self.user.username.clone(),
            action,
            target_type: target.as_ref().map(|t| t.0),
            target_id: target.map(|t| t.1),
            source_ip: self.source.map(|ip| ip.to_string()),
            detail: None,
        }
    }
}
