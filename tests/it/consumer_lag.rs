//! Consumer lag end to end: a real Tansu broker, the sample order service on the consumer kit,
//! strangler reporting the service's group. The service is paused mid-test: the lag rises to
//! exactly the events sent since, its age grows, and both fall back to 0 once it resumes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;
use strangler::app::Running;
use strangler::consumer::{self, ConsumerConfig, RunStats};
use strangler::demo::service::OrderService;
use tokio::sync::watch;

use crate::harness::{eventually, metric, scrape, send, start_proxy};
use crate::parity::{deciding_monolith, order, orders_config, send_orders, SECRET};
use crate::support::broker::Tansu;

const WAIT: Duration = Duration::from_secs(60);
const GROUP: &str = "order-service";
const TOPIC: &str = "webhooks.orders";
const GHOST: &str = "ghost-service";

/// The sample order service, committing often so a test need not wait for the default 5 s.
struct Service {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<RunStats, consumer::ConsumerError>>,
}

fn start_service(brokers: &str) -> Service {
    let (stop, stopped) = watch::channel(false);
    let mut cfg = ConsumerConfig::new(brokers, GROUP, vec![TOPIC.into()], GROUP);
    cfg.librdkafka.insert("auto.commit.interval.ms".into(), "200".into());
    Service { stop, task: tokio::spawn(consumer::run(cfg, OrderService { disagree_bp: 0 }, stopped)) }
}

impl Service {
    /// Stops it: it finishes what it holds and commits before returning.
    async fn stop(self) -> RunStats {
        let _ = self.stop.send(true);
        tokio::time::timeout(WAIT, self.task).await.expect("service stops in time").unwrap().unwrap()
    }
}

async fn api_lag(proxy: &Running) -> Value {
    let reply = send(Method::GET, &format!("http://{}/api/lag", proxy.admin_addr), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()
}

/// The `topics[]` entry of `group` × `topic` in a `GET /api/lag` answer.
fn topic_of<'a>(lag: &'a Value, group: &str, topic: &str) -> &'a Value {
    let g = lag["groups"].as_array().unwrap().iter().find(|g| g["group"] == group).unwrap_or_else(|| panic!("{group} in {lag}"));
    g["topics"].as_array().unwrap().iter().find(|t| t["topic"] == topic).unwrap_or_else(|| panic!("{topic} in {lag}"))
}

async fn gauge(proxy: &Running, name: &str) -> f64 {
    metric(&scrape(proxy).await, name, &[("group", GROUP), ("topic", TOPIC)])
}

