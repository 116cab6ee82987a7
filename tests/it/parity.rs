//! Shadow parity end to end: the deciding sample monolith, the sample order service on the
//! consumer kit, the embedded comparator, a real Tansu broker.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use http::StatusCode;
use strangler::app::Running;
use strangler::consumer::{self, ConsumerConfig};
use strangler::demo::decision::Order;
use strangler::demo::monolith::{Behaviour, Monolith, MonolithHandle};
use strangler::demo::service::{disagrees, OrderService};
use tokio::sync::watch;

use crate::harness::{eventually, post, send, start_proxy, url};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::drain;

const WAIT: Duration = Duration::from_secs(120);
pub const SECRET: &str = "whsec_parity";

pub async fn deciding_monolith() -> MonolithHandle {
    Monolith::start_with("127.0.0.1:0".parse().unwrap(), Behaviour { decide: true, record: true }).await.unwrap()
}

/// The order route; `extra` adds route keys (mode, share, compare, new_path_response...).
pub fn orders_config(legacy: &str, brokers: &str, extra: &str) -> String {
    format!(
        r#"
[legacy]
url = "{legacy}"
[kafka]
brokers = "{brokers}"
partitions = 3
[[route]]
name = "orders"
match = {{ path = "/webhooks/orders" }}
topic = "webhooks.orders"
signature = {{ scheme = "stripe", secrets_env = ["S"] }}
event = {{ key_pointer = "/customer" }}
{extra}
"#
    )
}

pub fn order(id: &str, customer: &str, amount_cents: u64) -> Order {
    Order {
        id: id.to_string(),
        customer: customer.to_string(),
        amount_cents,
        country: ["US", "BR", "DE"][amount_cents as usize % 3].into(),
    }
}

/// Sends orders signed for the stripe route, `concurrency` at a time; returns the statuses in order.
pub async fn send_orders(proxy: &Running, orders: &[Order], concurrency: usize) -> Vec<(StatusCode, bytes::Bytes)> {
    let mut replies = Vec::new();
    for chunk in orders.chunks(concurrency) {
        let sends = chunk.iter().map(|o| {
            let body = serde_json::to_vec(o).unwrap();
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            let headers = sign::stripe(SECRET, t, &body);
            let target = url(proxy, "/webhooks/orders");
            async move { post(&target, &headers, body).await }
        });
        replies.extend(join_all(sends).await.into_iter().map(|r| (r.status, r.body)));
    }
    replies
}

/// The sample order service running on the kit.
pub struct Service {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<consumer::RunStats, consumer::ConsumerError>>,
}

impl Service {
    /// Stops it while the broker is still up, so its group leave and final commit go through.
    pub async fn stop(self) -> consumer::RunStats {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap()
    }
}

pub fn start_service(brokers: &str, disagree_bp: u32) -> Service {
    let (stop, stopped) = watch::channel(false);
    let cfg = ConsumerConfig::new(brokers, "order-service", vec!["webhooks.orders".into()], "order-service");
    Service { stop, task: tokio::spawn(consumer::run(cfg, OrderService { disagree_bp }, stopped)) }
}

fn parity(proxy: &Running, result: &str) -> u64 {
    proxy.metrics.compare.parity.with_label_values(&["orders", result]).get()
}

