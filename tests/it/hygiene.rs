//! Request-head hygiene at the public listener: `Host` (missing, repeated, invalid), `CONNECT`,
//! what `Connection` may name, which `X-Request-Id` is adopted, underscored header names, and
//! address/URL claims from untrusted peers. Raw sockets where a client library would not send
//! the request; the sample monolith's received log as the witness of what got through.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use strangler::demo::monolith::{Monolith, MonolithHandle};

use crate::harness::{metric, scrape, send, start_proxy, url};
use crate::support::broker::Tansu;
use crate::support::wire::answer as exchange;

fn config(legacy: &str, brokers: &str, server: &str) -> String {
    crate::harness::github_config(legacy, brokers, &format!("[server]\nlisten = \"127.0.0.1:0\"\n{server}"))
}

/// Headers the monolith received for `path`, which it must have received exactly once.
fn received(monolith: &MonolithHandle, path: &str) -> HeaderMap {
    let got: Vec<_> = monolith.received().into_iter().filter(|r| r.uri.path() == path).collect();
    assert_eq!(got.len(), 1, "{path} reached the monolith {} times", got.len());
    got[0].headers.clone()
}

fn never_received(monolith: &MonolithHandle, path: &str) {
    assert!(monolith.received().iter().all(|r| r.uri.path() != path), "{path} reached the monolith");
}

