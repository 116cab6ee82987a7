//! Shutdown and Kafka trouble: in-flight requests finish, events are flushed, and a broken Kafka
//! never reaches the webhook sender.

use std::time::Duration;

use http::{Method, StatusCode};
use rdkafka::message::Message;
use strangler::demo::monolith::Monolith;
use tokio::net::TcpStream;

use crate::harness::{eventually, metric, post, scrape, send, start_proxy, url};
use crate::sign;
use crate::support::broker::{free_port, Tansu};
use crate::support::kafka::{consume, header};

const WAIT: Duration = Duration::from_secs(20);

fn config(legacy: &str, kafka: &str) -> String {
    format!(
        r#"
[legacy]
url = "{legacy}"
{kafka}
[[route]]
name = "held"
match = {{ path = "/webhooks/hold" }}
topic = "webhooks.held"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stops_accepting_finishes_in_flight_requests_and_flushes_their_events() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let kafka = format!("[kafka]\nbrokers = \"{}\"\npartitions = 1", tansu.brokers);
    let proxy = start_proxy(&config(&monolith.url(), &kafka), &[("GH", "s")], None).await;
    let public = proxy.public_addr;

    let body = br#"{"n":1}"#;
    let mut headers = sign::github("s", body);
    headers.push(("X-GitHub-Delivery".into(), "in-flight-1".into()));
    let in_flight = tokio::spawn({
        let target = url(&proxy, "/webhooks/hold");
        async move { post(&target, &headers, &body[..]).await }
    });
    assert_eq!(monolith.wait_for(1, WAIT).await.len(), 1, "the request is at the monolith, unanswered");

    let stopping = tokio::spawn(proxy.shutdown());
    let refused = || async { TcpStream::connect(public).await.is_err() };
    assert!(eventually(WAIT, refused).await, "new connections are refused once shutdown starts");
    assert!(!stopping.is_finished(), "shutdown waits for the in-flight request");

    monolith.release_held();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "the in-flight request got the monolith's answer");
    tokio::time::timeout(WAIT, stopping).await.expect("shutdown completes").unwrap();

    let msgs = consume(&tansu.brokers, "webhooks.held", 1, WAIT).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(header(&msgs[0], "ce_id").as_deref(), Some("in-flight-1"));
    assert_eq!(msgs[0].payload(), Some(&body[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_kafka_never_reaches_the_sender_and_is_counted_and_reported() {
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    monolith.release_held();
    // Nothing listens on this port; topics cannot be created, so creation is off.
    let kafka = format!(
        "[kafka]\nbrokers = \"127.0.0.1:{}\"\ncreate_topics = false\n[kafka.librdkafka]\n\"message.timeout.ms\" = \"1000\"",
        free_port()
    );
    let proxy = start_proxy(&config(&monolith.url(), &kafka), &[("GH", "s")], None).await;

    let body = br#"{"n":2}"#;
    for _ in 0..3 {
        let reply = post(&url(&proxy, "/webhooks/hold"), &sign::github("s", body), &body[..]).await;
        assert_eq!(reply.status, StatusCode::OK, "shadow publishing never fails the monolith path");
    }
    let counted = || async { proxy.metrics.publish.failed.with_label_values(&["held", "timed_out"]).get() == 3 };
    assert!(eventually(WAIT, counted).await, "each undelivered event is counted");
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_events_failed_total", &[("route", "held"), ("reason", "timed_out")]), 3.0);
    assert_eq!(metric(&text, "strangler_events_published_total", &[]), 0.0);

    let ready = send(Method::GET, &format!("http://{}/readyz", proxy.admin_addr), &[], "").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["kafka"], "unreachable");
    let health = send(Method::GET, &format!("http://{}/healthz", proxy.admin_addr), &[], "").await;
    assert_eq!(health.status, StatusCode::OK, "alive, just not ready");
    proxy.shutdown().await;
}
