//! Following what other nodes commit: a connection of its own LISTENs on the feed's channel
//! (the fast hint: NOTIFY is sent inside each writing transaction, so it arrives only after
//! the commit), and the feed is read after the last position seen whenever a notification
//! arrives, every `poll_interval` regardless (the safety net), and after a reconnect. Rows are
//! resolved into what the in-memory view needs.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::PgStore;
use super::writer::CHANNEL;
use crate::model::{KeyId, Timestamp, UserId};
use crate::store::formats::SIGNING_KEYS;
use crate::store::{Change, StoreError};

/// Feed rows read per query.
const PAGE: i64 = 1000;

/// Where this process is in the feed, and the hints of the listening connection.
pub(super) struct FollowState {
    /// The last position applied.
    position: i64,
    /// A notification (or a reconnect) arrived since the last read; `None` until the first
    /// wait starts the listener (the CLI never waits, so it never listens).
    hints: Option<mpsc::Receiver<()>>,
}

impl FollowState {
    /// Following from `position` (the feed's end when the store opened).
    pub(super) fn at(position: i64) -> FollowState {
        FollowState { position, hints: None }
    }
}

/// The feed's current end.
pub(super) async fn feed_end(client: &tokio_postgres::Client) -> Result<i64, StoreError> {
    Ok(client
        .query_one("SELECT position FROM feed_head", &[])
        .await?
        .try_get(0)?)
}

/// Keeps a connection LISTENing, sending a hint for every notification and after every
/// (re)connect; reconnects after a second when the connection fails. Ends when the store is
/// dropped.
async fn listen(config: tokio_postgres::Config, hints: mpsc::Sender<()>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (messages_tx, mut messages) = mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => {
                                if messages_tx.send(()).is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                log::warn!("the feed listener's connection failed: {}", super::describe(&e));
                                return;
                            }
                            None => return,
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    log::warn!("LISTEN failed: {e}");
                } else {
                    // Whatever was committed while not listening is read now.
                    if hints.try_send(()).is_err() && hints.is_closed() {
                        driver.abort();
                        return;
                    }
                    while messages.recv().await.is_some() {
                        // Several notifications between two reads need one read.
                        let _ = hints.try_send(());
                        if hints.is_closed() {
                            driver.abort();
                            return;
                        }
                    }
                }
                driver.abort();
            }
            Err(e) => log::warn!("the feed listener cannot connect: {e}"),
        }
        if hints.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl PgStore {
    /// Waits for another node's commit (a NOTIFY) or `timeout`, whichever comes first.
    pub async fn wait_for_changes(&self, timeout: Duration) -> Result<(), StoreError> {
        let mut hints = {
            let mut state = self.follow.lock().await;
            match state.hints.take() {
                Some(hints) => hints,
                None => {
                    let (tx, hints) = mpsc::channel(1);
                    tokio::spawn(listen(self.connection_config().clone(), tx));
                    hints
                }
            }
        };
        let _ = tokio::time::timeout(timeout, hints.recv()).await;
        self.follow.lock().await.hints = Some(hints);
        Ok(())
    }

    /// What other nodes committed since the last call (the first: since the store opened),
    /// resolved as of `now`.
    pub async fn poll_changes(&self, now: Timestamp) -> Result<Vec<Change>, StoreError> {
        let mut state = self.follow.lock().await;
        let mut changes = Vec::new();
        // Moved on only once every row up to it is resolved: a read that fails part way
        // leaves the position where it was, and the next poll reads those rows again.
        let mut position = state.position;
        loop {
            let rows = self.changes_after(position, PAGE).await?;
            let full = rows.len() as i64 == PAGE;
            for (at, entity, id, _origin) in rows {
                // This node's own writes too: its view already has them, but a row of another
                // node resolved a moment before one of ours committed (a rename read as
                // "active" just before our revoke) must not be the last word on the key.
                if let Some(change) = self.resolve(&entity, &id, now).await? {
                    changes.push(change);
                }
                position = at;
            }
            if !full {
                state.position = position;
                return Ok(changes);
            }
        }
    }

    async fn resolve(&self, entity: &str, id: &str, now: Timestamp) -> Result<Option<Change>, StoreError> {
        Ok(match entity {
            "key" => match KeyId::parse(id) {
                None => None,
                Some(id) => self
                    .find_active_key(id, now)
                    .await?
                    .map(|(row, live, lookup)| match row {
                        Some(row) if live => Change::KeyActive(row),
                        _ => Change::KeyGone(lookup),
                    }),
            },
            "user" => match UserId::parse(id) {
                None => None,
                Some(id) => self.find_user(id).await?.map(Change::User),
            },
            _ if id == SIGNING_KEYS => Some(Change::SigningKeys(self.signing_keys().await?)),
            _ => None,
        })
    }
}