#[tokio::test(flavor = "multi_thread")]
async fn shadow_parity_counts_exactly_the_disagreements_and_names_the_field() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, ""), &[("S", SECRET)], None).await;
    let service = start_service(&tansu.brokers, 500);

    let orders: Vec<Order> =
        (0..1000).map(|i| order(&format!("evt_{i:04}"), &format!("cus_{}", i % 97), (i * 373) % 150_000)).collect();
    let replies = send_orders(&proxy, &orders, 16).await;
    assert!(replies.iter().all(|(s, _)| *s == StatusCode::OK), "the monolith answers every sender");

    let compared = || async { parity(&proxy, "match") + parity(&proxy, "mismatch") == 1000 };
    assert!(eventually(WAIT, compared).await, "match {} mismatch {}", parity(&proxy, "match"), parity(&proxy, "mismatch"));
    let expected: BTreeSet<String> = orders.iter().filter(|o| disagrees(&o.id, 500)).map(|o| o.id.clone()).collect();
    assert!((30..=70).contains(&expected.len()), "about 5 %: {}", expected.len());
    assert_eq!(parity(&proxy, "mismatch"), expected.len() as u64);
    assert_eq!(parity(&proxy, "match"), 1000 - expected.len() as u64);
    assert_eq!(parity(&proxy, "missing_new") + parity(&proxy, "missing_legacy"), 0);
    let ratio = proxy.metrics.compare.ratio.with_label_values(&["orders"]).get();
    assert!((ratio - (1000 - expected.len()) as f64 / 1000.0).abs() < 1e-9, "{ratio}");

    // Every mismatch on the parity topic is one of the chosen events and names the field.
    let records: Vec<serde_json::Value> = drain(&tansu.brokers, "strangler.parity", WAIT)
        .await
        .iter()
        .map(|m| serde_json::from_slice(rdkafka::Message::payload(m).unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 1000);
    let mismatched: BTreeSet<String> =
        records.iter().filter(|r| r["result"] == "mismatch").map(|r| r["event_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(mismatched, expected);
    for r in records.iter().filter(|r| r["result"] == "mismatch") {
        let diff = r["diff"].as_array().unwrap();
        assert_eq!(diff.len(), 1, "{r}");
        assert_eq!(diff[0]["pointer"], "/body/risk", "{r}");
        assert_ne!(diff[0]["legacy"], diff[0]["new"]);
    }

    // The admin API shows the last samples with the same field.
    let api = send(http::Method::GET, &format!("http://{}/api/routes/orders/mismatches", proxy.admin_addr), &[], "").await;
    let samples = api.json()["samples"].as_array().unwrap().clone();
    assert_eq!(samples.len(), 20, "the route keeps 20 samples by default");
    assert!(samples
        .iter()
        .all(|s| s["diff"][0]["pointer"] == "/body/risk" && expected.contains(s["event_id"].as_str().unwrap())));
    let stats = service.stop().await;
    assert_eq!((stats.handled, stats.outcomes_published), (1000, 1000));
    assert_eq!(stats.effects_skipped, 1000, "shadow: the service's side effect never ran");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_new_service_is_missing_new_after_the_window_and_not_before() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let extra = "compare = { window_ms = 5000 }";
    let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, extra), &[("S", SECRET)], None).await;

    let replies = send_orders(&proxy, &[order("evt_silent", "cus_1", 100)], 1).await;
    assert_eq!(replies[0].0, StatusCode::OK);
    let legacy_read = || async { proxy.metrics.compare.outcomes.with_label_values(&["orders", "legacy", "shadow"]).get() == 1 };
    assert!(eventually(WAIT, legacy_read).await, "the comparator read the legacy outcome");
    assert_eq!(parity(&proxy, "missing_new"), 0, "not before the window closes");
    let missing = || async { parity(&proxy, "missing_new") == 1 };
    assert!(eventually(WAIT, missing).await);

    let outcome = drain(&tansu.brokers, "strangler.outcomes", WAIT).await;
    let parity_records = drain(&tansu.brokers, "strangler.parity", WAIT).await;
    let at = |m: &rdkafka::message::OwnedMessage| {
        let v: serde_json::Value = serde_json::from_slice(rdkafka::Message::payload(m).unwrap()).unwrap();
        humantime::parse_rfc3339(v["at"].as_str().unwrap()).unwrap()
    };
    assert_eq!((outcome.len(), parity_records.len()), (1, 1));
    let waited = at(&parity_records[0]).duration_since(at(&outcome[0])).unwrap();
    assert!(waited >= Duration::from_millis(5000), "decided {waited:?} after the legacy outcome");
    assert_eq!(parity(&proxy, "match") + parity(&proxy, "mismatch") + parity(&proxy, "missing_legacy"), 0);
    proxy.shutdown().await;
}

/// `strangler compare`: the comparator alone, beside proxies that do not compare.
#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_comparator_does_the_comparing_for_proxies_that_do_not() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let toml = format!("[comparator]\nenabled = false\n{}", orders_config(&monolith.url(), &tansu.brokers, ""));
    let proxy = start_proxy(&toml, &[("S", SECRET)], None).await;
    let cfg =
        strangler::config::load_str(&format!("[admin]\nlisten = \"127.0.0.1:0\"\n{toml}"), "c.toml", &|_| Some(SECRET.into()))
            .unwrap();
    let opts = strangler::app::Options { role: strangler::app::Role::Comparator, ..Default::default() };
    let comparator = strangler::app::start(cfg, opts).await.unwrap();
    let service = start_service(&tansu.brokers, 0);

    let orders: Vec<Order> = (0..10).map(|i| order(&format!("evt_solo_{i}"), "cus_1", i)).collect();
    send_orders(&proxy, &orders, 4).await;
    let compared = || async { comparator.metrics.compare.parity.with_label_values(&["orders", "match"]).get() == 10 };
    assert!(eventually(WAIT, compared).await);
    assert_eq!(parity(&proxy, "match"), 0, "the proxy's own comparator is off");
    // The API's counts are cluster-wide, folded from the parity topic: they follow within moments.
    let route = format!("http://{}/api/routes/orders", comparator.admin_addr);
    let counted = || async { send(http::Method::GET, &route, &[], "").await.json()["parity"]["counts"]["match"] == 10 };
    assert!(eventually(WAIT, counted).await);
    let missing = send(http::Method::GET, &format!("http://{}/api/routes/nope/mismatches", comparator.admin_addr), &[], "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "unknown_route");
    service.stop().await;
    comparator.shutdown().await;
    proxy.shutdown().await;
}
