//! The guard and the progressive rollout at work, on cluster-wide figures from a real broker and
//! the sample order service (on the consumer kit) that agrees, then starts disagreeing.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use strangler::app::Running;
use strangler::demo::decision::Order;
use strangler::event::Owner;
use strangler::route::assign::{assign, Mode, Share};

use crate::control::{call, control_config, get_json, ALICE, ENV};
use crate::harness::{eventually, start_proxy};
use crate::parity::{deciding_monolith, order, send_orders, start_service};
use crate::support::broker::Tansu;

const WAIT: Duration = Duration::from_secs(90);

fn orders(tag: &str, n: usize) -> Vec<Order> {
    (0..n).map(|i| order(&format!("evt_{tag}_{i}"), &format!("cus_{tag}_{i}"), 100 + i as u64)).collect()
}

fn admin(proxy: &Running) -> String {
    format!("http://{}", proxy.admin_addr)
}

/// Shadow comparisons the cluster has counted for `orders` over the last hour, as `proxy` says.
async fn samples(proxy: &Running) -> u64 {
    get_json(&format!("{}/api/routes/orders", admin(proxy))).await["parity"]["windows"]["1h"]["samples"].as_u64().unwrap_or(0)
}

async fn audit_by(proxy: &Running, by: &str) -> Vec<serde_json::Value> {
    let all = get_json(&format!("{}/api/audit?route=orders", admin(proxy))).await;
    all["entries"].as_array().unwrap().iter().filter(|e| e["by"] == by).cloned().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guard_rolls_back_once_when_the_new_service_starts_disagreeing_whatever_the_replicas() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let guard = "guard = { min_parity = 0.9, min_samples = 20, window = \"1m\" }";
    let cfg = control_config(&monolith.url(), &tansu.brokers, guard);
    let a = start_proxy(&cfg, &ENV, None).await;
    let b = start_proxy(&cfg, &ENV, None).await;
    let agreeing = start_service(&tansu.brokers, 0);
    // The service has joined its group and answers before anything is measured.
    send_orders(&a, &orders("warm", 1), 1).await;
    for p in [&a, &b] {
        assert!(eventually(WAIT, || async { samples(p).await == 1 }).await, "warm-up compared");
    }

    let dial = serde_json::json!({"percent": 10, "reason": "first step"});
    let reply = call(Method::PUT, &format!("{}/api/routes/orders/share", admin(&a)), Some(ALICE), dial).await;
    assert_eq!(reply.status, StatusCode::OK);
    let version = reply.json()["version"].clone();
    let on_b = || async { get_json(&format!("{}/api/routes/orders", admin(&b))).await["version"] == version };
    assert!(eventually(WAIT, on_b).await, "B applied the dial before traffic is sent to it");
    let shadow = |batch: &[Order], percent: f64| {
        let share = Share::from_percent(percent).unwrap();
        batch.iter().filter(|o| assign(Mode::Split, "orders", &o.customer, share) == Owner::Legacy).count() as u64
    };

    // Parity is good: the guard watches and does nothing.
    let good = orders("good", 40);
    send_orders(&a, &good[..20], 4).await;
    send_orders(&b, &good[20..], 4).await;
    let expected = 1 + shadow(&good, 10.0);
    for p in [&a, &b] {
        assert!(eventually(WAIT, || async { samples(p).await == expected }).await, "{} of {expected}", samples(p).await);
    }
    let route = get_json(&format!("{}/api/routes/orders", admin(&b))).await;
    assert_eq!((route["mode"].as_str(), route["guard"]["state"].as_str()), (Some("split"), Some("ok")), "{route}");

    // The new service starts disagreeing on every order.
    agreeing.stop().await;
    let disagreeing = start_service(&tansu.brokers, 10_000);
    let started = Instant::now();
    let bad = orders("bad", 40);
    send_orders(&a, &bad[..20], 4).await;
    send_orders(&b, &bad[20..], 4).await;
    let rolled_back = || async {
        let (ra, rb) = (
            get_json(&format!("{}/api/routes/orders", admin(&a))).await,
            get_json(&format!("{}/api/routes/orders", admin(&b))).await,
        );
        [ra, rb].iter().all(|r| r["mode"] == "shadow" && r["share_percent"] == 0.0 && r["guard_tripped"] == true)
    };
    assert!(eventually(WAIT, rolled_back).await, "the guard rolled back on both replicas");
    eprintln!("guard rolled back {:?} after the new service started disagreeing", started.elapsed());

    // More traffic, fully compared, and still exactly one change by the guard, naming the figures.
    let after = orders("after", 20);
    send_orders(&a, &after, 4).await;
    // Each legacy-owned request was one shadow comparison (the rollback may have come mid-batch).
    let legacy = |p: &Running| p.metrics.routing.assignments.with_label_values(&["orders", "legacy"]).get();
    let total = legacy(&a) + legacy(&b);
    assert!(total >= expected + shadow(&bad, 10.0) + after.len() as u64, "{total}");
    for p in [&a, &b] {
        assert!(eventually(WAIT, || async { samples(p).await == total }).await, "{} of {total}", samples(p).await);
        assert!(eventually(WAIT, || async { audit_by(p, "guard").await.len() == 1 }).await);
    }
    let entry = &audit_by(&a, "guard").await[0];
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("guard: parity ") && reason.contains("< 0.90 over 1m (") && reason.ends_with("samples)"),
        "{reason}"
    );
    assert_eq!((entry["new"]["mode"].as_str(), entry["old"]["mode"].as_str()), (Some("shadow"), Some("split")));
    let changes = |p: &Running| p.metrics.control.changes.with_label_values(&["orders", "guard"]).get();
    assert_eq!((changes(&a), changes(&b)), (1, 1), "each replica applied the one guard change");
    disagreeing.stop().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_steps_up_while_parity_is_good_and_stops_when_the_guard_trips() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let extra = "mode = \"split\"\nshare = 1\n\
                 guard = { min_parity = 0.9, min_samples = 10, window = \"1m\" }\n\
                 rollout = { steps = [1, 5, 25, 50], interval = \"2s\" }";
    let proxy = start_proxy(&control_config(&monolith.url(), &tansu.brokers, extra), &ENV, None).await;
    let route = format!("{}/api/routes/orders", admin(&proxy));
    let agreeing = start_service(&tansu.brokers, 0);

    // Each step waits for its interval and for the guard's min_samples seen at that step.
    for (tag, next) in [("s1", 5.0), ("s5", 25.0)] {
        send_orders(&proxy, &orders(tag, 20), 4).await;
        let stepped = || async { get_json(&route).await["share_percent"].as_f64() == Some(next) };
        assert!(eventually(WAIT, stepped).await, "stepped to {next}%: {}", get_json(&route).await);
    }
    // The audit entry follows the change (written after it applied, then read back).
    assert!(eventually(WAIT, || async { audit_by(&proxy, "rollout").await.len() == 2 }).await);
    let steps = audit_by(&proxy, "rollout").await;
    let shares: Vec<(f64, f64)> = steps
        .iter()
        .rev()
        .map(|e| (e["old"]["share_percent"].as_f64().unwrap(), e["new"]["share_percent"].as_f64().unwrap()))
        .collect();
    assert_eq!(shares, vec![(1.0, 5.0), (5.0, 25.0)]);
    assert!(steps[0]["reason"].as_str().unwrap().starts_with("rollout: step "), "{}", steps[0]);

    // At 25 % the service starts disagreeing: the guard trips, the rollout never reaches 50 %.
    agreeing.stop().await;
    let disagreeing = start_service(&tansu.brokers, 10_000);
    send_orders(&proxy, &orders("bad", 30), 4).await;
    let tripped = || async { get_json(&route).await["guard_tripped"] == true };
    assert!(eventually(WAIT, tripped).await);
    let now = get_json(&route).await;
    assert_eq!((now["mode"].as_str(), now["rollout"]["paused"].as_bool()), (Some("shadow"), Some(true)), "{now}");
    // Changes are applied in topic order: a step to 50 % before the trip would be counted by now.
    let applied = |by: &str| proxy.metrics.control.changes.with_label_values(&["orders", by]).get();
    assert_eq!((applied("rollout"), applied("guard")), (2, 1), "no step after the guard tripped");
    assert_eq!(now["rollout"]["step"], serde_json::Value::Null, "back below the first step");
    disagreeing.stop().await;
    proxy.shutdown().await;
}
