//! The comparator core in process: digests decide agreeing pairs without a diff, disagreeing
//! ones are diffed in full with the right pointers, and a route with no new service keeps nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde_json::json;

use super::*;
use crate::route::RouteTable;
use crate::telemetry::Metrics;

fn core(compare: &str, keep_body_bytes: usize) -> (Core, Metrics) {
    let toml = format!(
        r#"
[legacy]
url = "http://127.0.0.1:9"
[kafka]
brokers = "127.0.0.1:9"
[[route]]
name = "orders"
match = {{ path = "/o" }}
topic = "t"
signature = {{ scheme = "stripe", secrets_env = ["S"] }}
compare = {{ {compare} }}
"#
    );
    let cfg = crate::config::load_str(&toml, "c.toml", &|_| Some("s".into())).unwrap();
    let routes: Routes = Arc::new(ArcSwap::from_pointee(RouteTable::new(cfg.routes.into_iter().map(Arc::new).collect())));
    let metrics = Metrics::new().unwrap();
    let limits = Limits { max_pending: 1_000, max_pending_bytes: 1 << 20 };
    let settings = Settings { limits, keep_body_bytes, parity_window: 100, remember: 1_000 };
    (Core::new(routes, metrics.compare.clone(), settings), metrics)
}

fn record(id: &str, source: &str, body: serde_json::Value) -> Vec<u8> {
    let r = json!({"event_id": id, "route": "orders", "source": source, "mode": "shadow", "status": 200, "body": body});
    serde_json::to_vec(&r).unwrap()
}

fn done(mut judged: Vec<Judged>) -> Parity {
    match judged.pop() {
        Some(Judged::Done(p)) if judged.is_empty() => p,
        other => panic!("expected one decision, got {other:?}"),
    }
}

