//! The consumer kit's parallel lanes against a real broker: per-key order while other keys are
//! handled meanwhile, one handling of an event id delivered twice under two keys at once, no lost
//! or repeated outcome across a stop and restart with records in flight, and no commit for a
//! record whose outcome is never acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use strangler::consumer::{self, ConsumerConfig, Decision, Effects, Event, Handler, HandlerError};
use tokio::sync::watch;

use crate::consumer_kit::{broker, config, event, outcomes, produce, start, Record, TOPIC, WAIT};
use crate::harness::eventually;
use crate::support::{create_topic, Tansu};

/// Records every call as (key, seq); holds the first call of `hold_key` until an event of
/// another key has been handled, which only lanes running side by side allow; with a `gate`
/// `(k, open)`, holds every call after the k-th until `open` turns true.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, String, u64)>>,
    hold_key: Option<String>,
    held_until_other: AtomicBool,
    gate: Option<(usize, watch::Receiver<bool>)>,
}

impl Recorder {
    fn ids(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|(id, _, _)| id.clone()).collect()
    }

    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Waits (with a deadline) until some call's key satisfies `pred`; true if one did.
    async fn wait_for(&self, pred: impl Fn(&str, &str) -> bool) -> bool {
        eventually(WAIT, || {
            let found = self.calls.lock().unwrap().iter().any(|(id, k, _)| pred(id, k));
            async move { found }
        })
        .await
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Recorder>);

impl Handler for Shared {
    async fn handle(&self, event: &Event, _effects: &Effects) -> Result<Decision, HandlerError> {
        let seq = event.json::<serde_json::Value>()?["seq"].as_u64().unwrap_or(0);
        let (first, count) = {
            let mut calls = self.0.calls.lock().unwrap();
            let first = !calls.iter().any(|(_, k, _)| *k == event.key);
            calls.push((event.id.clone(), event.key.clone(), seq));
            (first, calls.len())
        };
        if let Some((after, open)) = &self.0.gate {
            if count > *after {
                let _ = open.clone().wait_for(|open| *open).await;
            }
        }
        if first && self.0.hold_key.as_deref() == Some(event.key.as_str()) {
            let other = self.0.wait_for(|_, k| k != event.key).await;
            self.0.held_until_other.store(other, Ordering::SeqCst);
        }
        Decision::json(200, &serde_json::json!({ "seq": seq }))
    }
}

fn keyed(id: &str, key: &str, seq: usize) -> Record {
    event(id, key, "shadow", serde_json::json!({ "seq": seq }))
}

/// Distinct keys in distinct lanes of `lanes`: the kit's lane is crc32(key) mod lanes.
fn keys_in_distinct_lanes(n: usize, lanes: usize) -> Vec<String> {
    let mut used = BTreeSet::new();
    (0..).map(|i| format!("cart-{i}")).filter(|k| used.insert(crc32fast::hash(k.as_bytes()) as usize % lanes)).take(n).collect()
}

/// Produces each record in a batch of its own. The kit may commit any offset; a consumer that
/// resumes inside a record batch gets nothing from Tansu 0.6 (its fetch answers empty there).
async fn produce_one_by_one(brokers: &str, records: &[Record]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    for r in records {
        let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(v) }));
        let record = FutureRecord::to(TOPIC).key(&r.key).payload(&r.body).headers(headers);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).expect("delivered");
    }
    let _ = tokio::task::spawn_blocking(move || drop(producer)).await;
}

fn with_lanes(tansu: &Tansu, group: &str, lanes: usize) -> ConsumerConfig {
    let mut cfg = config(tansu, group);
    cfg.lanes = lanes;
    cfg
}