/// Waits (polling, up to a deadline) until the gauge `name` of the service's group satisfies
/// `ok`; returns its value then.
async fn wait_gauge(proxy: &Running, name: &str, what: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = gauge(proxy, name).await;
        if ok(value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{name} never became {what}; last {value}; /api/lag: {}", api_lag(proxy).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lag_rises_with_a_paused_service_and_falls_when_it_resumes() {
    // SQLite storage: Tansu 0.6's in-memory engine answers ListOffsets(latest) with the last
    // batch's base offset + 1 (see support/kafka.rs `drain`), which would undercount the lag.
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start_sqlite(&dir.path().join("tansu.db"));
    let monolith = deciding_monolith().await;
    let lag = format!(
        "[lag]\ninterval_ms = 1000\n[[lag.group]]\nname = \"{GROUP}\"\ntopics = [\"{TOPIC}\"]\n\
         [[lag.group]]\nname = \"{GHOST}\"\ntopics = [\"no.such.topic\"]\n"
    );
    let proxy =
        start_proxy(&format!("{}{lag}", orders_config(&monolith.url(), &tansu.brokers, "")), &[("S", SECRET)], None).await;

    // Every configured group × topic exists from start-up, at zero while nothing was sent.
    let text = scrape(&proxy).await;
    for name in ["records", "max_partition_records", "seconds"] {
        let line = format!("strangler_consumer_lag_{name}{{group=\"{GROUP}\",topic=\"{TOPIC}\"}} 0");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert!(text.contains(&format!("strangler_consumer_lag_refresh_errors_total{{group=\"{GHOST}\"}}")), "{text}");

    // The service keeps up: every event it was sent is committed, nothing lags.
    let service = start_service(&tansu.brokers);
    let first: Vec<_> = (0..3).map(|i| order(&format!("evt_a{i}"), &format!("cus_{i}"), 1000 + i)).collect();
    assert!(send_orders(&proxy, &first, 3).await.iter().all(|(s, _)| *s == StatusCode::OK));
    let caught_up = eventually(WAIT, || async {
        let lag = api_lag(&proxy).await;
        let t = topic_of(&lag, GROUP, TOPIC);
        let committed: i64 = t["partitions"].as_array().unwrap().iter().map(|p| p["committed"].as_i64().unwrap_or(0)).sum();
        committed == 3 && t["lag_records"] == 0 && t["lag_seconds"] == 0.0
    })
    .await;
    assert!(caught_up, "the service never caught up: {}", api_lag(&proxy).await);
    wait_gauge(&proxy, "strangler_consumer_lag_records", "0", |v| v == 0.0).await;

    // Paused: K events later the lag is exactly K, in the gauge and in the API alike.
    service.stop().await;
    const K: u64 = 7;
    let paused: Vec<_> = (0..K).map(|i| order(&format!("evt_b{i}"), &format!("cus_{}", i % 5), 2000 + i)).collect();
    assert!(send_orders(&proxy, &paused, 4).await.iter().all(|(s, _)| *s == StatusCode::OK));
    wait_gauge(&proxy, "strangler_consumer_lag_records", "K", |v| v == K as f64).await;
    let agreed = eventually(WAIT, || async {
        let lag = api_lag(&proxy).await;
        let t = topic_of(&lag, GROUP, TOPIC);
        let parts = t["partitions"].as_array().unwrap();
        let sum: i64 = parts.iter().map(|p| p["lag_records"].as_i64().unwrap()).sum();
        let max = parts.iter().map(|p| p["lag_records"].as_i64().unwrap()).max().unwrap();
        let ends: i64 = parts.iter().map(|p| p["end"].as_i64().unwrap()).sum();
        t["lag_records"] == K && sum == K as i64 && t["max_partition_lag_records"] == max && ends == 3 + K as i64
    })
    .await;
    assert!(agreed, "/api/lag disagrees with the gauge: {}", api_lag(&proxy).await);
    let max = gauge(&proxy, "strangler_consumer_lag_max_partition_records").await;
    assert!(max >= 1.0 && max <= K as f64, "max partition lag {max}");

    // The oldest unconsumed event ages while the service stays paused.
    let first_age = wait_gauge(&proxy, "strangler_consumer_lag_seconds", "> 0", |v| v > 0.0).await;
    wait_gauge(&proxy, "strangler_consumer_lag_seconds", "older", |v| v > first_age).await;

    // Resumed with the same group: it reads on from its commits and the lag falls to 0.
    let service = start_service(&tansu.brokers);
    wait_gauge(&proxy, "strangler_consumer_lag_records", "0 again", |v| v == 0.0).await;
    wait_gauge(&proxy, "strangler_consumer_lag_seconds", "0 again", |v| v == 0.0).await;
    let stats = service.stop().await;
    assert_eq!(stats.handled, K, "the resumed service handled exactly the events sent while paused");

    // A group on a topic that does not exist: its error is shown and counted, nothing else stops.
    let lag = api_lag(&proxy).await;
    let ghost = lag["groups"].as_array().unwrap().iter().find(|g| g["group"] == GHOST).unwrap().clone();
    assert!(ghost["error"].as_str().is_some_and(|e| e.contains("no.such.topic")), "{lag}");
    assert_eq!(ghost["source"], "config");
    let comparator = lag["groups"].as_array().unwrap().iter().find(|g| g["source"] == "comparator").unwrap();
    assert_eq!(comparator["group"], "strangler-comparator");
    assert_eq!(comparator["topics"][0]["topic"], "strangler.outcomes");
    assert_eq!(lag["interval"], "1s");
    assert!(lag["refreshed_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{lag}");
    let errors = metric(&scrape(&proxy).await, "strangler_consumer_lag_refresh_errors_total", &[("group", GHOST)]);
    assert!(errors >= 1.0, "ghost refresh errors: {errors}");
    let ok = metric(&scrape(&proxy).await, "strangler_consumer_lag_refresh_errors_total", &[("group", GROUP)]);
    assert_eq!(ok, 0.0, "the healthy group never failed");
    proxy.shutdown().await;
}

/// On the embedded broker, a group that never committed lags by everything the topic holds.
#[tokio::test(flavor = "multi_thread")]
async fn on_the_embedded_broker_a_group_without_commits_lags_by_everything_retained() {
    let monolith = deciding_monolith().await;
    let src = orders_config(&monolith.url(), "x", "")
        .replace("[kafka]\nbrokers = \"x\"\n", "[kafka]\n")
        .replace("[[route]]", "[lag]\ninterval_ms = 1000\nper_partition = true\n[[lag.group]]\nname = \"late-service\"\ntopics = [\"webhooks.orders\"]\n[[route]]");
    let proxy = start_proxy(&src, &[("S", SECRET)], None).await;
    assert!(proxy.embedded);
    let orders: Vec<_> = (0..4).map(|i| order(&format!("evt_e{i}"), &format!("cus_{i}"), 3000 + i)).collect();
    assert!(send_orders(&proxy, &orders, 4).await.iter().all(|(s, _)| *s == StatusCode::OK));
    let all = eventually(WAIT, || async {
        let text = scrape(&proxy).await;
        metric(&text, "strangler_consumer_lag_records", &[("group", "late-service"), ("topic", TOPIC)]) == 4.0
    })
    .await;
    let text = scrape(&proxy).await;
    assert!(all, "/api/lag: {}\n{text}", api_lag(&proxy).await);
    assert!(text.contains("strangler_consumer_lag_records{group=\"late-service\",partition=\""), "per_partition labels: {text}");
    let lag = api_lag(&proxy).await;
    let t = topic_of(&lag, "late-service", TOPIC);
    assert!(t["partitions"].as_array().unwrap().iter().all(|p| p["committed"].is_null()), "{lag}");
    assert_eq!(t["lag_records"], 4);
    proxy.shutdown().await;
}
