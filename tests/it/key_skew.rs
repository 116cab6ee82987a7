//! Key skew (issue 13): with 90 % of a route's events on one key, the hot-keys API lists that key
//! first with its count, `strangler_partition_events_total` matches what Kafka holds on each
//! partition, and `strangler_partition_skew_ratio` crosses 2.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use http::{Method, StatusCode};
use rdkafka::Message;
use strangler::demo::monolith::Monolith;

use crate::harness::{eventually, metric, post, scrape, send, start_proxy, url};
use crate::sign;
use crate::support::broker::{free_port, Tansu};
use crate::support::kafka::drain;

const SECRET: &str = "skew-secret";
const PARTITIONS: usize = 4;
/// Events sent to `orders`: 90 % on `hot`, 10 % each on its own key (more keys than the sketch's
/// 64 counters).
const SENT: usize = 1_000;
const HOT: usize = SENT * 9 / 10;

/// A GitHub-signed route keyed by the body's `/entity`; `extra` lines go into it (e.g. a mode).
fn route(name: &str, extra: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\nmatch = {{ path = \"/webhooks/{name}\" }}\ntopic = \"skew.{name}\"\nsignature = {{ scheme = \"github\", secrets_env = [\"GH\"] }}\nevent = {{ key_pointer = \"/entity\" }}\n{extra}\n"
    )
}

/// `tail` goes after `[kafka]` (e.g. a `[spool]` table), then the routes.
fn config(legacy: &str, brokers: &str, tail: &str, routes: &[String]) -> String {
    format!(
        "[legacy]\nurl = \"{legacy}\"\n[comparator]\nenabled = false\n[kafka]\nbrokers = \"{brokers}\"\npartitions = {PARTITIONS}\n{tail}\n{}",
        routes.concat()
    )
}

async fn deliver(base: &str, route: &str, id: String, entity: String) {
    let body = serde_json::to_vec(&serde_json::json!({ "entity": entity, "id": id })).unwrap();
    let mut headers = sign::github(SECRET, &body);
    headers.push(("X-GitHub-Delivery".into(), id.clone()));
    headers.push(("X-GitHub-Event".into(), "order".into()));
    let reply = post(&format!("{base}/webhooks/{route}"), &headers, body).await;
    // 200 from the monolith (shadow), 202 from the new path's static answer (cutover).
    assert!(reply.status.is_success(), "{id}: {}", reply.status);
}

async fn get(admin: &str, path: &str) -> (StatusCode, serde_json::Value) {
    let reply = send(Method::GET, &format!("http://{admin}{path}"), &[], "").await;
    (reply.status, reply.json())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_key_is_listed_first_counted_per_partition_and_raises_the_skew_ratio() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let routes = [route("orders", ""), route("solo", ""), route("live", "mode = \"cutover\"")];
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, "", &routes), &[("GH", SECRET)], None).await;
    let base = url(&proxy, "");
    let admin = proxy.admin_addr.to_string();

    // Before any event: the ratio exists at 0 and the sketch is empty.
    let text = scrape(&proxy).await;
    assert!(text.contains("strangler_partition_skew_ratio{route=\"orders\"} 0"), "{text}");
    let (status, keys) = get(&admin, "/api/routes/orders/keys").await;
    assert_eq!(status, StatusCode::OK);
    // `since`: the replica's start-up, in its first 10 minutes.
    let since = humantime::parse_rfc3339(keys["since"].as_str().unwrap()).unwrap();
    assert!(since <= std::time::SystemTime::now() && since.elapsed().unwrap() < Duration::from_secs(600), "{keys}");
    assert_eq!(keys, serde_json::json!({ "route": "orders", "capacity": 64, "since": keys["since"], "events": 0, "keys": [] }));

    // Every tenth event has a key of its own; the others share `hot`.
    let sends = (0..SENT).map(|i| {
        let entity = if i % 10 == 9 { format!("cold-{i}") } else { "hot".to_string() };
        deliver(&base, "orders", format!("orders-{i}"), entity)
    });
    stream::iter(sends).buffer_unordered(16).collect::<Vec<()>>().await;
    // One key only on `solo`: a single partition of four is busy, so the ratio is exactly 4 once
    // the partition count comes from the topic's metadata (it would be 1 from partitions seen).
    stream::iter((0..40).map(|i| deliver(&base, "solo", format!("solo-{i}"), "one".into())))
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    // Live (new-owned) events are counted where they land too.
    for i in 0..20 {
        deliver(&base, "live", format!("live-{i}"), format!("entity-{}", i % 2)).await;
    }

    let acked = |text: &str, route: &str| metric(text, "strangler_partition_events_total", &[("route", route)]);
    let settled = eventually(Duration::from_secs(30), || async {
        let text = scrape(&proxy).await;
        acked(&text, "orders") == SENT as f64
            && acked(&text, "solo") == 40.0
            && acked(&text, "live") == 20.0
            && metric(&text, "strangler_partition_skew_ratio", &[("route", "solo")]) == PARTITIONS as f64
    })
    .await;
    let text = scrape(&proxy).await;
    assert!(settled, "every event counted where it landed:\n{text}");
    let ratio = metric(&text, "strangler_partition_skew_ratio", &[("route", "orders")]);
    assert!(ratio > 2.0, "skew ratio {ratio}");

    // Per partition, the counter says what Kafka holds.
    let records = drain(&tansu.brokers, "skew.orders", Duration::from_secs(20)).await;
    assert_eq!(records.len(), SENT);
    let mut on_kafka: BTreeMap<i32, usize> = BTreeMap::new();
    for r in &records {
        *on_kafka.entry(r.partition()).or_default() += 1;
    }
    for (partition, n) in &on_kafka {
        let counted =
            metric(&text, "strangler_partition_events_total", &[("route", "orders"), ("partition", &partition.to_string())]);
        assert_eq!(counted, *n as f64, "partition {partition}");
    }

    // The hot key first, its count within 1 % of what was sent (here exact: never evicted).
    let (status, keys) = get(&admin, "/api/routes/orders/keys").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (keys["route"].as_str(), keys["capacity"].as_u64(), keys["events"].as_u64()),
        (Some("orders"), Some(64), Some(SENT as u64))
    );
    let list = keys["keys"].as_array().unwrap();
    assert_eq!(list.len(), 64, "more keys than counters: every counter taken");
    assert_eq!(list[0]["key"], "hot");
    let count = list[0]["count"].as_u64().unwrap() as f64;
    assert!((count - HOT as f64).abs() <= HOT as f64 / 100.0, "hot counted {count}, sent {HOT}");
    for k in &list[1..] {
        let (c, e) = (k["count"].as_u64().unwrap(), k["error"].as_u64().unwrap());
        assert!(k["key"].as_str().unwrap().starts_with("cold-") && c - e <= 1, "{k}");
    }
    assert!(!text.contains("\"hot\"") && !text.contains("cold-"), "keys never become metric labels");

    // The route view's skew: every partition of the topic listed, the same events.
    let (status, view) = get(&admin, "/api/routes/orders").await;
    assert_eq!(status, StatusCode::OK);
    let skew = &view["skew"];
    assert_eq!(skew["window"], "5m");
    assert_eq!(skew["events"].as_u64(), Some(SENT as u64));
    let partitions = skew["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), PARTITIONS, "{skew}");
    for (p, entry) in partitions.iter().enumerate() {
        assert_eq!(entry["partition"].as_u64(), Some(p as u64));
        assert_eq!(entry["events"].as_u64().unwrap() as usize, on_kafka.get(&(p as i32)).copied().unwrap_or(0), "{skew}");
    }
    assert!(skew["ratio"].as_f64().unwrap() > 2.0, "{skew}");
    let (_, solo) = get(&admin, "/api/routes/solo").await;
    assert_eq!(solo["skew"]["ratio"].as_f64(), Some(PARTITIONS as f64), "{solo}");

    let (_, live) = get(&admin, "/api/routes/live/keys").await;
    let counts: Vec<_> = live["keys"].as_array().unwrap().iter().map(|k| (k["count"].as_u64(), k["error"].as_u64())).collect();
    assert_eq!(counts, [(Some(10), Some(0)), (Some(10), Some(0))], "{live}");

    let (status, unknown) = get(&admin, "/api/routes/nope/keys").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(unknown["error"]["code"], "unknown_route");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn write_ahead_events_are_counted_where_they_land() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = format!("[spool]\ndir = \"{}\"\nmax_bytes = 67108864\nwrite_ahead = true\n", dir.path().join("spool").display());
    let routes = [route("ahead", "")];
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, &spool, &routes), &[("GH", SECRET)], None).await;
    let base = url(&proxy, "");
    let sends = (0..60).map(|i| deliver(&base, "ahead", format!("ahead-{i}"), format!("entity-{}", i % 3)));
    stream::iter(sends).buffer_unordered(8).collect::<Vec<()>>().await;

    let counted = eventually(Duration::from_secs(30), || async {
        metric(&scrape(&proxy).await, "strangler_partition_events_total", &[("route", "ahead")]) == 60.0
    })
    .await;
    let text = scrape(&proxy).await;
    assert!(counted, "{text}");
    let records = drain(&tansu.brokers, "skew.ahead", Duration::from_secs(20)).await;
    assert_eq!(records.len(), 60);
    for p in 0..PARTITIONS as i32 {
        let on_kafka = records.iter().filter(|r| r.partition() == p).count();
        let label = p.to_string();
        let counted = metric(&text, "strangler_partition_events_total", &[("route", "ahead"), ("partition", &label)]);
        assert_eq!(counted, on_kafka as f64, "partition {p}");
    }
    let (_, keys) = get(&proxy.admin_addr.to_string(), "/api/routes/ahead/keys").await;
    let counts: Vec<_> = keys["keys"].as_array().unwrap().iter().map(|k| k["count"].as_u64()).collect();
    assert_eq!(counts, [Some(20), Some(20), Some(20)], "{keys}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spooled_events_are_counted_where_the_replay_lands_them() {
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No broker yet: every event waits in the spool until one answers on this port.
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let spool = format!("[spool]\ndir = \"{}\"\nmax_bytes = 67108864\n", dir.path().join("spool").display());
    let proxy = start_proxy(&config(&monolith.url(), &brokers, &spool, &[route("later", "")]), &[("GH", SECRET)], None).await;
    let base = url(&proxy, "");
    for i in 0..20 {
        deliver(&base, "later", format!("later-{i}"), format!("entity-{}", i % 2)).await;
    }
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_spool_records", &[]), 20.0, "{text}");
    assert_eq!(metric(&text, "strangler_partition_events_total", &[("route", "later")]), 0.0, "nothing acknowledged yet");

    let tansu = Tansu::start_on(port);
    let replayed = eventually(Duration::from_secs(120), || async {
        metric(&scrape(&proxy).await, "strangler_partition_events_total", &[("route", "later")]) == 20.0
    })
    .await;
    let text = scrape(&proxy).await;
    assert!(replayed, "{text}");
    let records = drain(&tansu.brokers, "skew.later", Duration::from_secs(20)).await;
    assert_eq!(records.len(), 20);
    for p in 0..PARTITIONS as i32 {
        let on_kafka = records.iter().filter(|r| r.partition() == p).count();
        let label = p.to_string();
        let counted = metric(&text, "strangler_partition_events_total", &[("route", "later"), ("partition", &label)]);
        assert_eq!(counted, on_kafka as f64, "partition {p}");
    }
    let (_, keys) = get(&proxy.admin_addr.to_string(), "/api/routes/later/keys").await;
    let counts: Vec<_> = keys["keys"].as_array().unwrap().iter().map(|k| k["count"].as_u64()).collect();
    assert_eq!(counts, [Some(10), Some(10)], "{keys}");
    proxy.shutdown().await;
}
