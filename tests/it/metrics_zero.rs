//! Every labelled series exists at zero before its first event, for every route from start-up
//! and for a route a reload adds: `increase()` alerts need the series before the first increment.
//! The expected label values are the ones docs/operations.md lists, written out here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use strangler::app::{self, Options};
use strangler::demo::monolith::Monolith;

use crate::harness::scrape;
use crate::support::broker::Tansu;

type Labels = BTreeMap<String, String>;
/// The label pairs of one series, besides `route`.
type Combo = Vec<(&'static str, &'static str)>;

/// `name{k="v",...} value` lines of a Prometheus text exposition.
fn series(text: &str) -> Vec<(String, Labels, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let labels = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels, value.parse().unwrap())
        })
        .collect()
}

/// Every label value each route-labelled counter may carry, per docs/operations.md.
fn per_route() -> Vec<(&'static str, Vec<Combo>)> {
    let one = |label: &'static str, values: &[&'static str]| values.iter().map(|v| vec![(label, *v)]).collect::<Vec<_>>();
    let fail = ["queue_full", "timed_out", "purged", "kafka_down", "spool_draining", "refused", "failed", "canceled"];
    let mut signature = Vec::new();
    for reason in ["missing", "malformed", "stale", "mismatch", "no_secret"] {
        for mode in ["enforce", "observe"] {
            signature.push(vec![("reason", reason), ("mode", mode)]);
        }
    }
    let mut outcomes = Vec::new();
    for source in ["legacy", "new"] {
        for mode in ["shadow", "live"] {
            outcomes.push(vec![("source", source), ("mode", mode)]);
        }
    }
    vec![
        ("strangler_signature_failures_total", signature),
        ("strangler_legacy_errors_total", one("reason", &["unavailable", "timeout", "failed", "body_too_large"])),
        ("strangler_events_published_total", vec![vec![]]),
        ("strangler_events_failed_total", one("reason", &fail)),
        ("strangler_events_spooled_total", one("reason", &fail)),
        ("strangler_fallbacks_total", one("reason", &[&fail[..], &["contract"]].concat())),
        (
            "strangler_events_dropped_total",
            one("reason", &["spool_full", "spool_evicted", "spool_error", "no_spool", "dead_letter_failed"]),
        ),
        ("strangler_dead_letters_total", one("reason", &["too_large", "invalid", "not_authorized", "invalid_topic", "contract"])),
        ("strangler_duplicates_total", vec![vec![]]),
        ("strangler_partition_skew_ratio", vec![vec![]]),
        ("strangler_assignments_total", one("owner", &["legacy", "new"])),
        ("strangler_outcome_timeouts_total", vec![vec![]]),
        ("strangler_guard_trips_total", vec![vec![]]),
        ("strangler_comparator_evicted_total", vec![vec![]]),
        ("strangler_comparator_pending", vec![vec![]]),
        ("strangler_body_budget_exhausted_total", vec![vec![]]),
        ("strangler_route_refusals_total", one("reason", &["ambiguous_path", "method_not_allowed"])),
        ("strangler_parity_total", one("result", &["match", "mismatch", "missing_new", "missing_legacy", "truncated"])),
        ("strangler_new_path_total", one("result", &["ok", "error", "missing"])),
        ("strangler_outcomes_total", outcomes),
        ("strangler_request_duration_seconds_count", one("owner", &["legacy", "new"])),
        ("strangler_legacy_duration_seconds_count", vec![vec![]]),
    ]
}

/// Counters without a route label, and their values.
const FIXED: [(&str, &str, &[&str]); 5] = [
    ("strangler_outcomes_dropped_total", "reason", &["undecodable", "unknown_route", "late", "duplicate"]),
    ("strangler_spool_replayed_total", "result", &["published", "already_on_kafka", "dead_lettered"]),
    ("strangler_records_failed_total", "kind", &["outcome", "parity"]),
    ("strangler_config_reloads_total", "result", &["ok", "error"]),
    ("strangler_admin_auth_failures_total", "reason", &["missing", "invalid"]),
];

/// Each route has exactly the documented series of each counter, at zero, and nothing else.
fn assert_at_zero(text: &str, routes: &[&str]) {
    let all = series(text);
    for (metric, combos) in per_route() {
        for route in routes {
            let want: BTreeSet<Labels> = combos
                .iter()
                .map(|c| {
                    let mut l: Labels = c.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    l.insert("route".into(), route.to_string());
                    l
                })
                .collect();
            let got: BTreeSet<Labels> = all
                .iter()
                .filter(|(n, l, _)| n == metric && l.get("route").map(String::as_str) == Some(route))
                .map(|(_, l, _)| l.clone())
                .collect();
            assert_eq!(got, want, "{metric} for route {route}");
            let nonzero: Vec<_> = all
                .iter()
                .filter(|(n, l, v)| n == metric && l.get("route").map(String::as_str) == Some(route) && *v != 0.0)
                .collect();
            assert!(nonzero.is_empty(), "{nonzero:?}");
        }
    }
    for (metric, label, values) in FIXED {
        let got: BTreeSet<String> = all.iter().filter(|(n, _, _)| n == metric).map(|(_, l, _)| l[label].clone()).collect();
        assert_eq!(got, values.iter().map(|v| v.to_string()).collect::<BTreeSet<_>>(), "{metric}");
    }
    // Only route-level and `_unmatched` legacy series: no other route label is made up.
    let known: BTreeSet<&str> = routes.iter().copied().chain(["_unmatched"]).collect();
    for (name, labels, _) in &all {
        if let Some(route) = labels.get("route") {
            let made_up = !known.contains(route.as_str()) && route != "_unrouted";
            assert!(!made_up, "{name} has an unknown route {route}");
        }
    }
    let unmatched: BTreeSet<&str> = all
        .iter()
        .filter(|(_, l, _)| l.get("route").map(String::as_str) == Some("_unmatched"))
        .map(|(n, _, _)| n.as_str())
        .collect();
    assert!(
        unmatched.iter().all(|n| n.starts_with("strangler_legacy_") || n.starts_with("strangler_request_duration")),
        "{unmatched:?}"
    );
}

fn route(name: &str) -> String {
    format!(
        "\n[[route]]\nname = \"{name}\"\nmatch = {{ path = \"/webhooks/{name}\" }}\ntopic = \"webhooks.{name}\"\nsignature = {{ scheme = \"github\", mode = \"off\" }}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_series_exists_at_zero_from_start_up_and_from_the_reload_that_adds_a_route() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strangler.toml");
    let base = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[legacy]\nurl = \"{}\"\n[kafka]\nbrokers = \"{}\"\npartitions = 1\n",
        monolith.url(),
        tansu.brokers
    );
    std::fs::write(&file, format!("{base}{}{}", route("alpha"), route("beta"))).unwrap();
    let cfg = strangler::config::load(&file).unwrap();
    let opts = Options { config_path: Some(file.clone()), ..Options::default() };
    let running = app::start(cfg, opts).await.expect("proxy starts");

    assert_at_zero(&scrape(&running).await, &["alpha", "beta"]);

    std::fs::write(&file, format!("{base}{}{}{}", route("alpha"), route("beta"), route("gamma"))).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(60), running.reload()).await.unwrap().expect("reload");
    assert_eq!(report.added, ["gamma"]);
    // The reload counted itself; everything else is still at zero, now for gamma too.
    let text = scrape(&running)
        .await
        .replace("strangler_config_reloads_total{result=\"ok\"} 1", "strangler_config_reloads_total{result=\"ok\"} 0");
    assert_at_zero(&text, &["alpha", "beta", "gamma"]);
    running.shutdown().await;
}
