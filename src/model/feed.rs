//! The offline revocation feed: a key's state after each change that ends or limits it,
//! in commit order.

use super::{KeyId, Timestamp};

/// What a change means to a service verifying keys offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedState {
    Revoked,
    Disabled,
    Enabled,
    /// The key's expiry came forward (a rotation's grace end): see `not_after`.
    Shortened,
}

impl FeedState {
    pub const ALL: [FeedState; 4] = [
        FeedState::Revoked,
        FeedState::Disabled,
        FeedState::Enabled,
        FeedState::Shortened,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedState::Revoked => "revoked",
            FeedState::Disabled => "disabled",
            FeedState::Enabled => "enabled",
            FeedState::Shortened => "shortened",
        }
    }

    /// The state `text` names; an unknown one reads as `revoked` (fail closed).
    pub fn named(text: &str) -> FeedState {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .unwrap_or(FeedState::Revoked)
    }
}

/// One entry of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEntry {
    /// Position in commit order; the cursor.
    pub seq: i64,
    pub id: KeyId,
    pub state: FeedState,
    pub at: Timestamp,
    /// The new end of a `shortened` key.
    pub not_after: Option<Timestamp>,
}
