//! A replica started while Kafka is unreachable (issue 9, items 9 and 10): it serves at once,
//! spools, reports itself degraded but ready, and publishes everything once the broker answers.

use std::time::Duration;

use http::{Method, StatusCode};
use strangler::demo::monolith::Monolith;

use crate::harness::{eventually, metric, scrape, send, start_proxy};
use crate::load::{assert_exactly_once_in_order, config, deliver, spool_table, until_all_on_kafka, SECRET};
use crate::support::broker::{free_port, Tansu};

const WAIT: Duration = Duration::from_secs(60);

async fn readyz(admin: std::net::SocketAddr) -> (StatusCode, serde_json::Value) {
    let reply = send(Method::GET, &format!("http://{admin}/readyz"), &[], "").await;
    (reply.status, reply.json())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_started_before_its_broker_serves_spools_and_publishes_everything_once_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let spool = spool_table(&dir.path().join("spool"), 64 << 20);
    // Topic creation is on (the default): start-up used to fail after 15 s ("creating topics").
    // Here it returns, and serves below, while nothing listens on the broker's port.
    let proxy = start_proxy(&config(&monolith.url(), &brokers, "", &spool), &[("GH", SECRET)], None).await;
    // The same outage where readiness requires Kafka.
    let strict_spool = spool_table(&dir.path().join("spool-strict"), 64 << 20);
    let strict_src = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\nready_requires_kafka = true\n{}",
        config(&monolith.url(), &brokers, "", &strict_spool)
    );
    let strict = start_proxy(&strict_src, &[("GH", SECRET)], None).await;

    let base = format!("http://{}", proxy.public_addr);
    let mut accepted = Vec::new();
    for n in 0..30u64 {
        let id = format!("outage-{n}");
        assert_eq!(deliver(&base, &id, &format!("outage-e{}", n % 3), n, 64).await, StatusCode::OK, "{id}");
        accepted.push(id);
    }
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_kafka_up", &[]), 0.0);
    assert_eq!(metric(&text, "strangler_spool_records", &[]), 30.0, "every event waits in the spool");
    assert_eq!(metric(&text, "strangler_events_dropped_total", &[]), 0.0);
    let (status, body) = readyz(proxy.admin_addr).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["ready"].as_bool(), body["degraded"].as_bool()), (Some(true), Some(true)), "{body}");
    assert_eq!(body["kafka"], "unreachable");
    assert_eq!(body["spool"], "ok");
    assert_eq!(body["monolith"], "reachable");
    assert_eq!(body["listener"], "serving");
    assert_eq!(body["reasons"], serde_json::json!(["kafka_unreachable", "control_reading"]));
    let (status, body) = readyz(strict.admin_addr).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready_requires_kafka"], true);
    let failures = || async { metric(&scrape(&proxy).await, "strangler_topic_create_failures_total", &[]) >= 1.0 };
    assert!(eventually(WAIT, failures).await, "background topic creation retries and counts its failures");

    let tansu = Tansu::start_on(port);
    let records = until_all_on_kafka(&tansu.brokers, "webhooks.orders", &accepted, Duration::from_secs(120)).await;
    assert_exactly_once_in_order(&records, &accepted);
    let up = || async {
        let text = scrape(&proxy).await;
        metric(&text, "strangler_kafka_up", &[]) == 1.0
            && metric(&text, "strangler_topics_ready", &[]) == 1.0
            && metric(&text, "strangler_spool_records", &[]) == 0.0
    };
    assert!(eventually(WAIT, up).await, "Kafka up, topics ready, spool empty");
    let undegraded = || async { readyz(proxy.admin_addr).await.1["degraded"] == false };
    assert!(eventually(WAIT, undegraded).await, "the control topic is read once Kafka answers");
    let strict_ready = || async { readyz(strict.admin_addr).await.0 == StatusCode::OK };
    assert!(eventually(WAIT, strict_ready).await, "ready_requires_kafka: ready once Kafka answers");
    strict.shutdown().await;
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_spool_a_proxy_started_during_an_outage_still_forwards_counts_drops_and_is_not_ready() {
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let brokers = format!("127.0.0.1:{}", free_port());
    let kafka = "[kafka.librdkafka]\n\"message.timeout.ms\" = \"1000\"";
    let proxy = start_proxy(&config(&monolith.url(), &brokers, "", kafka), &[("GH", SECRET)], None).await;
    let base = format!("http://{}", proxy.public_addr);
    for n in 0..3u64 {
        assert_eq!(deliver(&base, &format!("nospool-{n}"), "e", n, 8).await, StatusCode::OK);
    }
    let dropped = || async {
        metric(&scrape(&proxy).await, "strangler_events_dropped_total", &[("route", "orders"), ("reason", "no_spool")]) == 3.0
    };
    assert!(eventually(WAIT, dropped).await, "each event with nowhere to wait is counted as dropped");
    let (status, body) = readyz(proxy.admin_addr).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!((body["spool"].as_str(), body["ready_requires_kafka"].as_bool()), (Some("none"), Some(true)), "{body}");
    assert_eq!(body["kafka"], "unreachable");
    proxy.shutdown().await;
}
