//! The control topic's writer and reader. A change is written to the topic first and applied
//! when read back, on every replica including the writer, so every replica ends on the same
//! state; the call that wrote it returns once its own replica applied (or skipped) it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset};
use tokio::sync::{oneshot, watch};

use super::audit::{Audit, AuditEntry};
use super::record::{fold, ControlRecord, Folded, Kind, Known};
use super::state::{Change, DialState, Dials};
use crate::compare::waiters::partition_count;
use crate::publish::producer::{self, producer_config, Health, Outgoing, Producer, Report};
use crate::publish::reader;
use crate::route::assign::{Mode, Share};
use crate::telemetry::ControlMetrics;

/// How long a call waits for its record to come back from the topic.
const READ_BACK: Duration = Duration::from_secs(10);

/// Why a change was not applied.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// `expected_version` was not the version in force (before writing, or on read-back).
    #[error("version {in_force} is in force, not the expected one")]
    Conflict { in_force: u64 },
    /// The control topic could not take the change, or did not give it back in time.
    #[error("the control topic is unavailable: {0}")]
    Unavailable(String),
    /// This replica has not read the control topic to its end yet.
    #[error("this replica is still reading the control topic")]
    NotReady,
}

/// Writes changes to the control topic and folds the topic into [`Dials`].
pub struct Control {
    pub dials: Arc<Dials>,
    pub audit: Arc<Audit>,
    /// This replica's id in the records it writes.
    writer: String,
    topic: String,
    producer: Producer,
    pending: Mutex<HashMap<String, oneshot::Sender<Folded>>>,
    known: Mutex<HashMap<String, Known>>,
    caught_up: watch::Sender<bool>,
    metrics: ControlMetrics,
}

impl Control {
    /// A control plane over `topic`, writing audit entries through `audit`.
    pub fn new(
        brokers: &str,
        overrides: &BTreeMap<String, String>,
        topic: &str,
        dials: Arc<Dials>,
        audit: Arc<Audit>,
        metrics: ControlMetrics,
    ) -> anyhow::Result<Self> {
        let mut cfg = producer_config(brokers, overrides);
        cfg.set("message.timeout.ms", "10000").set("linger.ms", "0");
        let producer = producer::create(&cfg, Arc::new(Health::default()))?;
        Ok(Self {
            dials,
            audit,
            writer: ulid::Ulid::new().to_string(),
            topic: topic.to_string(),
            producer,
            pending: Mutex::default(),
            known: Mutex::default(),
            caught_up: watch::channel(false).0,
            metrics,
        })
    }

    /// True once the whole topic, as it was at start-up, has been read.
    pub fn caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    /// Waits until [`Control::caught_up`], at most `timeout`.
    pub async fn wait_caught_up(&self, timeout: Duration) -> bool {
        let mut rx = self.caught_up.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await.is_ok_and(|r| r.is_ok())
    }

    /// Whether `route` has had a control record (else its state is the configuration's).
    pub fn has_record(&self, route: &str) -> bool {
        lock(&self.known).get(route).is_some_and(|k| *k != Known::Initial)
    }

    /// Writes `change` and waits until this replica has read it back and applied it.
    pub async fn submit(&self, change: Change) -> Result<DialState, SubmitError> {
        if !self.caught_up() {
            return Err(SubmitError::NotReady);
        }
        let in_force = self.in_force(&change.route);
        if let Some(expected) = change.expected_version.filter(|e| *e != in_force.version) {
            tracing::debug!(route = %change.route, expected, in_force = in_force.version, "stale expected_version");
            return Err(SubmitError::Conflict { in_force: in_force.version });
        }
        let request_id = ulid::Ulid::new().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(request_id.clone(), tx);
        let record = ControlRecord::change(&change, SystemTime::now(), request_id.clone(), self.writer.clone());
        if let Err(e) = self.write(&record).await {
            lock(&self.pending).remove(&request_id);
            return Err(SubmitError::Unavailable(e));
        }
        let folded = tokio::time::timeout(READ_BACK, rx).await;
        lock(&self.pending).remove(&request_id);
        match folded {
            Ok(Ok(Folded::Applied { new, .. })) => Ok(new),
            Ok(Ok(Folded::Skipped { in_force })) => Err(SubmitError::Conflict { in_force }),
            Ok(Ok(other)) => Err(SubmitError::Unavailable(format!("unexpected read-back: {other:?}"))),
            Ok(Err(_)) | Err(_) => Err(SubmitError::Unavailable("the change was written but not read back in time".into())),
        }
    }

