//! Publishing canonical events to Kafka, off the response path, with many deliveries in flight.
//!
//! [`Publisher::publish`] enqueues into librdkafka without waiting and returns at once; a small task
//! per event awaits the broker's acknowledgement and counts it. Events Kafka cannot take go to the
//! [`Overflow`] seam: today it logs and counts; the durable spool plugs in there.

pub mod dedupe;
pub mod embedded;
pub mod producer;
pub mod topics;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::event::CanonicalEvent;
use crate::telemetry::PublishMetrics;
use dedupe::Dedupe;

/// Why an event did not reach Kafka. Bounded: used as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// librdkafka's local queue is full (the broker is slow or down).
    QueueFull,
    /// The broker did not acknowledge within `message.timeout.ms`.
    TimedOut,
    /// The broker refused the record (too large, unknown topic, ...).
    Refused,
    /// The producer went away before the outcome was known (shutdown).
    Canceled,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::QueueFull => "queue_full",
            FailReason::TimedOut => "timed_out",
            FailReason::Refused => "refused",
            FailReason::Canceled => "canceled",
        }
    }

    fn of(e: &KafkaError) -> Self {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::QueueFull) => FailReason::QueueFull,
            Some(RDKafkaErrorCode::MessageTimedOut) => FailReason::TimedOut,
            _ => FailReason::Refused,
        }
    }
}

/// Where events go that Kafka could not take. The spool implements this.
pub trait Overflow: Send + Sync + 'static {
    fn take(&self, route: &str, event: CanonicalEvent, reason: FailReason, error: &KafkaError);
}

/// The overflow until the spool exists: the event is logged with its id and dropped.
pub struct LogAndDrop;

impl Overflow for LogAndDrop {
    fn take(&self, route: &str, event: CanonicalEvent, reason: FailReason, error: &KafkaError) {
        tracing::error!(route, event_id = %event.id, topic = %event.topic, reason = reason.as_str(), %error, "event not published");
    }
}

/// The shared Kafka producers: one for shadow events and records, one for live events.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    /// Live events wait for their acknowledgement on the request path; this producer's
    /// `message.timeout.ms` is the routes' publish timeout, so librdkafka itself gives up in time.
    live: FutureProducer,
    metrics: PublishMetrics,
    overflow: Arc<dyn Overflow>,
    dedupe: Arc<Dedupe>,
}

fn record(event: &CanonicalEvent) -> FutureRecord<'_, [u8], [u8]> {
    let headers = event.headers.iter().fold(OwnedHeaders::new_with_capacity(event.headers.len()), |h, (k, v)| {
        h.insert(Header { key: k, value: Some(v.as_bytes()) })
    });
    FutureRecord::to(&event.topic).key(event.key.as_bytes()).payload(event.value.as_ref()).headers(headers)
}

impl Publisher {
    pub fn new(
        producer: FutureProducer,
        live: FutureProducer,
        metrics: PublishMetrics,
        overflow: Arc<dyn Overflow>,
        dedupe: Arc<Dedupe>,
    ) -> Self {
        Self { producer, live, metrics, overflow, dedupe }
    }

    /// True the first time this route publishes `event_id` within the dedupe window.
    pub fn first_time(&self, route: &str, event_id: &str) -> bool {
        self.dedupe.first(&Dedupe::key(route, event_id), std::time::Instant::now())
    }

    /// Publishes a live event and waits for the broker's acknowledgement. On failure the event is
    /// not handed to the overflow: the route's `on_publish_failure` decides instead.
    pub async fn publish_live(&self, route: &str, event: &CanonicalEvent) -> Result<(), (FailReason, KafkaError)> {
        let result = match self.live.send_result(record(event)) {
            Ok(delivery) => match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((e, _))) => Err((FailReason::of(&e), e)),
                Err(_) => Err((FailReason::Canceled, KafkaError::Canceled)),
            },
            Err((e, _)) => Err((FailReason::of(&e), e)),
        };
        match &result {
            Ok(()) => self.metrics.published.with_label_values(&[route]).inc(),
            Err((reason, _)) => {
                self.metrics.failed.with_label_values(&[route, reason.as_str()]).inc();
                // Not on Kafka: the sender's retry must be able to publish it.
                self.dedupe.forget(&Dedupe::key(route, &event.id));
            }
        }
        result
    }

    /// Enqueues a JSON record (an outcome or a parity result) without waiting. `kind` labels failures.
    pub fn send_record(&self, topic: &str, key: &str, value: Vec<u8>, kind: &'static str) {
        let record = FutureRecord::to(topic).key(key.as_bytes()).payload(&value);
        let metrics = self.metrics.clone();
        let failed = move |e: &KafkaError| {
            metrics.records_failed.with_label_values(&[kind]).inc();
            tracing::error!(kind, error = %e, "record not published");
        };
        match self.producer.send_result(record) {
            Ok(delivery) => {
                tokio::spawn(async move {
                    match delivery.await {
                        Ok(Ok(_)) => {}
                        Ok(Err((e, _))) => failed(&e),
                        Err(_) => failed(&KafkaError::Canceled),
                    }
                });
            }
            Err((e, _)) => failed(&e),
        }
    }

    /// Enqueues `event` and returns without waiting for Kafka. Must be called inside a tokio runtime.
    pub fn publish(&self, route: &str, event: CanonicalEvent) {
        match self.producer.send_result(record(&event)) {
            Ok(delivery) => {
                let this = self.clone();
                let route = route.to_string();
                tokio::spawn(async move {
                    match delivery.await {
                        Ok(Ok(_)) => this.metrics.published.with_label_values(&[&route]).inc(),
                        Ok(Err((e, _))) => this.fail(&route, event, FailReason::of(&e), &e),
                        Err(_) => this.fail(&route, event, FailReason::Canceled, &KafkaError::Canceled),
                    }
                });
            }
            Err((e, _record)) => self.fail(route, event, FailReason::of(&e), &e),
        }
    }

    fn fail(&self, route: &str, event: CanonicalEvent, reason: FailReason, error: &KafkaError) {
        self.metrics.failed.with_label_values(&[route, reason.as_str()]).inc();
        self.dedupe.forget(&Dedupe::key(route, &event.id));
        self.overflow.take(route, event, reason, error);
    }

    /// Refreshes the queue-depth gauge (called at each scrape).
    pub fn refresh_gauges(&self) {
        self.metrics.dedupe_entries.set(self.dedupe.len() as i64);
        self.metrics.queue_depth.set(i64::from(self.producer.in_flight_count() + self.live.in_flight_count()));
    }

    /// True when broker metadata can be fetched within `timeout`.
    pub async fn kafka_reachable(&self, timeout: Duration) -> bool {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok()).await.unwrap_or(false)
    }

    /// Waits up to `timeout` for every queued event to be acknowledged. Returns those still queued.
    pub async fn flush(&self, timeout: Duration) -> i32 {
        let (producer, live) = (self.producer.clone(), self.live.clone());
        tokio::task::spawn_blocking(move || {
            let _ = live.flush(timeout);
            let _ = producer.flush(timeout);
            producer.in_flight_count() + live.in_flight_count()
        })
        .await
        .unwrap_or(-1)
    }
}
