//! The two producers every handle shares, and what is known about the brokers: all down, fatal
//! errors, and the topics a start-up during an outage creates in the background.
//!
//! The supervisor swaps a producer (after a fatal error or an outage's purge); everyone else takes
//! the one in force for each send.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;

use super::producer::{self, Health, Producer};

/// librdkafka's default `queue.buffering.max.messages`.
const DEFAULT_QUEUE_MESSAGES: i32 = 100_000;

/// The shadow producer (shadow events, outcome and parity records, dead letters, replay) and the
/// live one (live events, whose `message.timeout.ms` is the routes' publish timeout).
pub(super) struct Kafka {
    shadow: RwLock<Arc<Producer>>,
    live: RwLock<Arc<Producer>>,
    pub shadow_config: ClientConfig,
    pub live_config: ClientConfig,
    /// For reading topics back (the possibly-persisted check).
    pub client_config: ClientConfig,
    pub health: Arc<Health>,
    /// False from a start-up with Kafka unreachable until the topics were created.
    topics_ready: AtomicBool,
    /// `queue.buffering.max.messages` of the shadow producer: past it librdkafka takes nothing.
    pub queue_messages: i32,
}

impl Kafka {
    pub fn new(brokers: &str, librdkafka: &BTreeMap<String, String>, live_timeout: Duration) -> KafkaResult<Self> {
        let health = Arc::new(Health::default());
        let shadow_config = producer::producer_config(brokers, librdkafka);
        let mut live_overrides = librdkafka.clone();
        live_overrides.insert("message.timeout.ms".into(), live_timeout.as_millis().max(1).to_string());
        let live_config = producer::producer_config(brokers, &live_overrides);
        let shadow = Arc::new(producer::create(&shadow_config, health.clone())?);
        let live = Arc::new(producer::create(&live_config, health.clone())?);
        let queue_messages =
            librdkafka.get("queue.buffering.max.messages").and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_QUEUE_MESSAGES);
        Ok(Self {
            shadow: RwLock::new(shadow),
            live: RwLock::new(live),
            shadow_config,
            live_config,
            client_config: producer::client_config(brokers, librdkafka),
            health,
            topics_ready: AtomicBool::new(true),
            queue_messages,
        })
    }

    pub fn shadow(&self) -> Arc<Producer> {
        self.shadow.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn live(&self) -> Arc<Producer> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `fresh` in place of the shadow producer and returns the old one.
    pub fn replace_shadow(&self, fresh: Producer) -> Arc<Producer> {
        std::mem::replace(&mut *self.shadow.write().unwrap_or_else(|e| e.into_inner()), Arc::new(fresh))
    }

    /// Puts `fresh` in place of the live producer and returns the old one.
    pub fn replace_live(&self, fresh: Producer) -> Arc<Producer> {
        std::mem::replace(&mut *self.live.write().unwrap_or_else(|e| e.into_inner()), Arc::new(fresh))
    }

    /// The shadow producer's queue holds as many messages as librdkafka takes.
    pub fn shadow_queue_full(&self) -> bool {
        self.shadow().in_flight_count() >= self.queue_messages
    }

    /// Messages waiting in both producers.
    pub fn queue_depth(&self) -> i32 {
        self.shadow().in_flight_count() + self.live().in_flight_count()
    }

    /// True when events can be published: the topics exist and the producer does not report every
    /// broker down.
    pub fn up(&self) -> bool {
        !self.health.is_down() && self.topics_ready()
    }

    /// Whether librdkafka (or start-up) found every broker down.
    pub fn down(&self) -> bool {
        self.health.is_down()
    }

    pub fn topics_ready(&self) -> bool {
        self.topics_ready.load(Ordering::Acquire)
    }

    /// Start-up found Kafka unreachable: down until a probe answers, topics not ready until
    /// [`Kafka::set_topics_ready`].
    pub fn start_unreachable(&self) {
        self.topics_ready.store(false, Ordering::Release);
        self.health.set_down();
    }

    pub fn set_topics_ready(&self) {
        self.topics_ready.store(true, Ordering::Release);
        self.health.changed.notify_one();
    }

    /// True when broker metadata can be fetched within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> bool {
        let producer = self.shadow();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok()).await.unwrap_or(false)
    }

    /// The fatal error either producer is in, if any: such a producer can never send again.
    pub fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.shadow().client().fatal_error().or_else(|| self.live().client().fatal_error())
    }
}
