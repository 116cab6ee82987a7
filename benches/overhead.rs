//! Proxy overhead, measured side by side in one run: the sample monolith directly, through
//! strangler on an unmatched path (passthrough), through a signed route (verify + publish), and
//! the signed route with a spool and `spool.write_ahead` off, on (`fsync = "100ms"`) and on with
//! `fsync = "always"`, with the write-ahead cost as ratios to write-ahead off.
//!
//! `cargo bench --bench overhead` (env: BENCH_SECS, default 5; BENCH_CONNS, default 16).
//! Prints throughput and latency per scenario and the ratios to "direct". Load generator, proxy,
//! monolith and the embedded broker share the machine, so compare ratios, not absolute numbers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use strangler::demo::monolith::Monolith;
use tokio::net::TcpStream;

const SECRET: &str = "bench-secret";
const BODY: &[u8] = br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/widgets"},"pusher":{"name":"octocat"}}"#;

struct Stats {
    requests: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
}

fn signature(body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn load(addr: std::net::SocketAddr, path: &'static str, conns: usize, secs: u64) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let sig = signature(BODY);
    let start = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|i| {
            let sig = sig.clone();
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
                tokio::spawn(conn);
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let req = Request::post(path)
                        .header("host", "bench")
                        .header("x-hub-signature-256", &sig)
                        .header("x-github-event", "push")
                        .header("x-github-delivery", format!("{i}-{n}"))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(BODY)))
                        .unwrap();
                    let t = Instant::now();
                    let resp = sender.send_request(req).await.unwrap();
                    assert!(resp.status().is_success(), "{}", resp.status());
                    resp.into_body().collect().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Stats { requests: all.len(), secs, p50: pct(0.50), p99: pct(0.99) }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and gets a 1 s smoke run
    // that keeps the benchmark working without slowing the suite.
    let default_secs = if std::env::args().any(|a| a == "--bench") { 5 } else { 1 };
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_secs);
    let conns: usize = std::env::var("BENCH_CONNS").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let proxy = start(&monolith.url(), "").await;
    let spool = |name: &str, fsync: &str, wa: bool| {
        let path = dir.path().join(name);
        format!("[spool]\ndir = \"{}\"\nfsync = \"{fsync}\"\nwrite_ahead = {wa}\n", path.display())
    };
    let spooled = start(&monolith.url(), &spool("off", "100ms", false)).await;
    let ahead = start(&monolith.url(), &spool("on", "100ms", true)).await;
    let ahead_always = start(&monolith.url(), &spool("always", "always", true)).await;

    // Warm up pools and the producer, then measure each scenario in turn.
    load(proxy.public_addr, "/webhooks/github", conns, 1.min(secs)).await;
    let direct = load(monolith.addr(), "/webhooks/github", conns, secs).await;
    let passthrough = load(proxy.public_addr, "/unmatched", conns, secs).await;
    let route = load(proxy.public_addr, "/webhooks/github", conns, secs).await;
    // Two interleaved rounds (off, on, always, off, on, always), so drift over the run shows.
    let mut rounds = Vec::new();
    for _ in 0..2 {
        let mut wa = Vec::new();
        for p in [&spooled, &ahead, &ahead_always] {
            load(p.public_addr, "/webhooks/github", conns, 1.min(secs)).await;
            wa.push(load(p.public_addr, "/webhooks/github", conns, secs).await);
        }
        rounds.push(wa);
    }

    println!("scenario          req/s      p50       p99     (connections: {conns}, {secs} s each)");
    for (name, s) in [("direct", &direct), ("passthrough", &passthrough), ("signed route", &route)] {
        println!("{name:<14} {:>8.0} {:>9.2?} {:>9.2?}", s.requests as f64 / s.secs, s.p50, s.p99);
    }
    let rps = |s: &Stats| s.requests as f64 / s.secs;
    for (name, s) in [("passthrough", &passthrough), ("signed route", &route)] {
        println!(
            "{name}: throughput {:.2}x direct, p50 {:.2}x, p99 {:.2}x",
            rps(s) / rps(&direct),
            s.p50.as_secs_f64() / direct.p50.as_secs_f64(),
            s.p99.as_secs_f64() / direct.p99.as_secs_f64()
        );
    }
    let names = ["write_ahead off", "write_ahead on, fsync 100ms", "write_ahead on, fsync always"];
    for (round, wa) in rounds.iter().enumerate() {
        println!("\nwrite-ahead, round {} (signed route, spool configured, Kafka up):", round + 1);
        for (name, s) in names.iter().zip(wa) {
            println!("{name:<30} {:>8.0} req/s {:>9.2?} p50 {:>9.2?} p99", rps(s), s.p50, s.p99);
        }
        for (name, s) in names.iter().zip(wa).skip(1) {
            println!(
                "{name}: throughput {:.2}x write_ahead off, p50 {:.2}x, p99 {:.2}x",
                rps(s) / rps(&wa[0]),
                s.p50.as_secs_f64() / wa[0].p50.as_secs_f64(),
                s.p99.as_secs_f64() / wa[0].p99.as_secs_f64()
            );
        }
    }
    let mut published = 0;
    for p in [proxy, spooled, ahead, ahead_always] {
        published += p.metrics.publish.published.with_label_values(&["github"]).get();
        p.shutdown().await;
    }
    println!("events published during the run: {published}");
}

/// A proxy on the embedded broker with one signed route; `tail` adds tables (a `[spool]`).
async fn start(legacy: &str, tail: &str) -> strangler::app::Running {
    let src = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[legacy]\nurl = \"{legacy}\"\n{tail}[[route]]\nname = \"github\"\nmatch = {{ path = \"/webhooks/github\" }}\ntopic = \"webhooks.github\"\nsignature = {{ scheme = \"github\", secrets_env = [\"S\"] }}\nevent = {{ key_pointer = \"/repository/full_name\" }}\n"
    );
    let cfg = strangler::config::load_str(&src, "bench.toml", &|_| Some(SECRET.to_string())).unwrap();
    strangler::app::start(cfg, strangler::app::Options::default()).await.unwrap()
}