#[test]
fn equal_after_the_ignore_rules_is_a_match_without_a_diff() {
    // Nothing kept and nowhere to read from: only the digests can have decided these.
    let (mut c, m) = core(r#"ignore = ["/at"]"#, 0);
    let t = Instant::now();
    assert!(c.offer(&record("e1", "new", json!({"risk": "low", "at": 2})), None, t).is_empty());
    let p = done(c.offer(&record("e1", "legacy", json!({"at": 1, "risk": "low", "x": null})), None, t));
    assert_eq!((p.result, p.diff.len(), p.legacy.is_none()), (ParityResult::Match, 0, true));
    assert!(c.offer(&record("e2", "legacy", json!({"risk": "low", "n": [1, 2.0]})), None, t).is_empty());
    let p = done(c.offer(&record("e2", "new", json!({"n": [1.0, 2], "risk": "low", "at": 3})), None, t));
    assert_eq!((p.result, p.legacy_status, p.new_status), (ParityResult::Match, Some(200), Some(200)));
    c.count(&p);
    assert_eq!(m.compare.parity.with_label_values(&["orders", "match"]).get(), 1);
    assert_eq!((c.pending(), c.pending_bytes()), (0, 0));
}

#[test]
fn different_bodies_are_diffed_in_full_with_the_pointers() {
    let t = Instant::now();
    let legacy = json!({"risk": "low", "amount": 5, "at": 1});
    let new = json!({"risk": "high", "amount": 5, "at": 9});
    // Kept in memory: decided at once.
    let (mut c, _) = core(r#"ignore = ["/at"]"#, 4096);
    assert!(c.offer(&record("e0", "new", json!({})), None, t).is_empty());
    assert!(c.offer(&record("e3", "legacy", legacy.clone()), Some((2, 7)), t).is_empty());
    let p = done(c.offer(&record("e3", "new", new.clone()), None, t));
    assert_eq!(p.result, ParityResult::Mismatch);
    let pointers: Vec<&str> = p.diff.iter().map(|d| d.pointer.as_str()).collect();
    assert_eq!(pointers, ["/body/risk"]);
    assert_eq!((p.diff[0].legacy.clone(), p.diff[0].new.clone()), (json!("low"), json!("high")));
    assert_eq!(p.legacy.as_ref().map(|s| &s.body), Some(&legacy));
    assert_eq!(p.new.as_ref().map(|s| &s.body), Some(&new));

    // Too long to keep: handed back with where to read it, and the full diff says the same.
    let (mut c, _) = core(r#"ignore = ["/at"]"#, 8);
    assert!(c.offer(&record("e0", "new", json!({})), None, t).is_empty());
    assert!(c.offer(&record("e3", "legacy", legacy.clone()), Some((2, 7)), t).is_empty());
    let mut judged = c.offer(&record("e3", "new", new.clone()), None, t);
    let Some(Judged::Full { mut first, at, second }) = judged.pop() else { panic!("a full diff is needed") };
    assert_eq!((at, first.source, first.body.clone()), (Some((2, 7)), Source::Legacy, Value::Null));
    first.body = legacy.clone(); // as read again from the topic
    let rules = c.routes.load().get("orders").unwrap().compare.rules.clone();
    let again = verdict(&rules, Joined::Pair { legacy: first, new: second }, "t".into());
    assert_eq!((again.result, again.diff), (p.result, p.diff));
}

#[test]
fn a_route_with_no_new_service_keeps_no_digest_and_no_body() {
    let t = Instant::now();
    let (mut c, m) = core("window_ms = 1000", 4096);
    assert!(c.offer(&record("e4", "legacy", json!({"big": "x".repeat(1000)})), Some((0, 1)), t).is_empty());
    assert_eq!(c.pending_bytes(), crate::compare::lone::LONE_OVERHEAD + "e4".len(), "no body kept, a lone entry");
    assert_eq!(m.compare.pending.with_label_values(&["orders"]).get(), 1);
    // The same record again (a producer retry) is refused, not counted twice.
    assert!(c.offer(&record("e4", "legacy", json!({"big": "x".repeat(1000)})), Some((0, 2)), t).is_empty());
    assert_eq!((c.pending(), m.compare.dropped.with_label_values(&["duplicate"]).get()), (1, 1));
    // Its first new outcome: nothing to compare the digest with, so the pair is diffed in full.
    let judged = c.offer(&record("e4", "new", json!({"big": "x".repeat(1000)})), None, t);
    assert!(matches!(&judged[..], [Judged::Full { at: Some((0, 1)), .. }]), "{judged:?}");
    // From then on the route's outcomes are digested: an agreeing pair needs no diff.
    assert!(c.offer(&record("e5", "legacy", json!({"k": 1})), None, t).is_empty());
    assert_eq!(done(c.offer(&record("e5", "new", json!({"k": 1})), None, t)).result, ParityResult::Match);
    // And a lone legacy outcome still becomes missing_new when its window closes.
    assert!(c.offer(&record("e6", "legacy", json!({})), None, t).is_empty());
    assert!(c.expire(t + Duration::from_millis(999)).is_empty());
    let p = done(c.expire(t + Duration::from_secs(1)));
    assert_eq!((p.event_id.as_str(), p.result, p.legacy_status, p.new_status), ("e6", ParityResult::MissingNew, Some(200), None));
    assert_eq!(m.compare.pending.with_label_values(&["orders"]).get(), 0);
}

#[test]
fn records_that_do_not_decode_or_name_no_route_are_dropped() {
    let (mut c, m) = core("", 512);
    let t = Instant::now();
    assert!(c.offer(b"{not json", None, t).is_empty());
    assert!(c.offer(br#"{"event_id":"e","route":"orders","source":"legacy","mode":"shadow","status":"x"}"#, None, t).is_empty());
    assert!(c
        .offer(br#"{"event_id":"e","route":"orders","source":"legacy","mode":"shadow","status":200,"latency_ms":"x"}"#, None, t)
        .is_empty());
    assert!(c.offer(br#"{"event_id":"e","route":"nope","source":"legacy","mode":"shadow","status":200}"#, None, t).is_empty());
    assert_eq!(m.compare.dropped.with_label_values(&[UNDECODABLE]).get(), 3);
    assert_eq!(m.compare.dropped.with_label_values(&[UNKNOWN_ROUTE]).get(), 1);
    assert_eq!(c.pending(), 0);
}
