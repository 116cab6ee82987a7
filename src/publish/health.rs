//! The admin API's read-only view of publishing: whether Kafka is up and the topics ready, and the
//! gauges refreshed at each scrape.

use super::shared::Shared;
use super::spooling::now_ms;

/// What `/metrics` and `/readyz` read.
#[derive(Clone)]
pub struct HealthView {
    pub(super) shared: Shared,
}

impl HealthView {
    /// True when events can be published: the topics exist and the producer does not report every
    /// broker down.
    pub fn kafka_up(&self) -> bool {
        self.shared.kafka_up()
    }

    /// Whether librdkafka (or start-up) found every broker down.
    pub fn kafka_down(&self) -> bool {
        self.shared.inner.kafka.down()
    }

    /// Refreshes the gauges (called at each scrape).
    pub fn refresh_gauges(&self) {
        let inner = &self.shared.inner;
        let m = &inner.metrics;
        m.dedupe_entries.set(inner.dedupe.len() as i64);
        m.queue_depth.set(i64::from(inner.kafka.queue_depth()));
        m.kafka_up.set(i64::from(self.kafka_up()));
        m.topics_ready.set(i64::from(inner.kafka.topics_ready()));
        if let Some(spool) = &inner.spool {
            let stats = spool.stats();
            m.spool_bytes.set(stats.bytes as i64);
            m.spool_records.set(stats.records as i64);
            let age = stats.oldest_spooled_at_ms.map_or(0.0, |at| (now_ms().saturating_sub(at)) as f64 / 1000.0);
            m.spool_oldest_age.set(age);
        }
    }
}
