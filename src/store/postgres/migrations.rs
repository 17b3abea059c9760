//! Schema versions on PostgreSQL, applied in order at start, in one transaction that holds an
//! advisory lock: several nodes starting at once migrate once. `keyward_schema` records the
//! version (PostgreSQL has no `user_version`).

use tokio_postgres::Client;

use crate::store::{StoreError, StoreErrorKind};

/// Step N brings the schema from version N to N + 1. Append only; never edit a shipped step.
const STEPS: &[&str] = &[
    include_str!("migrations/0001_schema.sql"),
    include_str!("migrations/0002_limits.sql"),
    include_str!("migrations/0003_imported_keys_and_fixtures.sql"),
    include_str!("migrations/0004_credits_generation.sql"),
    include_str!("migrations/0005_key_usage.sql"),
    include_str!("migrations/0006_fixture_credits.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// Any number, the same on every node: the lock migrations take.
const LOCK: i64 = 0x6b65_7977_6172_6401;

pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // "relation already exists, skipping" on every start is not news.
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS keyward_schema (version BIGINT NOT NULL)")
        .await?;
    let current: i64 = match tx.query_opt("SELECT version FROM keyward_schema", &[]).await? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO keyward_schema (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    if current > SCHEMA_VERSION {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            format!(
                "the database has schema version {current}, newer than this keyward ({SCHEMA_VERSION}); upgrade keyward"
            ),
        ));
    }
    for (version, step) in STEPS.iter().enumerate().skip(usize::try_from(current).unwrap_or(0)) {
        log::info!("migrating the PostgreSQL schema to version {}", version + 1);
        tx.batch_execute(step).await?;
    }
    tx.execute("UPDATE keyward_schema SET version = $1", &[&SCHEMA_VERSION])
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The schema version of the database, for a read-only check.
pub(super) async fn version(client: &Client) -> Result<i64, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('keyward_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT version FROM keyward_schema", &[])
        .await?
        .map_or(0, |row| row.get(0)))
}
