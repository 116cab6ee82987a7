//! `strangler demo`, the README's first command, run as a user would: the real binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use http::{Method, StatusCode};

use crate::harness::{eventually, send};
use crate::support::broker::free_port;

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_settles_near_98_percent_parity_with_mismatches_in_one_field() {
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_strangler"))
        .args(["demo", "--listen", "127.0.0.1:0", "--admin", &admin])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = stdout.lines();
        let banner = lines.by_ref().take(8).map(Result::unwrap).collect::<Vec<_>>();
        // Keep reading until the demo exits: a closed pipe would make its next write (the
        // banner's last line) fail with EPIPE, and `println!` panics on that.
        std::thread::spawn(move || lines.for_each(drop));
        banner
    })
    .await
    .unwrap();
    let guard = crate::cli::Proc(child);
    for needle in ["console:", "/api/routes/orders", "/mismatches", "/metrics", "kafka bootstrap", "NOTHING IS DURABLE"] {
        assert!(banner.iter().any(|l| l.contains(needle)), "the banner says where to look ({needle}): {banner:?}");
    }

    // About 30 s at the default 50 webhooks a second; wait on the count, not the clock.
    let route = format!("http://{admin}/api/routes/orders");
    let compared = || {
        let route = route.clone();
        async move {
            let v = send(Method::GET, &route, &[], "").await.json();
            let c = &v["parity"]["counts"];
            c["match"].as_u64().unwrap_or(0) + c["mismatch"].as_u64().unwrap_or(0) >= 1200
        }
    };
    assert!(eventually(Duration::from_secs(240), compared).await, "the demo compared 1,200 events");
    let v = send(Method::GET, &route, &[], "").await.json();
    let ratio = v["parity"]["ratio"].as_f64().unwrap();
    assert!((0.95..=0.995).contains(&ratio), "parity {ratio}: {v}");
    assert_eq!(v["mode"], "shadow");

    let m = send(Method::GET, &format!("{route}/mismatches"), &[], "").await;
    assert_eq!(m.status, StatusCode::OK);
    let samples = m.json()["samples"].as_array().unwrap().clone();
    assert!(!samples.is_empty());
    assert!(samples.iter().all(|s| s["diff"].as_array().unwrap().iter().all(|d| d["pointer"] == "/body/risk")), "{samples:?}");

    // Ctrl-C stops everything cleanly.
    let mut guard = guard;
    assert!(guard.stop("-INT", Duration::from_secs(30)).await, "exit status 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_share_starts_in_split_mode() {
    let admin = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_strangler"))
        .args(["demo", "--share", "25", "--listen", "127.0.0.1:0", "--admin", &admin])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = crate::cli::Proc(child);
    let metrics = format!("http://{admin}/metrics");
    let both_paths_used = || {
        let metrics = metrics.clone();
        async move {
            let Ok(Ok(stream)) = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(metrics.trim_start_matches("http://").trim_end_matches("/metrics")),
            )
            .await
            else {
                return false;
            };
            drop(stream);
            let text = String::from_utf8(send(Method::GET, &metrics, &[], "").await.body.to_vec()).unwrap();
            let owner =
                |o: &str| crate::harness::metric(&text, "strangler_assignments_total", &[("route", "orders"), ("owner", o)]);
            owner("new") >= 20.0 && owner("legacy") >= 20.0
        }
    };
    assert!(eventually(Duration::from_secs(120), both_paths_used).await, "split mode sends customers both ways");
    let v = send(Method::GET, &format!("http://{admin}/api/routes/orders"), &[], "").await.json();
    assert_eq!((v["mode"].as_str(), v["share_percent"].as_f64()), (Some("split"), Some(25.0)));
}