fn is_ulid(id: &str) -> bool {
    id.len() == 26 && id.parse::<ulid::Ulid>().is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn host_and_connect_are_refused_before_routing_with_json() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", "s")], None).await;
    let addr = proxy.public_addr;
    let refused = [
        ("POST /hy/nohost HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", "/hy/nohost", 400, "host_invalid"),
        (
            "POST /hy/twohosts HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nContent-Length: 0\r\n\r\n",
            "/hy/twohosts",
            400,
            "host_invalid",
        ),
        ("GET /hy/badhost HTTP/1.1\r\nHost: a b\r\n\r\n", "/hy/badhost", 400, "host_invalid"),
        ("GET /hy/userinfo HTTP/1.1\r\nHost: user@a.example\r\n\r\n", "/hy/userinfo", 400, "host_invalid"),
        // Also on a route's path: nothing is verified, published or forwarded.
        ("POST /webhooks/github HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "/webhooks/github", 400, "host_invalid"),
        ("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", "a.example:443", 405, "connect_not_allowed"),
        ("CONNECT /webhooks/github HTTP/1.1\r\nHost: x\r\n\r\n", "/webhooks/github", 405, "connect_not_allowed"),
    ];
    for (wire, path, status, code) in refused {
        let answer = exchange(addr, wire).await;
        assert_eq!((answer.status, answer.json()["error"]["code"].as_str()), (status, Some(code)), "{wire:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let id = answer.header("x-request-id").expect("the answer carries a request id").to_string();
        assert_eq!(answer.json()["error"]["request_id"], id.as_str(), "{wire:?}");
        if status == 405 {
            assert_eq!(answer.header("allow"), Some("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE"));
        }
        never_received(&monolith, path);
    }
    // HTTP/1.0 needs no Host.
    let answer = exchange(addr, "GET /hy/http10 HTTP/1.0\r\n\r\n").await;
    assert_eq!(answer.status, 200);
    received(&monolith, "/hy/http10");

    let text = scrape(&proxy).await;
    let count = |status, outcome| {
        metric(&text, "strangler_requests_total", &[("route", "_unrouted"), ("status", status), ("outcome", outcome)])
    };
    assert_eq!(count("400", "host_invalid"), 5.0);
    assert_eq!(count("405", "connect_not_allowed"), 2.0);
    assert_eq!(metric(&text, "strangler_signature_failures_total", &[("route", "github")]), 0.0);
    assert!(monolith.received().iter().all(|r| r.method != Method::CONNECT));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_cannot_remove_host_or_the_request_id_and_bad_request_ids_are_replaced() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", "s")], None).await;
    let addr = proxy.public_addr;

    // Connection names Host and the request id: both reach the monolith; a header it may name goes.
    let wire = "GET /hy/connection HTTP/1.1\r\nHost: hooks.example\r\nX-Request-Id: client-id-1\r\nX-Hop: a\r\n\
Connection: close, Host, X-Request-Id, X-Hop\r\n\r\n";
    let answer = exchange(addr, wire).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id"), Some("client-id-1"));
    let got = received(&monolith, "/hy/connection");
    assert_eq!(got["host"], "hooks.example");
    assert_eq!(got["x-request-id"], "client-id-1");
    assert!(!got.contains_key("x-hop") && !got.contains_key("connection"));

    // A usable id is adopted; one too long, with other characters, or repeated, is replaced by a
    // new one, the same in the answer and at the monolith.
    let long = "a".repeat(2000);
    let max = "b".repeat(128);
    for (i, (ids, adopted)) in [
        (vec!["01J9ZQ4TQ3W2K5V7X8Y9Z0ABCD"], true),
        (vec![max.as_str()], true),
        (vec![long.as_str()], false),
        (vec!["<script>alert(1)</script>"], false),
        (vec!["a\"b"], false),
        (vec!["one", "two"], false),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/hy/id/{i}");
        let headers: Vec<(String, String)> = ids.iter().map(|v| ("x-request-id".to_string(), v.to_string())).collect();
        let reply = send(Method::GET, &url(&proxy, &path), &headers, "").await;
        assert_eq!(reply.status, StatusCode::OK);
        let answered = reply.headers.get_all("x-request-id").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(answered.len(), 1, "{answered:?}");
        let seen = received(&monolith, &path);
        assert_eq!(seen.get_all("x-request-id").iter().count(), 1);
        assert_eq!(seen["x-request-id"], answered[0].as_str(), "the monolith and the sender see the same id");
        if adopted {
            assert_eq!(answered[0], ids[0]);
        } else {
            assert!(is_ulid(&answered[0]), "{ids:?} replaced by a new id, got {}", answered[0]);
        }
    }
    // In an error body too.
    let answer = exchange(addr, "GET /hy/err HTTP/1.1\r\nX-Request-Id: <script>alert(1)</script>\r\n\r\n").await;
    assert_eq!(answer.status, 400);
    let id = answer.json()["error"]["request_id"].as_str().unwrap().to_string();
    assert!(is_ulid(&id) && answer.header("x-request-id") == Some(id.as_str()), "{id}");
    assert!(!String::from_utf8_lossy(&answer.body).contains("script"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn underscored_headers_and_untrusted_address_claims_never_reach_the_monolith() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let claims: Vec<(String, String)> = [
        ("X_Forwarded_For", "1.2.3.4"),
        ("X_Custom", "1"),
        ("X-Client-IP", "1.2.3.4"),
        ("True-Client-IP", "1.2.3.4"),
        ("X-Original-URL", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("X-Kept", "yes"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    // Defaults: no underscores, nobody trusted.
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", "s")], None).await;
    assert_eq!(send(Method::GET, &url(&proxy, "/hy/default"), &claims, "").await.status, StatusCode::OK);
    proxy.shutdown().await;
    let got = received(&monolith, "/hy/default");
    assert_eq!(got["x-kept"], "yes");
    assert_eq!(got["x-forwarded-for"], "127.0.0.1", "the connection speaks, not X_Forwarded_For");
    for name in ["x_forwarded_for", "x_custom", "x-client-ip", "true-client-ip", "x-original-url", "x-rewrite-url"] {
        assert!(!got.contains_key(name), "{name} reached the monolith: {got:?}");
    }

    // Opted in, and the peer trusted: all kept as sent.
    let server = "underscores_in_headers = true\ntrusted_proxies = [\"127.0.0.0/8\"]\n";
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, server), &[("GH", "s")], None).await;
    assert_eq!(send(Method::GET, &url(&proxy, "/hy/opted-in"), &claims, "").await.status, StatusCode::OK);
    proxy.shutdown().await;
    let got = received(&monolith, "/hy/opted-in");
    for (name, value) in &claims {
        assert_eq!(got[name.to_ascii_lowercase().as_str()], value.as_str(), "{name}");
    }
}

/// A timestamp outside the window says so, without telling the sender the server's clock.
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_signature_answer_does_not_reveal_the_servers_clock() {
    use crate::parity::{deciding_monolith, order, orders_config, SECRET};
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, ""), &[("S", SECRET)], Some(now)).await;
    let body = serde_json::to_vec(&order("evt_stale", "cus_1", 1)).unwrap();
    let signed_at = 1_800_000_000 - 3600;
    let reply =
        crate::harness::post(&url(&proxy, "/webhooks/orders"), &crate::sign::stripe(SECRET, signed_at, &body), body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let message = reply.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains(&signed_at.to_string()) && message.contains("300s"), "{message}");
    assert!(!message.contains("1800000000"), "the server's clock leaked: {message}");
    proxy.shutdown().await;
}
