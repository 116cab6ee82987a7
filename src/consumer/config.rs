//! What [`run`](super::run) needs to know: brokers, group, topics, where outcomes and dead letters
//! go, how hard to retry; and the librdkafka settings the protocol depends on.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ConsumerError;

/// Where to consume from and how hard to try. Build it with [`ConsumerConfig::new`].
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group: the instances of one service share it.
    pub group_id: String,
    /// Events topics to consume (each route's `topic`).
    pub topics: Vec<String>,
    /// Where outcomes go; default `strangler.outcomes`.
    pub outcomes_topic: String,
    /// The dead-letter topic of topic `T` is `T` + this; default `.dlq`.
    pub dead_letter_suffix: String,
    /// Written into each outcome's `consumer` field and used as the Kafka `client.id`.
    pub service_name: String,
    /// Handler attempts per event before dead-lettering; default 3.
    pub max_attempts: u32,
    /// First wait between attempts, doubled after each; default 100 ms. Also paces retries of
    /// outcome and dead-letter publishing.
    pub backoff: Duration,
    /// How many recent event ids are remembered for deduplication; default 100 000.
    pub dedupe_capacity: usize,
    /// Lanes handling records concurrently; default 16. Records go to a lane by a hash of their
    /// key, and each lane handles one record at a time, so events with the same key are handled
    /// in order; events with different keys may be handled in any order. 1 handles one record
    /// at a time over all partitions.
    pub lanes: usize,
    /// Records received and not yet done (outcome acknowledged, dead-lettered or skipped), over
    /// all lanes, before the kit stops reading; default 256.
    pub max_in_flight: usize,
    /// Extra librdkafka settings for the consumer and producer (applied after the kit's
    /// defaults; `group.id` and `enable.auto.offset.store` cannot be overridden).
    pub librdkafka: BTreeMap<String, String>,
}

impl ConsumerConfig {
    /// A config with the defaults above.
    pub fn new(
        brokers: impl Into<String>,
        group_id: impl Into<String>,
        topics: Vec<String>,
        service_name: impl Into<String>,
    ) -> Self {
        Self {
            brokers: brokers.into(),
            group_id: group_id.into(),
            topics,
            outcomes_topic: "strangler.outcomes".into(),
            dead_letter_suffix: ".dlq".into(),
            service_name: service_name.into(),
            max_attempts: 3,
            backoff: Duration::from_millis(100),
            dedupe_capacity: 100_000,
            lanes: 16,
            max_in_flight: 256,
            librdkafka: BTreeMap::new(),
        }
    }

    /// The dead-letter topic for records read from `topic`.
    pub fn dead_letter_topic(&self, topic: &str) -> String {
        format!("{topic}{}", self.dead_letter_suffix)
    }

    pub(super) fn validate(&self) -> Result<(), ConsumerError> {
        let problem = if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            "topics must be non-empty names"
        } else if self.group_id.is_empty() {
            "group_id is empty"
        } else if self.outcomes_topic.is_empty() {
            "outcomes_topic is empty"
        } else if self.dead_letter_suffix.is_empty() {
            "dead_letter_suffix is empty (the dead-letter topic would be the events topic)"
        } else if self.max_attempts == 0 {
            "max_attempts must be at least 1"
        } else if self.lanes == 0 {
            "lanes must be at least 1"
        } else if self.max_in_flight == 0 {
            "max_in_flight must be at least 1"
        } else {
            return Ok(());
        };
        Err(ConsumerError::Config(problem.into()))
    }

    pub(super) fn consumer_settings(&self) -> BTreeMap<String, String> {
        let mut s = self.common_settings();
        s.insert("enable.auto.commit".into(), "true".into());
        s.insert("auto.offset.reset".into(), "earliest".into());
        s.extend(self.librdkafka.clone());
        // The protocol's guarantee: an offset is stored only once its outcome is acknowledged.
        s.insert("group.id".into(), self.group_id.clone());
        s.insert("enable.auto.offset.store".into(), "false".into());
        s
    }

    pub(super) fn producer_settings(&self) -> BTreeMap<String, String> {
        let mut s = self.common_settings();
        // Outcomes wait at most 1 ms to go out together: one produce request per record (0 ms)
        // costs the client and the broker several times the CPU. A failed delivery is retried by
        // the kit, so it need not take librdkafka's default 5 minutes.
        s.insert("linger.ms".into(), "1".into());
        // Not idempotent (strangler's own producers are): an idempotent producer keeps at most 5
        // requests in flight, which capped acknowledged outcomes at about a third of the
        // consumer's rate. An outcome written twice by a librdkafka retry is a duplicate the
        // protocol already allows (the comparator keeps the first); `acks` stays `all`.
        s.insert("enable.idempotence".into(), "false".into());
        s.insert("acks".into(), "all".into());
        s.insert("message.timeout.ms".into(), "30000".into());
        s.extend(self.librdkafka.clone());
        s
    }

    fn common_settings(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        if !self.service_name.is_empty() {
            s.insert("client.id".into(), self.service_name.clone());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_settings() {
        let mut cfg = ConsumerConfig::new("b:9092", "g", vec!["t".into()], "svc");
        assert_eq!(
            (cfg.outcomes_topic.as_str(), cfg.max_attempts, cfg.dead_letter_topic("t")),
            ("strangler.outcomes", 3, "t.dlq".into())
        );
        cfg.librdkafka.insert("enable.auto.offset.store".into(), "true".into());
        cfg.librdkafka.insert("auto.offset.reset".into(), "latest".into());
        let s = cfg.consumer_settings();
        assert_eq!((s["enable.auto.offset.store"].as_str(), s["auto.offset.reset"].as_str()), ("false", "latest"));
        let p = ConsumerConfig::new("b:9092", "g", vec!["t".into()], "svc").producer_settings();
        assert_eq!((p["linger.ms"].as_str(), p["enable.idempotence"].as_str()), ("1", "false"));
        assert!(cfg.validate().is_ok());
        assert_eq!((cfg.lanes, cfg.max_in_flight), (16, 256));
        for (field, problem) in [
            ("max_attempts", "max_attempts must be at least 1"),
            ("lanes", "lanes must be at least 1"),
            ("max_in_flight", "max_in_flight must be at least 1"),
        ] {
            let mut bad = cfg.clone();
            match field {
                "max_attempts" => bad.max_attempts = 0,
                "lanes" => bad.lanes = 0,
                _ => bad.max_in_flight = 0,
            }
            assert!(matches!(bad.validate(), Err(ConsumerError::Config(p)) if p == problem), "{field}");
        }
    }
}
