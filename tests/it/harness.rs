//! Starts a proxy in-process against a real broker and the sample monolith, and talks HTTP to it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use strangler::app::{self, Options, Running};

/// Starts a proxy from a TOML snippet; `[server]`/`[admin]` listen on port 0 unless given.
/// Sends the proxy's logs to the test output when `STRANGLER_TEST_LOG` is set (e.g. `warn`).
fn test_logs() {
    if let Ok(filter) = std::env::var("STRANGLER_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

pub async fn start_proxy(toml: &str, env: &[(&str, &str)], clock: Option<SystemTime>) -> Running {
    test_logs();
    // `RUST_LOG=... cargo test -- --nocapture` shows the proxy's logs.
    if std::env::var_os("RUST_LOG").is_some() {
        strangler::telemetry::logging::init(strangler::telemetry::logging::LogFormat::Text);
    }
    let mut src = String::new();
    if !toml.contains("[server]") {
        src.push_str("[server]\nlisten = \"127.0.0.1:0\"\n");
    }
    if !toml.contains("[admin]") {
        src.push_str("[admin]\nlisten = \"127.0.0.1:0\"\n");
    }
    src.push_str(toml);
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let cfg = strangler::config::load_str(&src, "test.toml", &|k| env.get(k).cloned()).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let mut opts = Options::default();
    if let Some(t) = clock {
        opts.clock = Arc::new(move || t);
    }
    app::start(cfg, opts).await.expect("proxy starts")
}

/// A response, fully read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends one request with the given headers and body.
pub async fn send(method: Method, url: &str, headers: &[(String, String)], body: impl Into<Bytes>) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = client.request(req.body(Full::new(body.into())).unwrap()).await.expect("request sent");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body read").to_bytes();
    Reply { status: parts.status, headers: parts.headers, body }
}

pub async fn post(url: &str, headers: &[(String, String)], body: impl Into<Bytes>) -> Reply {
    send(Method::POST, url, headers, body).await
}

/// Polls `cond` until it is true or `timeout` passes; returns whether it became true.
pub async fn eventually<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one sample in a Prometheus text exposition, 0 when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .filter(|(series, _)| labels.iter().all(|(k, v)| series.contains(&format!("{k}=\"{v}\""))))
        .map(|(_, v)| v.parse::<f64>().unwrap_or(0.0))
        .sum()
}

pub async fn scrape(running: &Running) -> String {
    let reply = send(Method::GET, &format!("http://{}/metrics", running.admin_addr), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    String::from_utf8(reply.body.to_vec()).unwrap()
}

pub fn url(running: &Running, path: &str) -> String {
    format!("http://{}{}", running.public_addr, path)
}

/// One GitHub route (secret from `GH`) on single-partition topics; `head` goes first (e.g. a
/// `[server]` table with limits to test).
pub fn github_config(legacy: &str, brokers: &str, head: &str) -> String {
    format!(
        r#"{head}
[legacy]
url = "{legacy}"
[kafka]
brokers = "{brokers}"
partitions = 1
[[route]]
name = "github"
match = {{ path = "/webhooks/github" }}
topic = "webhooks.github"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
"#
    )
}
