//! The comparator's memory and CPU per outcome, before and after digests (issue 11), in process.
//!
//! `cargo bench --bench comparator` (env: BENCH_EVENTS, default 100000; BODY_BYTES, default 10000).
//! "before" replays what the comparator did until issue 11: parse each record into an `Outcome`
//! (body as `serde_json::Value`), hold it in a map with a deadline index, and diff every pair in
//! full. "after" is `compare::core::Core`. Memory is counted by a global allocator (bytes live),
//! so it is exact for the structures, independent of the machine; CPU figures are wall time on
//! one thread, to compare with each other in the same run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use strangler::compare::core::{Core, Judged, Settings};
use strangler::compare::join::Limits;
use strangler::compare::outcome::Outcome;
use strangler::compare::rules::CompareRules;
use strangler::route::RouteTable;
use strangler::telemetry::Metrics;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// An outcome record with a realistic JSON body of about `body_bytes`.
fn record(i: usize, source: &str, body_bytes: usize) -> Vec<u8> {
    let items: Vec<String> =
        (0..body_bytes / 60).map(|k| format!(r#"{{"sku":"sku-{k:05}","qty":{},"price":{}.5}}"#, k % 7 + 1, k * 3)).collect();
    format!(
        r#"{{"event_id":"01J{i:023}","route":"orders","source":"{source}","mode":"shadow","status":200,"body":{{"order":"ord_{i}","risk":"low","items":[{}]}},"body_encoding":"json","content_type":"application/json","latency_ms":1.5,"at":"2026-01-01T00:00:00.000Z","consumer":"strangler"}}"#,
        items.join(",")
    )
    .into_bytes()
}

fn core(events: usize) -> Core {
    let toml = r#"
[legacy]
url = "http://127.0.0.1:9"
[kafka]
brokers = "127.0.0.1:9"
[[route]]
name = "orders"
match = { path = "/o" }
topic = "t"
signature = { scheme = "stripe", secrets_env = ["S"] }
"#;
    let cfg = strangler::config::load_str(toml, "bench.toml", &|_| Some("s".into())).unwrap();
    let routes = Arc::new(ArcSwap::from_pointee(RouteTable::new(cfg.routes.into_iter().map(Arc::new).collect())));
    let limits = Limits { max_pending: events + 1, max_pending_bytes: usize::MAX / 2 };
    let settings = Settings { limits, keep_body_bytes: 512, parity_window: 1000, remember: 200_000 };
    Core::new(routes, Metrics::new().unwrap().compare, settings)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and gets a small smoke run.
    let default_events = if std::env::args().any(|a| a == "--bench") { 100_000 } else { 1_000 };
    let events: usize = std::env::var("BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_events);
    let body: usize = std::env::var("BODY_BYTES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let legacy: Vec<Vec<u8>> = (0..events).map(|i| record(i, "legacy", body)).collect();
    let new: Vec<Vec<u8>> = (0..events).map(|i| record(i, "new", body)).collect();
    println!("{events} events, outcome records of {} bytes", legacy[0].len());
    let rules = CompareRules::default();
    let now = Instant::now();

    // Before: parsed outcomes held in a map with a deadline index, every pair diffed in full.
    let base = live();
    let t = Instant::now();
    let mut map: HashMap<String, Outcome> = HashMap::new();
    let mut deadlines: BTreeSet<(Instant, String)> = BTreeSet::new();
    for payload in &legacy {
        let o: Outcome = serde_json::from_slice(payload).unwrap();
        deadlines.insert((now, o.event_id.clone()));
        map.insert(o.event_id.clone(), o);
    }
    let before_hold = t.elapsed();
    let before_bytes = live() - base;
    let t = Instant::now();
    let mut matches = 0;
    for payload in &new {
        let n: Outcome = serde_json::from_slice(payload).unwrap();
        let l = map.remove(&n.event_id).unwrap();
        deadlines.remove(&(now, n.event_id.clone()));
        matches += strangler::compare::diff::compare(&rules, &l, &n).is_empty() as usize;
    }
    let before_pair = t.elapsed();
    assert_eq!(matches, events);
    drop((map, deadlines));

    // After, no new service: legacy outcomes wait as bare digests.
    let mut c = core(events);
    let base = live();
    let t = Instant::now();
    for (i, payload) in legacy.iter().enumerate() {
        assert!(c.offer(payload, Some((0, i as i64)), now).is_empty());
    }
    let bare_hold = t.elapsed();
    let bare_bytes = live() - base;
    let bare_accounted = c.pending_bytes();
    drop(c);

    // After, with a new service: legacy outcomes hashed (bodies over 512 bytes not kept), pairs by digest.
    let mut c = core(events);
    c.offer(br#"{"event_id":"warm","route":"orders","source":"new","mode":"shadow","status":200}"#, None, now);
    let base = live();
    let t = Instant::now();
    for (i, payload) in legacy.iter().enumerate() {
        assert!(c.offer(payload, Some((0, i as i64)), now).is_empty());
    }
    let hashed_hold = t.elapsed();
    let hashed_bytes = live() - base;
    let hashed_accounted = c.pending_bytes();
    let t = Instant::now();
    let mut matched = 0;
    for payload in &new {
        for j in c.offer(payload, None, now) {
            matched += matches!(j, Judged::Done(p) if p.result == strangler::compare::record::ParityResult::Match) as usize;
        }
    }
    let hashed_pair = t.elapsed();
    assert_eq!(matched, events, "every pair decided by its digests");

    let mb = |b: isize| b as f64 / (1024.0 * 1024.0);
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6 / events as f64;
    println!("memory held with {events} waiting (allocator count, MiB):");
    println!("  before (parsed Outcome)             {:>9.1}", mb(before_bytes));
    println!("  after, no new service (bare)        {:>9.1}   accounted {:.1}", mb(bare_bytes), mb(bare_accounted as isize));
    println!("  after, new service (digest)         {:>9.1}   accounted {:.1}", mb(hashed_bytes), mb(hashed_accounted as isize));
    println!("CPU per outcome (µs, one thread):");
    println!("  before: first side {:>7.2}   second side + full diff {:>7.2}", us(before_hold), us(before_pair));
    println!("  after, no new service: first side {:>7.2}", us(bare_hold));
    println!("  after, new service: first side {:>7.2}   second side + digest compare {:>7.2}", us(hashed_hold), us(hashed_pair));
}
