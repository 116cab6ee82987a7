//! The operator console in headless Debian chromium on two replicas of one cluster: parity
//! figures from the sample service disagreeing on a known share and missing events it never
//! answered; tests/browser/console.mjs (playwright-core) reads both replicas' pages, which must
//! agree, and dials the route through one of them: a share, a 401, a 400, a 409 after a change
//! made through the other replica, the mode by keyboard, a rollout resume and a rollback. The
//! API and the metrics of both replicas then confirm what the page did and what it was refused.
//! The route has a contract in `observe` mode that a third of the orders break, 90 % of the
//! orders share one key, and the service's group is a `[[lag.group]]`: the page shows the
//! violations with their samples, the skew ratio and the hot key, and the group's lag once the
//! service has stopped (issue 13).
//!
//! Needs chromium and tests/browser/node_modules, which `./scripts/test.sh` installs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::future::join;

use http::StatusCode;
use serde_json::Value;
use strangler::app::Running;
use strangler::demo::decision::Order;
use strangler::demo::service::disagrees;

use crate::control::{control_config, get_json, ALICE, ENV};
use crate::harness::{eventually, start_proxy};
use crate::parity::{deciding_monolith, order, send_orders, start_service};
use crate::support::broker::Tansu;

const WAIT: Duration = Duration::from_secs(120);
/// One event in ten decided differently (a different `risk`) by the sample service.
const DISAGREE_BP: u32 = 1000;
const EVENTS: usize = 200;
/// Orders sent once the service has stopped: `missing_new` on the page.
const MISSING: usize = 3;
const BAD_TOKEN: &str = "not-a-token-of-this-proxy";
/// The page shows parity as a percent with one decimal: half a tenth of a percent either way.
/// The key of nine orders in ten: the hot key the page must list first.
const HOT_KEY: &str = "cus_hot";
/// The contract allows these countries only, so orders from BR (one in three) break it.
const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.com/contracts/orders.v1.json",
  "type": "object",
  "required": ["id", "customer"],
  "properties": { "country": { "enum": ["US", "DE"] } }
}"#;
/// The instance pointer of the error the contract finds in a BR order.
const CONTRACT_POINTER: &str = "/country";
const SHOWN_ROUNDING: f64 = 0.0005 + 1e-9;

const INSTALL: &str = "run ./scripts/test.sh, which installs them (chromium and tests/browser/node_modules)";

