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

/// Observe mode: a forged delivery carrying a genuine delivery's id (Stripe's body `id`) is
/// forwarded and published marked `invalid`, but does not take the id: the genuine delivery that
/// follows is published, and only it has a legacy outcome.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_delivery_does_not_take_the_genuine_deliverys_dedupe_slot() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let observe = orders_config(&monolith.url(), &tansu.brokers, "")
        .replace(r#"secrets_env = ["S"] }"#, r#"secrets_env = ["S"], mode = "observe" }"#);
    assert!(observe.contains("observe"));
    let proxy = start_proxy(&observe, &[("S", SECRET)], None).await;
    let target = url(&proxy, "/webhooks/orders");
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let forged = serde_json::to_vec(&order("evt_contested", "cus_evil", 1)).unwrap();
    let genuine = serde_json::to_vec(&order("evt_contested", "cus_7", 1234)).unwrap();

    assert_eq!(post(&target, &sign::stripe("whsec_forger", t, &forged), forged.clone()).await.status, StatusCode::OK);
    assert_eq!(post(&target, &sign::stripe(SECRET, t, &genuine), genuine.clone()).await.status, StatusCode::OK);
    // The genuine sender's retry is still a duplicate of the genuine delivery.
    assert_eq!(post(&target, &sign::stripe(SECRET, t, &genuine), genuine.clone()).await.status, StatusCode::OK);
    assert_eq!(monolith.received().len(), 3, "observe mode forwards every attempt");

    let published = || async { proxy.metrics.publish.published.with_label_values(&["orders"]).get() == 2 };
    assert!(eventually(WAIT, published).await, "the forged and the genuine delivery are published");
    let events = drain(&tansu.brokers, "webhooks.orders", WAIT).await;
    let seen: Vec<(Option<String>, Option<String>, Vec<u8>)> = events
        .iter()
        .map(|e| (header(e, "ce_id"), header(e, "ce_stranglersignature"), e.payload().unwrap_or_default().to_vec()))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let invalid = seen.iter().find(|s| s.1.as_deref() == Some("invalid")).expect("the forged event, marked");
    let valid = seen.iter().find(|s| s.1.as_deref() == Some("valid")).expect("the genuine event is published");
    assert_eq!((invalid.0.as_deref(), &invalid.2), (Some("evt_contested"), &forged));
    assert_eq!((valid.0.as_deref(), &valid.2), (Some("evt_contested"), &genuine));

    let outcomes = drain(&tansu.brokers, "strangler.outcomes", WAIT).await;
    assert_eq!(outcomes.len(), 1, "one legacy outcome, the genuine delivery's");
    let outcome: serde_json::Value = serde_json::from_slice(outcomes[0].payload().unwrap()).unwrap();
    assert_eq!(outcome["event_id"], "evt_contested");
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_duplicates_total", &[("route", "orders")]), 1.0, "only the genuine retry");
    assert_eq!(metric(&text, "strangler_signature_failures_total", &[("route", "orders"), ("mode", "observe")]), 1.0);
    proxy.shutdown().await;
}

/// In cutover, a delivery whose signature fails (observe mode) is not the new path's to act on:
/// the monolith gets it, as before strangler, and it is published as a legacy-owned shadow event.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_delivery_on_a_cutover_route_goes_to_the_monolith() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let cfg = orders_config(&monolith.url(), &tansu.brokers, "mode = \"cutover\"")
        .replace(r#"secrets_env = ["S"] }"#, r#"secrets_env = ["S"], mode = "observe" }"#);
    let proxy = start_proxy(&cfg, &[("S", SECRET)], None).await;
    let target = url(&proxy, "/webhooks/orders");
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let forged = serde_json::to_vec(&order("evt_cut_forged", "cus_9", 1)).unwrap();
    let genuine = serde_json::to_vec(&order("evt_cut_genuine", "cus_9", 1)).unwrap();

    assert_eq!(post(&target, &sign::stripe("whsec_forger", t, &forged), forged.clone()).await.status, StatusCode::OK);
    assert_eq!(monolith.received().len(), 1, "the monolith answered the invalid delivery");
    assert_eq!(post(&target, &sign::stripe(SECRET, t, &genuine), genuine).await.status, StatusCode::ACCEPTED);
    assert_eq!(monolith.received().len(), 1, "the genuine one is the new path's");

    let published = || async { proxy.metrics.publish.published.with_label_values(&["orders"]).get() == 2 };
    assert!(eventually(WAIT, published).await);
    let events = drain(&tansu.brokers, "webhooks.orders", WAIT).await;
    let by_id = |id: &str| events.iter().find(|e| header(e, "ce_id").as_deref() == Some(id)).expect(id);
    let forged_event = by_id("evt_cut_forged");
    assert_eq!(header(forged_event, "ce_stranglersignature").as_deref(), Some("invalid"));
    assert_eq!(header(forged_event, "ce_stranglerowner").as_deref(), Some("legacy"));
    assert_eq!(header(forged_event, "ce_stranglermode").as_deref(), Some("shadow"));
    assert_eq!(header(by_id("evt_cut_genuine"), "ce_stranglerowner").as_deref(), Some("new"));
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_assignments_total", &[("route", "orders"), ("owner", "legacy")]), 1.0);
    proxy.shutdown().await;
}
