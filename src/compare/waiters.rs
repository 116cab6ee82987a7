//! Awaited outcomes: a new-owned request with `await_outcome_ms` parks here until the new
//! service's outcome for its event arrives on the outcomes topic.
//!
//! Every replica reads every partition of the outcomes topic from its end (no consumer group:
//! the outcome may land on any partition, and the waiting request is on this replica).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset};
use tokio::sync::{oneshot, watch};

use super::outcome::{Outcome, Source};
use crate::publish::producer::client_config;
use crate::publish::reader;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>;

/// Requests waiting for a new outcome, by event id.
#[derive(Clone, Default)]
pub struct Waiters {
    pending: Pending,
}

/// One parked request. Dropping it forgets the wait.
pub struct Wait {
    id: String,
    pending: Pending,
    rx: Option<oneshot::Receiver<Outcome>>,
}

impl Waiters {
    /// Registers interest in `event_id`'s new outcome. Register before publishing the event, so
    /// a fast service cannot answer before anyone listens.
    pub fn register(&self, event_id: &str) -> Wait {
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(event_id.to_string(), tx);
        Wait { id: event_id.to_string(), pending: self.pending.clone(), rx: Some(rx) }
    }

    /// Hands a new outcome to the request waiting for it, if any.
    pub fn deliver(&self, outcome: Outcome) {
        if outcome.source != Source::New {
            return;
        }
        if let Some(tx) = lock(&self.pending).remove(&outcome.event_id) {
            let _ = tx.send(outcome);
        }
    }

    /// Reads the outcomes topic from its end until `shutdown`, delivering new outcomes.
    pub async fn run(
        self,
        brokers: String,
        overrides: std::collections::BTreeMap<String, String>,
        topic: String,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let partitions = partition_count(&brokers, &overrides, &topic).await?;
        let consumer = reader::assigned(&brokers, &overrides, &topic, partitions, Offset::End, false)?;
        loop {
            tokio::select! {
                _ = crate::publish::reader::stopped(&mut shutdown) => {
                    // Closing a consumer leaves its group and can block while the broker is
                    // unreachable; keep that off the async workers.
                    crate::publish::reader::close(consumer).await;
                    return Ok(());
                }
                msg = consumer.recv() => match msg {
                    Ok(m) => {
                        if let Some(Ok(outcome)) = m.payload().map(serde_json::from_slice::<Outcome>) {
                            self.deliver(outcome);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading outcomes for awaiting requests"),
                },
            }
        }
    }
}

impl Wait {
    /// The outcome, or `None` after `limit`.
    pub async fn wait(mut self, limit: Duration) -> Option<Outcome> {
        let rx = self.rx.take()?;
        tokio::time::timeout(limit, rx).await.ok()?.ok()
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        lock(&self.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Number of partitions of `topic`, from broker metadata.
pub async fn partition_count(
    brokers: &str,
    overrides: &std::collections::BTreeMap<String, String>,
    topic: &str,
) -> anyhow::Result<i32> {
    let probe: BaseConsumer = client_config(brokers, overrides).create()?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let md = probe.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let n = md.topics().first().map_or(0, |t| t.partitions().len());
        anyhow::ensure!(n > 0, "topic {topic} has no partitions (does it exist?)");
        Ok(n as i32)
    })
    .await?
}
