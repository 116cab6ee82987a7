//! Publishing canonical events and records to Kafka, off the response path, with many deliveries
//! in flight. [`build`] makes one handle per kind of caller; each holds only what it needs:
//!
//! - [`EventSink`] ([`event_sink`]), on the request path: a tower `Service` for shadow events
//!   (enqueue and return; a task settles the delivery report), live events that wait for Kafka's
//!   acknowledgement, and the dedupe window ([`dedupe`]). While every broker is down, or while the
//!   spool still holds older events, shadow events go to the [`spool`] instead (`spooling`);
//!   records Kafka refuses for good go to the dead-letter topic ([`dead_letter`]); with
//!   `spool.write_ahead` every shadow event is appended first (`write_ahead`).
//! - [`RecordSink`] ([`record_sink`]): outcome and parity records, never spooled.
//! - [`Supervisor`] ([`supervisor`]), kept by `app`: outages, recreating producers after a fatal
//!   error, replay of the spool ([`replay`]), the flush at shutdown, start-up's reachability.
//! - [`HealthView`] ([`health`]), for the admin API: Kafka up, topics ready, the gauges.
//!
//! Underneath: the two producers and the brokers' state (`kafka`, [`producer`]), the state the
//! event sink and supervisor share (`shared`), each route's counters (`route_metrics`), the
//! possibly-persisted check (`persisted`), topic set-up ([`topics`]), readers of whole topics
//! ([`reader`]) and the embedded broker ([`embedded`]).

pub mod dead_letter;
pub mod dedupe;
pub mod embedded;
pub mod event_sink;
pub mod failure;
pub mod health;
mod kafka;
mod persisted;
pub mod producer;
pub mod reader;
pub mod record_sink;
pub mod replay;
mod route_metrics;
mod shared;
pub mod spool;
mod spooling;
pub mod supervisor;
pub mod topics;
mod write_ahead;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, KafkaResult};

use crate::publish::spool::Spool;
use crate::telemetry::PublishMetrics;
use dedupe::Dedupe;
pub use event_sink::EventSink;
pub use failure::FailReason;
pub use health::HealthView;
pub use record_sink::RecordSink;
pub use supervisor::Supervisor;

/// What [`build`] needs.
pub struct Settings {
    pub brokers: String,
    /// `[kafka.librdkafka]`: applied after strangler's own producer settings.
    pub librdkafka: BTreeMap<String, String>,
    /// `message.timeout.ms` of the live producer: the longest route publish timeout.
    pub live_timeout: Duration,
    pub dead_letter_topic: String,
    pub spool: Option<Arc<Spool>>,
    pub metrics: PublishMetrics,
    /// Where acknowledged events land, per route (`Metrics::skew`).
    pub skew: crate::telemetry::skew::SkewMetrics,
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

/// One handle per kind of caller, over the same producers.
#[derive(Clone)]
pub struct Handles {
    pub events: EventSink,
    pub records: RecordSink,
    pub supervisor: Supervisor,
    pub health: HealthView,
}

/// Creates the producers (no broker is contacted yet) and the handles on them.
pub fn build(s: Settings) -> KafkaResult<Handles> {
    let kafka = Arc::new(kafka::Kafka::new(&s.brokers, &s.librdkafka, s.live_timeout)?);
    let records = RecordSink::new(kafka.clone(), &s.metrics);
    let shared = shared::Shared::new(s, kafka);
    Ok(Handles {
        events: EventSink { shared: shared.clone() },
        records,
        supervisor: Supervisor { shared: shared.clone() },
        health: HealthView { shared },
    })
}
