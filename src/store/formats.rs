//! How values are kept in columns, the same in every backend: lists as JSON text, the audit
//! detail as a JSON object holding the detail and the target's name, the signing keys as a
//! JSON list of hex seeds, and the column lists the row readers expect.

use crate::model::{Credits, KeyRecord, MAX_CREDITS, RateLimits};
use crate::model::{SigningKey, Timestamp};
use crate::store::{CreditsChange, Payer};

/// The columns of a key record, in the order the row readers read them.
pub(crate) const KEY_COLUMNS: &str = "id, user_id, name, hash, created_at, updated_at, expires_at, last_used_at, disabled, scopes, meta, grants, \
         ratelimits, credits_remaining, credits_refill, credits_period, credits_generation";

/// The columns of a key as the in-memory view needs it.
pub(crate) const ACTIVE_KEY_COLUMNS: &str = "id, user_id, hash, expires_at, disabled, scopes, grants, ratelimits, credits_remaining, credits_refill, credits_generation";

/// The columns of a user record.
pub(crate) const USER_COLUMNS: &str = "id, username, email, password_hash, role, disabled, token_epoch, created_at, updated_at, deleted_at, \
     ratelimits, credits_remaining, credits_refill, credits_period, credits_generation";

/// The setting that holds the signing keys.
pub(crate) const SIGNING_KEYS: &str = "ed25519_signing_keys";

/// A list of strings as a JSON column.
pub(crate) fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_default()
}

/// The `scopes` column: NULL means none (the key acts as its user); a cell that cannot be
/// read is an error, and every caller fails closed on it.
pub(crate) fn scopes_from(text: Option<String>) -> Result<Option<Vec<String>>, String> {
    match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| e.to_string()),
    }
}

