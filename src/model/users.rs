//! Users as stored, and the values a user carries: username, email, role.

use std::fmt;
use std::sync::Arc;

use super::{Credits, ModelError, RateLimits, Rendered, Timestamp, UserId};

/// A username: 1 to 64 of `A-Z a-z 0-9 . _ -`. Compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok_char) {
            return Err(ModelError::invalid(
                "username",
                "must be 1 to 64 characters of letters, digits, '.', '_' or '-'",
            ));
        }
        Ok(Username(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: one `@` with something on each side, no spaces, at most 254 chars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && s.split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if !valid {
            return Err(ModelError::invalid(
                "email",
                "must be an address such as \"ada@example.com\"",
            ));
        }
        Ok(Email(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            _ => Err(ModelError::invalid("role", "must be \"admin\" or \"user\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

/// A user as stored. The password hash is never printed.
#[derive(Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    pub email: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub deleted: bool,
    /// Access tokens name the epoch they were issued under; moving it on ends them.
    pub token_epoch: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The argon2id PHC string. Only the password check and the store read it.
    pub(crate) password_hash: Arc<str>,
    /// Rate limits shared by all of the user's keys (empty: none).
    pub ratelimits: RateLimits,
    /// Credits shared by all of the user's keys; `None`: unlimited.
    pub credits: Option<Credits>,
    /// The start of the refill period the stored balance belongs to.
    pub credits_period: Option<Timestamp>,
    /// The user as `GET /v1/me` writes it, made at its first request (empty in a clone).
    pub rendered: Rendered,
}

impl UserRecord {
    /// A user as made at `now`: active, at token epoch 0, without limits of its own.
    pub fn new(
        id: UserId,
        username: String,
        email: Option<String>,
        role: Role,
        password_hash: Arc<str>,
        now: Timestamp,
    ) -> UserRecord {
        UserRecord {
            id,
            username,
            email,
            role,
            disabled: false,
            deleted: false,
            token_epoch: 0,
            created_at: now,
            updated_at: now,
            password_hash,
            ratelimits: RateLimits::none(),
            credits: None,
            credits_period: None,
            rendered: Rendered::default(),
        }
    }

    /// Whether this user may authenticate at all.
    pub fn active(&self) -> bool {
        !self.disabled && !self.deleted
    }

    /// Whether the user's keys share rate limits or credits.
    pub fn limited(&self) -> bool {
        !self.ratelimits.is_empty() || self.credits.is_some()
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("deleted", &self.deleted)
            .field("password_hash", &"***")
            .finish_non_exhaustive()
    }
}
