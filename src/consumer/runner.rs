//! The run loop: consume with a group and dispatch each record to a lane by a hash of its key
//! (per-key order), bound the records in flight, store each partition's offset up to its lowest
//! unfinished record as lanes report records done, and on shutdown let the lanes finish what they
//! hold, then commit.

use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use crate::publish::producer;

use super::config::ConsumerConfig;
use super::dedupe::Dedupe;

use super::handler::Handler;
use super::lane::{run_lane, Job, Shared};
use super::offsets::Offsets;
use super::raw::Raw;
use super::settle::Done;
use super::ConsumerError;

/// What one [`run`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Events the handler decided.
    pub handled: u64,
    /// Records skipped because their event id was already answered.
    pub deduplicated: u64,
    /// Records written to a dead-letter topic.
    pub dead_lettered: u64,
    /// Outcomes the broker acknowledged.
    pub outcomes_published: u64,
    /// Side effects [`Effects::perform`](super::Effects::perform) skipped because the event was a
    /// shadow one.
    pub effects_skipped: u64,
    /// Events marked `ce_stranglersignature=invalid` (observe mode), skipped unhandled: no
    /// outcome, and their id stays free for the genuine delivery.
    pub skipped_invalid: u64,
}

impl AddAssign for RunStats {
    fn add_assign(&mut self, o: Self) {
        self.handled += o.handled;
        self.deduplicated += o.deduplicated;
        self.dead_lettered += o.dead_lettered;
        self.outcomes_published += o.outcomes_published;
        self.effects_skipped += o.effects_skipped;
        self.skipped_invalid += o.skipped_invalid;
    }
}

/// Consumes `cfg.topics` with `handler` until `shutdown` becomes `true` (or its sender is
/// dropped), then finishes the records it received, commits the stored offsets and returns what
/// it did.
///
/// Records go to `cfg.lanes` lanes by a hash of their key; each lane handles its records one at a
/// time, so events with the same key are handled in the order they were received. A record is
/// done once its outcome is acknowledged (awaited beside the lane), it is dead-lettered or
/// skipped; a partition's offset is stored only up to its lowest record not yet done. Per-record
/// problems never end the loop: undecodable records and events the handler keeps failing go to
/// the dead-letter topic; outcome and dead-letter writes are retried until the broker
/// acknowledges them (a shutdown during those retries leaves the record uncommitted, and for a
/// dead-letter write the rest of its lane too, to be delivered again). Errors are for clients
/// that cannot be set up, and a failed final commit.
pub async fn run<H: Handler>(
    cfg: ConsumerConfig,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunStats, ConsumerError> {
    cfg.validate()?;
    let kafka = |what| move |source| ConsumerError::Kafka { what, source };
    let consumer: StreamConsumer =
        producer::client_config(&cfg.brokers, &cfg.consumer_settings()).create().map_err(kafka("consumer"))?;
    let producer = producer::producer_config(&cfg.brokers, &cfg.producer_settings()).create().map_err(kafka("producer"))?;
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(kafka("subscribe"))?;
    tracing::info!(group = %cfg.group_id, ?topics, service = %cfg.service_name, lanes = cfg.lanes, "consumer kit running");

    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<Done>>();
    let dedupe = Dedupe::new(cfg.dedupe_capacity);
    let shared = Arc::new(Shared { dedupe, handler, producer, cfg, outcomes_acked: AtomicU64::new(0) });
    let (lanes, tasks): (Vec<_>, Vec<_>) = (0..shared.cfg.lanes)
        .map(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            (tx, tokio::spawn(run_lane(shared.clone(), rx, done_tx.clone(), shutdown.clone())))
        })
        .unzip();
    drop(done_tx);

    let max_in_flight = shared.cfg.max_in_flight;
    let mut offsets = Offsets::default();
    let mut topics: Vec<Arc<str>> = Vec::new();
    let mut batches: Vec<Vec<Job>> = (0..lanes.len()).map(|_| Vec::new()).collect();
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            Some(done) = done_rx.recv() => {
                let mut moved = Moved::default();
                finish(&mut offsets, &mut moved, done);
                while let Ok(done) = done_rx.try_recv() {
                    finish(&mut offsets, &mut moved, done);
                }
                moved.store(&consumer);
            }
            // Backpressure: a record is received only with room for it in flight.
            received = consumer.recv(), if offsets.in_flight() < max_in_flight => {
                // Whatever else librdkafka already holds comes in the same turn, so each lane
                // wakes once for a batch of records.
                let mut next = Some(received);
                let mut burst = 0;
                while let Some(received) = next.take() {
                    match received {
                        Ok(m) => {
                            let topic = intern(&mut topics, m.topic());
                            offsets.begin(&topic, m.partition(), m.offset());
                            let lane = crc32fast::hash(partition_key(&m)) as usize % lanes.len();
                            batches[lane].push(Job { raw: Raw::copy(&m, topic) });
                        }
                        Err(error) => tracing::warn!(%error, "consumer error"),
                    }
                    burst += 1;
                    if burst < MAX_BURST && offsets.in_flight() < max_in_flight {
                        next = consumer.recv().now_or_never();
                    }
                }
                for (lane, batch) in batches.iter_mut().enumerate().filter(|(_, b)| !b.is_empty()) {
                    if lanes[lane].send(std::mem::take(batch)).is_err() {
                        tracing::error!(lane, "consumer lane gone; records left for redelivery");
                    }
                }
            }
        }
    }

    // Finish what the lanes hold: no more records come, each lane empties its queue, and every
    // outcome on its way is acknowledged (or, on a failed write, abandoned at the stop).
    drop(lanes);
    let mut moved = Moved::default();
    while let Some(done) = done_rx.recv().await {
        finish(&mut offsets, &mut moved, done);
    }
    moved.store(&consumer);
    let mut stats = RunStats { outcomes_published: shared.outcomes_acked.load(Ordering::Relaxed), ..RunStats::default() };
    for task in tasks {
        match task.await {
            Ok(s) => stats += s,
            Err(join) => tracing::error!(%join, "consumer lane failed"),
        }
    }
    if offsets.in_flight() > 0 {
        tracing::warn!(records = offsets.in_flight(), "shutdown: records left uncommitted, to be delivered again");
    }

    let producer = shared.producer.clone();
    drop(shared);
    let committed = tokio::task::spawn_blocking(move || {
        let result = consumer.commit_consumer_state(CommitMode::Sync);
        drop(consumer);
        drop(producer);
        result
    })
    .await;
    tracing::info!(?stats, "consumer kit stopped");
    match committed {
        Ok(Ok(())) | Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => Ok(stats),
        Ok(Err(source)) => Err(ConsumerError::Kafka { what: "commit", source }),
        Err(join) => {
            tracing::error!(%join, "commit task failed");
            Err(ConsumerError::Kafka { what: "commit", source: KafkaError::Canceled })
        }
    }
}

