//! The state behind the event sink and the supervisor: the producers, the spool and write-ahead
//! log, dedupe, the dead-letter topic and the per-route counters. Shared by handles, never handed
//! to callers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;

use super::dedupe::Dedupe;
use super::kafka::Kafka;
use super::producer::{Outgoing, Placed, Producer, Report};
use super::route_metrics::{ByRoute, RouteCounters};
use super::spool::Spool;
use super::{spooling, write_ahead, FailReason, Settings};
use crate::event::CanonicalEvent;
use crate::telemetry::PublishMetrics;

#[derive(Clone)]
pub(super) struct Shared {
    pub inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub kafka: Arc<Kafka>,
    pub spool: Option<Arc<Spool>>,
    pub metrics: PublishMetrics,
    pub routes: ByRoute,
    pub dedupe: Arc<Dedupe>,
    pub dead_letter_topic: String,
    pub dead_letter_max_bytes: usize,
    /// Publish order, stamped on spooled events so a replay batch can restore it.
    pub order: AtomicU64,
    /// Delivery reports not yet settled (spooled, counted or dead-lettered).
    pub unsettled: AtomicUsize,
    /// `spool.write_ahead`: every shadow event goes through the spool first.
    pub wal: Option<write_ahead::Wal>,
}

/// What [`Shared::send_shadow`] did with an event.
pub(super) enum Sent {
    Queued,
    /// librdkafka would not take it (queue full, too large, unknown topic): the event comes back.
    Refused(Box<(KafkaError, CanonicalEvent)>),
}

pub(super) fn outgoing(event: &CanonicalEvent) -> Outgoing<'_> {
    Outgoing { topic: &event.topic, key: event.key.as_bytes(), value: &event.value, headers: &event.headers }
}

impl Shared {
    pub fn new(s: Settings, kafka: Arc<Kafka>) -> Self {
        let max_message = s.librdkafka.get("message.max.bytes").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1_000_000);
        let wal_spool = s.spool.clone().filter(|sp| sp.settings().write_ahead);
        let inner = Arc::new_cyclic(|me| Inner {
            kafka,
            spool: s.spool,
            routes: ByRoute::new(s.metrics.clone(), s.skew),
            metrics: s.metrics,
            dedupe: s.dedupe,
            dead_letter_topic: s.dead_letter_topic,
            dead_letter_max_bytes: max_message / 2,
            // Seeded from the clock so events spooled after a restart sort after older ones.
            order: AtomicU64::new(spooling::now_ms() * 1000),
            unsettled: AtomicUsize::new(0),
            wal: wal_spool.map(|spool| write_ahead::Wal::start(spool, s.topics.clone(), me.clone())),
        });
        Self { inner }
    }

    pub fn shadow(&self) -> Arc<Producer> {
        self.inner.kafka.shadow()
    }

    pub fn live(&self) -> Arc<Producer> {
        self.inner.kafka.live()
    }

    pub fn kafka_up(&self) -> bool {
        self.inner.kafka.up()
    }

    /// The counters of `route`.
    pub fn route(&self, route: &str) -> Arc<RouteCounters> {
        self.inner.routes.get(route)
    }

    pub fn next_order(&self) -> u64 {
        self.inner.order.fetch_add(1, Ordering::Relaxed)
    }

    /// Why new events should queue behind the spool instead of going to Kafka now, if they should.
    pub fn spooling(&self) -> Option<FailReason> {
        let spool = self.inner.spool.as_ref()?;
        let backlog = match &self.inner.wal {
            Some(wal) => wal.backlog(),
            None => !spool.is_empty(),
        };
        if !self.kafka_up() {
            Some(FailReason::KafkaDown)
        } else if backlog {
            Some(FailReason::SpoolDraining)
        } else {
            None
        }
    }

    /// Whether a shadow event handed over now would be taken, as far as can be told without
    /// trying: while events queue behind the spool, whether the spool has room (or drops its
    /// oldest); otherwise whether librdkafka's queue holds fewer messages than it accepts, or else
    /// a spool can take what librdkafka refuses.
    pub fn can_take(&self) -> bool {
        let spool_takes = || self.inner.spool.as_deref().is_some_and(spool_can_take);
        if self.spooling().is_some() {
            return spool_takes();
        }
        !self.inner.kafka.shadow_queue_full() || spool_takes()
    }

    /// Hands a shadow event to librdkafka; a task settles its delivery report.
    pub fn send_shadow(&self, route: Arc<RouteCounters>, event: CanonicalEvent, order: u64) -> Sent {
        let report = match super::producer::send_placed(&self.shadow(), &outgoing(&event)) {
            Ok(report) => report,
            Err(error) => return Sent::Refused(Box::new((error, event))),
        };
        self.inner.unsettled.fetch_add(1, Ordering::AcqRel);
        let this = self.clone();
        tokio::spawn(async move {
            let Placed { report, partition: landed } = report.await.unwrap_or_else(|_| super::producer::canceled());
            match report {
                Report::Acked => this.landed(&route, &event.topic, landed, &event.key),
                Report::Failed { error, possibly_persisted, partition } => {
                    this.failed(&route, event, order, error, possibly_persisted, partition).await
                }
            }
            this.inner.unsettled.fetch_sub(1, Ordering::AcqRel);
        });
        Sent::Queued
    }

    /// Counts an event Kafka acknowledged: published, the partition it landed on and its key (a
    /// contract's dead letter only as dead-lettered).
    /// The first event on a partition beyond the topic's known partition count has the count
    /// looked up (off the async threads) so the skew ratio divides by every partition.
    pub fn landed(&self, route: &RouteCounters, topic: &str, partition: Option<i32>, key: &str) {
        if self.landed_dead_letter(route, topic) {
            return;
        }
        route.published.inc();
        if !route.skew.landed(partition.unwrap_or(-1), key) {
            return;
        }
        let (producer, skew, topic) = (self.shadow(), route.skew.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer as _;
            match producer.client().fetch_metadata(Some(&topic), Duration::from_secs(5)) {
                Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                    Some(t) if t.error().is_none() => skew.set_partitions(t.partitions().len()),
                    _ => tracing::debug!(topic, "no partition count in the metadata; the skew ratio uses partitions seen"),
                },
                Err(error) => {
                    tracing::debug!(topic, %error, "partition count lookup failed; the skew ratio uses partitions seen")
                }
            }
        });
    }
}

/// The spool takes a new entry: it has room, or makes room by dropping its oldest.
fn spool_can_take(spool: &Spool) -> bool {
    let s = spool.settings();
    s.when_full == super::spool::WhenFull::DropOldest || spool.stats().bytes < s.max_bytes
}
