//! The comparator's bound on waiting events (issue 11): 100,000 events and more waiting with no
//! new service, fed through the comparator's in-process input (`compare::core::Core`, the same
//! code the Kafka loop drives; 130,000 records through Tansu would take minutes). The bound holds
//! in entries and bytes after every record, the oldest are evicted and decided `missing_new`, and
//! every event is counted exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use strangler::compare::comparator::{ParityResult, REMEMBER};
use strangler::compare::core::{Core, Judged, Settings};
use strangler::route::RouteTable;
use strangler::telemetry::Metrics;

/// The order route with `comparator` keys, loaded as the proxy loads its file.
fn comparator(keys: &str) -> (Core, Metrics, Settings) {
    let toml = format!(
        r#"
[comparator]
{keys}
[legacy]
url = "http://127.0.0.1:9"
[kafka]
brokers = "127.0.0.1:9"
[[route]]
name = "orders"
match = {{ path = "/webhooks/orders" }}
topic = "webhooks.orders"
signature = {{ scheme = "stripe", secrets_env = ["S"] }}
"#
    );
    let cfg = strangler::config::load_str(&toml, "bound.toml", &|_| Some("s".into())).unwrap();
    let settings = Settings {
        limits: cfg.comparator.limits,
        keep_body_bytes: cfg.comparator.keep_body_bytes,
        parity_window: cfg.comparator.parity_window,
        remember: REMEMBER,
    };
    let routes = Arc::new(ArcSwap::from_pointee(RouteTable::new(cfg.routes.into_iter().map(Arc::new).collect())));
    let metrics = Metrics::new().unwrap();
    (Core::new(routes, metrics.compare.clone(), settings), metrics, settings)
}

/// A legacy shadow outcome as strangler publishes it, with a body of about 10 KB.
fn legacy_outcome(i: usize, filler: &str) -> Vec<u8> {
    format!(
        r#"{{"event_id":"evt_{i:07}","route":"orders","source":"legacy","mode":"shadow","status":200,"body":{{"order":"ord_{i}","risk":"low","notes":"{filler}"}},"body_encoding":"json","content_type":"application/json","latency_ms":1.5,"at":"2026-01-01T00:00:00.000Z","consumer":"strangler"}}"#
    )
    .into_bytes()
}

/// Feeds `n` legacy outcomes, checking the bounds after each; returns the events decided on the way.
fn feed(core: &mut Core, settings: &Settings, n: usize, now: Instant) -> Vec<strangler::compare::record::Parity> {
    let filler = "x".repeat(10_000);
    let mut decided = Vec::new();
    for i in 0..n {
        for judged in core.offer(&legacy_outcome(i, &filler), Some((0, i as i64)), now) {
            let Judged::Done(p) = judged else { panic!("nothing is compared without a new service") };
            core.count(&p);
            decided.push(p);
        }
        assert!(core.pending() <= settings.limits.max_pending, "entries {} after record {i}", core.pending());
        assert!(core.pending_bytes() <= settings.limits.max_pending_bytes, "bytes {} after record {i}", core.pending_bytes());
    }
    decided
}

fn parity(m: &Metrics, result: &str) -> u64 {
    m.compare.parity.with_label_values(&["orders", result]).get()
}

#[test]
fn the_default_bounds_hold_with_130_000_waiting_and_evictions_count_as_missing_new() {
    let (mut core, m, settings) = comparator("");
    assert_eq!(
        (settings.limits.max_pending, settings.limits.max_pending_bytes),
        (100_000, 32 * 1024 * 1024),
        "the documented defaults"
    );
    let t = Instant::now();
    let evicted = feed(&mut core, &settings, 130_000, t);

    assert_eq!(core.pending(), 100_000, "full up to max_pending, no further");
    assert_eq!(m.compare.pending.with_label_values(&["orders"]).get(), 100_000);
    assert!(core.pending_bytes() <= 32 * 1024 * 1024);
    assert_eq!(m.compare.evicted.with_label_values(&["orders"]).get(), 30_000);
    assert_eq!(evicted.len(), 30_000);
    assert!(evicted
        .iter()
        .all(|p| p.result == ParityResult::MissingNew && p.legacy_status == Some(200) && p.new_status.is_none()));
    let ids: Vec<String> = (0..30_000).map(|i| format!("evt_{i:07}")).collect();
    assert!(evicted.iter().map(|p| &p.event_id).eq(ids.iter()), "the oldest first, in arrival order");
    assert_eq!(parity(&m, "missing_new"), 30_000);

    // The rest are decided when their window closes: every event counted once, as missing_new.
    assert!(core.expire(t + Duration::from_secs(29)).is_empty(), "not before the 30 s window");
    for judged in core.expire(t + Duration::from_secs(30)) {
        let Judged::Done(p) = judged else { panic!("expiry decides") };
        assert_eq!(p.result, ParityResult::MissingNew);
        core.count(&p);
    }
    assert_eq!(parity(&m, "missing_new"), 130_000);
    assert_eq!(parity(&m, "match") + parity(&m, "mismatch") + parity(&m, "missing_legacy"), 0);
    assert_eq!((core.pending(), core.pending_bytes()), (0, 0));
    assert_eq!(m.compare.pending.with_label_values(&["orders"]).get(), 0);
    // A new outcome for an evicted event is late, not a second decision.
    let late = br#"{"event_id":"evt_0000001","route":"orders","source":"new","mode":"shadow","status":200}"#;
    assert!(core.offer(late, None, t).is_empty());
    assert_eq!(m.compare.dropped.with_label_values(&["late"]).get(), 1);
}

