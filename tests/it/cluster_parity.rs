//! Cluster-wide parity: every replica folds the whole parity topic, so replicas sharing one
//! comparator group report the same figures, across a rebalance and right after a restart; live
//! events count as the new path's `live_ok` or, with no service, `live_missing`.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::join;
use http::StatusCode;
use strangler::app::Running;
use strangler::compare::comparator::ParityResult;
use strangler::control::figures::Figures;
use strangler::demo::decision::Order;
use strangler::demo::service::disagrees;

use crate::harness::{eventually, start_proxy};
use crate::parity::{deciding_monolith, order, orders_config, send_orders, start_service, SECRET};
use crate::support::broker::Tansu;

const WAIT: Duration = Duration::from_secs(120);
const HOUR: Duration = Duration::from_secs(3600);
/// One event in ten decided differently by the service.
const DISAGREE_BP: u32 = 1000;

fn figures(proxy: &Running) -> Figures {
    proxy.parity.window("orders", HOUR)
}

/// The last hour's figures of `orders` as `GET /api/routes/orders` gives them.
async fn api_hour(proxy: &Running) -> serde_json::Value {
    let url = format!("http://{}/api/routes/orders", proxy.admin_addr);
    crate::harness::send(http::Method::GET, &url, &[], "").await.json()["parity"]["windows"]["1h"].clone()
}

fn orders(tag: &str, n: usize) -> Vec<Order> {
    (0..n).map(|i| order(&format!("evt_{tag}_{i:03}"), &format!("cus_{}", i % 37), 100 + i as u64 * 7)).collect()
}

/// What the service decides for `orders`: matches and mismatches, nothing missing.
fn expected(orders: &[Order]) -> Figures {
    let mismatched = orders.iter().filter(|o| disagrees(&o.id, DISAGREE_BP)).count() as u64;
    Figures { matched: orders.len() as u64 - mismatched, mismatched, ..Figures::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_agree_on_the_cluster_figures_across_a_rebalance_and_a_restart() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let cfg = orders_config(&monolith.url(), &tansu.brokers, "");
    let env = [("S", SECRET)];
    let (a, b) = (start_proxy(&cfg, &env, None).await, start_proxy(&cfg, &env, None).await);
    let service = start_service(&tansu.brokers, DISAGREE_BP);

    // Half through each replica: each compares only its partitions, both see every result.
    let first = orders("one", 200);
    let (to_a, to_b) = join(send_orders(&a, &first[..100], 8), send_orders(&b, &first[100..], 8)).await;
    assert!(to_a.iter().chain(&to_b).all(|(s, _)| *s == StatusCode::OK));
    let want = expected(&first);
    assert!((10..=35).contains(&want.mismatched), "about 10 %: {want:?}");
    let agreed = || async { figures(&a) == want && figures(&b) == want };
    assert!(eventually(WAIT, agreed).await, "want {want:?}\na {:?}\nb {:?}", figures(&a), figures(&b));
    // The admin API of either replica gives the same totals.
    let (on_a, on_b) = (api_hour(&a).await, api_hour(&b).await);
    assert_eq!(on_a, on_b);
    assert_eq!((on_a["samples"].as_u64(), on_a["mismatch"].as_u64()), (Some(200), Some(want.mismatched)));

    // One replica leaves: the other takes its partitions, and the totals stay exact.
    a.shutdown().await;
    let second = orders("two", 100);
    assert!(send_orders(&b, &second, 8).await.iter().all(|(s, _)| *s == StatusCode::OK));
    let all: Vec<Order> = [first, second].concat();
    let want = expected(&all);
    assert!(eventually(WAIT, || async { figures(&b) == want }).await, "want {want:?}\nb {:?}", figures(&b));

    // A replica started now has the last hour as soon as `start` returns.
    let c = start_proxy(&cfg, &env, None).await;
    assert!(c.parity.caught_up());
    assert_eq!(figures(&c), want, "the restarted replica");
    assert_eq!(figures(&b), want);

    // Every mismatch (fewer than the 50 kept) is there with both sides, on both replicas.
    let disagreed: BTreeSet<String> = all.iter().filter(|o| disagrees(&o.id, DISAGREE_BP)).map(|o| o.id.clone()).collect();
    for replica in [&b, &c] {
        let samples = replica.parity.mismatches("orders", Some("/body/risk"), 100);
        assert_eq!(samples.iter().map(|s| s.event_id.clone()).collect::<BTreeSet<_>>(), disagreed);
        assert!(samples.iter().all(|s| s.legacy.is_some() && s.new.is_some() && s.diff[0].pointer == "/body/risk"));
        assert!(replica.parity.mismatches("orders", Some("/status"), 100).is_empty());
    }
    assert_eq!(c.parity.trend("orders").iter().map(|(_, f)| f.samples()).sum::<u64>(), all.len() as u64);
    assert_eq!(c.parity.skipped().undecodable, 0);
    service.stop().await;
    c.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn live_events_are_live_ok_with_the_service_and_live_missing_without_it() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let env = [("S", SECRET)];
    let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, "mode = \"cutover\""), &env, None).await;
    let service = start_service(&tansu.brokers, DISAGREE_BP);

    let answered = orders("live", 40);
    assert!(send_orders(&proxy, &answered, 8).await.iter().all(|(s, _)| *s == StatusCode::ACCEPTED));
    let want = Figures { live_ok: 40, ..Figures::default() };
    assert!(eventually(WAIT, || async { figures(&proxy) == want }).await, "{:?}", figures(&proxy));
    let new_path = |p: &Running, result| p.metrics.compare.new_path.with_label_values(&["orders", result]).get();
    assert!(new_path(&proxy, "ok") >= 40, "counted in strangler_new_path_total");
    assert_eq!(proxy.metrics.compare.parity.with_label_values(&["orders", "match"]).get(), 0, "not a comparison");
    assert!(monolith.received().is_empty(), "cutover never calls the monolith");
    service.stop().await;
    proxy.shutdown().await;

    // No service: strangler's own live record waits alone, and the window closes on it.
    let short = "mode = \"cutover\"\ncompare = { window_ms = 1000 }";
    let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, short), &env, None).await;
    let unanswered = orders("lost", 15);
    send_orders(&proxy, &unanswered, 5).await;
    let want = Figures { live_ok: 40, live_missing: 15, ..Figures::default() };
    assert!(eventually(WAIT, || async { figures(&proxy) == want }).await, "{:?}", figures(&proxy));
    assert_eq!(figures(&proxy).new_error_rate(), Some(15.0 / 55.0));
    let missing = proxy.parity.missing("orders", 100);
    assert_eq!(missing.len(), 15);
    assert!(missing.iter().all(|m| m.result == ParityResult::LiveMissing && m.event_id.starts_with("evt_lost_")));
    assert!(new_path(&proxy, "missing") >= 15);
    proxy.shutdown().await;
}
