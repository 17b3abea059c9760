//! `keyward migrate --to postgres://…`: copies a SQLite database, every table and row, into
//! an empty PostgreSQL database in one transaction, so every key and password keeps working
//! on the new backend. The SQLite side is read in one read transaction (one consistent
//! snapshot); the PostgreSQL side commits only when everything is in.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::postgres::connect_migrated;
use super::{StoreError, StoreErrorKind};

/// Rows copied per statement.
const CHUNK: usize = 1000;

/// What was copied, table by table.
#[derive(Debug, Default)]
pub struct Copied {
    pub tables: Vec<(&'static str, u64)>,
}

/// One table: its name and columns, with each column's PostgreSQL type (for `unnest`), and
/// how a SQLite value becomes a PostgreSQL one.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    order: &'static str,
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Bool,
    Bytes,
}

const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("seq", Kind::Int),
            ("id", Kind::Text),
            ("username", Kind::Text),
            ("email", Kind::Text),
            ("password_hash", Kind::Text),
            ("role", Kind::Text),
            ("disabled", Kind::Bool),
            ("token_epoch", Kind::Int),
            ("created_at", Kind::Int),
            ("updated_at", Kind::Int),
            ("deleted_at", Kind::Int),
            ("ratelimits", Kind::Text),
            ("credits_remaining", Kind::Int),
            ("credits_refill", Kind::Text),
            ("credits_period", Kind::Int),
            ("credits_generation", Kind::Int),
        ],
        order: "seq",
    },
    Table {
        name: "keys",
        columns: &[
            ("seq", Kind::Int),
            ("id", Kind::Text),
            ("user_id", Kind::Text),
            ("name", Kind::Text),
            ("hash", Kind::Bytes),
            ("created_at", Kind::Int),
            ("updated_at", Kind::Int),
            ("expires_at", Kind::Int),
            ("last_used_at", Kind::Int),
            ("revoked_at", Kind::Int),
            ("disabled", Kind::Bool),
            ("scopes", Kind::Text),
            ("meta", Kind::Text),
            ("grants", Kind::Text),
            ("ratelimits", Kind::Text),
            ("credits_remaining", Kind::Int),
            ("credits_refill", Kind::Text),
            ("credits_period", Kind::Int),
            ("credits_generation", Kind::Int),
            ("sha256", Kind::Bytes),
        ],
        order: "seq",
    },
    Table {
        name: "key_usage",
        columns: &[
            ("key_id", Kind::Text),
            ("start", Kind::Int),
            ("valid", Kind::Int),
            ("rate_limited", Kind::Int),
            ("usage_exceeded", Kind::Int),
            ("expired", Kind::Int),
            ("disabled", Kind::Int),
            ("revoked", Kind::Int),
        ],
        order: "key_id, start",
    },
    Table {
        name: "fixtures",
        columns: &[("kind", Kind::Text), ("id", Kind::Text)],
        order: "kind, id",
    },
    Table {
        name: "fixture_credits",
        columns: &[("key_id", Kind::Text), ("remaining", Kind::Int), ("refill", Kind::Text)],
        order: "key_id",
    },
    Table {
        name: "settings",
        columns: &[("name", Kind::Text), ("value", Kind::Text)],
        order: "name",
    },
    Table {
        name: "changes",
        columns: &[
            ("seq", Kind::Int),
            ("entity", Kind::Text),
            ("id", Kind::Text),
            ("what", Kind::Text),
            ("at", Kind::Int),
            ("origin", Kind::Text),
            ("state", Kind::Text),
            ("not_after", Kind::Int),
        ],
        order: "seq",
    },
    Table {
        name: "audit",
        columns: &[
            ("seq", Kind::Int),
            ("at", Kind::Int),
            ("actor_id", Kind::Text),
            ("actor", Kind::Text),
            ("action", Kind::Text),
            ("target_type", Kind::Text),
            ("target_id", Kind::Text),
            ("source_ip", Kind::Text),
            ("detail", Kind::Text),
        ],
        order: "seq",
    },
    Table {
        name: "sessions",
        columns: &[
            ("hash", Kind::Bytes),
            ("user_id", Kind::Text),
            ("token_epoch", Kind::Int),
            ("created_at", Kind::Int),
            ("expires_at", Kind::Int),
        ],
        order: "hash",
    },
];

/// A chunk of one column's values.
enum Column {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Column {
    fn new(kind: Kind) -> Column {
        match kind {
            Kind::Int => Column::Int(Vec::new()),
            Kind::Text => Column::Text(Vec::new()),
            Kind::Bool => Column::Bool(Vec::new()),
            Kind::Bytes => Column::Bytes(Vec::new()),
        }
    }

