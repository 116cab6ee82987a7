//! What judging an event against its contract costs the request path, side by side with the
//! signature check every matched request already pays (HMAC-SHA256 over the same bytes).
//!
//! `cargo bench --bench contract` (env: BENCH_ITERS, default 20000). For orders of 1, 10 and 100
//! line items (about 100 B, 500 B and 4 KB), prints µs per event for the HMAC, for parsing the
//! body into JSON alone (part of judging), for `judge` on a valid body, on the same body already
//! parsed (`reused`: what the proxy pays when an `event` pointer parsed it), and on an invalid one
//! (one line item with `qty = 0`), and judge ÷ HMAC.

use std::hint::black_box;
use std::time::Instant;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use strangler::contract::{judge, judge_parsed, Verdict};

const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://schemas.example.com/order/v3.json",
  "type": "object",
  "required": ["id", "customer", "currency", "items"],
  "properties": {
    "id": { "type": "string", "pattern": "^ord_[A-Za-z0-9]+$" },
    "customer": { "type": "string", "minLength": 1 },
    "currency": { "enum": ["EUR", "USD", "GBP"] },
    "note": { "type": "string", "maxLength": 500 },
    "items": {
      "type": "array", "minItems": 1,
      "items": {
        "type": "object", "required": ["sku", "qty", "price"], "additionalProperties": false,
        "properties": {
          "sku": { "type": "string" },
          "qty": { "type": "integer", "minimum": 1 },
          "price": { "$ref": "#/$defs/cents" }
        }
      }
    }
  },
  "$defs": { "cents": { "type": "integer", "minimum": 0 } }
}"##;

fn order(items: usize, bad: bool) -> Vec<u8> {
    let lines: Vec<_> = (0..items)
        .map(|i| {
            let qty = if bad && i == items / 2 { 0 } else { 1 + i % 3 };
            serde_json::json!({ "sku": format!("SKU-{i:05}"), "qty": qty, "price": 1999 + i })
        })
        .collect();
    let body = serde_json::json!({ "id": "ord_01JDQ8X2", "customer": "cus_42", "currency": "EUR", "items": lines });
    serde_json::to_vec(&body).expect("an order serializes")
}

/// µs per call of `f` over `iters` calls.
fn time(iters: u64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / iters as f64
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and gets a smoke run.
    let default_iters = if std::env::args().any(|a| a == "--bench") { 20_000 } else { 20 };
    let iters: u64 = std::env::var("BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default_iters);
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = dir.path().join("order.v3.json");
    std::fs::write(&schema, SCHEMA).expect("write the schema");
    let src = format!(
        "[legacy]\nurl = \"http://127.0.0.1:1\"\n[[route]]\nname = \"orders\"\nmatch = {{ path = \"/webhooks/orders\" }}\ntopic = \"t\"\n\
         signature = {{ scheme = \"github\", mode = \"off\" }}\ncontract = {{ schema = \"{}\" }}\n",
        schema.display()
    );
    let cfg = strangler::config::load_str(&src, "bench.toml", &|_| None).expect("valid bench config");
    let contract = cfg.routes[0].contract.clone().expect("the route has a contract");
    let key = b"bench-secret-0123456789";

    println!(
        "{:>6} {:>8} {:>10} {:>10} {:>10} {:>12} {:>12} {:>8} {:>10}",
        "items", "bytes", "hmac µs", "parse µs", "valid µs", "reused µs", "invalid µs", "valid÷", "invalid÷"
    );
    for items in [1, 10, 100] {
        let (good, bad) = (order(items, false), order(items, true));
        assert!(matches!(judge(Some(&contract), "com.example.order", &good), Verdict::Valid { .. }));
        assert!(matches!(judge(Some(&contract), "com.example.order", &bad), Verdict::Invalid { .. }));
        let hmac = time(iters, || {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(black_box(&good));
            black_box(mac.finalize().into_bytes());
        });
        let parse = time(iters, || {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(&good)).expect("JSON"));
        });
        let valid = time(iters, || {
            black_box(judge(Some(&contract), "com.example.order", black_box(&good)));
        });
        let parsed: serde_json::Value = serde_json::from_slice(&good).expect("JSON");
        let reused = time(iters, || {
            black_box(judge_parsed(Some(&contract), "com.example.order", &good, Some(black_box(&parsed))));
        });
        let invalid = time(iters, || {
            black_box(judge(Some(&contract), "com.example.order", black_box(&bad)));
        });
        println!(
            "{items:>6} {:>8} {hmac:>10.2} {parse:>10.2} {valid:>10.2} {reused:>12.2} {invalid:>12.2} {:>7.1}× {:>9.1}×",
            good.len(),
            valid / hmac,
            invalid / hmac
        );
    }
}
