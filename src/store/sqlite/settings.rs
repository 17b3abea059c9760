//! The `settings` table: name → value (the generated master secret; the Ed25519 signing
//! keys, as a JSON list of hex seeds, oldest first).

use rusqlite::{OptionalExtension, params};

use super::changes::Tx;
use super::{SqliteStore, StoreError};
use crate::model::SigningKey;

/// The setting that holds the signing keys.
const SIGNING_KEYS: &str = "ed25519_signing_keys";

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
    let unreadable = |why: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("the stored signing keys are unreadable: {why}").into(),
        )
    };
    let list: Vec<String> = serde_json::from_str(&text).map_err(|e| unreadable(&e.to_string()))?;
    list.iter()
        .map(|hex| {
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect();
            bytes
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(SigningKey::from_seed)
                .ok_or_else(|| unreadable("a key is malformed"))
        })
        .collect()
}

fn write_signing_keys(tx: &Tx<'_>, keys: Vec<SigningKey>) -> rusqlite::Result<Vec<SigningKey>> {
    let list: Vec<String> = keys.iter().map(|k| crate::model::hex(k.seed())).collect();
    tx.execute(
        "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2",
        params![SIGNING_KEYS, serde_json::json!(list).to_string()],
    )?;
    Ok(keys)
}
