//! The `settings` table: name → value (the generated master secret; the Ed25519 signing
//! keys, as a JSON list of hex seeds, oldest first).

use rusqlite::{OptionalExtension, params};

use super::changes::Tx;
use super::{SqliteStore, StoreError};
use crate::model::SigningKey;

use crate::store::formats::{SIGNING_KEYS, signing_keys_from_text, signing_keys_to_text};

impl SqliteStore {
    pub async fn setting(&self, name: &'static str) -> Result<Option<String>, StoreError> {
        self.read(move |c| {
            c.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// One writer, so two starts cannot both store a value.
    pub async fn setting_or_insert(&self, name: &'static str, value: String) -> Result<String, StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                tx.execute(
                    "INSERT OR IGNORE INTO settings (name, value) VALUES (?1, ?2)",
                    params![name, value],
                )?;
                tx.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| r.get(0))
            },
            |_| {},
        )
        .await
    }

    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        self.read(read_signing_keys).await
    }

    pub async fn signing_keys_or_insert(&self, first: SigningKey) -> Result<Vec<SigningKey>, StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                let keys = read_signing_keys(tx)?;
                if !keys.is_empty() {
                    return Ok(keys);
                }
                write_signing_keys(tx, vec![first])
            },
            |_| {},
        )
        .await
    }

    pub async fn add_signing_key(&self, key: SigningKey) -> Result<Vec<SigningKey>, StoreError> {
        self.write(
            Vec::new(),
            move |tx| {
                let mut keys = read_signing_keys(tx)?;
                keys.push(key);
                write_signing_keys(tx, keys)
            },
            |_| {},
        )
        .await
    }
}

fn read_signing_keys(c: &rusqlite::Connection) -> rusqlite::Result<Vec<SigningKey>> {
    let text: Option<String> = c
        .query_row("SELECT value FROM settings WHERE name = ?1", [SIGNING_KEYS], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    signing_keys_from_text(&text)
        .map_err(|why| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, why.into()))
}

fn write_signing_keys(tx: &Tx<'_>, keys: Vec<SigningKey>) -> rusqlite::Result<Vec<SigningKey>> {
    tx.execute(
        "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2",
        params![SIGNING_KEYS, signing_keys_to_text(&keys)],
    )?;
    Ok(keys)
}
