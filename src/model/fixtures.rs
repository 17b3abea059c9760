//! What an apply of fixtures created: the only users and keys `--prune` may remove.

use super::{KeyId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FixtureItem {
    User(UserId),
    Key(KeyId),
}

impl FixtureItem {
    pub fn kind(&self) -> &'static str {
        match self {
            FixtureItem::User(_) => "user",
            FixtureItem::Key(_) => "key",
        }
    }

    pub fn id(&self) -> String {
        match self {
            FixtureItem::User(id) => id.to_string(),
            FixtureItem::Key(id) => id.to_string(),
        }
    }

    /// From its stored kind and id; `None` for a row this build does not know.
    pub fn parse(kind: &str, id: &str) -> Option<Self> {
        match kind {
            "user" => UserId::parse(id).map(FixtureItem::User),
            "key" => KeyId::parse(id).map(FixtureItem::Key),
            _ => None,
        }
    }
}