#[test]
fn the_byte_bound_holds_when_it_is_the_tighter_one() {
    let (mut core, m, settings) = comparator("max_pending_bytes = 4194304");
    feed(&mut core, &settings, 100_000, Instant::now());
    assert!(core.pending_bytes() <= 4 * 1024 * 1024);
    assert!(core.pending() < 100_000 && core.pending() > 10_000, "{} waiting", core.pending());
    let evicted = m.compare.evicted.with_label_values(&["orders"]).get();
    assert_eq!(evicted, 100_000 - core.pending() as u64);
    assert_eq!(parity(&m, "missing_new"), evicted);
}

/// Nothing kept in memory (`keep_body_bytes = 0`): every pair whose digests differ, and every pair
/// whose first side came before the route's first new outcome, is diffed in full by reading its
/// first record again from the real outcomes topic on Tansu. The results, the parity records'
/// pointers and the admin API's samples are exactly those of the kept path (tests/it/parity.rs).
#[tokio::test(flavor = "multi_thread")]
async fn bodies_not_kept_are_read_again_from_the_outcomes_topic_for_the_full_diff() {
    use crate::harness::{eventually, send, start_proxy};
    use crate::parity::{deciding_monolith, order, orders_config, send_orders, start_service, SECRET};
    use std::collections::BTreeSet;
    use strangler::demo::service::disagrees;

    let tansu = crate::support::broker::Tansu::start();
    let monolith = deciding_monolith().await;
    let toml = format!("[comparator]\nkeep_body_bytes = 0\n{}", orders_config(&monolith.url(), &tansu.brokers, ""));
    let proxy = start_proxy(&toml, &[("S", SECRET)], None).await;
    let service = start_service(&tansu.brokers, 1500);
    let orders: Vec<_> = (0..200).map(|i| order(&format!("evt_rr_{i:03}"), &format!("cus_{}", i % 7), i * 991)).collect();
    assert!(send_orders(&proxy, &orders, 8).await.iter().all(|(s, _)| s.is_success()));

    let count = |result: &str| proxy.metrics.compare.parity.with_label_values(&["orders", result]).get();
    let decided = ["match", "mismatch", "truncated", "missing_new", "missing_legacy"];
    let compared = || async { decided.iter().map(|r| count(r)).sum::<u64>() == 200 };
    let counts = || decided.map(|r| (r, count(r)));
    assert!(eventually(Duration::from_secs(120), compared).await, "{:?}", counts());
    let expected: BTreeSet<String> = orders.iter().filter(|o| disagrees(&o.id, 1500)).map(|o| o.id.clone()).collect();
    assert!(expected.len() >= 10, "{}", expected.len());
    assert_eq!(count("mismatch"), expected.len() as u64);
    assert_eq!(count("truncated") + count("missing_new") + count("missing_legacy"), 0, "every record was read again");

    let url = format!("http://{}/api/routes/orders/mismatches", proxy.admin_addr);
    // The API shows what every replica reads back from the parity topic: it follows within moments.
    let samples = || async { send(http::Method::GET, &url, &[], "").await.json()["samples"].as_array().unwrap().clone() };
    let all_there = || async { samples().await.len() == expected.len().min(20) };
    assert!(eventually(Duration::from_secs(60), all_there).await, "{:?}", samples().await);
    let samples = samples().await;
    for s in &samples {
        assert!(expected.contains(s["event_id"].as_str().unwrap()), "{s}");
        assert_eq!(s["diff"].as_array().unwrap().len(), 1, "{s}");
        assert_eq!(s["diff"][0]["pointer"], "/body/risk", "{s}");
        // Both sides in full, whichever came first read again from the topic.
        assert_eq!(s["legacy"]["body"]["risk"], s["diff"][0]["legacy"], "{s}");
        assert_eq!(s["new"]["body"]["risk"], s["diff"][0]["new"], "{s}");
        assert_eq!(s["legacy"]["body"]["order_id"], s["new"]["body"]["order_id"], "{s}");
    }
    service.stop().await;
    proxy.shutdown().await;
}