    fn push(&mut self, row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<()> {
        match self {
            Column::Int(v) => v.push(row.get(i)?),
            Column::Text(v) => v.push(row.get(i)?),
            Column::Bool(v) => v.push(row.get::<_, Option<i64>>(i)?.map(|n| n != 0)),
            Column::Bytes(v) => v.push(row.get(i)?),
        }
        Ok(())
    }

    fn as_param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Int(v) => v,
            Column::Text(v) => v,
            Column::Bool(v) => v,
            Column::Bytes(v) => v,
        }
    }

    fn sql_type(kind: Kind) -> &'static str {
        match kind {
            Kind::Int => "BIGINT[]",
            Kind::Text => "TEXT[]",
            Kind::Bool => "BOOLEAN[]",
            Kind::Bytes => "BYTEA[]",
        }
    }
}

fn other(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Other, message)
}

/// Copies the SQLite database at `source` (already at this build's schema) into the empty
/// PostgreSQL database at `url`, telling `progress` the rows done and the total.
pub async fn sqlite_to_postgres(
    source: &Path,
    url: &str,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<Copied, StoreError> {
    // The target's schema brought up to date (a newer one refused) before anything else.
    let mut client = connect_migrated(url).await?;
    let tx = client.transaction().await?;
    // A node that started on this database bootstrapped an admin and a master secret: that
    // counts as not empty. So does anything else.
    for table in TABLES {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])
            .await?
            .try_get(0)?;
        if rows > 0 {
            return Err(other(format!(
                "the target database is not empty ({} has {rows} rows); migrate copies into an empty database only",
                table.name
            )));
        }
    }

    let sqlite = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StoreError::from)?;
    // One read transaction: the copy is one consistent snapshot.
    sqlite.execute_batch("BEGIN").map_err(StoreError::from)?;
    let mut total = 0u64;
    for table in TABLES {
        let n: i64 = sqlite
            .query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| r.get(0))
            .map_err(StoreError::from)?;
        total += u64::try_from(n).unwrap_or(0);
    }
    let mut done = 0u64;
    progress(done, total);
    let mut copied = Copied::default();
    for table in TABLES {
        let n = copy_table(&sqlite, &tx, table, &mut |rows| {
            done += rows;
            progress(done, total);
        })
        .await?;
        copied.tables.push((table.name, n));
    }
    // Sequences continue after the copied rows; the feed continues after its last position.
    for table in ["users", "keys", "audit"] {
        tx.batch_execute(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), coalesce((SELECT max(seq) FROM {table}), 0) + 1, false)"
        ))
        .await?;
    }
    tx.batch_execute("UPDATE feed_head SET position = coalesce((SELECT max(position) FROM changes), 0)")
        .await?;
    // What `key#N` counts on PostgreSQL (SQLite counts the keys each time).
    tx.batch_execute("UPDATE users SET keys_made = (SELECT count(*) FROM keys WHERE keys.user_id = users.id)")
        .await?;
    tx.commit().await?;
    let _ = sqlite.execute_batch("COMMIT");
    Ok(copied)
}

async fn copy_table(
    sqlite: &Connection,
    tx: &Transaction<'_>,
    table: &Table,
    progress: &mut impl FnMut(u64),
) -> Result<u64, StoreError> {
    let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
    // The feed's position is SQLite's `seq`.
    let target_names: Vec<&str> = names
        .iter()
        .map(|n| {
            if table.name == "changes" && *n == "seq" {
                "position"
            } else {
                n
            }
        })
        .collect();
    let unnest: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{}", i + 1, Column::sql_type(*kind)))
        .collect();
    let insert = format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({})",
        table.name,
        target_names.join(", "),
        unnest.join(", ")
    );
    let mut stmt = sqlite
        .prepare(&format!(
            "SELECT {} FROM {} ORDER BY {}",
            names.join(", "),
            table.name,
            table.order
        ))
        .map_err(StoreError::from)?;
    let mut rows = stmt.query([]).map_err(StoreError::from)?;
    let mut copied = 0u64;
    loop {
        let mut columns: Vec<Column> = table.columns.iter().map(|(_, k)| Column::new(*k)).collect();
        let mut in_chunk = 0usize;
        while in_chunk < CHUNK {
            let Some(row) = rows.next().map_err(StoreError::from)? else {
                break;
            };
            for (i, column) in columns.iter_mut().enumerate() {
                column.push(row, i).map_err(StoreError::from)?;
            }
            in_chunk += 1;
        }
        if in_chunk == 0 {
            return Ok(copied);
        }
        let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Column::as_param).collect();
        tx.execute(&insert, &params).await?;
        copied += in_chunk as u64;
        progress(in_chunk as u64);
        if in_chunk < CHUNK {
            return Ok(copied);
        }
    }
}
