//! Schema versions, applied in order at start. `PRAGMA user_version` records the version.

use rusqlite::Connection;

use super::{StoreError, StoreErrorKind};

/// Step N brings the schema from version N to N + 1. Append only; never edit a shipped step.
const STEPS: &[&str] = &[
    include_str!("../../../schema.sql"),
    include_str!("migrations/0002_sessions.sql"),
    include_str!("migrations/0003_grants_and_feed.sql"),
    include_str!("migrations/0004_revoked_keys.sql"),
    include_str!("migrations/0005_limits.sql"),
    include_str!("migrations/0006_imported_keys_and_fixtures.sql"),
    include_str!("migrations/0007_credits_generation.sql"),
    include_str!("migrations/0008_key_usage.sql"),
    include_str!("migrations/0009_fixture_credits.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// For a read-only open: the schema must already be this build's.
pub(super) fn check_current(conn: &Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current != SCHEMA_VERSION {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            format!(
                "the database has schema version {current}, this keyward needs {SCHEMA_VERSION}; a read-only open cannot migrate it"
            ),
        ));
    }
    Ok(())
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            format!(
                "the database has schema version {current}, newer than this keyward ({SCHEMA_VERSION}); upgrade keyward"
            ),
        ));
    }
    for (version, step) in STEPS.iter().enumerate().skip(usize::try_from(current).unwrap_or(0)) {
        log::info!("migrating the database schema to version {}", version + 1);
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_gains_the_sessions_table_and_the_revoked_keys_index() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch(STEPS[0])?;
        conn.pragma_update(None, "user_version", 1)?;
        conn.execute(
            "INSERT INTO users (id, username, password_hash, role, created_at, updated_at) VALUES (?1, 'ada', 'x', 'user', 0, 0)",
            ["0123456789abcdef01234567"],
        )?;
        migrate(&mut conn)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(version, SCHEMA_VERSION);
        let users: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        assert_eq!(users, 1, "data kept");
        let sessions: i64 = conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
        assert_eq!(sessions, 0);
        let index: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'keys_revoked_by_user'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(index, 1, "version 3's index of revoked keys");
        // Running it again changes nothing.
        migrate(&mut conn)?;
        Ok(())
    }
}
