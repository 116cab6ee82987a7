//! Smoke tests for the sample monolith (`strangler::demo::monolith`) over real HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use strangler::demo::monolith::{Monolith, MonolithHandle};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn start() -> MonolithHandle {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Monolith::start(addr).await.expect("start monolith")
}

/// Sends a POST and returns status, content-type and body.
async fn post(client: &HttpClient, url: String, body: &'static [u8]) -> Result<(StatusCode, Option<String>, Bytes), String> {
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-webhook-id", "evt_123")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let ctype = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok((status, ctype, body.to_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn records_requests_and_answers_json() {
    let monolith = start().await;
    let client = client();
    assert_eq!(monolith.url(), format!("http://{}", monolith.addr()));

    let payload: &[u8] = b"{\"type\":\"invoice.paid\",\"bin\":\"\x00\xff\"}";
    let (status, ctype, body) =
        post(&client, format!("{}/webhooks/stripe?x=1", monolith.url()), payload).await.expect("first request");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype.as_deref(), Some("application/json"));
    assert_eq!(&body[..], br#"{"ok":true,"seq":1}"#);

    let (status, _, body) = post(&client, format!("{}/hooks/status/503", monolith.url()), b"x").await.expect("second request");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(&body[..], br#"{"ok":true,"seq":2}"#);

    let got = monolith.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2);
    let first = &got[0];
    assert_eq!(first.method, Method::POST);
    assert_eq!(first.uri.path(), "/webhooks/stripe");
    assert_eq!(first.uri.query(), Some("x=1"));
    assert_eq!(&first.body[..], payload, "body bytes recorded verbatim");
    assert_eq!(first.headers["x-webhook-id"], "evt_123");
    assert_eq!(first.headers[header::CONTENT_TYPE], "application/json");
    assert!(first.peer.ip().is_loopback());
    assert_eq!(got[1].uri.path(), "/hooks/status/503");
    assert_eq!(&got[1].body[..], b"x");

    monolith.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_get_unique_sequence_numbers() {
    let monolith = start().await;
    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (client, url) = (client.clone(), format!("{}/load", monolith.url()));
        tasks.spawn(async move { post(&client, url, b"{}").await });
    }
    let mut seqs = Vec::new();
    while let Some(res) = tasks.join_next().await {
        let (status, _, body) = res.unwrap().expect("request");
        assert_eq!(status, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["ok"], true);
        seqs.push(json["seq"].as_u64().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    assert_eq!(monolith.received().len(), 20);
    monolith.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_for_returns_what_it_has_at_timeout() {
    let monolith = start().await;
    let got = monolith.wait_for(1, Duration::from_millis(100)).await;
    assert!(got.is_empty());
    monolith.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_refuses_new_connections() {
    let monolith = start().await;
    let client = client();
    let url = format!("{}/before", monolith.url());
    assert_eq!(post(&client, url, b"1").await.unwrap().0, StatusCode::OK);

    monolith.shutdown();

    let err = tokio::net::TcpStream::connect(monolith.addr()).await.expect_err("connect after shutdown must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // The client's pooled keep-alive connection is closed too, so the monolith is really down.
    let after = post(&client, format!("{}/after", monolith.url()), b"2").await;
    assert!(after.is_err(), "request after shutdown succeeded: {after:?}");
    assert_eq!(monolith.received().len(), 1);
    // Idempotent.
    monolith.shutdown();
}
