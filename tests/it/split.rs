//! Split, cutover and the new-owned path: who gets each request, what the sender gets back, and
//! what happens when Kafka cannot take a live event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use http::StatusCode;
use rdkafka::Message;
use strangler::demo::decision::{decision, Order};
use strangler::event::Owner;
use strangler::route::assign::{assign, Mode, Share};

use crate::harness::{eventually, metric, scrape, start_proxy};
use crate::parity::{deciding_monolith, order, orders_config, send_orders, start_service, SECRET};
use crate::support::broker::{free_port, Tansu};
use crate::support::kafka::{drain, header};

const WAIT: Duration = Duration::from_secs(60);

fn customers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("cus_{i:03}")).collect()
}

fn owner_at(customer: &str, percent: f64) -> Owner {
    assign(Mode::Split, "orders", customer, Share::from_percent(percent).unwrap())
}

/// Owner and mode headers of every record on the events topic, by key.
async fn owners_by_key(brokers: &str) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut by_key: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for m in drain(brokers, "webhooks.orders", WAIT).await {
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        by_key
            .entry(key)
            .or_default()
            .insert((header(&m, "ce_stranglerowner").unwrap(), header(&m, "ce_stranglermode").unwrap()));
    }
    by_key
}

#[tokio::test(flavor = "multi_thread")]
async fn split_sends_exactly_the_legacy_entities_to_the_monolith_and_raising_the_share_never_moves_one_back() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let proxy =
        start_proxy(&orders_config(&monolith.url(), &tansu.brokers, "mode = \"split\"\nshare = 30"), &[("S", SECRET)], None)
            .await;
    let service = start_service(&tansu.brokers, 0);

    let customers = customers(200);
    let round = |tag: &str| -> Vec<Order> {
        customers.iter().enumerate().map(|(i, c)| order(&format!("evt_{tag}_{i:03}"), c, 100 + i as u64)).collect()
    };
    let first: Vec<Order> = [round("a"), round("b")].concat();
    let replies = send_orders(&proxy, &first, 8).await;
    for (o, (status, body)) in first.iter().zip(&replies) {
        match owner_at(&o.customer, 30.0) {
            Owner::Legacy => assert_eq!(*status, StatusCode::OK, "{} is the monolith's", o.customer),
            Owner::New => assert_eq!(
                (*status, body.as_ref()),
                (StatusCode::ACCEPTED, &br#"{"accepted":true}"#[..]),
                "{} is new",
                o.customer
            ),
        }
    }
    let legacy_orders = |orders: &[Order], percent: f64| -> BTreeSet<String> {
        orders.iter().filter(|o| owner_at(&o.customer, percent) == Owner::Legacy).map(|o| o.id.clone()).collect()
    };
    let received = || -> BTreeSet<String> {
        monolith.received().iter().map(|r| serde_json::from_slice::<Order>(&r.body).unwrap().id).collect()
    };
    let new_count = first.iter().filter(|o| owner_at(&o.customer, 30.0) == Owner::New).count();
    assert!((100..=140).contains(&new_count), "about 30 % of 400: {new_count}");
    assert_eq!(received(), legacy_orders(&first, 30.0), "the monolith got exactly the legacy-owned requests");
    assert_eq!(monolith.received().len(), 400 - new_count, "and each once");
    // Latency by owner: each answer is timed under the owner that gave it.
    let text = scrape(&proxy).await;
    let timed = |owner| metric(&text, "strangler_request_duration_seconds_count", &[("route", "orders"), ("owner", owner)]);
    assert_eq!((timed("new"), timed("legacy")), (new_count as f64, (400 - new_count) as f64));

    let all_on_kafka = || async { proxy.metrics.publish.published.with_label_values(&["orders"]).get() == 400 };
    assert!(eventually(WAIT, all_on_kafka).await);
    let by_key = owners_by_key(&tansu.brokers).await;
    assert_eq!(by_key.len(), 200);
    for (customer, owners) in &by_key {
        assert_eq!(owners.len(), 1, "{customer} changed owner at a fixed share: {owners:?}");
        let expected = match owner_at(customer, 30.0) {
            Owner::New => ("new".to_string(), "live".to_string()),
            Owner::Legacy => ("legacy".to_string(), "shadow".to_string()),
        };
        assert_eq!(owners.iter().next().unwrap(), &expected, "{customer}");
    }

    // Raise the share: entities only move legacy → new.
    let dialled = proxy.dial("orders", Mode::Split, Share::from_percent(60.0).unwrap(), "test", "raise to 60 %").await;
    assert_eq!(dialled.expect("dial applied").share.bp(), 6000);
    let second = round("c");
    send_orders(&proxy, &second, 8).await;
    let on_kafka = || async { proxy.metrics.publish.published.with_label_values(&["orders"]).get() == 600 };
    assert!(eventually(WAIT, on_kafka).await);
    let by_key = owners_by_key(&tansu.brokers).await;
    for customer in &customers {
        let owners = &by_key[customer];
        if owner_at(customer, 30.0) == Owner::New {
            assert_eq!(owners.len(), 1, "{customer} was new at 30 % and must stay new: {owners:?}");
        }
    }
    let moved = customers.iter().filter(|c| by_key[*c].len() == 2).count();
    assert!(moved > 30, "some entities moved legacy → new at 60 %: {moved}");
    let expected_legacy: BTreeSet<String> = legacy_orders(&first, 30.0).union(&legacy_orders(&second, 60.0)).cloned().collect();
    assert_eq!(received(), expected_legacy);
    let stats = service.stop().await;
    assert_eq!(stats.handled, 600, "every event, live or shadow, reached the service");
    let live = first
        .iter()
        .chain(&second)
        .filter(|o| owner_at(&o.customer, if o.id.starts_with("evt_c") { 60.0 } else { 30.0 }) == Owner::New)
        .count();
    assert_eq!(stats.handled - stats.effects_skipped, live as u64, "side effects ran for exactly the live events");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn awaited_outcomes_answer_the_sender_and_late_ones_get_the_timeout_policy() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let awaited = "mode = \"cutover\"\nnew_path_response = { await_outcome_ms = 20000 }";
    let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, awaited), &[("S", SECRET)], None).await;
    let service = start_service(&tansu.brokers, 0);
    let o = order("evt_await_1", "cus_1", 4200);
    let replies = send_orders(&proxy, std::slice::from_ref(&o), 1).await;
    assert_eq!(replies[0].0, StatusCode::OK, "the service's status");
    let body: serde_json::Value = serde_json::from_slice(&replies[0].1).unwrap();
    assert_eq!(body, decision(&o), "the service's body");
    assert!(monolith.received().is_empty(), "cutover never calls the monolith");
    service.stop().await;
    proxy.shutdown().await;

    // No service answers: the static response (counted), or 504 when configured.
    for (policy, status) in [("static", StatusCode::ACCEPTED), ("gateway_timeout", StatusCode::GATEWAY_TIMEOUT)] {
        let late = format!("mode = \"cutover\"\nnew_path_response = {{ await_outcome_ms = 300, status = 202, body = \"queued\" }}\non_timeout = \"{policy}\"");
        let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, &late), &[("S", SECRET)], None).await;
        let replies = send_orders(&proxy, &[order(&format!("evt_late_{policy}"), "cus_2", 1)], 1).await;
        assert_eq!(replies[0].0, status, "{policy}");
        if policy == "static" {
            assert_eq!(replies[0].1.as_ref(), b"queued");
        }
        assert_eq!(proxy.metrics.routing.outcome_timeouts.with_label_values(&["orders"]).get(), 1);
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_broker_sends_new_owned_requests_to_the_monolith_or_rejects_them() {
    let monolith = deciding_monolith().await;
    let dead = format!("127.0.0.1:{}", free_port());
    let cfg = |policy: &str| {
        orders_config(
            &monolith.url(),
            &dead,
            &format!("mode = \"cutover\"\npublish_timeout_ms = 500\non_publish_failure = \"{policy}\""),
        )
        .replace("partitions = 3", "create_topics = false")
    };

    let proxy = start_proxy(&cfg("legacy"), &[("S", SECRET)], None).await;
    let replies = send_orders(&proxy, &[order("evt_fallback", "cus_1", 100)], 1).await;
    assert_eq!(replies[0].0, StatusCode::OK, "the monolith answered instead");
    assert_eq!(monolith.received().len(), 1);
    let fallbacks: u64 = ["timed_out", "queue_full", "refused"]
        .iter()
        .map(|r| proxy.metrics.routing.fallbacks.with_label_values(&["orders", r]).get())
        .sum();
    assert_eq!(fallbacks, 1);
    proxy.shutdown().await;

    let proxy = start_proxy(&cfg("reject"), &[("S", SECRET)], None).await;
    let body = serde_json::to_vec(&order("evt_reject", "cus_1", 100)).unwrap();
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let reply =
        crate::harness::post(&crate::harness::url(&proxy, "/webhooks/orders"), &crate::sign::stripe(SECRET, t, &body), body)
            .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["retry-after"], "5");
    assert_eq!(reply.json()["error"]["code"], "publish_failed");
    assert_eq!(monolith.received().len(), 1, "rejected, not forwarded");
    proxy.shutdown().await;
}