    /// The state in force for `route` (the configuration's shadow/0 for a route never seen).
    pub fn in_force(&self, route: &str) -> DialState {
        self.dials.get(route).map_or_else(|| DialState::initial(Mode::Shadow, Share::ZERO), |d| DialState::clone(&d))
    }

    async fn write(&self, record: &ControlRecord) -> Result<(), String> {
        let value = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let out = Outgoing { topic: &self.topic, key: record.route.as_bytes(), value: &value, headers: &[] };
        match producer::deliver(&self.producer, &out).await {
            Report::Acked => Ok(()),
            Report::Failed { error, .. } => Err(error.to_string()),
        }
    }

    /// Reads the control topic from its beginning until `shutdown`, folding every record.
    pub async fn run(
        self: Arc<Self>,
        brokers: String,
        overrides: BTreeMap<String, String>,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let Some(partitions) = partitions_when_ready(&brokers, &overrides, &self.topic, &mut shutdown).await else {
            return Ok(());
        };
        let consumer = reader::assigned(&brokers, &overrides, &self.topic, partitions, Offset::Beginning, true)?;
        let mut at_end: HashSet<i32> = HashSet::new();
        loop {
            // Owned values only leave the select: the fold below awaits Kafka writes.
            let next = tokio::select! {
                _ = crate::publish::reader::stopped(&mut shutdown) => None,
                msg = consumer.recv() => Some(msg.map(|m| (m.offset(), m.payload().map(<[u8]>::to_vec)))),
            };
            match next {
                None => {
                    crate::publish::reader::close(consumer).await;
                    return Ok(());
                }
                Some(Ok((offset, payload))) => match payload.as_deref().map(serde_json::from_slice::<ControlRecord>) {
                    Some(Ok(record)) => self.take(offset, record).await,
                    _ => {
                        self.metrics.bad_records.inc();
                        tracing::error!(offset, "undecodable control record skipped");
                    }
                },
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if at_end.insert(p) && at_end.len() == partitions as usize {
                        tracing::info!(topic = %self.topic, "control topic read to its end");
                        self.caught_up.send_replace(true);
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "reading the control topic"),
            }
        }
    }

    async fn take(&self, offset: i64, record: ControlRecord) {
        let in_force = self.in_force(&record.route);
        let known = lock(&self.known).get(&record.route).copied().unwrap_or(Known::Initial);
        let (folded, known) = fold(&in_force, known, offset, &record);
        lock(&self.known).insert(record.route.clone(), known);
        if let Folded::Applied { old, new } = &folded {
            self.dials.set(&record.route, new.clone());
            self.metrics.observe(&record.route, new);
            if record.kind == Kind::Change {
                self.metrics.changes.with_label_values(&[&record.route, &record.by]).inc();
                if new.guard_tripped && !old.guard_tripped {
                    self.metrics.guard_trips.with_label_values(&[&record.route]).inc();
                }
            }
            tracing::info!(
                route = %record.route, version = new.version, by = %new.by, reason = %new.reason,
                mode = new.mode.as_str(), share = new.share.percent(),
                old_mode = old.mode.as_str(), old_share = old.share.percent(), "route dial changed"
            );
        }
        let mine = record.writer == self.writer;
        if mine {
            match &folded {
                Folded::Applied { old, new } if record.kind == Kind::Change => {
                    self.audit.write(AuditEntry::of(&record.route, old, new)).await;
                }
                Folded::Skipped { .. } | Folded::Stale { .. } => {
                    // The topic's last record of this route must state what is in force.
                    let state = self.in_force(&record.route);
                    let restate =
                        ControlRecord::restate(&record.route, &state, ulid::Ulid::new().to_string(), self.writer.clone());
                    if let Err(e) = self.write(&restate).await {
                        tracing::warn!(route = %record.route, error = %e, "restating the control state failed");
                    }
                }
                _ => {}
            }
            if let Some(tx) = lock(&self.pending).remove(&record.request_id) {
                let _ = tx.send(folded);
            }
        }
    }

    /// Refreshes the dial gauges for every route (called at each scrape).
    pub fn refresh_gauges(&self) {
        for (route, state) in self.dials.all().iter() {
            self.metrics.observe(route, state);
        }
    }
}

/// The partition count of `topic`, asked again every few seconds while Kafka is unreachable or
/// the topic is missing (both logged); `None` once `shutdown` turns true.
pub async fn partitions_when_ready(
    brokers: &str,
    overrides: &BTreeMap<String, String>,
    topic: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<i32> {
    loop {
        match partition_count(brokers, overrides, topic).await {
            Ok(n) => return Some(n),
            Err(e) => tracing::warn!(topic, error = %e, "cannot read the topic yet; retrying"),
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return None,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
