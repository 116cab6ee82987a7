//! Kafka over TLS (`kafka.security_protocol = "ssl"`, `[kafka.tls]`) against Tansu behind
//! stunnel: events published and read back over TLS, and a wrong CA reported as not ready.
//! SASL cannot be tested here (Tansu has none): its property translation is unit-tested in
//! `src/config/kafka_security.rs`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strangler::demo::monolith::Monolith;

use crate::cli::Proc;
use crate::harness::{eventually, metric, post, scrape, send, start_proxy, url};
use crate::sign;
use crate::support::kafka::header;
use crate::support::stunnel::{Ca, TlsBroker};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "tls-webhook-secret";

/// One GitHub route publishing to `webhooks.github` over TLS, trusting `ca`.
fn tls_config(legacy: &str, brokers: &str, ca: &Path) -> String {
    format!(
        r#"[legacy]
url = "{legacy}"
[kafka]
brokers = "{brokers}"
partitions = 1
security_protocol = "ssl"
[kafka.tls]
ca = "{}"
[[route]]
name = "github"
match = {{ path = "/webhooks/github" }}
topic = "webhooks.github"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
"#,
        ca.display()
    )
}

/// Reads partition 0 of `topic` from the beginning over TLS until `n` records or the deadline.
async fn consume_tls(brokers: &str, ca: &Path, topic: &str, n: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca.display().to_string())
        .set("group.id", "kafka-tls-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("TLS consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(Ok(m)) => out.push(m.detach()),
            Ok(Err(_transient)) => {}
        }
    }
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_publishes_signed_webhooks_and_a_tls_consumer_reads_them_back() {
    let broker = TlsBroker::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // With a client certificate too (stunnel does not ask for one): its expiry is exported.
    let (cert, key) = broker.ca.issue_server(broker.dir.path(), "client");
    let ca_line = format!("ca = \"{}\"\n", broker.ca.pem.display());
    let cfg = tls_config(&monolith.url(), &broker.brokers, &broker.ca.pem)
        .replace(&ca_line, &format!("{ca_line}cert = \"{}\"\nkey = \"{}\"\n", cert.display(), key.display()));
    let proxy = start_proxy(&cfg, &[("GH", SECRET)], None).await;
    let expiry = metric(&scrape(&proxy).await, "strangler_tls_cert_expiry_seconds", &[("cert", "kafka_client")]);
    let not_after = strangler::config::tls::leaf_not_after(&cert).unwrap() as f64;
    assert!(expiry == not_after && expiry > 0.0, "{expiry} vs {not_after}");

    let ids = ["tls-1", "tls-2", "tls-3"];
    for id in ids {
        let body = format!(r#"{{"delivery":"{id}"}}"#);
        let mut headers = sign::github(SECRET, body.as_bytes());
        headers.push(("X-GitHub-Delivery".into(), id.into()));
        headers.push(("X-GitHub-Event".into(), "push".into()));
        let reply = post(&url(&proxy, "/webhooks/github"), &headers, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{id}: {:?}", reply.body);
    }
    let msgs = consume_tls(&broker.brokers, &broker.ca.pem, "webhooks.github", ids.len()).await;
    let got: BTreeSet<String> = msgs.iter().filter_map(|m| header(m, "ce_id")).collect();
    assert_eq!(got, ids.iter().map(|s| s.to_string()).collect(), "stunnel log:\n{}", broker.log());
    for m in &msgs {
        let id = header(m, "ce_id").unwrap();
        assert_eq!(m.payload(), Some(format!(r#"{{"delivery":"{id}"}}"#).as_bytes()));
    }

    let ready = send(Method::GET, &format!("http://{}/readyz", proxy.admin_addr), &[], "").await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);
    assert_eq!(metric(&scrape(&proxy).await, "strangler_kafka_up", &[]), 1.0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_ca_is_logged_as_a_certificate_failure_and_readyz_says_kafka_unreachable() {
    let broker = TlsBroker::start();
    let other = tempfile::tempdir().unwrap();
    let wrong = Ca::mint(other.path(), "other-ca");
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let file = other.path().join("strangler.toml");
    let head = "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(&file, format!("{head}{}", tls_config(&monolith.url(), &broker.brokers, &wrong.pem))).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_strangler"))
        .args(["run", "--config"])
        .arg(&file)
        .env("GH", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let _proc = Proc(child);
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let admin = tokio::task::spawn_blocking(move || {
        stdout.lines().map_while(Result::ok).find_map(|l| l.strip_prefix("strangler admin on ").map(str::to_string))
    })
    .await
    .unwrap()
    .unwrap_or_else(|| panic!("no admin address printed; log:\n{}", log.lock().unwrap()))
    .replace("/metrics", "");

    let logged = eventually(WAIT, || {
        let text = log.lock().unwrap().clone();
        async move { text.contains("certificate verify failed") }
    })
    .await;
    assert!(logged, "no log line naming the certificate failure:\n{}", log.lock().unwrap());

    let last = Arc::new(Mutex::new(String::new()));
    let not_ready = eventually(WAIT, || {
        let (admin, last) = (admin.clone(), last.clone());
        async move {
            let ready = send(Method::GET, &format!("{admin}/readyz"), &[], "").await;
            *last.lock().unwrap() = String::from_utf8_lossy(&ready.body).into_owned();
            ready.status == StatusCode::SERVICE_UNAVAILABLE
                && ready.json()["reasons"].as_array().is_some_and(|r| r.iter().any(|x| x == "kafka_unreachable"))
        }
    })
    .await;
    assert!(not_ready, "/readyz: {}", last.lock().unwrap());
    let metrics = send(Method::GET, &format!("{admin}/metrics"), &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert_eq!(metric(&text, "strangler_kafka_up", &[]), 0.0, "{text}");
}
