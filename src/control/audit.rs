//! The audit trail: one record per applied change on a separate, non-compacted topic (compaction
//! would erase history), written by the replica whose change it was, and read back by every
//! replica into a bounded list for `GET /api/audit`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::state::DialState;
use crate::publish::producer::{self, producer_config, Health, Outgoing, Producer, Report};
use crate::publish::reader;
use crate::route::assign::{Mode, Share};

/// Entries kept in memory for the API; the topic keeps everything.
const KEEP: usize = 2_000;

/// One side of a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dial {
    pub mode: Mode,
    #[serde(with = "super::state::share_percent")]
    pub share_percent: Share,
    pub version: u64,
}

impl From<&DialState> for Dial {
    fn from(s: &DialState) -> Self {
        Self { mode: s.mode, share_percent: s.share, version: s.version }
    }
}

/// One audit record: who changed which route from what to what, why and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub route: String,
    /// A token's name, `guard`, `rollout` or `reload`.
    pub by: String,
    pub reason: String,
    #[serde(with = "super::state::rfc3339")]
    pub at: SystemTime,
    /// `null` for a route a reload added.
    pub old: Option<Dial>,
    pub new: Dial,
    #[serde(default)]
    pub guard_tripped: bool,
    #[serde(default)]
    pub rollout_paused: bool,
}

impl AuditEntry {
    /// The entry for a change from `old` to `new`.
    pub fn of(route: &str, old: &DialState, new: &DialState) -> Self {
        Self {
            route: route.to_string(),
            by: new.by.clone(),
            reason: new.reason.clone(),
            at: new.at,
            old: Some(old.into()),
            new: new.into(),
            guard_tripped: new.guard_tripped,
            rollout_paused: new.rollout_paused,
        }
    }
}

/// Writes and reads the audit topic.
pub struct Audit {
    topic: String,
    producer: Producer,
    recent: Mutex<VecDeque<AuditEntry>>,
}

impl Audit {
    pub fn new(brokers: &str, overrides: &BTreeMap<String, String>, topic: &str) -> anyhow::Result<Self> {
        let mut cfg = producer_config(brokers, overrides);
        cfg.set("linger.ms", "0");
        let producer = producer::create(&cfg, Arc::new(Health::default()))?;
        Ok(Self { topic: topic.to_string(), producer, recent: Mutex::default() })
    }

    /// Writes one entry (and logs it); waits for Kafka's acknowledgement.
    pub async fn write(&self, entry: AuditEntry) {
        tracing::info!(
            route = %entry.route, by = %entry.by, reason = %entry.reason, version = entry.new.version,
            mode = entry.new.mode.as_str(), share = entry.new.share_percent.percent(), "audit"
        );
        let Ok(value) = serde_json::to_vec(&entry) else { return };
        let out = Outgoing { topic: &self.topic, key: entry.route.as_bytes(), value: &value, headers: &[] };
        if let Report::Failed { error, .. } = producer::deliver(&self.producer, &out).await {
            tracing::error!(route = %entry.route, error = %error, "audit record not written");
        }
    }

    /// The latest entries, newest first, of one route or all.
    pub fn latest(&self, route: Option<&str>, limit: usize) -> Vec<AuditEntry> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().filter(|e| route.is_none_or(|r| e.route == r)).take(limit).cloned().collect()
    }

    /// Reads the audit topic from its beginning until `shutdown`, keeping the last entries.
    pub async fn run(
        self: Arc<Self>,
        brokers: String,
        overrides: BTreeMap<String, String>,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let Some(partitions) = super::topic::partitions_when_ready(&brokers, &overrides, &self.topic, &mut shutdown).await else {
            return Ok(());
        };
        let consumer = reader::assigned(&brokers, &overrides, &self.topic, partitions, Offset::Beginning, false)?;
        loop {
            tokio::select! {
                _ = crate::publish::reader::stopped(&mut shutdown) => {
                    crate::publish::reader::close(consumer).await;
                    return Ok(());
                }
                msg = consumer.recv() => match msg {
                    Ok(m) => match m.payload().map(serde_json::from_slice::<AuditEntry>) {
                        Some(Ok(entry)) => {
                            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
                            recent.push_back(entry);
                            while recent.len() > KEEP {
                                recent.pop_front();
                            }
                        }
                        _ => tracing::warn!(offset = m.offset(), "undecodable audit record skipped"),
                    },
                    Err(KafkaError::PartitionEOF(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "reading the audit topic"),
                },
            }
        }
    }
}
