//! The monitoring shipped in deploy/: promtool checks and unit-tests the alert rules, the Grafana
//! dashboard parses with a datasource and queries on every panel, and every metric name the rules
//! and the dashboard's PromQL use is in a live proxy's `/metrics` (a renamed metric fails here).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use strangler::demo::monolith::Monolith;

use crate::harness::{eventually, github_config, metric, post, scrape, start_proxy, url};
use crate::sign;
use crate::support::broker::Tansu;

/// Names that exist only when an optional feature is configured, so the proxy below has none.
/// Keep this list tiny: every entry is a name the live check cannot vouch for.
const OPTIONAL: &[&str] = &[
    // Only with TLS on the public or admin listener; tests/it/tls_edge.rs reads it from a live
    // scrape (a_signed_webhook_and_the_admin_api_are_served_over_verified_tls).
    "strangler_tls_cert_expiry_seconds",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$PROMTOOL` (scripts/test.d/40-promtool.sh), else `promtool` on the PATH.
fn promtool(args: &[&str], dir: &Path) {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let out = Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{bin} (install Debian's prometheus package; scripts/test.d/40-promtool.sh): {e}"));
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Identifiers starting `strangler_` in a PromQL expression, without a histogram's suffix.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("strangler_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let len = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            let name = &tail[..len];
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            names.insert(base.to_string());
        }
        rest = &tail[len..];
    }
    names
}

/// The `expr:` values of a rules file: one line, or a `|` block of the lines indented deeper.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else { continue };
        let indent = line.len() - line.trim_start().len();
        if value.trim() == "|" {
            let block = lines[i + 1..].iter().take_while(|l| l.len() - l.trim_start().len() > indent || l.is_empty());
            exprs.push(block.copied().collect::<Vec<_>>().join("\n"));
        } else {
            exprs.push(value.trim().to_string());
        }
    }
    exprs
}

/// The dashboard's queries: every panel's targets and the template variables'.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    let mut exprs = Vec::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let title = &p["title"];
        assert!(p["datasource"]["uid"].is_string(), "panel {title} has no datasource");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("panel {title} has no targets"));
        for t in targets {
            assert!(t["datasource"]["uid"].is_string(), "a target of {title} has no datasource");
            exprs.push(t["expr"].as_str().unwrap_or_else(|| panic!("a target of {title} has no expr")).to_string());
        }
    }
    for v in dashboard["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str() {
            exprs.push(q.to_string());
        }
    }
    exprs
}

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("deploy/grafana/strangler-dashboard.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("strangler-dashboard.json: {e}"))
}

#[test]
fn promtool_checks_the_alert_rules_and_passes_their_unit_tests() {
    let dir = root().join("deploy/prometheus");
    promtool(&["check", "rules", "alerts.yml"], &dir);
    promtool(&["test", "rules", "alerts.test.yml"], &dir);
}

/// Every alert has a runbook entry (a `### Name` heading in docs/operations.md), and in
/// alerts.test.yml a case where it fires and one where it must not.
#[test]
fn every_alert_has_a_runbook_entry_and_a_firing_and_a_quiet_test() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    let (rules, tests, runbook) =
        (read("deploy/prometheus/alerts.yml"), read("deploy/prometheus/alerts.test.yml"), read("docs/operations.md"));
    let names: Vec<&str> = rules.lines().filter_map(|l| l.trim_start().strip_prefix("- alert:")).map(str::trim).collect();
    assert_eq!(names.len(), 17, "{names:?}");
    for name in names {
        assert!(runbook.lines().any(|l| l == format!("### {name}")), "no runbook entry for {name}");
        // Each `alertname:` line is followed by its `exp_alerts`: a list, or `[]` when quiet.
        let cases: Vec<&str> = tests
            .split("alertname: ")
            .skip(1)
            .filter(|case| case.lines().next() == Some(name))
            .map(|case| case.lines().nth(1).unwrap_or("").trim())
            .collect();
        assert!(cases.contains(&"exp_alerts: []"), "no quiet test for {name}");
        assert!(cases.contains(&"exp_alerts:"), "no firing test for {name}");
    }
}

