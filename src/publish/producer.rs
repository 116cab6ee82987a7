//! librdkafka client settings: an idempotent producer with `acks=all`, operator overrides last.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::producer::FutureProducer;

/// Settings strangler relies on for the events producer. Idempotence keeps librdkafka's retries
/// from duplicating or reordering records within a partition; `acks=all` means an acknowledged
/// event survives the loss of a broker.
const PRODUCER_DEFAULTS: [(&str, &str); 3] = [("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "5")];

/// Client settings for any strangler client (producer, admin).
pub fn client_config(brokers: &str, overrides: &BTreeMap<String, String>) -> ClientConfig {
    with_defaults(brokers, &[], overrides)
}

/// The events producer.
pub fn create(brokers: &str, overrides: &BTreeMap<String, String>) -> KafkaResult<FutureProducer> {
    with_defaults(brokers, &PRODUCER_DEFAULTS, overrides).create()
}

fn with_defaults(brokers: &str, defaults: &[(&str, &str)], overrides: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers).set("client.id", "strangler");
    for (k, v) in defaults {
        cfg.set(*k, *v);
    }
    // The operator's `[kafka.librdkafka]` comes last so it can override anything above.
    for (k, v) in overrides {
        cfg.set(k, v);
    }
    cfg
}
