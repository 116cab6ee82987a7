//! What Kafka will not take: an oversized event (dead-letter topic), a full spool, a fatal producer
//! error, and new-owned requests while every broker is down.

use std::time::Duration;

use http::StatusCode;
use rdkafka::Message;
use strangler::demo::monolith::Monolith;

use crate::faults::{accepted, on_mock, OnMock, SETTLE};
use crate::harness::{eventually, metric, scrape, start_proxy};
use crate::load::{assert_exactly_once_in_order, config, deliver, until_all_on_kafka, Load};
use crate::support::broker::Tansu;
use crate::support::kafka::{drain, header};

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_event_goes_to_the_dead_letter_topic_and_the_proxy_carries_on() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let kafka = "librdkafka = { \"message.max.bytes\" = \"20000\" }";
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, kafka, ""), &[("GH", crate::load::SECRET)], None).await;
    let base = format!("http://{}", proxy.public_addr);

    assert_eq!(deliver(&base, "big-1", "big", 0, 50_000).await, StatusCode::OK, "the monolith still answers");
    assert_eq!(deliver(&base, "small-1", "big", 1, 10).await, StatusCode::OK);
    let dead = drain_until(&tansu.brokers, "strangler.dead-letter", 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(header(&dead[0], "ce_id").as_deref(), Some("big-1"));
    assert_eq!(header(&dead[0], "dlq_reason").as_deref(), Some("too_large"));
    assert_eq!(header(&dead[0], "dlq_topic").as_deref(), Some("webhooks.orders"));
    assert_eq!(header(&dead[0], "dlq_truncated").as_deref(), Some("true"));
    assert_eq!(dead[0].payload().unwrap().len(), 10_000, "cut to half of message.max.bytes");
    let events = drain_until(&tansu.brokers, "webhooks.orders", 1).await;
    let ids: Vec<_> = events.iter().filter_map(|m| header(m, "ce_id")).collect();
    assert_eq!(ids, ["small-1"], "the next event is published as usual");
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_dead_letters_total", &[("route", "orders"), ("reason", "too_large")]), 1.0);
    proxy.shutdown().await;
}

async fn drain_until(brokers: &str, topic: &str, n: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = drain(brokers, topic, Duration::from_secs(10)).await;
        if got.len() >= n || std::time::Instant::now() > deadline {
            assert!(got.len() >= n, "{n} records on {topic}, got {}", got.len());
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_spool_drops_shadow_events_counted_and_the_monolith_keeps_answering() {
    let OnMock { broker, brokers, monolith: _monolith, proxy, base, _spool } = on_mock("", Some(64 * 1024), "").await;

    broker.with_cluster(|c| Ok(c.broker_down(1)?)).unwrap();
    let down = || async { metric(&scrape(&proxy).await, "strangler_kafka_up", &[]) == 0.0 };
    assert!(eventually(Duration::from_secs(30), down).await, "the producer noticed the outage");
    let mut statuses = Vec::new();
    for n in 0..40 {
        statuses.push(deliver(&base, &format!("full-{n}"), &format!("full-e{}", n % 3), n, 4_000).await);
    }
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "a full spool never fails the monolith path");
    let text = scrape(&proxy).await;
    let spooled = metric(&text, "strangler_events_spooled_total", &[("route", "orders")]);
    let dropped = metric(&text, "strangler_events_dropped_total", &[("route", "orders"), ("reason", "spool_full")]);
    assert!(dropped > 0.0 && spooled > 0.0, "spooled {spooled}, dropped {dropped}");
    assert_eq!(spooled + dropped, 40.0, "every event either spooled or counted as dropped");
    assert!(metric(&text, "strangler_spool_bytes", &[]) <= 64.0 * 1024.0);

    broker.with_cluster(|c| Ok(c.broker_up(1)?)).unwrap();
    let replayed = || async { metric(&scrape(&proxy).await, "strangler_spool_records", &[]) == 0.0 };
    assert!(eventually(SETTLE, replayed).await, "the spool drained once Kafka came back");
    let records = drain(&brokers, "webhooks.orders", Duration::from_secs(20)).await;
    assert_eq!(records.len() as f64, spooled, "what was spooled is on Kafka, once each");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fatal_producer_error_recreates_the_producer_and_loses_nothing() {
    let OnMock { broker: _broker, brokers, monolith: _monolith, proxy, base, _spool } = on_mock("", Some(64 << 20), "").await;

    let load = Load::start(&base, "fatal", 2, Duration::from_millis(20));
    let some = || async { proxy.metrics.publish.published.with_label_values(&["orders"]).get() >= 20 };
    assert!(eventually(Duration::from_secs(30), some).await);
    proxy.inject_fatal_error();
    let recreated = || async { metric(&scrape(&proxy).await, "strangler_producer_recreated_total", &[]) == 1.0 };
    assert!(eventually(Duration::from_secs(30), recreated).await, "the producer was recreated");
    let more = proxy.metrics.publish.published.with_label_values(&["orders"]).get() + 20;
    let after = || async { proxy.metrics.publish.published.with_label_values(&["orders"]).get() >= more };
    assert!(eventually(Duration::from_secs(60), after).await, "the new producer publishes");
    let sent = load.finish().await;
    assert!(sent.iter().all(|s| s.status == StatusCode::OK));
    let ids = accepted(&sent);
    let records = until_all_on_kafka(&brokers, "webhooks.orders", &ids, SETTLE).await;
    assert_exactly_once_in_order(&records, &ids);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn while_kafka_is_down_new_owned_requests_follow_on_publish_failure() {
    let OnMock { broker, brokers: _brokers, monolith, proxy, base, _spool } =
        on_mock("", Some(64 << 20), "mode = \"cutover\"").await;

    assert_eq!(deliver(&base, "live-up", "live-e", 0, 10).await, StatusCode::ACCEPTED, "the new path answers");
    assert!(monolith.received().is_empty());
    broker.with_cluster(|c| Ok(c.broker_down(1)?)).unwrap();
    let down = || async { metric(&scrape(&proxy).await, "strangler_kafka_up", &[]) == 0.0 };
    assert!(eventually(Duration::from_secs(30), down).await);
    // on_publish_failure = "legacy" (the default): the monolith answers at once, nothing is spooled.
    assert_eq!(deliver(&base, "live-down", "live-e", 1, 10).await, StatusCode::OK);
    assert_eq!(monolith.received().len(), 1, "the monolith handled the request instead");
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_fallbacks_total", &[("route", "orders"), ("reason", "kafka_down")]), 1.0);
    assert_eq!(metric(&text, "strangler_spool_records", &[]), 0.0, "a live event is never spooled behind the sender's back");
    proxy.shutdown().await;
}
