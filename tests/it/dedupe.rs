//! A sender's retries: the same delivery three times reaches its owner every time and is one event.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use rdkafka::Message;

use crate::harness::{eventually, metric, post, scrape, start_proxy, url};
use crate::parity::{deciding_monolith, order, orders_config, SECRET};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::{drain, header};

const WAIT: Duration = Duration::from_secs(30);

async fn send_three_times(proxy: &strangler::app::Running, id: &str) -> Vec<StatusCode> {
    let body = serde_json::to_vec(&order(id, "cus_7", 1234)).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        // Each retry is signed anew, as providers do; the delivery id (Stripe's body `id`) stays.
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        statuses.push(post(&url(proxy, "/webhooks/orders"), &sign::stripe(SECRET, t, &body), body.clone()).await.status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_delivery_sent_three_times_is_one_event_and_reaches_its_owner_each_time() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, ""), &[("S", SECRET)], None).await;

    assert_eq!(send_three_times(&proxy, "evt_retry").await, [StatusCode::OK; 3]);
    assert_eq!(monolith.received().len(), 3, "the monolith, the owner, saw every attempt");
    let published = || async { proxy.metrics.publish.published.with_label_values(&["orders"]).get() == 1 };
    assert!(eventually(WAIT, published).await);
    let events = drain(&tansu.brokers, "webhooks.orders", WAIT).await;
    assert_eq!(events.len(), 1, "one event");
    assert_eq!(header(&events[0], "ce_id").as_deref(), Some("evt_retry"));
    let outcomes = drain(&tansu.brokers, "strangler.outcomes", WAIT).await;
    assert_eq!(outcomes.len(), 1, "one legacy outcome: the first answer");
    assert_eq!(outcomes[0].key(), Some(&b"evt_retry"[..]));
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_duplicates_total", &[("route", "orders")]), 2.0);
    assert_eq!(metric(&text, "strangler_dedupe_entries", &[]), 1.0);
    proxy.shutdown().await;

    // New-owned: one live event, and each attempt gets the route's answer.
    let cutover =
        orders_config(&monolith.url(), &tansu.brokers, "mode = \"cutover\"").replace("webhooks.orders", "webhooks.orders.live");
    let proxy = start_proxy(&cutover, &[("S", SECRET)], None).await;
    assert_eq!(send_three_times(&proxy, "evt_retry_live").await, [StatusCode::ACCEPTED; 3]);
    let events = drain(&tansu.brokers, "webhooks.orders.live", WAIT).await;
    assert_eq!(events.len(), 1);
    assert_eq!(header(&events[0], "ce_stranglermode").as_deref(), Some("live"));
    assert_eq!(proxy.metrics.publish.duplicates.with_label_values(&["orders"]).get(), 2);
    assert_eq!(monolith.received().len(), 3, "cutover: the monolith saw none of these");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dedupe_can_be_turned_off() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let off = format!("[dedupe]\nmax_entries = 0\n{}", orders_config(&monolith.url(), &tansu.brokers, ""));
    let proxy = start_proxy(&off, &[("S", SECRET)], None).await;
    send_three_times(&proxy, "evt_nodedupe").await;
    let published = || async { proxy.metrics.publish.published.with_label_values(&["orders"]).get() == 3 };
    assert!(eventually(WAIT, published).await, "with max_entries = 0 every attempt is published");
    proxy.shutdown().await;
}
