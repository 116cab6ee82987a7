//! Cluster-wide parity: every replica reads the whole parity topic (no consumer group) and folds
//! it into per-route figures over the last hour, so the admin API, the guard and the rollout give
//! the same answer on every replica, and a restarted replica has the last hour again at once.
//!
//! Figures are kept in 10-second buckets: a span asked for starts at the bucket holding its start,
//! so it can reach up to 10 s further back than asked. See [`fold`] for the pure part.

pub mod fold;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};

use crate::publish::reader::QuietEof;
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use self::fold::{Fold, MismatchSample, MissingSample, Skipped, BUCKET, BUCKETS};
use crate::compare::comparator::Parity;
use crate::compare::waiters::partition_count;
use crate::control::figures::Figures;
use crate::publish::producer::client_config;

/// Samples of each kind kept per route unless asked otherwise.
pub const DEFAULT_SAMPLES: usize = 50;
/// The most samples of each kind a route may keep.
pub const MAX_SAMPLES: usize = 1_000;
/// Routes folded; records for more are skipped (and counted).
pub const MAX_ROUTES: usize = 1_000;
/// Wait between attempts to find the parity topic's partitions.
const RETRY: Duration = Duration::from_secs(2);
/// Counted events remembered to skip a second record for the same event.
const REMEMBER: usize = 200_000;

/// The last hour of parity records, per route, as every replica sees it.
pub struct ClusterParity {
    fold: Mutex<Fold>,
    keep: usize,
    caught_up: watch::Sender<bool>,
}

impl Default for ClusterParity {
    fn default() -> Self {
        Self::new(DEFAULT_SAMPLES)
    }
}

impl ClusterParity {
    /// Keeps the last `samples` mismatches and missing events per route (at most [`MAX_SAMPLES`]).
    pub fn new(samples: usize) -> Self {
        let keep = samples.clamp(1, MAX_SAMPLES);
        Self { fold: Mutex::new(Fold::new(keep, MAX_ROUTES, REMEMBER)), keep, caught_up: watch::Sender::new(false) }
    }

