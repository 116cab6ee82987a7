//! The consumer-lag monitor: every `lag.interval_ms`, each watched group's lag on each of its
//! topics (committed offsets against end offsets), into the lag gauges and the snapshot that
//! `GET /api/lag` answers.
//!
//! Watched: the `[[lag.group]]` entries, then the comparator's own group on the outcomes topic
//! when the comparator runs and `lag.comparator` is true. A group whose refresh fails keeps its
//! last figures, carries the error, and counts `strangler_consumer_lag_refresh_errors_total`.

pub mod figures;
mod read;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rdkafka::config::ClientConfig;
use serde::Serialize;
use tokio::sync::watch;

use crate::config::lag::Lag;
use crate::telemetry::lag::{LagMetrics, PartitionFigures};
use figures::TopicLag;
pub use read::READER_GROUP;

/// Where a watched group came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// strangler's comparator (`comparator.group_id` on `kafka.outcomes_topic`).
    Comparator,
    /// A `[[lag.group]]`.
    Config,
}

/// One group as `GET /api/lag` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupLag {
    pub group: String,
    pub source: Source,
    /// The last refresh's failure; `None` once a refresh succeeds.
    pub error: Option<String>,
    pub topics: Vec<TopicLag>,
}

/// Every watched group's latest figures.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the last refresh ended; `None` before the first.
    pub refreshed_at: Option<SystemTime>,
    pub groups: Vec<GroupLag>,
}

/// The monitor: what it watches and what it last saw.
pub struct Monitor {
    pub interval: Duration,
    metrics: LagMetrics,
    snapshot: ArcSwap<Snapshot>,
}

impl Monitor {
    /// Watches `lag`'s groups, and `comparator` (group, outcomes topic) unless `lag.comparator`
    /// is false or a `[[lag.group]]` has the same name. Creates the gauges' series at zero.
    pub fn new(lag: &Lag, comparator: Option<(&str, &str)>, metrics: LagMetrics) -> Self {
        let mut groups: Vec<GroupLag> = lag
            .groups
            .iter()
            .map(|g| GroupLag {
                group: g.name.clone(),
                source: Source::Config,
                error: None,
                topics: g.topics.iter().map(|t| TopicLag::zero(t)).collect(),
            })
            .collect();
        if let Some((group, topic)) = comparator.filter(|(g, _)| lag.comparator && !groups.iter().any(|x| x.group == *g)) {
            groups.push(GroupLag {
                group: group.to_string(),
                source: Source::Comparator,
                error: None,
                topics: vec![TopicLag::zero(topic)],
            });
        }
        let topics: Vec<(String, Vec<String>)> =
            groups.iter().map(|g| (g.group.clone(), g.topics.iter().map(|t| t.topic.clone()).collect())).collect();
        if let Err(e) = metrics.configure(lag.per_partition, topics.iter().map(|(g, t)| (g.as_str(), t.as_slice()))) {
            tracing::error!(error = %e, "registering the consumer lag gauges failed");
        }
        Self { interval: lag.interval, metrics, snapshot: ArcSwap::from_pointee(Snapshot { refreshed_at: None, groups }) }
    }

    /// True when there is at least one group to watch.
    pub fn watches_anything(&self) -> bool {
        !self.snapshot.load().groups.is_empty()
    }

    /// The latest figures.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Refreshes every `interval` until `stop`. `config`: strangler's Kafka client settings.
    pub async fn run(self: Arc<Self>, config: ClientConfig, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut reader = None;
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            let wanted: Vec<(String, Vec<String>)> = self
                .snapshot
                .load()
                .groups
                .iter()
                .map(|g| (g.group.clone(), g.topics.iter().map(|t| t.topic.clone()).collect()))
                .collect();
            let config = config.clone();
            let kept = reader.take();
            let round = tokio::task::spawn_blocking(move || {
                let mut client = match kept {
                    Some(r) => Ok(r),
                    None => read::Reader::new(config).map_err(|e| format!("creating the Kafka client: {e}")),
                };
                let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
                let results: Vec<Result<Vec<TopicLag>, String>> = wanted
                    .iter()
                    .map(|(group, topics)| match &mut client {
                        Ok(r) => r.group(group, topics, now_ms),
                        Err(e) => Err(e.clone()),
                    })
                    .collect();
                (client.ok(), results)
            });
            // A broker that does not answer must not hold up shutdown: the round ends on its own.
            let (client, results) = tokio::select! {
                done = round => done?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            reader = client;
            self.apply(results);
        }
    }

    /// Puts one round's results in force: figures into the gauges and the snapshot; a failed
    /// group keeps its figures, counts the error and logs it when it differs from the last.
    fn apply(&self, results: Vec<Result<Vec<TopicLag>, String>>) {
        let mut next = Snapshot::clone(&self.snapshot.load());
        for (g, result) in next.groups.iter_mut().zip(results) {
            match result {
                Ok(topics) => {
                    if g.error.take().is_some() {
                        tracing::info!(group = %g.group, "consumer lag: refreshing the group works again");
                    }
                    for t in &topics {
                        let partitions: Vec<PartitionFigures> = t
                            .partitions
                            .iter()
                            .map(|p| PartitionFigures {
                                partition: p.partition,
                                lag_records: p.lag_records,
                                lag_seconds: p.lag_seconds,
                            })
                            .collect();
                        let total = (t.lag_records, t.max_partition_lag_records, t.lag_seconds);
                        self.metrics.observe(&g.group, &t.topic, total, &partitions);
                    }
                    g.topics = topics;
                }
                Err(e) => {
                    self.metrics.refresh_errors.with_label_values(&[&g.group]).inc();
                    if g.error.as_deref() != Some(e.as_str()) {
                        tracing::warn!(group = %g.group, error = %e, "consumer lag: refreshing the group failed; its figures are the last known");
                    }
                    g.error = Some(e);
                }
            }
        }
        next.refreshed_at = Some(SystemTime::now());
        self.snapshot.store(Arc::new(next));
    }
}
