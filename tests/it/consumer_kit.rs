//! The consumer kit against a real broker: the shadow guarantee, dedupe by event id, retries and
//! the dead-letter topic, commit-after-outcome across restarts, and per-key order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde::Deserialize;
use strangler::compare::outcome::{EventMode, Outcome, Source};
use strangler::consumer::{self, ConsumerConfig, ConsumerError, Decision, Effects, Event, Handler, HandlerError, RunStats};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::harness::eventually;
use crate::support::{create_topic, drain, header, Tansu};

/// Deadline for anything to happen (broker start-up, group join, a batch of events).
pub(crate) const WAIT: Duration = Duration::from_secs(60);
pub(crate) const TOPIC: &str = "orders";
const OUTCOMES: &str = "outcomes";
const DLQ: &str = "orders.dlq";
const SERVICE: &str = "orders-service";

/// A broker with the events, outcomes and dead-letter topics created.
pub(crate) async fn broker(partitions: i32) -> Tansu {
    let tansu = Tansu::start();
    create_topic(&tansu.brokers, TOPIC, partitions).await;
    create_topic(&tansu.brokers, OUTCOMES, 1).await;
    create_topic(&tansu.brokers, DLQ, 1).await;
    tansu
}

pub(crate) fn config(tansu: &Tansu, group: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(&tansu.brokers, group, vec![TOPIC.into()], SERVICE);
    cfg.outcomes_topic = OUTCOMES.into();
    cfg.backoff = Duration::from_millis(10);
    cfg
}

/// A record as strangler would publish it.
pub(crate) struct Record {
    pub(crate) key: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

pub(crate) fn event(id: &str, key: &str, mode: &str, body: serde_json::Value) -> Record {
    let headers = [
        ("ce_specversion", "1.0"),
        ("ce_id", id),
        ("ce_source", "strangler://shop"),
        ("ce_type", "com.shop.order.created"),
        ("ce_time", "2026-01-01T00:00:00.000Z"),
        ("ce_partitionkey", key),
        ("ce_stranglerroute", "shop"),
        ("ce_stranglermode", mode),
        ("ce_stranglerowner", if mode == "live" { "new" } else { "legacy" }),
        ("ce_stranglersignature", "valid"),
        ("content-type", "application/json"),
    ];
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Record { key: key.into(), headers, body: body.to_string() }
}

fn order(id: &str, mode: &str, amount: u32) -> Record {
    event(id, &format!("order-{id}"), mode, serde_json::json!({ "amount": amount }))
}

/// Produces `records` in order to `topic`, awaiting every acknowledgement.
pub(crate) async fn produce(brokers: &str, topic: &str, records: &[Record]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    let mut deliveries = Vec::new();
    for r in records {
        let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(v) }));
        let record = FutureRecord::to(topic).key(&r.key).payload(&r.body).headers(headers);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
    }
    for d in deliveries {
        d.await.expect("delivery future").map_err(|(e, _)| e).expect("delivered");
    }
    let _ = tokio::task::spawn_blocking(move || drop(producer)).await;
}

/// What the test handler should do with an event id.
#[derive(Clone, Copy)]
enum Script {
    /// Fail (retryably) this many more times, then decide.
    FailTimes(u32),
    AlwaysFail,
    Permanent,
}

#[derive(Default)]
struct State {
    /// Every handler call, in call order.
    calls: Mutex<Vec<Event>>,
    /// Runs of the "ship" side effect.
    shipped: AtomicU32,
    script: Mutex<HashMap<String, Script>>,
}

impl State {
    fn ids(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|e| e.id.clone()).collect()
    }

    fn failure(&self, id: &str) -> Option<HandlerError> {
        let mut script = self.script.lock().unwrap();
        match script.get_mut(id)? {
            Script::FailTimes(0) => None,
            Script::FailTimes(n) => {
                *n -= 1;
                Some(HandlerError::retryable("inventory busy"))
            }
            Script::AlwaysFail => Some(HandlerError::retryable("inventory down")),
            Script::Permanent => Some(HandlerError::permanent("order is for a closed shop")),
        }
    }
}

/// Accepts orders under 100 and ships them (through `effects`); records every call.
#[derive(Clone, Default)]
struct Orders(Arc<State>);

#[derive(Deserialize)]
struct Order {
    amount: u32,
}

impl Handler for Orders {
    async fn handle(&self, event: &Event, effects: &Effects) -> Result<Decision, HandlerError> {
        self.0.calls.lock().unwrap().push(event.clone());
        if let Some(e) = self.0.failure(&event.id) {
            return Err(e);
        }
        let order: Order = event.json()?;
        let accepted = order.amount < 100;
        if accepted {
            effects.perform("ship order", || async { self.0.shipped.fetch_add(1, Ordering::SeqCst) }).await;
        }
        Decision::json(if accepted { 200 } else { 422 }, &serde_json::json!({ "accepted": accepted }))
    }
}

/// A kit running in the background.
pub(crate) struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<RunStats, ConsumerError>>,
}

