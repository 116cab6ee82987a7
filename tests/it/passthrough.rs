//! Unmatched traffic, a down monolith, limits and the metrics endpoint.

use std::time::Duration;

use http::{Method, StatusCode};
use strangler::demo::monolith::Monolith;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{eventually, metric, post, scrape, send, start_proxy, url};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::drain;

const WAIT: Duration = Duration::from_secs(20);

fn config(legacy: &str, brokers: &str, extra: &str) -> String {
    crate::harness::github_config(legacy, brokers, extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn unmatched_requests_pass_through_byte_for_byte_and_are_not_published() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // Another method on a route's path passes through only when the route lists it (else 405).
    let cfg = config(&monolith.url(), &tansu.brokers, "")
        .replace("path = \"/webhooks/github\" }", "path = \"/webhooks/github\", other_methods = [\"PUT\"] }");
    let proxy = start_proxy(&cfg, &[("GH", "s")], None).await;

    // Same path as a route but a method it passes through, another path with a query, and a status passthrough.
    let body = b"\x00\x01binary \xff payload".to_vec();
    let headers = vec![("X-Thing".to_string(), "1".to_string()), ("Content-Type".into(), "application/octet-stream".into())];
    let r1 = send(Method::PUT, &url(&proxy, "/webhooks/github"), &headers, body.clone()).await;
    let r2 = send(Method::GET, &url(&proxy, "/api/orders?id=7&x=%20y"), &headers, "").await;
    let r3 = post(&url(&proxy, "/legacy/status/418"), &headers, "teapot").await;
    assert_eq!((r1.status, r2.status, r3.status), (StatusCode::OK, StatusCode::OK, StatusCode::IM_A_TEAPOT));

    // A chunked body without Content-Length, over a raw socket: hop-by-hop framing is the proxy's.
    let mut raw = TcpStream::connect(proxy.public_addr).await.unwrap();
    raw.write_all(b"POST /chunked HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\nConnection: close, X-Hop\r\nX-Hop: drop\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));

    let got = monolith.wait_for(4, WAIT).await;
    assert_eq!(got.len(), 4);
    assert_eq!((got[0].method.clone(), got[0].body.to_vec()), (Method::PUT, body));
    assert_eq!(got[0].headers["x-thing"], "1");
    assert_eq!(got[1].uri.path_and_query().unwrap().as_str(), "/api/orders?id=7&x=%20y");
    assert_eq!(got[2].body.as_ref(), b"teapot");
    assert_eq!(got[3].body.as_ref(), b"hello world");
    assert_eq!(got[3].headers["host"], "example");
    assert!(!got[3].headers.contains_key("x-hop"), "headers named by Connection are hop-by-hop");

    assert!(drain(&tansu.brokers, "webhooks.github", WAIT).await.is_empty());
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_requests_total", &[("route", "_unmatched"), ("outcome", "forwarded")]), 3.0);
    assert_eq!(metric(&text, "strangler_requests_total", &[("route", "github"), ("outcome", "forwarded")]), 1.0);
    assert_eq!(metric(&text, "strangler_events_published_total", &[]), 0.0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_down_monolith_gets_502_json_and_the_proxy_stays_healthy() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", "s")], None).await;
    monolith.shutdown();

    let body = br#"{"repository":{"full_name":"a/b"}}"#;
    for path in ["/webhooks/github", "/elsewhere"] {
        let reply = post(&url(&proxy, path), &sign::github("s", body), &body[..]).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{path}");
        assert_eq!(reply.json()["error"]["code"], "upstream_unavailable");
    }
    let health = send(Method::GET, &format!("http://{}/healthz", proxy.admin_addr), &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = send(Method::GET, &format!("http://{}/readyz", proxy.admin_addr), &[], "").await;
    // Ready means "can serve": a monolith that refuses connections takes the replica out of rotation.
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", ready.body);
    assert_eq!(ready.json()["monolith"], "unreachable");
    assert_eq!(ready.json()["reasons"], serde_json::json!(["monolith_unreachable"]));
    assert_eq!(ready.json()["kafka"], "reachable");
    assert_eq!(ready.json()["durable"], true);

    // Still serving: the verified webhook was accepted and published even though the monolith was down.
    let published = || async { proxy.metrics.publish.published.with_label_values(&["github"]).get() == 1 };
    assert!(eventually(WAIT, published).await);
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_legacy_errors_total", &[("route", "github"), ("reason", "unavailable")]), 1.0);
    assert_eq!(metric(&text, "strangler_requests_total", &[("route", "github"), ("status", "502")]), 1.0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_413_declared_or_chunked() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(
        &config(&monolith.url(), &tansu.brokers, "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 1024\n"),
        &[("GH", "s")],
        None,
    )
    .await;

    let big = vec![b'x'; 4096];
    let reply = post(&url(&proxy, "/webhooks/github"), &sign::github("s", &big), big.clone()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["error"]["code"], "body_too_large");

    let mut raw = TcpStream::connect(proxy.public_addr).await.unwrap();
    let sig = &sign::github("s", &big)[0].1;
    let head = format!("POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Hub-Signature-256: {sig}\r\nConnection: close\r\n\r\n");
    // The whole request in one write: the proxy answers 413 as soon as the limit is passed and
    // closes, so a sender still writing chunk by chunk may find the connection gone (EPIPE).
    let mut wire = head.into_bytes();
    for chunk in big.chunks(512) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let _ = raw.write_all(&wire).await;
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 413"), "{}", String::from_utf8_lossy(&answer));
    assert!(monolith.received().is_empty());
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_scrape_shows_the_counters_moving() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", "s")], None).await;
    let body = br#"{"repository":{"full_name":"a/b"}}"#;
    let before = scrape(&proxy).await;
    for _ in 0..3 {
        assert_eq!(post(&url(&proxy, "/webhooks/github"), &sign::github("s", body), &body[..]).await.status, StatusCode::OK);
    }
    assert_eq!(
        post(&url(&proxy, "/webhooks/github"), &sign::github("nope", body), &body[..]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let published = || async { proxy.metrics.publish.published.with_label_values(&["github"]).get() == 3 };
    assert!(eventually(WAIT, published).await);
    let after = scrape(&proxy).await;

    let ok = [("route", "github"), ("status", "200"), ("outcome", "forwarded")];
    assert_eq!(metric(&before, "strangler_requests_total", &ok), 0.0);
    assert_eq!(metric(&after, "strangler_requests_total", &ok), 3.0);
    assert_eq!(metric(&after, "strangler_events_published_total", &[("route", "github")]), 3.0);
    assert_eq!(metric(&after, "strangler_signature_failures_total", &[("route", "github"), ("reason", "mismatch")]), 1.0);
    assert_eq!(metric(&after, "strangler_legacy_duration_seconds_count", &[("route", "github")]), 3.0);
    assert_eq!(metric(&after, "strangler_request_duration_seconds_count", &[("route", "github"), ("owner", "legacy")]), 4.0);
    assert!(after.contains("strangler_producer_queue_depth"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_monolith_gets_504_json_from_either_timeout() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // The monolith's own deadline is shorter than the server's: upstream_timeout.
    let legacy = config(&monolith.url(), &tansu.brokers, "").replace("[kafka]", "response_timeout_ms = 300\n[kafka]");
    let proxy = start_proxy(&legacy, &[("GH", "s")], None).await;
    let reply = post(&url(&proxy, "/orders/hang"), &[], "x").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.json()["error"]["code"], "upstream_timeout");
    proxy.shutdown().await;

    // The server's deadline is shorter: request_timeout, answered, not a dropped connection.
    let server = config(&monolith.url(), &tansu.brokers, "[server]\nlisten = \"127.0.0.1:0\"\nrequest_timeout_ms = 300\n");
    let proxy = start_proxy(&server, &[("GH", "s")], None).await;
    let reply = post(&url(&proxy, "/orders/hang"), &[], "x").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.json()["error"]["code"], "request_timeout");
    assert!(reply.headers.contains_key("x-request-id"));
    assert_eq!(monolith.received().len(), 2);
    let health = send(Method::GET, &format!("http://{}/healthz", proxy.admin_addr), &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
    proxy.shutdown().await;
    monolith.shutdown();
}
