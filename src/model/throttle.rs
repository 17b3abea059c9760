//! Failed password logins counted in a database every node shares: the rules the domain
//! sets, and what a check found. (On SQLite, one process counts them in memory.)

use std::time::Duration;

use super::Timestamp;

/// How failures turn into waits; see the domain's throttle for what each means.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleRules {
    /// Failures in a row from one address before that address waits.
    pub free_failures: u32,
    /// The longest wait for one address.
    pub max_block: Duration,
    /// Failures from anywhere before the account takes one attempt per `account_spacing`.
    pub account_free_failures: u32,
    pub account_spacing: Duration,
    /// A count this long without a failure starts again.
    pub forget_after: Duration,
}

/// What a check of an account (and the address trying it) found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThrottleCheck {
    /// No attempt before this instant; `None`: this attempt may go ahead.
    pub blocked_until: Option<Timestamp>,
    /// Whether any failure is counted for the account (a success then clears them).
    pub any_failures: bool,
}
