//! The proxy killed with SIGKILL while Kafka is down and events wait in its spool: after a
//! restart (with a torn record at the spool's end, as a kill mid-write leaves), every delivery that
//! got a 2xx is on Kafka exactly once.

use std::process::{Command, Stdio};
use std::time::Duration;

use http::{Method, StatusCode};
use strangler::demo::monolith::Monolith;

use crate::cli::Proc;
use crate::harness::{eventually, metric, send};
use crate::load::{assert_exactly_once_in_order, config, deliver, spool_table, until_all_on_kafka, SECRET};
use crate::support::broker::{free_port, Tansu};

fn spawn(file: &std::path::Path, log: &std::path::Path) -> Proc {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_strangler"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(file)
        .env("GH", SECRET)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

async fn scrape(admin: &str) -> String {
    let reply = send(Method::GET, &format!("http://{admin}/metrics"), &[], "").await;
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// Sends deliveries `crash-<n>` and asserts each got the monolith's 200.
async fn send_all(base: &str, range: std::ops::Range<u64>) -> Vec<String> {
    let mut accepted = Vec::new();
    for n in range {
        let id = format!("crash-{n}");
        assert_eq!(deliver(base, &id, &format!("crash-e{}", n % 5), n, 64).await, StatusCode::OK, "{id}");
        accepted.push(id);
    }
    accepted
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_killed_during_an_outage_publishes_its_spool_exactly_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut tansu = Tansu::start_sqlite(&dir.path().join("tansu.db"));
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (public, admin) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
    let file = dir.path().join("strangler.toml");
    let body = config(&monolith.url(), &tansu.brokers, "", &spool_table(&dir.path().join("spool"), 64 << 20));
    std::fs::write(&file, format!("[server]\nlisten = \"{public}\"\n[admin]\nlisten = \"{admin}\"\n{body}")).unwrap();
    let log = dir.path().join("strangler.log");
    let base = format!("http://{public}");
    let ready = || async {
        // Connect first: the request helper treats a refused connection as a test failure.
        tokio::net::TcpStream::connect(&admin).await.is_ok()
            && send(Method::GET, &format!("http://{admin}/readyz"), &[], "").await.status == StatusCode::OK
    };

    let mut proxy = spawn(&file, &log);
    assert!(eventually(Duration::from_secs(30), ready).await, "the proxy became ready");
    let mut accepted = send_all(&base, 0..10).await;
    tansu.kill();
    let down = || async { metric(&scrape(&admin).await, "strangler_kafka_up", &[]) == 0.0 };
    assert!(eventually(Duration::from_secs(30), down).await, "the proxy noticed the outage");
    accepted.extend(send_all(&base, 10..60).await);
    // Nothing may be left only in memory: librdkafka's queue is empty and the spool holds the rest.
    let spooled = || async {
        let text = scrape(&admin).await;
        metric(&text, "strangler_producer_queue_depth", &[]) == 0.0 && metric(&text, "strangler_spool_records", &[]) >= 50.0
    };
    assert!(eventually(Duration::from_secs(60), spooled).await, "the outage's events are in the spool");

    proxy.0.kill().unwrap(); // SIGKILL
    proxy.0.wait().unwrap();
    // As if the kill had landed mid-write: half a record at the end of the newest segment.
    let newest = std::fs::read_dir(dir.path().join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max()
        .expect("a spool segment");
    let mut seg = std::fs::OpenOptions::new().append(true).open(&newest).unwrap();
    std::io::Write::write_all(&mut seg, &[200, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
    tansu.restart();
    let _proxy = spawn(&file, &log);
    assert!(eventually(Duration::from_secs(60), ready).await, "the restarted proxy became ready");
    let records = until_all_on_kafka(&tansu.brokers, "webhooks.orders", &accepted, Duration::from_secs(120)).await;
    assert_exactly_once_in_order(&records, &accepted);
    let replayed = || async { metric(&scrape(&admin).await, "strangler_spool_records", &[]) == 0.0 };
    assert!(eventually(Duration::from_secs(60), replayed).await, "the restarted proxy emptied its spool");
    assert_eq!(metric(&scrape(&admin).await, "strangler_spool_torn_tails_total", &[]), 1.0, "the torn tail was cut and counted");
}