/// Resolves once shutdown is requested or can no longer be (the sender is gone).
pub(super) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// At most this many records are taken from librdkafka in one turn of the loop.
const MAX_BURST: usize = 512;

/// Partitions whose storable position moved, with the position.
#[derive(Default)]
struct Moved(Vec<(Arc<str>, i32, i64)>);

impl Moved {
    /// Stores the positions that moved, in one call.
    fn store(self, consumer: &StreamConsumer) {
        if self.0.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::with_capacity(self.0.len());
        for (topic, partition, position) in &self.0 {
            if let Err(error) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*position)) {
                tracing::warn!(%error, %topic, partition, position, "offset not stored");
            }
        }
        if let Err(error) = consumer.store_offsets(&tpl) {
            // A partition was revoked meanwhile: its new owner gets the unfinished records again.
            tracing::warn!(%error, "offsets not stored");
        }
        for e in tpl.elements().iter().filter(|e| e.error().is_err()) {
            tracing::warn!(error = ?e.error(), topic = e.topic(), partition = e.partition(), "offset not stored");
        }
    }
}

/// Marks records done, noting each partition's storable position when it moved.
fn finish(offsets: &mut Offsets, moved: &mut Moved, done: Vec<Done>) {
    for d in done {
        let Some(position) = offsets.finish(&d.topic, d.partition, d.offset) else { continue };
        match moved.0.iter_mut().find(|(t, p, _)| *p == d.partition && **t == *d.topic) {
            Some(entry) => entry.2 = position,
            None => moved.0.push((d.topic, d.partition, position)),
        }
    }
}

/// The shared name of `topic` (one allocation per topic, not per record).
fn intern(topics: &mut Vec<Arc<str>>, topic: &str) -> Arc<str> {
    if let Some(t) = topics.iter().find(|t| ***t == *topic) {
        return t.clone();
    }
    let t: Arc<str> = topic.into();
    topics.push(t.clone());
    t
}

/// What picks a record's lane: its key, or its `ce_partitionkey` header when it has none (the
/// decoded event's `key`), so the events of one key always share a lane.
fn partition_key(msg: &impl Message) -> &[u8] {
    match msg.key() {
        Some(k) if !k.is_empty() => k,
        _ => {
            msg.headers().and_then(|hs| hs.iter().find(|h| h.key == "ce_partitionkey")).and_then(|h| h.value).unwrap_or_default()
        }
    }
}
