//! The run loop: consume with a group and dispatch each record to a lane by a hash of its key
//! (per-key order), bound the records in flight, store each partition's offset up to its lowest
//! unfinished record as lanes report records done, and on shutdown let the lanes finish what they
//! hold, then commit.

use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::publish::producer;

use super::config::ConsumerConfig;
use super::dedupe::Dedupe;
use super::handler::Handler;
use super::lane::{run_lane, Done, Job, Shared};
use super::offsets::Offsets;
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

    let permits = Arc::new(Semaphore::new(cfg.max_in_flight));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let dedupe = Dedupe::new(cfg.dedupe_capacity);
    let shared = Arc::new(Shared { dedupe, handler: Arc::new(handler), producer, cfg, outcomes_acked: AtomicU64::new(0) });
    let (lanes, tasks): (Vec<_>, Vec<_>) = (0..shared.cfg.lanes)
        .map(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            (tx, tokio::spawn(run_lane(shared.clone(), rx, done_tx.clone(), shutdown.clone())))
        })
        .unzip();
    drop(done_tx);

    let mut offsets = Offsets::default();
    let mut permit: Option<OwnedSemaphorePermit> = None;
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            Some(done) = done_rx.recv() => store(&consumer, &mut offsets, &done),
            // Backpressure: a record is received only with room for it in flight.
            acquired = permits.clone().acquire_owned(), if permit.is_none() => {
                permit = Some(acquired.expect("the semaphore is never closed"));
            }
            received = consumer.recv(), if permit.is_some() => match received {
                Ok(m) => {
                    let msg = m.detach();
                    offsets.begin(msg.topic(), msg.partition(), msg.offset());
                    let job = Job { _permit: permit.take().expect("guarded"), msg };
                    let lane = lane_of(&job.msg, lanes.len());
                    if lanes[lane].send(job).is_err() {
                        tracing::error!(lane, "consumer lane gone; record left for redelivery");
                    }
                }
                Err(error) => tracing::warn!(%error, "consumer error"),
            },
        }
    }

    // Finish what the lanes hold: no more records come, each lane empties its queue, and every
    // outcome on its way is acknowledged (or, on a failed write, abandoned at the stop).
    drop(lanes);
    while let Some(done) = done_rx.recv().await {
        store(&consumer, &mut offsets, &done);
    }
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

/// Marks a record done and stores its partition's position if it moved.
fn store(consumer: &StreamConsumer, offsets: &mut Offsets, done: &Done) {
    let Some(position) = offsets.finish(&done.topic, done.partition, done.offset) else { return };
    let mut tpl = TopicPartitionList::with_capacity(1);
    let stored = tpl
        .add_partition_offset(&done.topic, done.partition, Offset::Offset(position))
        .and_then(|()| consumer.store_offsets(&tpl));
    if let Err(error) = stored {
        // The partition was revoked meanwhile: its new owner gets the unfinished records again.
        tracing::warn!(%error, topic = %done.topic, partition = done.partition, position, "offset not stored");
    }
}

/// The lane of a record: a hash of its key (the `ce_partitionkey` header when the record has
/// none), so the events of one key always share a lane.
fn lane_of(msg: &OwnedMessage, lanes: usize) -> usize {
    let key = match msg.key() {
        Some(k) if !k.is_empty() => k,
        _ => {
            msg.headers().and_then(|hs| hs.iter().find(|h| h.key == "ce_partitionkey")).and_then(|h| h.value).unwrap_or_default()
        }
    };
    crc32fast::hash(key) as usize % lanes
}