pub(crate) fn start(cfg: ConsumerConfig, handler: impl Handler) -> Running {
    let (stop, shutdown) = watch::channel(false);
    Running { stop, task: tokio::spawn(consumer::run(cfg, handler, shutdown)) }
}

impl Running {
    pub(crate) async fn stop(self) -> RunStats {
        self.stop.send(true).expect("kit still listening");
        tokio::time::timeout(WAIT, self.task).await.expect("kit stops in time").expect("kit task").expect("kit run")
    }
}

/// Waits until the handler has been called for `id`.
async fn wait_for_call(state: &Arc<State>, id: &str) {
    let found = eventually(WAIT, || {
        let state = state.clone();
        async move { state.ids().iter().any(|i| i == id) }
    })
    .await;
    assert!(found, "handler never called for {id}; calls: {:?}", state.ids());
}

/// Outcomes on the outcomes topic, by record key.
pub(crate) async fn outcomes(tansu: &Tansu) -> Vec<(String, Outcome)> {
    let msgs = drain(&tansu.brokers, OUTCOMES, WAIT).await;
    msgs.iter()
        .map(|m| {
            let key = String::from_utf8(m.key().expect("outcome key").to_vec()).unwrap();
            (key, serde_json::from_slice(m.payload().expect("outcome value")).expect("outcome JSON"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn shadow_events_only_decide_and_live_events_act_once() {
    let tansu = broker(1).await;
    produce(
        &tansu.brokers,
        TOPIC,
        &[order("s-small", "shadow", 50), order("s-big", "shadow", 500), order("l-small", "live", 20)],
    )
    .await;
    let handler = Orders::default();
    let kit = start(config(&tansu, "shadow"), handler.clone());
    wait_for_call(&handler.0, "l-small").await;
    let stats = kit.stop().await;

    // One shadow order would have shipped: skipped. The live one shipped, once.
    assert_eq!(handler.0.shipped.load(Ordering::SeqCst), 1);
    assert_eq!(
        stats,
        RunStats { handled: 3, deduplicated: 0, dead_lettered: 0, outcomes_published: 3, effects_skipped: 1, skipped_invalid: 0 }
    );
    let got: BTreeMap<String, Outcome> = outcomes(&tansu).await.into_iter().collect();
    assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), ["l-small", "s-big", "s-small"]);
    for (id, mode, status, accepted) in [
        ("s-small", EventMode::Shadow, 200, true),
        ("s-big", EventMode::Shadow, 422, false),
        ("l-small", EventMode::Live, 200, true),
    ] {
        let o = &got[id];
        assert_eq!((o.event_id.as_str(), o.route.as_str(), o.source, o.mode, o.status), (id, "shop", Source::New, mode, status));
        assert_eq!(o.body, serde_json::json!({ "accepted": accepted }), "{id}");
        assert_eq!((o.content_type.as_deref(), o.consumer.as_deref()), (Some("application/json"), Some(SERVICE)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_event_id_is_handled_once() {
    let tansu = broker(1).await;
    produce(&tansu.brokers, TOPIC, &[order("dup", "shadow", 10), order("dup", "shadow", 10), order("after", "shadow", 10)]).await;
    let handler = Orders::default();
    let kit = start(config(&tansu, "dedupe"), handler.clone());
    wait_for_call(&handler.0, "after").await;
    let stats = kit.stop().await;

    let mut ids = handler.0.ids();
    ids.sort();
    assert_eq!(ids, ["after", "dup"]);
    assert_eq!((stats.handled, stats.deduplicated, stats.outcomes_published), (2, 1, 2));
    let mut keys: Vec<String> = outcomes(&tansu).await.into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["after", "dup"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_handlers_are_retried_then_dead_lettered_and_bad_records_too() {
    let tansu = broker(1).await;
    let mut no_id = order("no-id", "shadow", 10);
    no_id.headers.retain(|(k, _)| k != "ce_id");
    let records = [
        order("flaky", "shadow", 10),
        order("broken", "live", 10),
        order("closed", "shadow", 10),
        no_id,
        order("last", "shadow", 10),
    ];
    produce(&tansu.brokers, TOPIC, &records).await;
    let handler = Orders::default();
    handler.0.script.lock().unwrap().extend([
        ("flaky".to_string(), Script::FailTimes(2)),
        ("broken".to_string(), Script::AlwaysFail),
        ("closed".to_string(), Script::Permanent),
    ]);
    let kit = start(config(&tansu, "retries"), handler.clone());
    wait_for_call(&handler.0, "last").await;
    let stats = kit.stop().await;

    // Three attempts for the flaky and the broken event; a permanent error is not retried. (Their
    // keys differ, so lanes may interleave them.)
    let mut ids = handler.0.ids();
    ids.sort();
    assert_eq!(ids, ["broken", "broken", "broken", "closed", "flaky", "flaky", "flaky", "last"]);
    assert_eq!(handler.0.shipped.load(Ordering::SeqCst), 0, "the failed live event shipped nothing");
    assert_eq!((stats.handled, stats.outcomes_published, stats.dead_lettered), (2, 2, 3));
    let keys: BTreeSet<String> = outcomes(&tansu).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, BTreeSet::from(["flaky".to_string(), "last".to_string()]));

    let mut dead: Vec<OwnedMessage> = drain(&tansu.brokers, DLQ, WAIT).await;
    dead.sort_by_key(|m| records.iter().position(|r| m.key() == Some(r.key.as_bytes())));
    assert_eq!(dead.len(), 3);
    for (m, original, reason) in [
        (&dead[0], &records[1], "handler failed 3 times, last: inventory down"),
        (&dead[1], &records[2], "permanent handler error: order is for a closed shop"),
        (&dead[2], &records[3], "undecodable record: missing header ce_id"),
    ] {
        assert_eq!(m.key(), Some(original.key.as_bytes()));
        assert_eq!(m.payload(), Some(original.body.as_bytes()));
        assert_eq!(header(m, "dlq_reason").as_deref(), Some(reason));
        let copied: Vec<(String, String)> = original.headers.iter().map(|(k, _)| (k.clone(), header(m, k).unwrap())).collect();
        assert_eq!(&copied, &original.headers, "headers travel to the dead-letter topic unchanged");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_service_resumes_after_the_last_outcome() {
    let tansu = broker(1).await;
    let first: Vec<Record> = (0..5).map(|i| order(&format!("a-{i}"), "shadow", 10)).collect();
    produce(&tansu.brokers, TOPIC, &first).await;
    let handler = Orders::default();
    let kit = start(config(&tansu, "restart"), handler.clone());
    wait_for_call(&handler.0, "a-4").await;
    assert_eq!(kit.stop().await.outcomes_published, 5);

    let second: Vec<Record> = (0..3).map(|i| order(&format!("b-{i}"), "shadow", 10)).collect();
    produce(&tansu.brokers, TOPIC, &second).await;
    let again = Orders::default();
    let kit = start(config(&tansu, "restart"), again.clone());
    wait_for_call(&again.0, "b-2").await;
    let stats = kit.stop().await;

    // A re-read a-* would have been received before b-0 (one partition), and the stop finishes
    // every record received.
    let mut ids = again.0.ids();
    ids.sort();
    assert_eq!(ids, ["b-0", "b-1", "b-2"]);
    assert_eq!((stats.handled, stats.deduplicated), (3, 0));
    let keys: BTreeSet<String> = outcomes(&tansu).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_one_key_are_handled_in_production_order() {
    let tansu = broker(3).await;
    let (keys, per_key) = (["cart-a", "cart-b", "cart-c", "cart-d"], 25);
    let records: Vec<Record> = (0..per_key)
        .flat_map(|seq| keys.map(|k| event(&format!("{k}-{seq}"), k, "shadow", serde_json::json!({ "amount": 1, "seq": seq }))))
        .collect();
    produce(&tansu.brokers, TOPIC, &records).await;
    let handler = Orders::default();
    let kit = start(config(&tansu, "order"), handler.clone());
    let n = records.len();
    let all = eventually(WAIT, || {
        let state = handler.0.clone();
        async move { state.ids().len() >= n }
    })
    .await;
    assert!(all, "handled {} of {n}", handler.0.ids().len());
    kit.stop().await;

    let calls = handler.0.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), n);
    for k in keys {
        let seqs: Vec<u64> = calls
            .iter()
            .filter(|e| e.key == k)
            .map(|e| e.json::<serde_json::Value>().unwrap()["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (0..per_key).collect::<Vec<u64>>(), "order of {k}");
    }
    let partitions: BTreeSet<i32> = calls.iter().map(|e| e.partition).collect();
    assert!(partitions.len() > 1, "keys should spread over partitions: {partitions:?}");
}

/// Observe mode lets a forged delivery through, marked `invalid`, with the id of a genuine one:
/// the kit does not handle it, and the genuine delivery that follows is handled and answered.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_signature_event_does_not_claim_its_id() {
    let tansu = broker(1).await;
    let mut forged = event("evt_1", "order-evt_1", "shadow", serde_json::json!({ "amount": 500 }));
    for (k, v) in &mut forged.headers {
        if k == "ce_stranglersignature" {
            *v = "invalid".into();
        }
    }
    produce(&tansu.brokers, TOPIC, &[forged, order("evt_1", "shadow", 50)]).await;
    let handler = Orders::default();
    let kit = start(config(&tansu, "invalid"), handler.clone());
    wait_for_call(&handler.0, "evt_1").await;
    // Stopping finishes the record in hand, outcome acknowledged, before the loop ends.
    let stats = kit.stop().await;
    let got = outcomes(&tansu).await;

    let calls = handler.0.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "only the genuine delivery is handled");
    assert_eq!(calls[0].signature.as_deref(), Some("valid"));
    assert_eq!(stats.skipped_invalid, 1);
    assert_eq!((stats.handled, stats.deduplicated, stats.outcomes_published), (1, 0, 1));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.status),
        ("evt_1", 200),
        "the genuine order (50) was decided, not the forged one (500)"
    );
}
