//! Memory under held-open bodies, against the real binary: 300 senders each declare a 1 MiB body
//! on a matched route, send all of it but the last byte, and hold. The body budget
//! (`server.max_buffered_body_bytes`) admits what fits and answers the rest 503 before reading
//! their bodies; RSS stays under the budget plus 40 MB, and falls back once the senders go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::control::start_replica;
use crate::harness::{eventually, metric, send};
use crate::parity::{deciding_monolith, orders_config, SECRET};
use crate::support::broker::Tansu;

const MIB: u64 = 1024 * 1024;
const BUDGET: u64 = 64 * MIB;
const SENDERS: usize = 300;
/// What the process may hold beyond its memory at rest and the body budget while the bodies are
/// held (buffers, connections, allocator slack); without the budget it would hold 300 MiB more.
const SLACK: u64 = 24_000_000;
const WAIT: Duration = Duration::from_secs(60);

/// VmRSS of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the replica's /proc status");
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS line");
    kib.trim().trim_end_matches("kB").trim().parse::<u64>().expect("a number of kB") * 1024
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// One sender: the head of a 1 MiB body and all of it but the last byte, then held. Returns the
/// stream (kept open by the caller) and whether the proxy answered 503 `body_budget_exhausted`.
async fn sender(public: String) -> (TcpStream, Option<String>) {
    let mut stream = TcpStream::connect(&public).await.expect("connect");
    let head = format!(
        "POST /webhooks/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Stripe-Signature: t=1,v1=00\r\nContent-Length: {MIB}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // A refused sender's body is never read: its write fails or stalls, and that is fine.
        let _ = wr.write_all(&vec![b'x'; MIB as usize - 1]).await;
        wr
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // A refused sender is answered at once; a held one hears nothing until it goes.
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    let wr = writer.await.unwrap();
    let stream = rd.reunite(wr).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    (stream, (read.is_ok() && !answer.is_empty()).then_some(text))
}

#[tokio::test(flavor = "multi_thread")]
async fn held_open_bodies_stay_within_the_budget_and_memory_comes_back_after_they_close() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strangler.toml");
    // The budget, not these, must be what answers: every sender fits the connection cap and the
    // load-shedding limit, and nobody times out during the test.
    let server = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = {MIB}\nmax_buffered_body_bytes = {BUDGET}\n\
         max_connections = 2000\nmax_concurrent_requests = 2000\nbody_read_timeout_ms = 300000\n\
         request_timeout_ms = 300000\n[admin]\nlisten = \"127.0.0.1:0\"\n"
    );
    std::fs::write(&file, format!("{server}{}", orders_config(&monolith.url(), &tansu.brokers, ""))).unwrap();
    let replica = start_replica(&file, &[("S", SECRET)], "held").await;
    let pid = replica.pid();
    let metrics = format!("{}/metrics", replica.admin);
    let scrape = || async { String::from_utf8(send(Method::GET, &metrics, &[], "").await.body.to_vec()).unwrap() };
    let baseline = rss(pid);

    // Two bursts: an allocator that keeps what the first one freed shows it in the second.
    for round in 1..=2 {
        burst(round, pid, &replica.public, &scrape, baseline).await;
    }

    // And the proxy still serves: a new body fits the budget again.
    let order = serde_json::to_vec(&crate::parity::order("evt_after", "cus_1", 1)).unwrap();
    let t = crate::sign::now();
    let target = format!("http://{}/webhooks/orders", replica.public);
    let reply = crate::harness::post(&target, &crate::sign::stripe(SECRET, t, &order), order).await;
    assert_eq!(reply.status, http::StatusCode::OK, "{:?}", reply.body);
}

/// One burst of [`SENDERS`] held bodies, then the senders go; asserts the budget, the peak RSS and
/// that RSS falls back.
async fn burst<F, Fut>(round: usize, pid: u32, public: &str, scrape: &F, baseline: u64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    // RSS sampled throughout the burst; the peak is what is asserted.
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let senders: Vec<_> = (0..SENDERS).map(|_| tokio::spawn(sender(public.to_owned()))).collect();
    let mut streams = Vec::new();
    let mut refused = 0;
    for s in senders {
        let (stream, answer) = s.await.unwrap();
        if let Some(answer) = answer {
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            assert!(
                answer.contains("body_budget_exhausted") && answer.to_ascii_lowercase().contains("retry-after: 1"),
                "{answer}"
            );
            refused += 1;
        }
        streams.push(stream);
    }
    let admitted = (BUDGET / MIB) as usize;
    assert_eq!(refused, SENDERS - admitted, "the budget admits exactly {admitted} bodies of 1 MiB");
    // Every admitted body is in memory: the worst the budget allows.
    let held = admitted as u64 * (MIB - 1);
    let all_read = || async { metric(&scrape().await, "strangler_body_buffered_bytes", &[]) as u64 == held };
    assert!(eventually(WAIT, all_read).await, "the admitted bodies were read");
    let text = scrape().await;
    assert_eq!(metric(&text, "strangler_body_budget_reserved_bytes", &[]) as u64, BUDGET);
    assert_eq!(metric(&text, "strangler_body_budget_exhausted_total", &[("route", "orders")]) as usize, refused * round);
    let during = rss(pid);
    peak.fetch_max(during, Ordering::Relaxed);

    // The senders go; their reservations and buffers are released, and the memory comes back.
    drop(streams);
    let released = || async {
        let text = scrape().await;
        metric(&text, "strangler_body_buffered_bytes", &[]) == 0.0
            && metric(&text, "strangler_body_budget_reserved_bytes", &[]) == 0.0
    };
    assert!(eventually(WAIT, released).await, "every reservation was given back");
    sampling.abort();
    let peak = peak.load(Ordering::Relaxed);
    let back = baseline + BUDGET / 4;
    let fell_back = eventually(WAIT, || async { rss(pid) <= back }).await;
    let after = rss(pid);
    eprintln!(
        "held bodies, burst {round}: RSS baseline {}, with {admitted} bodies held {}, peak {}, after close {} (budget {}, ceiling {}, fall-back bound {})",
        mb(baseline),
        mb(during),
        mb(peak),
        mb(after),
        mb(BUDGET),
        mb(baseline + BUDGET + SLACK),
        mb(back)
    );
    assert!(peak < baseline + BUDGET + SLACK, "peak RSS {} over rest + the budget + {}", mb(peak), mb(SLACK));
    assert!(fell_back, "RSS {} did not fall back under {} after the senders went", mb(after), mb(back));
}
