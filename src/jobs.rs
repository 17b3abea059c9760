//! Background work, owned by the running server (`startup`): following what other
//! processes write to the database, and writing key uses seen in memory. The steps are the
//! domain's ([`Keyward::apply_changes`], [`Keyward::flush_usage`]); this module only runs
//! them on a schedule, and stops with the server.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::domain::Keyward;

/// How often key uses seen in memory are written to the database. Reads show them at once
/// (the key view overlays them), so this only bounds what a crash can lose of them (a
/// graceful stop writes them all); longer means fewer writes for keys in constant use.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(30);
/// How often the server looks for writes made by other processes (the CLI).
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// The running jobs; dropping them does not stop them, [`Jobs::stop`] does.
pub struct Jobs {
    tasks: Vec<JoinHandle<()>>,
}

impl Jobs {
    /// Starts the change follower and the usage flush on the current tokio runtime. The
    /// follower reads what other processes committed at least every `follow_interval`, and
    /// sooner when the database says there is something (PostgreSQL's NOTIFY, with `notify`).
    pub fn start(keyward: &Keyward, follow_interval: Duration, notify: bool) -> Jobs {
        let kw = keyward.clone();
        let follower = tokio::spawn(async move {
            let mut failing = false;
            // Reads start at most `follow_interval` apart, however long each takes.
            let mut next = tokio::time::Instant::now() + follow_interval;
            loop {
                let wait = next.saturating_duration_since(tokio::time::Instant::now());
                kw.wait_for_changes(wait, notify).await;
                next = tokio::time::Instant::now() + follow_interval;
                match kw.apply_changes().await {
                    Ok(_) if failing => {
                        log::info!("the change feed is read again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !failing {
                            log::warn!("following database changes failed: {e:?}");
                        }
                        failing = true;
                    }
                }
            }
        });
        let flusher = every(keyward, USAGE_FLUSH_INTERVAL, |kw| async move {
            if let Err(e) = kw.flush_usage().await {
                log::warn!("writing key use times failed: {e:?}");
            }
            if let Err(e) = kw.return_idle_credits().await {
                log::warn!("giving back idle blocks of credits failed: {e:?}");
            }
        });
        Jobs {
            tasks: vec![follower, flusher],
        }
    }

    /// Stops every job (a step in progress is dropped at its next await; the writes it
    /// made stand). The server writes pending key uses itself once stopped.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Runs `step` every `interval` (the first after one interval), one at a time.
fn every<F, Fut>(keyward: &Keyward, interval: Duration, step: F) -> JoinHandle<()>
where
    F: Fn(Keyward) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let keyward = keyward.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            step(keyward.clone()).await;
        }
    })
}
