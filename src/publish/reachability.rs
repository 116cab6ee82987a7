//! Whether Kafka can take events now: the producers' view of the brokers, and the topics a
//! start-up during an outage creates in the background.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::spool::Spool;
use super::Publisher;

impl Publisher {
    /// True when events can be published: the topics exist and the producer does not report every
    /// broker down.
    pub fn kafka_up(&self) -> bool {
        !self.inner.health.is_down() && self.inner.topics_ready.load(Ordering::Acquire)
    }

    /// Whether librdkafka (or start-up) found every broker down.
    pub fn kafka_down(&self) -> bool {
        self.inner.health.is_down()
    }

    /// Start-up found Kafka unreachable: treat it as down (events go to the spool) until a probe
    /// answers, and hold events back until [`Publisher::set_topics_ready`].
    pub fn start_unreachable(&self) {
        self.inner.topics_ready.store(false, Ordering::Release);
        self.inner.health.set_down();
    }

    /// The topics exist: events may go to Kafka (and the spool be replayed).
    pub fn set_topics_ready(&self) {
        self.inner.topics_ready.store(true, Ordering::Release);
        self.inner.metrics.topics_ready.set(1);
        self.inner.health.changed.notify_one();
    }

    /// The spool, if one is configured.
    pub fn spool(&self) -> Option<&Arc<Spool>> {
        self.inner.spool.as_ref()
    }
}