/// Chromium, node and the driver script, or a panic saying how to get them.
fn prerequisites() -> (PathBuf, PathBuf, PathBuf) {
    let chromium = std::env::var_os("STRANGLER_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(chromium.is_file(), "no chromium at {}: {INSTALL}", chromium.display());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(dir.join("node_modules/playwright-core").is_dir(), "no playwright-core in {}: {INSTALL}", dir.display());
    let which = Command::new("which").arg("node").output().expect("which");
    let node = PathBuf::from(String::from_utf8_lossy(&which.stdout).trim());
    assert!(which.status.success() && node.is_file(), "no node on PATH (Node 20 or later): {INSTALL}");
    (chromium, node, dir.join("console.mjs"))
}

/// Nine in ten on the hot key, the rest each on its own.
fn orders(tag: &str, n: usize) -> Vec<Order> {
    let customer = |i: usize| if i.is_multiple_of(10) { format!("cus_{tag}_{i}") } else { HOT_KEY.to_string() };
    (0..n).map(|i| order(&format!("evt_ui_{tag}_{i:03}"), &customer(i), 100 + i as u64 * 13)).collect()
}

/// The orders the contract refuses.
fn breaking(orders: &[Order]) -> Vec<&str> {
    orders.iter().filter(|o| o.country == "BR").map(|o| o.id.as_str()).collect()
}

fn admin(proxy: &Running) -> String {
    format!("http://{}", proxy.admin_addr)
}

async fn audit(proxy: &Running) -> Vec<Value> {
    get_json(&format!("{}/api/audit?route=orders", admin(proxy))).await["entries"].as_array().unwrap().clone()
}

async fn hour(proxy: &Running) -> Value {
    get_json(&format!("{}/api/routes/orders", admin(proxy))).await["parity"]["windows"]["1h"].clone()
}

/// The share endpoint's answers with `status` on this replica.
fn share_answers(proxy: &Running, status: &str) -> u64 {
    proxy.metrics.control.requests.with_label_values(&["/api/routes/{name}/share", status]).get()
}

/// A short comparator window (events the stopped service never saw become `missing_new` soon),
/// a rollout the page can resume (an hour per step: it never steps during the test), a contract
/// in `observe` mode (the events flow; parity is unaffected), and the service's group watched
/// for lag.
fn route_extra(schema: &Path) -> String {
    format!(
        "compare = {{ window_ms = 10000 }}\nrollout = {{ steps = [10, 50], interval = \"1h\" }}\n\
         contract = {{ schema = \"{}\", on_invalid = \"observe\" }}\n\
         [[lag.group]]\nname = \"order-service\"\ntopics = [\"webhooks.orders\"]\n",
        schema.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_the_same_figures_on_both_replicas_and_dials_only_what_the_server_accepts() {
    let (chromium, node, script) = prerequisites();
    let dir = tempfile::tempdir().unwrap();
    // SQLite storage: Tansu's in-memory engine answers ListOffsets(latest) with the last batch's
    // base offset + 1, so the lag of the stopped service would read short there.
    let tansu = Tansu::start_sqlite(&dir.path().join("tansu.db"));
    let monolith = deciding_monolith().await;
    let schema = dir.path().join("orders.v1.json");
    std::fs::write(&schema, SCHEMA).unwrap();
    let cfg = control_config(&monolith.url(), &tansu.brokers, &route_extra(&schema));
    let (a, b) = (start_proxy(&cfg, &ENV, None).await, start_proxy(&cfg, &ENV, None).await);
    let service = start_service(&tansu.brokers, DISAGREE_BP);

    // Half through each replica.
    let sent = orders("seen", EVENTS);
    let (to_a, to_b) = join(send_orders(&a, &sent[..EVENTS / 2], 8), send_orders(&b, &sent[EVENTS / 2..], 8)).await;
    assert!(to_a.iter().chain(&to_b).all(|(s, _)| *s == StatusCode::OK));
    let mismatched = sent.iter().filter(|o| disagrees(&o.id, DISAGREE_BP)).count() as u64;
    assert!((10..=35).contains(&mismatched), "about 10 %: {mismatched}");
    let compared = || async {
        let h = hour(&a).await;
        h["samples"].as_u64() == Some(EVENTS as u64) && h["mismatch"].as_u64() == Some(mismatched)
    };
    assert!(eventually(WAIT, compared).await, "parity in the API: {}", hour(&a).await);
    // Stopped while the broker is up: a consumer dropped after the broker (on a failed assertion)
    // would hold the runtime's shutdown forever.
    service.stop().await;

    // Events the new path never answers: `missing_new` once the window has passed.
    let unanswered = orders("unanswered", MISSING);
    assert!(send_orders(&a, &unanswered, 4).await.iter().all(|(s, _)| *s == StatusCode::OK));
    let resolved = || async {
        let want = Some(MISSING as u64);
        hour(&a).await["missing_new"].as_u64() == want && hour(&b).await["missing_new"].as_u64() == want
    };
    assert!(eventually(WAIT, resolved).await, "{}", hour(&b).await);
    let samples = (EVENTS + MISSING) as f64;
    let ratio = (EVENTS as u64 - mismatched) as f64 / samples;
    let route_url = format!("{}/api/routes/orders", admin(&a));
    let before = get_json(&route_url).await;
    assert_eq!((before["mode"].as_str(), before["share_percent"].as_f64()), (Some("shadow"), Some(0.0)));
    let audited_before = audit(&a).await.len();
    let missing_ids: Vec<&str> = unanswered.iter().map(|o| o.id.as_str()).collect();
    // What replica a saw (its own view): the orders sent through it.
    let through_a: Vec<Order> = sent[..EVENTS / 2].iter().chain(&unanswered).cloned().collect();
    let broke_a = breaking(&through_a);
    let hot_a = through_a.iter().filter(|o| o.customer == HOT_KEY).count();
    assert!(broke_a.len() >= 30 && hot_a >= 90, "{} breaking, {hot_a} hot", broke_a.len());

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = Command::new(node);
    cmd.arg(&script)
        .args(["--admin", &admin(&a), "--admin-b", &admin(&b), "--route", "orders"])
        .args(["--token", ALICE, "--bad-token", BAD_TOKEN, "--expect-pointer", "/body/risk"])
        .args(["--expect-missing", &missing_ids.join(",")])
        .args(["--expect-violations", &broke_a.len().to_string(), "--expect-violation-ids", &broke_a.join(",")])
        .args(["--expect-contract-pointer", CONTRACT_POINTER, "--expect-top-key", HOT_KEY])
        .args(["--expect-top-count", &hot_a.to_string(), "--lag-group", "order-service"])
        .args(["--expect-lag", &MISSING.to_string()])
        .args(["--expect-parity-min", &(ratio - SHOWN_ROUNDING).to_string()])
        .args(["--expect-parity-max", &(ratio + SHOWN_ROUNDING).to_string()])
        .arg("--out")
        .arg(&out)
        .env("STRANGLER_CHROMIUM", &chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
    let run = tokio::task::spawn_blocking(move || cmd.output().expect("node runs")).await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary ({})\nstdout: {stdout}\nstderr: {stderr}", run.status));
    eprintln!("console.mjs: {summary}");
    // What the API and the metrics say after the run, read before any assertion: the replicas
    // are shut down while the broker is up, so a failed assertion fails instead of hanging.
    let (after_a, after_b) = (get_json(&route_url).await, get_json(&format!("{}/api/routes/orders", admin(&b))).await);
    let entries = audit(&a).await;
    let refused = [&a, &b].map(|p| p.metrics.control.auth_failures.with_label_values(&["invalid"]).get());
    let changes = [&a, &b].map(|p| p.metrics.control.changes.with_label_values(&["orders", "alice"]).get());
    let (bad_request, conflict) = (share_answers(&a, "400"), share_answers(&a, "409"));
    let lag = get_json(&format!("{}/api/lag", admin(&a))).await;
    a.shutdown().await;
    b.shutdown().await;

    assert!(run.status.success(), "console.mjs failed ({}): {summary:#}\nstderr: {stderr}", run.status);
    assert!((summary["parity"].as_f64().unwrap() - ratio).abs() <= SHOWN_ROUNDING, "{summary}");
    assert_eq!(summary["console_errors"], serde_json::json!([]), "{summary:#}");
    assert_eq!(summary["foreign_requests"], serde_json::json!([]), "{summary:#}");
    assert_eq!(summary["expected_refusals"].as_array().map(Vec::len), Some(3), "401, 400, 409: {summary:#}");
    // The Kafka side the page showed is what the API says.
    assert_eq!(after_a["contract"]["violations"].as_u64(), Some(broke_a.len() as u64), "{after_a}");
    assert_eq!(summary["violations"].as_u64(), Some(broke_a.len() as u64), "{summary:#}");
    assert!(summary["skew"].as_f64().is_some_and(|r| r > 2.0), "{summary:#}");
    assert_eq!(summary["top_key"], serde_json::json!([HOT_KEY, hot_a]), "{summary:#}");
    let group = lag["groups"].as_array().unwrap().iter().find(|g| g["group"] == "order-service").cloned();
    let orders_topic =
        group.as_ref().and_then(|g| g["topics"].as_array().unwrap().iter().find(|t| t["topic"] == "webhooks.orders").cloned());
    assert_eq!(orders_topic.map(|t| t["lag_records"].clone()), Some(serde_json::json!(MISSING)), "{lag:#}");
    assert_eq!(summary["lag"].as_u64(), Some(MISSING as u64), "{summary:#}");
    for shot in summary["screenshots"].as_array().unwrap() {
        assert!(out.join(shot.as_str().unwrap()).is_file(), "screenshot {shot}");
    }
    assert!(summary["screenshots"].as_array().unwrap().len() >= 14, "a screenshot per step: {summary:#}");

    // Both replicas agree on the end state: the page's last change, a rollback.
    for after in [&after_a, &after_b] {
        assert_eq!((after["mode"].as_str(), after["share_percent"].as_f64()), (Some("shadow"), Some(0.0)), "{after}");
        assert_eq!(after["version"], after_a["version"]);
    }
    // Five changes, in order, each by alice with the page's reason (one made through replica b);
    // the versions chain from the one before the run.
    let reasons: Vec<&str> = summary["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 5);
    assert_eq!(entries.len(), audited_before + reasons.len(), "{entries:#?}");
    let mut version = before["version"].clone();
    for (entry, reason) in entries[..reasons.len()].iter().rev().zip(&reasons) {
        assert_eq!((entry["by"].as_str(), entry["reason"].as_str()), (Some("alice"), Some(*reason)), "{entry}");
        assert_eq!(entry["old"]["version"], version, "nothing applied between: {entry}");
        version = entry["new"]["version"].clone();
    }
    assert_eq!(version, after_a["version"]);
    assert_eq!(changes, [5, 5], "every replica applies every change");
    assert_eq!(refused, [1, 0], "the 401 came from replica a's server");
    assert_eq!((bad_request, conflict), (1, 1), "the 400 and the 409 came from replica a's server");
}
