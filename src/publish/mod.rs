//! Publishing canonical events to Kafka, off the response path, with many deliveries in flight.
//!
//! [`Publisher::publish`] enqueues into librdkafka and returns; a small task per event awaits its
//! delivery report. While every broker is down, or while the spool still holds older events,
//! shadow events go to the [`crate::publish::spool`] instead, and [`replay`] publishes them in order once
//! Kafka is back. Records Kafka refuses for good go to the dead-letter topic ([`dead_letter`]).

pub mod dead_letter;
pub mod dedupe;
pub mod embedded;
pub mod failure;
mod persisted;
pub mod producer;
mod reachability;
pub mod reader;
pub mod replay;
pub mod spool;
mod spooling;
pub mod topics;
mod write_ahead;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{Producer as _, PurgeConfig};

use crate::event::CanonicalEvent;
use crate::publish::spool::Spool;
use crate::telemetry::PublishMetrics;
use dedupe::Dedupe;
pub use failure::FailReason;
use producer::{Health, Outgoing, Producer, Report};

/// What a [`Publisher`] needs.
pub struct Settings {
    pub brokers: String,
    /// `[kafka.librdkafka]`: applied after strangler's own producer settings.
    pub librdkafka: BTreeMap<String, String>,
    /// `message.timeout.ms` of the live producer: the longest route publish timeout.
    pub live_timeout: Duration,
    pub dead_letter_topic: String,
    pub spool: Option<Arc<Spool>>,
    pub metrics: PublishMetrics,
    pub dedupe: Arc<Dedupe>,
    /// The routes' topics: write-ahead mode records their end offsets before sending anything.
    pub topics: Vec<String>,
}

/// A live event that was not acknowledged.
#[derive(Debug)]
pub struct LiveFailure {
    pub reason: FailReason,
    pub error: KafkaError,
    /// Kafka may hold it after all: the monolith must not handle it as well.
    pub possibly_persisted: bool,
}

/// The shared Kafka producers: one for shadow events and records, one for live events.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    shadow: RwLock<Arc<Producer>>,
    /// Live events wait for their acknowledgement on the request path; this producer's
    /// `message.timeout.ms` is the routes' publish timeout, so librdkafka itself gives up in time.
    live: RwLock<Arc<Producer>>,
    shadow_config: ClientConfig,
    live_config: ClientConfig,
    /// For reading topics back (the possibly-persisted check).
    client_config: ClientConfig,
    health: Arc<Health>,
    spool: Option<Arc<Spool>>,
    metrics: PublishMetrics,
    dedupe: Arc<Dedupe>,
    dead_letter_topic: String,
    dead_letter_max_bytes: usize,
    /// Publish order, stamped on spooled events so a replay batch can restore it.
    order: AtomicU64,
    /// Delivery reports not yet settled (spooled, counted or dead-lettered).
    unsettled: AtomicUsize,
    /// False from a start-up with Kafka unreachable until the topics were created.
    topics_ready: AtomicBool,
    /// `spool.write_ahead`: every shadow event goes through the spool first.
    wal: Option<write_ahead::Wal>,
}

fn outgoing(event: &CanonicalEvent) -> Outgoing<'_> {
    Outgoing { topic: &event.topic, key: event.key.as_bytes(), value: &event.value, headers: &event.headers }
}

