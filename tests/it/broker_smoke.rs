//! Smoke tests for the Tansu harness and Kafka helpers: produce, consume, drain, restart.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::support::kafka::partitions_of;
use crate::support::{consume, create_topic, drain, header, Tansu};

fn idempotent_producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer")
}

/// Enqueues `n` keyed records with headers all at once, then awaits every delivery report.
/// Returns key -> (partition, offset).
async fn produce_many(producer: &FutureProducer, topic: &str, n: usize) -> HashMap<String, (i32, i64)> {
    let mut in_flight = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let headers = OwnedHeaders::new()
            .insert(Header { key: "idx", value: Some(&i.to_string()) })
            .insert(Header { key: "kind", value: Some("smoke") });
        let record = FutureRecord::to(topic).key(&key).payload(&value).headers(headers);
        let delivery = producer.send_result(record).map_err(|(e, _)| e).expect("enqueue record");
        in_flight.push((key, delivery));
    }
    let mut delivered = HashMap::new();
    for (key, delivery) in in_flight {
        let d = delivery
            .await
            .expect("delivery future dropped")
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| panic!("delivery of {key} failed: {e}"));
        delivered.insert(key, (d.partition, d.offset));
    }
    delivered
}

async fn drop_producer(producer: FutureProducer) {
    let _ = tokio::task::spawn_blocking(move || drop(producer)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_consume_and_drain_100_records() {
    let tansu = Tansu::start();
    create_topic(&tansu.brokers, "smoke", 3).await;
    // Creating again is fine.
    create_topic(&tansu.brokers, "smoke", 3).await;

    let producer = idempotent_producer(&tansu.brokers);
    let delivered = produce_many(&producer, "smoke", 100).await;
    drop_producer(producer).await;
    assert_eq!(delivered.len(), 100);
    let used: std::collections::HashSet<i32> = delivered.values().map(|(p, _)| *p).collect();
    assert!(used.len() > 1, "keys should spread over partitions: {used:?}");

    let msgs = consume(&tansu.brokers, "smoke", 100, Duration::from_secs(30)).await;
    assert_eq!(msgs.len(), 100, "consumed {} of 100", msgs.len());
    for m in &msgs {
        let key = std::str::from_utf8(m.key().expect("key")).unwrap();
        let i: usize = key.strip_prefix("key-").unwrap().parse().unwrap();
        assert_eq!(m.payload(), Some(format!("value-{i}").as_bytes()));
        assert_eq!(header(m, "idx"), Some(i.to_string()));
        assert_eq!(header(m, "kind").as_deref(), Some("smoke"));
        assert_eq!(header(m, "missing"), None);
        assert_eq!(delivered[key], (m.partition(), m.offset()), "{key} position");
    }

    let all = drain(&tansu.brokers, "smoke", Duration::from_secs(30)).await;
    assert_eq!(all.len(), 100);
    let mut keys: Vec<&[u8]> = all.iter().map(|m| m.key().unwrap()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 100, "drain returned duplicates");
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_of_empty_topic_is_empty() {
    let tansu = Tansu::start();
    create_topic(&tansu.brokers, "empty", 2).await;
    let all = drain(&tansu.brokers, "empty", Duration::from_secs(10)).await;
    assert!(all.is_empty());
}

/// Tansu never auto-creates topics (not even for a producer, whose librdkafka default is
/// `allow.auto.create.topics=true`): librdkafka reports UnknownTopicOrPartition once
/// `topic.metadata.propagation.max.ms` (default 30 s) has passed, or MessageTimedOut if
/// `message.timeout.ms` is shorter than that.
#[tokio::test(flavor = "multi_thread")]
async fn producing_to_a_missing_topic_fails_with_unknown_topic() {
    let tansu = Tansu::start();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &tansu.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "10000")
        .set("topic.metadata.propagation.max.ms", "1000")
        .create()
        .expect("producer");
    let result = producer.send(FutureRecord::to("never-created").key("k").payload("v"), Duration::from_secs(5)).await;
    drop_producer(producer).await;
    match result {
        Ok(d) => panic!("produce to a missing topic succeeded: {d:?}"),
        Err((err, _)) => assert!(
            matches!(err, KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition)),
            "unexpected error: {err:?}"
        ),
    }
    let deadline = tokio::time::Instant::now();
    assert!(partitions_of(&tansu.brokers, "never-created", deadline).await.is_empty(), "topic was auto-created");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_broker_keeps_records_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tansu.db");
    let mut tansu = Tansu::start_sqlite(&db);
    assert!(db.is_file(), "tansu should keep its data in {}", db.display());
    create_topic(&tansu.brokers, "durable", 1).await;
    let producer = idempotent_producer(&tansu.brokers);
    produce_many(&producer, "durable", 10).await;
    drop_producer(producer).await;

    tansu.restart();
    let all = drain(&tansu.brokers, "durable", Duration::from_secs(30)).await;
    assert_eq!(all.len(), 10);
    tansu.kill();
    tansu.kill();
}