#[tokio::test(flavor = "multi_thread")]
async fn each_keys_events_are_handled_in_order_while_other_keys_proceed() {
    let tansu = broker(1).await;
    let keys = keys_in_distinct_lanes(3, 16);
    let per_key = 200;
    let records: Vec<Record> =
        (0..per_key).flat_map(|seq| keys.iter().map(move |k| keyed(&format!("{k}-{seq}"), k, seq))).collect();
    produce(&tansu.brokers, TOPIC, &records).await;
    let handler = Shared(Arc::new(Recorder { hold_key: Some(keys[0].clone()), ..Recorder::default() }));
    let kit = start(with_lanes(&tansu, "lanes-order", 16), handler.clone());
    let n = records.len();
    let all = eventually(WAIT, || {
        let done = handler.0.count() >= n;
        async move { done }
    })
    .await;
    assert!(all, "handled {} of {n}", handler.0.count());
    let stats = kit.stop().await;

    // One partition, keys interleaved in it: the first key's first event was held until another
    // key's event was handled, so records of one partition were handled out of partition order...
    assert!(handler.0.held_until_other.load(Ordering::SeqCst), "no other key was handled while {} was held", keys[0]);
    // ...and yet each key saw its events in production order, each once.
    let calls = handler.0.calls.lock().unwrap().clone();
    for k in &keys {
        let seqs: Vec<u64> = calls.iter().filter(|(_, key, _)| key == k).map(|(_, _, s)| *s).collect();
        assert_eq!(seqs, (0..per_key as u64).collect::<Vec<_>>(), "order of {k}");
    }
    assert_eq!((stats.handled, stats.outcomes_published), (n as u64, n as u64));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_id_delivered_under_two_keys_at_once_is_handled_once() {
    let tansu = broker(1).await;
    let keys = keys_in_distinct_lanes(3, 16);
    // The same id under two keys (two lanes), then a third key's event: while the first copy is
    // being handled (held until the third key's event is), the second copy is in its own lane.
    let records = [keyed("twin", &keys[0], 0), keyed("twin", &keys[1], 1), keyed("marker", &keys[2], 0)];
    produce(&tansu.brokers, TOPIC, &records).await;
    let handler = Shared(Arc::new(Recorder { hold_key: Some(keys[0].clone()), ..Recorder::default() }));
    let kit = start(with_lanes(&tansu, "lanes-twin", 16), handler.clone());
    assert!(handler.0.wait_for(|id, _| id == "marker").await, "marker never handled: {:?}", handler.0.ids());
    let stats = kit.stop().await;

    assert!(handler.0.held_until_other.load(Ordering::SeqCst));
    let mut ids = handler.0.ids();
    ids.sort();
    assert_eq!(ids, ["marker", "twin"], "the second copy waited for the first's claim, then was skipped");
    assert_eq!((stats.handled, stats.deduplicated, stats.outcomes_published), (2, 1, 2));
    let got: Vec<String> = outcomes(&tansu).await.into_iter().map(|(k, _)| k).filter(|k| k == "twin").collect();
    assert_eq!(got.len(), 1, "one outcome for the twin id");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_with_records_in_flight_then_a_restart_answers_every_event_once() {
    let tansu = broker(3).await;
    let (n, keys) = (600, 40);
    let records: Vec<Record> = (0..n).map(|i| keyed(&format!("e-{i}"), &format!("acct-{}", i % keys), i / keys)).collect();
    produce_one_by_one(&tansu.brokers, &records).await;

    // Stop once a third is handled: the kit then holds up to `max_in_flight` received records in
    // its lanes; it finishes them, stores offsets below the lowest unfinished, and commits. The
    // handler holds every call after the third until the stop is requested, so a kit faster than
    // this test's polling cannot have handled everything by then.
    let (open, gate) = watch::channel(false);
    let first = Shared(Arc::new(Recorder { gate: Some((n / 3, gate)), ..Recorder::default() }));
    let (stop, shutdown) = watch::channel(false);
    let kit = tokio::spawn(consumer::run(with_lanes(&tansu, "lanes-restart", 8), first.clone(), shutdown));
    let third = eventually(WAIT, || {
        let done = first.0.count() >= n / 3;
        async move { done }
    })
    .await;
    assert!(third, "first run handled {} of {}", first.0.count(), n / 3);
    stop.send(true).expect("kit still listening");
    open.send(true).expect("handler still holds the gate");
    let before = tokio::time::timeout(WAIT, kit).await.expect("kit stops in time").expect("kit task").expect("kit run");
    assert!(before.handled < n as u64, "the first run should stop mid-stream (handled {})", before.handled);

    let second = Shared::default();
    let kit = start(with_lanes(&tansu, "lanes-restart", 8), second.clone());
    let rest = n - before.handled as usize;
    let all = eventually(WAIT, || {
        let done = second.0.count() >= rest;
        async move { done }
    })
    .await;
    assert!(all, "second run handled {} of {rest}", second.0.count());
    let after = kit.stop().await;

    // Every event handled once over the two runs, and one acknowledged outcome each.
    let (a, b): (BTreeSet<String>, BTreeSet<String>) =
        (first.0.ids().into_iter().collect(), second.0.ids().into_iter().collect());
    assert!(a.is_disjoint(&b), "handled in both runs: {:?}", a.intersection(&b).collect::<Vec<_>>());
    assert_eq!((first.0.count() + second.0.count(), a.len() + b.len()), (n, n));
    assert_eq!(before.outcomes_published + after.outcomes_published, n as u64);
    let got = outcomes(&tansu).await;
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for (id, _) in &got {
        *per_id.entry(id.clone()).or_default() += 1;
    }
    assert_eq!(per_id.len(), n, "every event has an outcome");
    assert!(
        per_id.values().all(|&c| c == 1),
        "repeated outcomes: {:?}",
        per_id.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
}

/// The outcome of every event fails (its topic does not exist yet): the lanes move on, nothing is
/// committed, and a stop abandons the retries. Once the topic exists, the next run handles the
/// same events again and their outcomes are acknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_whose_outcome_is_never_acknowledged_is_not_committed() {
    let tansu = Tansu::start();
    create_topic(&tansu.brokers, TOPIC, 1).await;
    let records: Vec<Record> = (0..3).map(|i| keyed(&format!("u-{i}"), &format!("k-{i}"), 0)).collect();
    produce_one_by_one(&tansu.brokers, &records).await;
    let mut cfg = with_lanes(&tansu, "unacked", 4);
    cfg.outcomes_topic = "outcomes-later".into();
    cfg.librdkafka.insert("message.timeout.ms".into(), "1000".into());

    let first = Shared::default();
    let kit = start(cfg.clone(), first.clone());
    let handled = eventually(WAIT, || {
        let done = first.0.count() >= 3;
        async move { done }
    })
    .await;
    assert!(handled, "first run handled {:?}", first.0.ids());
    let before = kit.stop().await;
    assert_eq!((before.handled, before.outcomes_published), (3, 0));

    create_topic(&tansu.brokers, "outcomes-later", 1).await;
    let second = Shared::default();
    let kit = start(cfg, second.clone());
    let again = eventually(WAIT, || {
        let done = second.0.count() >= 3;
        async move { done }
    })
    .await;
    assert!(again, "nothing was committed, so the second run gets all 3 again: {:?}", second.0.ids());
    let after = kit.stop().await;
    let mut ids = second.0.ids();
    ids.sort();
    assert_eq!(ids, ["u-0", "u-1", "u-2"]);
    assert_eq!((after.handled, after.outcomes_published), (3, 3));
}