#[test]
fn the_dashboard_parses_and_every_panel_queries_a_templated_datasource() {
    let d = dashboard();
    assert_eq!(d["schemaVersion"], 39);
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no {name} variable"));
    assert_eq!(var("DS_PROMETHEUS")["type"], "datasource");
    assert_eq!(var("route")["query"]["query"], "label_values(strangler_requests_total, route)");
    let exprs = dashboard_exprs(&d);
    assert!(exprs.len() > 20, "{exprs:?}");
    for p in d["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
    }
    // The tokenizer finds names, and only names.
    assert_eq!(
        metric_names(
            "histogram_quantile(0.5, rate(strangler_a_bucket{route=~\"$route\"}[5m])) / my_strangler_c + strangler_b_count"
        ),
        BTreeSet::from(["strangler_a".to_string(), "strangler_b".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_alerts_and_the_dashboard_use_is_in_a_live_scrape() {
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    let mut used: BTreeSet<String> = rule_exprs(&rules).iter().flat_map(|e| metric_names(e)).collect();
    assert!(used.len() >= 14, "the rules' expressions were not found: {used:?}");
    used.extend(dashboard_exprs(&dashboard()).iter().flat_map(|e| metric_names(e)));

    // A shadow route with a guard (for strangler_route_min_parity) and a short compare window (no
    // new service runs, so each event becomes missing_new and strangler_parity_ratio appears), a
    // spool (for the spool gauges), a contract (for strangler_contract_violations_total) and a
    // watched consumer group (for the strangler_consumer_lag_* families).
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let spool = tempfile::tempdir().unwrap();
    let schema = spool.path().join("github.v1.json");
    std::fs::write(&schema, r#"{"$id": "https://example.com/github.v1.json", "type": "object"}"#).unwrap();
    let head = format!("[spool]\ndir = \"{}\"\n", spool.path().display());
    let cfg = format!(
        "{}guard = {{ min_parity = 0.97 }}\ncompare = {{ window_ms = 200 }}\n\
         contract = {{ schema = \"{}\", on_invalid = \"observe\" }}\n\
         [[lag.group]]\nname = \"deploy-metrics\"\ntopics = [\"webhooks.github\"]\n",
        github_config(&monolith.url(), &tansu.brokers, &head),
        schema.display()
    );
    let proxy = start_proxy(&cfg, &[("GH", "s")], None).await;
    for i in 0..3 {
        let body = format!("{{\"n\":{i}}}");
        let mut headers = sign::github("s", body.as_bytes());
        headers.push(("X-GitHub-Delivery".into(), format!("deploy-metrics-{i}")));
        headers.push(("X-GitHub-Event".into(), "push".into()));
        let reply = post(&url(&proxy, "/webhooks/github"), &headers, body).await;
        assert!(reply.status.is_success(), "{:?}", reply.body);
    }
    let compared = eventually(Duration::from_secs(60), || async {
        metric(&scrape(&proxy).await, "strangler_parity_total", &[("route", "github"), ("result", "missing_new")]) >= 3.0
    })
    .await;
    assert!(compared, "the comparator decided the three events");

    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_route_min_parity", &[("route", "github")]), 0.97, "{text}");
    assert!(text.lines().any(|l| l == "strangler_ready 1"), "ready with Kafka and the monolith up: {text}");
    let exposed: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .flat_map(|l| metric_names(l.split(['{', ' ']).next().unwrap_or("")))
        .collect();
    let missing: Vec<&String> = used.iter().filter(|n| !exposed.contains(*n) && !OPTIONAL.contains(&n.as_str())).collect();
    assert!(missing.is_empty(), "used by deploy/ but not in /metrics: {missing:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strangler_ready_follows_readiness_at_each_scrape_without_readyz_calls() {
    let tansu = Tansu::start();
    // A monolith address nothing listens on: the replica serves, but is not ready.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let legacy = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let proxy = start_proxy(&github_config(&legacy, &tansu.brokers, ""), &[("GH", "s")], None).await;
    let text = scrape(&proxy).await;
    assert!(text.lines().any(|l| l == "strangler_ready 0"), "monolith unreachable: {text}");
    let admin = format!("http://{}/readyz", proxy.admin_addr);
    let reply = crate::harness::send(http::Method::GET, &admin, &[], bytes::Bytes::new()).await;
    assert_eq!(reply.status, http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["reasons"][0], "monolith_unreachable", "{}", reply.json());
    proxy.shutdown().await;
}