/// The `grants` column: NULL or unreadable means none (so nothing privileged is honoured).
pub(crate) fn grants_from(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// The `meta` column: unreadable is an empty object.
pub(crate) fn meta_from(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

/// The audit `detail` column: (detail, the target's name as it was), from the JSON the
/// writers store, or an older line's plain text as its detail.
pub(crate) fn audit_detail_from(column: Option<String>) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Stored {
        detail: Option<String>,
        target_name: Option<String>,
    }
    match column.as_deref().map(serde_json::from_str::<Stored>) {
        Some(Ok(stored)) => (stored.detail, stored.target_name),
        _ => (column, None),
    }
}

/// The signing keys' setting as text.
pub(crate) fn signing_keys_to_text(keys: &[SigningKey]) -> String {
    let list: Vec<String> = keys.iter().map(|k| crate::model::hex(k.seed())).collect();
    serde_json::json!(list).to_string()
}

/// The signing keys from their setting; an error says what is wrong (never a seed).
pub(crate) fn signing_keys_from_text(text: &str) -> Result<Vec<SigningKey>, String> {
    let list: Vec<String> =
        serde_json::from_str(text).map_err(|e| format!("the stored signing keys are unreadable: {e}"))?;
    list.iter()
        .map(|seed| {
            hex::decode(seed)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(SigningKey::from_seed)
                .ok_or_else(|| "the stored signing keys are unreadable: a key is malformed".to_owned())
        })
        .collect()
}

/// A number of credits as a column (at most `MAX_CREDITS`, far below `i64::MAX`).
pub(crate) fn credit_column(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The limits columns an update writes, as its parameters.
pub(crate) struct LimitsColumns {
    pub set_ratelimits: bool,
    pub ratelimits: Option<String>,
    pub set_credits: bool,
    pub remaining: Option<i64>,
    pub add: Option<i64>,
    pub refill: Option<String>,
    pub period: Option<i64>,
    /// A set that never raises the balance: the least of `remaining` and the balance, if
    /// the balance's period started at or after this (unix ms; `i64::MIN` without a refill).
    pub at_most_since: Option<i64>,
}

/// The key `$1` is a live, enabled key of user `$2`, not expired at `$3` and still expiring
/// when it did as the new key was checked, `$4` (unix ms, `NULL` for never: a key rotated
/// away meanwhile makes nothing), with no limits and no scopes of its own (one row), the
/// same text on both backends.
macro_rules! maker_is_live_and_unlimited {
    () => {
        "SELECT 1 FROM keys WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND NOT disabled \
         AND (expires_at IS NULL OR expires_at > $3) AND expires_at IS NOT DISTINCT FROM $4 \
         AND scopes IS NULL AND ratelimits IS NULL AND credits_remaining IS NULL"
    };
}
pub(crate) const MAKER_IS_LIVE_AND_UNLIMITED: &str = maker_is_live_and_unlimited!();
/// The same, locking the row (PostgreSQL): a revocation or new limits commit before or after.
pub(crate) const MAKER_IS_LIVE_AND_UNLIMITED_LOCKED: &str = concat!(maker_is_live_and_unlimited!(), " FOR UPDATE");

/// The values of the limits columns a change sets (credits set now start their refill
/// period now).
pub(crate) fn limits_columns(
    ratelimits: Option<&RateLimits>,
    credits: Option<CreditsChange>,
    now: Timestamp,
) -> LimitsColumns {
    let (set_credits, credits, add, at_most_since) = match credits {
        None => (false, None, None, None),
        Some(CreditsChange::Set(credits)) => (true, credits, None, None),
        Some(CreditsChange::SetAtMost { credits, since }) => (
            true,
            Some(credits),
            None,
            Some(since.map_or(i64::MIN, Timestamp::millis)),
        ),
        Some(CreditsChange::Add(n)) => (false, None, Some(credit_column(n)), None),
    };
    LimitsColumns {
        set_ratelimits: ratelimits.is_some(),
        ratelimits: ratelimits.and_then(RateLimits::to_column),
        set_credits,
        remaining: credits.map(|c| credit_column(c.remaining)),
        add,
        refill: credits.and_then(|c| c.refill_column()),
        period: credits
            .and_then(|c| c.refill)
            .map(|r| r.interval.period_start(now).millis()),
        at_most_since,
    }
}

/// The table, the condition for a live row and the id of a payer's credits.
pub(crate) fn payer_row(payer: Payer) -> (&'static str, &'static str, String) {
    match payer {
        Payer::Key(id) => ("keys", "revoked_at IS NULL", id.to_string()),
        Payer::User(id) => ("users", "deleted_at IS NULL", id.to_string()),
    }
}

/// The SQL text of the `UPDATE … SET` limits columns, with the placeholders of a backend
/// (`?` or `$`, and the cast an untyped number needs there) numbered from `first`, bound
/// to the fields of [`LimitsColumns`] in their order. An addition stops at
/// [`MAX_CREDITS`] (the domain refuses one that would pass it; two racing additions that
/// together would are capped there, never wrapped or failed).
pub(crate) fn limits_assignments(mark: char, cast: &str, first: usize) -> String {
    let p = |i: usize| format!("{mark}{}", first + i);
    format!(
        "ratelimits = CASE WHEN {0} THEN {1} ELSE ratelimits END, \
         credits_remaining = CASE \
           WHEN {2} AND {7}{cast} IS NOT NULL AND credits_remaining IS NOT NULL AND credits_remaining < {3}{cast} \
             AND coalesce(credits_period, {7}{cast}) >= {7}{cast} THEN credits_remaining \
           WHEN {2} THEN {3}{cast} \
           WHEN {4}{cast} IS NOT NULL THEN \
             CASE WHEN credits_remaining > {MAX_CREDITS} - {4}{cast} THEN {MAX_CREDITS} ELSE credits_remaining + {4}{cast} END \
           ELSE credits_remaining END, \
         credits_refill = CASE WHEN {2} THEN {5} ELSE credits_refill END, \
         credits_period = CASE WHEN {2} THEN {6}{cast} ELSE credits_period END, \
         credits_generation = CASE WHEN {2} THEN credits_generation + 1 ELSE credits_generation END",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7)
    )
}

/// A rotation's new key with the balance its old key has at the write (as credits given:
/// generation 0) and its refill period.
pub(crate) fn carried_over(mut new: KeyRecord, old: &KeyRecord) -> KeyRecord {
    new.credits = old.credits.map(|c| Credits { generation: 0, ..c });
    new.credits_period = old.credits_period;
    new
}
