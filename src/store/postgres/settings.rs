//! The `settings` table on PostgreSQL: name → value (the generated master secret; the
//! Ed25519 signing keys). A change to a setting is on the change feed, so other nodes learn
//! of a signing key added elsewhere.

use super::PgStore;
use super::writer::FeedRow;
use crate::model::SigningKey;
use crate::store::StoreError;
use crate::store::formats::{SIGNING_KEYS, signing_keys_from_text, signing_keys_to_text};

fn unreadable(why: String) -> StoreError {
    StoreError::new(crate::store::StoreErrorKind::Other, why)
}

impl PgStore {
    /// The value of setting `name`, if it has one.
    pub async fn setting(&self, name: &'static str) -> Result<Option<String>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query_opt("SELECT value FROM settings WHERE name = $1", &[&name])
            .await?
            .map(|row| row.get(0)))
    }

    /// Sets setting `name` to `value`.
    pub async fn put_setting(&self, name: &'static str, value: String) -> Result<(), StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        tx.execute(
                            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
                            &[&name, &value],
                        )
                        .await?;
                        let feed = vec![FeedRow {
                            entity: "settings",
                            id: name.to_owned(),
                            what: "set",
                            at: 0,
                            state: None,
                            not_after: None,
                        }];
                        Ok(((), feed))
                    })
                },
                |_| {},
            )
            .await
    }

    /// The value of setting `name`, storing `value` first if it has none (one transaction,
    /// so two nodes starting at once agree on one value).
    pub async fn setting_or_insert(&self, name: &'static str, value: String) -> Result<String, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        tx.execute(
                            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                            &[&name, &value],
                        )
                        .await?;
                        let row = tx
                            .query_one("SELECT value FROM settings WHERE name = $1", &[&name])
                            .await?;
                        Ok((row.get(0), Vec::new()))
                    })
                },
                |_| {},
            )
            .await
    }

    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        match self.setting(SIGNING_KEYS).await? {
            None => Ok(Vec::new()),
            Some(text) => signing_keys_from_text(&text).map_err(unreadable),
        }
    }

    /// The signing keys, storing `first` as the only one if there are none yet (one
    /// transaction: two nodes starting at once agree on one key).
    pub async fn signing_keys_or_insert(&self, first: SigningKey) -> Result<Vec<SigningKey>, StoreError> {
        self.update_signing_keys(move |keys| {
            if keys.is_empty() {
                keys.push(first);
            }
        })
        .await
    }

    pub async fn add_signing_key(&self, key: SigningKey) -> Result<Vec<SigningKey>, StoreError> {
        self.update_signing_keys(move |keys| keys.push(key)).await
    }

    /// Reads the signing keys with the row locked, changes them with `change`, and writes
    /// them back if they changed (with a feed row); every key after.
    async fn update_signing_keys(
        &self,
        change: impl FnOnce(&mut Vec<SigningKey>) + Send + 'static,
    ) -> Result<Vec<SigningKey>, StoreError> {
        self.writer
            .write(
                move |tx| {
                    Box::pin(async move {
                        // The row exists before it is locked, so two nodes serialise on it.
                        tx.execute(
                            "INSERT INTO settings (name, value) VALUES ($1, '[]') ON CONFLICT (name) DO NOTHING",
                            &[&SIGNING_KEYS],
                        )
                        .await?;
                        let text: String = tx
                            .query_one(
                                "SELECT value FROM settings WHERE name = $1 FOR UPDATE",
                                &[&SIGNING_KEYS],
                            )
                            .await?
                            .try_get(0)?;
                        let mut keys = signing_keys_from_text(&text).map_err(unreadable)?;
                        let before = keys.len();
                        change(&mut keys);
                        if keys.len() == before {
                            return Ok((keys, Vec::new()));
                        }
                        tx.execute(
                            "UPDATE settings SET value = $2 WHERE name = $1",
                            &[&SIGNING_KEYS, &signing_keys_to_text(&keys)],
                        )
                        .await?;
                        let row = FeedRow {
                            entity: "settings",
                            id: SIGNING_KEYS.to_owned(),
                            what: "set",
                            at: 0,
                            state: None,
                            not_after: None,
                        };
                        Ok((keys, vec![row]))
                    })
                },
                |_| {},
            )
            .await
    }
}
