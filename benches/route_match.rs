//! Cost of matching a request to a route (`RouteTable::resolve`), per kind of path, with the
//! allocations each one makes: the exact-path case must not allocate.
//!
//! `cargo bench --bench route_match` (env: BENCH_ITERS, default 1000000). Prints ns per lookup
//! and allocations per lookup for 20 routes (literal paths, templates, aliases, one
//! case-insensitive route).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::Method;
use strangler::route::RouteTable;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn table() -> RouteTable {
    let mut src = String::from("[legacy]\nurl = \"http://127.0.0.1:1\"\n");
    for i in 0..16 {
        src.push_str(&format!(
            "[[route]]\nname = \"r{i}\"\nmatch = {{ path = \"/webhooks/provider{i}\", aliases = [\"/webhooks/provider{i}.json\"] }}\ntopic = \"t\"\nsignature = {{ scheme = \"github\", mode = \"off\" }}\n"
        ));
    }
    for (i, path) in ["/webhooks/{tenant}/stripe", "/shopify/{shop}/orders", "/t/{a}/{b}/{c}"].iter().enumerate() {
        src.push_str(&format!(
            "[[route]]\nname = \"t{i}\"\nmatch = {{ path = \"{path}\" }}\ntopic = \"t\"\nsignature = {{ scheme = \"github\", mode = \"off\" }}\n"
        ));
    }
    src.push_str("[[route]]\nname = \"ci\"\nmatch = { path = \"/Hooks/Partner\", case_insensitive = true }\ntopic = \"t\"\nsignature = { scheme = \"github\", mode = \"off\" }\n");
    let cfg = strangler::config::load_str(&src, "bench.toml", &|_| None).expect("valid bench config");
    RouteTable::new(cfg.routes.into_iter().map(Arc::new).collect())
}

fn main() {
    let iters: u64 = std::env::var("BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let t = table();
    let cases = [
        ("exact path", "/webhooks/provider7"),
        ("template, 1 capture", "/webhooks/acme/stripe"),
        ("template, 3 captures", "/t/x/y/z"),
        ("unmatched, canonical", "/api/v1/orders/42"),
        ("unmatched, upper case", "/API/v1/Orders/42"),
        ("case-insensitive route", "/HOOKS/PARTNER"),
        ("non-canonical spelling", "//webhooks/./provider%37/"),
        ("ambiguous near a route", "/webhooks%2Fprovider7"),
    ];
    println!("{:<26} {:>10} {:>14}", "path", "ns/lookup", "allocs/lookup");
    for (name, path) in cases {
        let before = ALLOCS.load(Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..iters {
            black_box(t.resolve(&Method::POST, black_box(path)));
        }
        let ns = start.elapsed().as_nanos() as f64 / iters as f64;
        let allocs = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / iters as f64;
        println!("{name:<26} {ns:>10.1} {allocs:>14.2}");
    }
}