impl Publisher {
    pub fn new(s: Settings) -> KafkaResult<Self> {
        let health = Arc::new(Health::default());
        let shadow_config = producer::producer_config(&s.brokers, &s.librdkafka);
        let mut live_overrides = s.librdkafka.clone();
        live_overrides.insert("message.timeout.ms".into(), s.live_timeout.as_millis().max(1).to_string());
        let live_config = producer::producer_config(&s.brokers, &live_overrides);
        let max_message = s.librdkafka.get("message.max.bytes").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1_000_000);
        let shadow = Arc::new(producer::create(&shadow_config, health.clone())?);
        let live = Arc::new(producer::create(&live_config, health.clone())?);
        let wal_spool = s.spool.clone().filter(|sp| sp.settings().write_ahead);
        let inner = Arc::new_cyclic(|me| Inner {
            shadow: RwLock::new(shadow),
            live: RwLock::new(live),
            shadow_config,
            live_config,
            client_config: producer::client_config(&s.brokers, &s.librdkafka),
            health,
            spool: s.spool,
            metrics: s.metrics,
            dedupe: s.dedupe,
            dead_letter_topic: s.dead_letter_topic,
            dead_letter_max_bytes: max_message / 2,
            // Seeded from the clock so events spooled after a restart sort after older ones.
            order: AtomicU64::new(spooling::now_ms() * 1000),
            unsettled: AtomicUsize::new(0),
            topics_ready: AtomicBool::new(true),
            wal: wal_spool.map(|spool| write_ahead::Wal::start(spool, s.topics.clone(), me.clone())),
        });
        Ok(Self { inner })
    }

    fn shadow(&self) -> Arc<Producer> {
        self.inner.shadow.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn live(&self) -> Arc<Producer> {
        self.inner.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True the first time this route publishes `event_id` within the dedupe window.
    pub fn first_time(&self, route: &str, event_id: &str) -> bool {
        self.inner.dedupe.first(&Dedupe::key(route, event_id), std::time::Instant::now())
    }

    /// Why new events should queue behind the spool instead of going to Kafka now, if they should.
    fn spooling(&self) -> Option<FailReason> {
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

    /// Hands a shadow event to Kafka (or, while Kafka is down, to the spool) and returns without
    /// waiting for Kafka. When this returns, the event is either in librdkafka's queue or written
    /// to the spool, so a process kill cannot lose a spooled event whose request was answered.
    pub async fn publish(&self, route: &str, event: CanonicalEvent) {
        let order = self.inner.order.fetch_add(1, Ordering::Relaxed);
        if self.inner.wal.is_some() && self.publish_ahead(route, &event, order).await {
            return;
        }
        if let Some(reason) = self.spooling() {
            self.spool_event(route, &event, order, false, None, reason).await;
            return;
        }
        match producer::send(&self.shadow(), &outgoing(&event)) {
            Ok(report) => {
                self.inner.unsettled.fetch_add(1, Ordering::AcqRel);
                let this = self.clone();
                let route = route.to_string();
                tokio::spawn(async move {
                    let report = report.await.unwrap_or(Report::Failed {
                        error: KafkaError::Canceled,
                        possibly_persisted: true,
                        partition: None,
                    });
                    this.settle(&route, event, order, report).await;
                    this.inner.unsettled.fetch_sub(1, Ordering::AcqRel);
                });
            }
            Err(error) => self.failed(route, event, order, error, false, None).await,
        }
    }

    async fn settle(&self, route: &str, event: CanonicalEvent, order: u64, report: Report) {
        match report {
            Report::Acked => self.inner.metrics.published.with_label_values(&[route]).inc(),
            Report::Failed { error, possibly_persisted, partition } => {
                self.failed(route, event, order, error, possibly_persisted, partition).await
            }
        }
    }

    /// Publishes a live event and waits for the broker's acknowledgement. On failure the route's
    /// `on_publish_failure` decides; an event Kafka may hold after all is spooled (and checked
    /// before it is ever resent) rather than forgotten.
    pub async fn publish_live(&self, route: &str, event: &CanonicalEvent) -> Result<(), LiveFailure> {
        let metrics = &self.inner.metrics;
        let report = match self.spooling() {
            // A live event must not overtake spooled ones, nor wait for a broker known to be down.
            Some(reason) => Err(LiveFailure { reason, error: KafkaError::Canceled, possibly_persisted: false }),
            None => match producer::deliver(&self.live(), &outgoing(event)).await {
                Report::Acked => Ok(()),
                Report::Failed { error, possibly_persisted, .. } => {
                    Err(LiveFailure { reason: FailReason::of(&error), error, possibly_persisted })
                }
            },
        };
        match &report {
            Ok(()) => metrics.published.with_label_values(&[route]).inc(),
            Err(f) => {
                metrics.failed.with_label_values(&[route, f.reason.as_str()]).inc();
                // Kafka may hold it: keep it (and its dedupe entry) in the spool, where replay checks
                // before resending. Otherwise the sender's retry must be able to publish it.
                let spooled = f.possibly_persisted && {
                    let order = self.inner.order.fetch_add(1, Ordering::Relaxed);
                    self.spool_event(route, event, order, true, None, f.reason).await
                };
                if !spooled {
                    self.inner.dedupe.forget(&Dedupe::key(route, &event.id));
                }
            }
        }
        report
    }

    /// Every `kind` of `strangler_records_failed_total`: [`Self::send_record`]'s callers use these.
    pub const RECORD_KINDS: [&'static str; 2] = [Self::OUTCOME_RECORD, Self::PARITY_RECORD];
    pub const OUTCOME_RECORD: &'static str = "outcome";
    pub const PARITY_RECORD: &'static str = "parity";

    /// Enqueues a JSON record (an outcome or a parity result) without waiting. `kind` labels failures.
    /// Records are not spooled: while every broker is down they are counted and skipped at once.
    pub fn send_record(&self, topic: &str, key: &str, value: Vec<u8>, kind: &'static str) {
        let metrics = self.inner.metrics.clone();
        if !self.kafka_up() {
            metrics.records_failed.with_label_values(&[kind]).inc();
            tracing::debug!(kind, key, "record skipped: kafka is down");
            return;
        }
        let failed = move |e: &KafkaError| {
            metrics.records_failed.with_label_values(&[kind]).inc();
            tracing::error!(kind, error = %e, "record not published");
        };
        let out = Outgoing { topic, key: key.as_bytes(), value: &value, headers: &[] };
        match producer::send(&self.shadow(), &out) {
            Ok(report) => {
                tokio::spawn(async move {
                    match report.await {
                        Ok(Report::Acked) => {}
                        Ok(Report::Failed { error, .. }) => failed(&error),
                        Err(_) => failed(&KafkaError::Canceled),
                    }
                });
            }
            Err(e) => failed(&e),
        }
    }

    /// Refreshes the gauges (called at each scrape).
    pub fn refresh_gauges(&self) {
        let m = &self.inner.metrics;
        m.dedupe_entries.set(self.inner.dedupe.len() as i64);
        m.queue_depth.set(i64::from(self.shadow().in_flight_count() + self.live().in_flight_count()));
        m.kafka_up.set(i64::from(self.kafka_up()));
        m.topics_ready.set(i64::from(self.inner.topics_ready.load(Ordering::Acquire)));
        if let Some(spool) = &self.inner.spool {
            let stats = spool.stats();
            m.spool_bytes.set(stats.bytes as i64);
            m.spool_records.set(stats.records as i64);
            let age = stats.oldest_spooled_at_ms.map_or(0.0, |at| (spooling::now_ms().saturating_sub(at)) as f64 / 1000.0);
            m.spool_oldest_age.set(age);
        }
    }

    /// True when broker metadata can be fetched within `timeout`.
    pub async fn kafka_reachable(&self, timeout: Duration) -> bool {
        let producer = self.shadow();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok()).await.unwrap_or(false)
    }

    /// Waits up to `timeout` for every queued event to be acknowledged. With a spool, what is left
    /// is then taken back from librdkafka and spooled, so a clean stop loses nothing. Returns the
    /// number of events still neither on Kafka nor in the spool.
    pub async fn flush(&self, timeout: Duration) -> i32 {
        let (shadow, live) = (self.shadow(), self.live());
        let has_spool = self.inner.spool.is_some();
        let left = tokio::task::spawn_blocking(move || {
            let _ = live.flush(timeout);
            let _ = shadow.flush(timeout);
            if has_spool && shadow.in_flight_count() > 0 {
                shadow.purge(PurgeConfig::default().queue().inflight());
            }
            shadow.in_flight_count() + live.in_flight_count()
        })
        .await
        .unwrap_or(-1);
        // Purged events come back through their delivery reports and are spooled by their tasks.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.inner.unsettled.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Write-ahead events are in the spool already: wait only for their acks to be recorded.
        self.settle_inflight(Duration::from_secs(5)).await;
        if let Some(spool) = &self.inner.spool {
            if let Err(e) = spool.sync() {
                tracing::error!(error = %e, "syncing the spool at exit");
            }
        }
        left.max(self.inner.unsettled.load(Ordering::Acquire) as i32)
    }

    /// Fails the shadow producer as a fatal librdkafka error would. Fault-injection tests only.
    #[doc(hidden)]
    pub fn inject_fatal_error(&self) {
        producer::inject_fatal_error(&self.shadow(), "injected by a fault test");
    }
}
