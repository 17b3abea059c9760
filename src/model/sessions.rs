//! Web console sessions as stored. The session token itself is never stored, only its hash.

use super::{Timestamp, UserId};

/// A session: whose it is, the token epoch it signed in under, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub token_epoch: i64,
    pub expires_at: Timestamp,
}