    /// Reads every partition of the parity topic from an hour ago, then follows it, until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        brokers: String,
        overrides: BTreeMap<String, String>,
        topic: String,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut cfg = client_config(&brokers, &overrides);
        // A group id librdkafka needs, never joined nor committed to: each replica reads it all.
        cfg.set("group.id", format!("strangler-parity-{}", ulid::Ulid::new()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // Caught up is "every partition reached its end once", seen as EOF events: Tansu's
            // ListOffsets(latest) can lag, so watermarks are not trusted for it.
            .set("enable.partition.eof", "true");
        let consumer: StreamConsumer<QuietEof> = cfg.create_with_context(QuietEof)?;
        // Kafka may be down at start-up: keep asking until it answers.
        let partitions = loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
                found = partition_count(&brokers, &overrides, &topic) => match found {
                    Ok(n) => break n,
                    Err(e) => tracing::warn!(error = %e, %topic, "parity topic not readable yet; retrying"),
                },
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
                _ = tokio::time::sleep(RETRY) => {}
            }
        };
        let since = SystemTime::now() - BUCKET * BUCKETS as u32;
        consumer.assign(&start_offsets(&brokers, &overrides, &topic, partitions, since).await?)?;
        let mut at_end = vec![false; partitions as usize];
        loop {
            tokio::select! {
                _ = crate::publish::reader::stopped(&mut shutdown) => {
                    crate::publish::reader::close(consumer).await;
                    return Ok(());
                }
                msg = consumer.recv() => match msg {
                    Ok(m) => self.take(m.payload()),
                    Err(KafkaError::PartitionEOF(p)) => {
                        if let Some(seen) = at_end.get_mut(p as usize) {
                            *seen = true;
                        }
                        if at_end.iter().all(|e| *e) {
                            self.caught_up.send_if_modified(|c| !std::mem::replace(c, true));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the parity topic"),
                },
            }
        }
    }

    fn take(&self, payload: Option<&[u8]>) {
        let mut fold = self.lock();
        match payload.map(serde_json::from_slice::<Parity>) {
            Some(Ok(record)) => fold.add(record, SystemTime::now()),
            _ => fold.skipped.undecodable += 1,
        }
    }

    /// True once every partition was read to its end: the last hour is all here.
    pub fn caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    /// Waits until [`Self::caught_up`], at most `timeout`; returns whether it did.
    pub async fn wait_caught_up(&self, timeout: Duration) -> bool {
        let mut rx = self.caught_up.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// The route's counts decided since `since`, rounded down to 10 s, and never over an hour.
    pub fn figures(&self, route: &str, since: SystemTime) -> Figures {
        let now = SystemTime::now();
        self.lock().route(route).map(|r| r.buckets.sum(since, now)).unwrap_or_default()
    }

    /// The route's counts over the last `span` (at most an hour; 10 s granularity).
    pub fn window(&self, route: &str, span: Duration) -> Figures {
        self.figures(route, SystemTime::now().checked_sub(span).unwrap_or(SystemTime::UNIX_EPOCH))
    }

    /// Every 10-second bucket of the last hour with its start time, oldest first.
    pub fn trend(&self, route: &str) -> Vec<(SystemTime, Figures)> {
        let now = SystemTime::now();
        match self.lock().route(route) {
            Some(r) => r.buckets.trend(now),
            None => fold::Buckets::default().trend(now),
        }
    }

    /// The route's last mismatches with both sides, newest first; with `pointer`, only those
    /// with a diff whose pointer starts with it. At most `limit` (and the samples kept).
    pub fn mismatches(&self, route: &str, pointer: Option<&str>, limit: usize) -> Vec<MismatchSample> {
        self.lock().route(route).map(|r| r.mismatches(pointer, limit.min(self.keep))).unwrap_or_default()
    }

    /// The route's last `missing_new`, `missing_legacy` and `live_missing` events, newest first.
    pub fn missing(&self, route: &str, limit: usize) -> Vec<MissingSample> {
        self.lock().route(route).map(|r| r.missing(limit.min(self.keep))).unwrap_or_default()
    }

    /// Records read but not counted, by why.
    pub fn skipped(&self) -> Skipped {
        self.lock().skipped
    }

    fn lock(&self) -> MutexGuard<'_, Fold> {
        self.fold.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Each partition's first offset at or after `since`; the end where nothing is that recent, the
/// beginning where the broker cannot tell (older records are read and skipped by the fold).
async fn start_offsets(
    brokers: &str,
    overrides: &BTreeMap<String, String>,
    topic: &str,
    partitions: i32,
    since: SystemTime,
) -> anyhow::Result<TopicPartitionList> {
    let probe: BaseConsumer = client_config(brokers, overrides).create()?;
    let ms = since.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    let mut wanted = TopicPartitionList::new();
    for p in 0..partitions {
        wanted.add_partition_offset(topic, p, Offset::Offset(ms))?;
    }
    let found = tokio::task::spawn_blocking(move || probe.offsets_for_times(wanted, Duration::from_secs(10))).await?;
    let mut start = TopicPartitionList::new();
    for p in 0..partitions {
        let offset = match found.as_ref().ok().and_then(|f| f.find_partition(topic, p)).map(|e| (e.offset(), e.error())) {
            Some((Offset::Offset(o), Ok(()))) => Offset::Offset(o),
            Some((Offset::End, Ok(()))) => Offset::End,
            _ => Offset::Beginning,
        };
        tracing::debug!(topic, partition = p, ?offset, "parity topic read from");
        start.add_partition_offset(topic, p, offset)?;
    }
    if let Err(e) = &found {
        tracing::warn!(error = %e, topic, "offsets for an hour ago unknown: reading the parity topic from its beginning");
    }
    Ok(start)
}
