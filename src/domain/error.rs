//! The one error type of the domain. `crate::web::problem` maps it to responses.

use std::time::Duration;

use crate::store::{StoreError, StoreErrorKind};

/// Everything a domain call can refuse. `Display` is the public message: never a secret,
/// never SQL. Causes of `Internal` go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not there, or not yours: the two are deliberately indistinguishable.
    #[error("not found")]
    NotFound,
    /// No credential, or one that does not verify.
    #[error("authentication required")]
    Unauthenticated {
        /// Whether the request carried a credential at all (`error="invalid_token"`).
        presented: bool,
    },
    /// The request itself is malformed in a way RFC 6750 calls `invalid_request` (two
    /// different credentials).
    #[error("{0}")]
    InvalidRequest(String),
    /// A username and password that do not match (never saying which is wrong).
    #[error("wrong username or password")]
    WrongPassword,
    /// Authenticated, but this caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The key used lacks this scope.
    #[error("this key lacks the scope {0}")]
    InsufficientScope(String),
    /// Bad input: which field, and what is accepted.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The request clashes with what exists (a taken username, the last admin).
    #[error("{0}")]
    Conflict(String),
    /// Too many failed attempts; try again after the duration.
    #[error("too many failed attempts; try again later")]
    Throttled { retry_after: Duration },
    /// A rate limit of the key refused the request; it admits again after `retry_after`.
    #[error("rate limit \"{}\" exceeded: {} requests per {} seconds; retry after {} seconds", .limit.name, .limit.limit, .limit.window, .retry_after.as_secs())]
    RateLimited {
        limit: super::limits::RefusedLimit,
        retry_after: Duration,
    },
    /// The key has no credits left; `retry_after`: until its next refill, if it has one.
    #[error("this key has no credits left{}", if .retry_after.is_some() { " until its next refill" } else { "" })]
    UsageExceeded { retry_after: Option<Duration> },
    /// The database cannot take writes (full, read-only) or is not answering.
    #[error("{0}")]
    Unavailable(String),
    /// This node has not heard from the database for longer than `cluster.max_staleness`:
    /// it refuses credentials until it has (503 with `Retry-After`).
    #[error(
        "this node has lost touch with the database and refuses credentials until it catches up; retry, or use another node"
    )]
    Stale { retry_after: Duration },
    /// A bug or an unexpected failure; the cause is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// An `Invalid` of entry `index` of the list `list` (the entries count from 0).
    pub fn at_entry(self, list: &'static str, index: usize) -> Self {
        match self {
            Error::Invalid { field, reason } => Error::Invalid {
                field: list,
                reason: format!("entry {index}: {field}: {reason}"),
            },
            other => other,
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Error::Internal(cause.to_string())
    }
}

impl From<crate::model::ModelError> for Error {
    fn from(e: crate::model::ModelError) -> Self {
        match e {
            crate::model::ModelError::Invalid { field, reason } => Error::Invalid { field, reason },
            randomness @ crate::model::ModelError::Randomness(_) => Error::internal(randomness),
        }
    }
}

impl StoreError {
    /// The domain's view of a store failure; `what` is logged with the cause.
    pub(crate) fn into_domain(self, what: &str) -> Error {
        match self.kind {
            StoreErrorKind::Full => {
                log::warn!("{what}: {}", self.message);
                Error::Unavailable("the database is full (its disk, or database.max_size): writes are refused until there is room; reads go on".into())
            }
            StoreErrorKind::ReadOnly => {
                log::warn!("{what}: {}", self.message);
                Error::Unavailable("the database is read-only: writes are refused; reads go on".into())
            }
            StoreErrorKind::Unavailable | StoreErrorKind::Stopped => {
                log::warn!("{what}: {}", self.message);
                Error::Unavailable("the database cannot take this request now; try again later".into())
            }
            StoreErrorKind::Conflict => Error::Conflict("that conflicts with an existing record".into()),
            StoreErrorKind::AccessChanged => Error::Conflict(crate::store::ACCESS_CHANGED.into()),
            StoreErrorKind::Other => Error::Internal(format!("{what}: {}", self.message)),
        }
    }

    /// As [`into_domain`](Self::into_domain), with a specific message for a conflict.
    pub(crate) fn conflict_as(self, message: &str, what: &str) -> Error {
        match self.kind {
            StoreErrorKind::Conflict => Error::Conflict(message.into()),
            _ => self.into_domain(what),
        }
    }
}
