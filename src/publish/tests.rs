//! Tests of the handles without a broker: the event sink's readiness against librdkafka's queue
//! and the spool, what happens to an event nothing can take, dedupe's duplicate count, and the
//! record sink while Kafka is down. (Everything that needs a broker is in tests/it.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tower::ServiceExt;

use super::event_sink::{Full, Shadow};
use super::spool::{Fsync, Spool, WhenFull};
use super::*;
use crate::event::CanonicalEvent;
use crate::telemetry::Metrics;

/// Handles on a broker address nobody listens on: librdkafka queues every event (it never
/// connects), so its queue fills at `queue.buffering.max.messages = 2`.
fn handles(metrics: &Metrics, spool: Option<Arc<Spool>>) -> Handles {
    handles_on("127.0.0.1:9", metrics, spool)
}

fn handles_on(brokers: &str, metrics: &Metrics, spool: Option<Arc<Spool>>) -> Handles {
    let librdkafka = BTreeMap::from([("queue.buffering.max.messages".to_string(), "2".to_string())]);
    build(Settings {
        brokers: brokers.into(),
        librdkafka,
        live_timeout: Duration::from_secs(5),
        dead_letter_topic: "dead".into(),
        spool,
        metrics: metrics.publish.clone(),
        skew: metrics.skew.clone(),
        dedupe: Arc::new(Dedupe::new(Duration::from_secs(60), 1000)),
        topics: vec!["shadow.orders".into()],
    })
    .unwrap()
}

fn event(i: u32) -> CanonicalEvent {
    CanonicalEvent {
        id: format!("ev-{i}"),
        topic: "shadow.orders".into(),
        key: "k".into(),
        value: bytes::Bytes::from_static(b"{}"),
        headers: Vec::new(),
    }
}

async fn ready(sink: &EventSink) -> Result<(), Full> {
    let mut sink = sink.clone();
    ServiceExt::<Shadow<'_>>::ready(&mut sink).await.map(|_| ())
}

#[tokio::test]
async fn not_ready_once_the_queue_is_full_without_a_spool_and_the_event_is_counted_dropped() {
    let metrics = Metrics::new().unwrap();
    // A listener that never answers: librdkafka connects and waits for its first reply, so no
    // "connection refused" error sits in its queue. (Its queue length, which readiness reads,
    // counts unserved error events as well as messages; two of them would fill this queue of 2.)
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let h = handles_on(&silent.local_addr().unwrap().to_string(), &metrics, None);
    let events = &h.events;
    for i in 0..2 {
        assert_eq!(ready(events).await, Ok(()), "event {i}: the queue has room");
        assert!(events.first_time("orders", &format!("ev-{i}")));
        events.publish("orders", event(i)).await;
    }
    assert_eq!(ready(events).await, Err(Full), "two queued: librdkafka takes no more");

    // Handed over anyway (never waiting): refused by librdkafka, counted, and forgotten by dedupe
    // so the sender's retry can publish it.
    assert!(events.first_time("orders", "ev-2"));
    events.publish("orders", event(2)).await;
    let p = &metrics.publish;
    assert_eq!(p.failed.with_label_values(&["orders", "queue_full"]).get(), 1);
    assert_eq!(p.dropped.with_label_values(&["orders", "no_spool"]).get(), 1);
    assert!(events.first_time("orders", "ev-2"), "a dropped event is forgotten by dedupe");
    assert!(!events.first_time("orders", "ev-0"), "a queued one is not");
    assert_eq!(p.duplicates.with_label_values(&["orders"]).get(), 1);
}

#[tokio::test]
async fn ready_with_the_queue_full_while_a_spool_can_take_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let settings = spool::Settings {
        dir: dir.path().to_path_buf(),
        max_bytes: 1 << 20,
        fsync: Fsync::Always,
        when_full: WhenFull::DropOldest,
        write_ahead: false,
    };
    let (spool, _) = Spool::open(settings).unwrap();
    let spool = Arc::new(spool);
    let metrics = Metrics::new().unwrap();
    let h = handles(&metrics, Some(spool.clone()));
    for i in 0..3 {
        assert_eq!(ready(&h.events).await, Ok(()), "event {i}");
        h.events.publish("orders", event(i)).await;
    }
    // Whether librdkafka refused the third (queue full) or start-up's probe found every broker
    // down first, it waits in the spool: nothing is dropped.
    assert!(spool.stats().records >= 1, "the event librdkafka could not take is spooled");
    for reason in failure::DropReason::ALL {
        assert_eq!(metrics.publish.dropped.with_label_values(&["orders", reason.as_str()]).get(), 0, "{reason:?}");
    }
}

#[tokio::test]
async fn records_are_counted_and_skipped_while_kafka_is_down() {
    let metrics = Metrics::new().unwrap();
    let h = handles(&metrics, None);
    h.supervisor.start_unreachable();
    assert!(h.health.kafka_down() && !h.health.kafka_up());
    h.records.send_record("outcomes", "ev-1", b"{}".to_vec(), RecordSink::OUTCOME_RECORD);
    h.records.send_record("parity", "ev-1", b"{}".to_vec(), RecordSink::PARITY_RECORD);
    h.records.send_record("parity", "ev-2", b"{}".to_vec(), RecordSink::PARITY_RECORD);
    let failed = |kind| metrics.publish.records_failed.with_label_values(&[kind]).get();
    assert_eq!((failed("outcome"), failed("parity")), (1, 2));
}
