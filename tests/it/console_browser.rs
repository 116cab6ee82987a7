//! The operator console in headless Debian chromium: a proxy with the control plane on a real
//! Tansu broker, parity figures from the sample service disagreeing on a known share, and
//! tests/browser/console.mjs (playwright-core) reading the page and dialling the route through it.
//! The API then confirms what the page did, and that the wrong token changed nothing.
//!
//! Needs chromium and tests/browser/node_modules, which `./scripts/test.sh` installs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
const BAD_TOKEN: &str = "not-a-token-of-this-proxy";
/// The page shows parity as a percent with one decimal: half a tenth of a percent either way.
const SHOWN_ROUNDING: f64 = 0.0005 + 1e-9;

const MISSING: &str = "run ./scripts/test.sh, which installs them (chromium and tests/browser/node_modules)";

/// Chromium, node and the driver script, or a panic saying how to get them.
fn prerequisites() -> (PathBuf, PathBuf, PathBuf) {
    let chromium = std::env::var_os("STRANGLER_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(chromium.is_file(), "no chromium at {}: {MISSING}", chromium.display());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(dir.join("node_modules/playwright-core").is_dir(), "no playwright-core in {}: {MISSING}", dir.display());
    let which = Command::new("which").arg("node").output().expect("which");
    let node = PathBuf::from(String::from_utf8_lossy(&which.stdout).trim());
    assert!(which.status.success() && node.is_file(), "no node on PATH (Node 20 or later): {MISSING}");
    (chromium, node, dir.join("console.mjs"))
}

fn orders() -> Vec<Order> {
    (0..EVENTS).map(|i| order(&format!("evt_ui_{i:03}"), &format!("cus_{}", i % 41), 100 + i as u64 * 13)).collect()
}

fn admin(proxy: &Running) -> String {
    format!("http://{}", proxy.admin_addr)
}

async fn audit(proxy: &Running) -> Vec<Value> {
    get_json(&format!("{}/api/audit?route=orders", admin(proxy))).await["entries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_parity_and_the_differing_field_and_dials_only_with_the_right_token() {
    let (chromium, node, script) = prerequisites();
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let proxy = start_proxy(&control_config(&monolith.url(), &tansu.brokers, ""), &ENV, None).await;
    let service = start_service(&tansu.brokers, DISAGREE_BP);

    let sent = orders();
    assert!(send_orders(&proxy, &sent, 8).await.iter().all(|(s, _)| *s == StatusCode::OK));
    let mismatched = sent.iter().filter(|o| disagrees(&o.id, DISAGREE_BP)).count() as u64;
    assert!((10..=35).contains(&mismatched), "about 10 %: {mismatched}");
    let route_url = format!("{}/api/routes/orders", admin(&proxy));
    let hour = || async { get_json(&route_url).await["parity"]["windows"]["1h"].clone() };
    let compared = || async {
        let h = hour().await;
        h["samples"].as_u64() == Some(EVENTS as u64) && h["mismatch"].as_u64() == Some(mismatched)
    };
    assert!(eventually(WAIT, compared).await, "parity in the API: {}", hour().await);
    // Stopped while the broker is up: a consumer dropped after the broker (on a failed assertion)
    // would hold the runtime's shutdown forever.
    service.stop().await;
    let ratio = (EVENTS as u64 - mismatched) as f64 / EVENTS as f64;
    let before = get_json(&route_url).await;
    assert_eq!((before["mode"].as_str(), before["share_percent"].as_f64()), (Some("shadow"), Some(0.0)));
    let audited_before = audit(&proxy).await.len();

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&out);
    let mut cmd = Command::new(node);
    cmd.arg(&script)
        .args(["--admin", &admin(&proxy), "--route", "orders", "--token", ALICE, "--bad-token", BAD_TOKEN])
        .args(["--expect-pointer", "/body/risk", "--out"])
        .arg(&out)
        .args(["--expect-parity-min", &(ratio - SHOWN_ROUNDING).to_string()])
        .args(["--expect-parity-max", &(ratio + SHOWN_ROUNDING).to_string()])
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
    // What the API says after the run, read before any assertion: the proxy is shut down while
    // the broker is up, so a failed assertion fails the test instead of hanging its runtime.
    let after = get_json(&route_url).await;
    let entries = audit(&proxy).await;
    let refused = proxy.metrics.control.auth_failures.with_label_values(&["invalid"]).get();
    let changes = proxy.metrics.control.changes.with_label_values(&["orders", "alice"]).get();
    proxy.shutdown().await;

    assert!(run.status.success(), "console.mjs failed ({}): {summary:#}\nstderr: {stderr}", run.status);
    for check in [
        "pointer_highlighted",
        "pointer_filter",
        "reason_required",
        "bad_token_refused",
        "dialled",
        "audit",
        "trend_marked",
        "token_in_session_storage_only",
        "narrow",
    ] {
        assert_eq!(summary[check], true, "{check}: {summary:#}");
    }
    assert!((summary["parity"].as_f64().unwrap() - ratio).abs() <= SHOWN_ROUNDING, "{summary}");
    assert_eq!(summary["console_errors"], serde_json::json!([]), "{summary:#}");
    assert_eq!(summary["foreign_requests"], serde_json::json!([]), "{summary:#}");
    for shot in ["01-loaded", "02-mismatch", "03-pointer-filter", "04-bad-token", "05-dialled", "06-narrow"] {
        assert!(out.join(format!("{shot}.png")).is_file(), "screenshot {shot}");
    }

    // The API agrees with what the page showed; the wrong token reached the server and did nothing.
    assert_eq!((after["mode"].as_str(), after["share_percent"].as_f64()), (Some("split"), Some(10.0)));
    assert_eq!((after["by"].as_str(), after["reason"].as_str()), (Some("alice"), summary["reason"].as_str()));
    assert_eq!(entries.len(), audited_before + 1, "one change, the right token's: {entries:#?}");
    let entry = &entries[0];
    assert_eq!((entry["by"].as_str(), entry["reason"].as_str()), (Some("alice"), summary["reason"].as_str()));
    assert_eq!(entry["old"]["version"], before["version"], "nothing applied between: {entry}");
    assert_eq!(entry["new"]["version"], after["version"]);
    assert_eq!(refused, 1, "the 401 came from the server");
    assert_eq!(changes, 1);
}
