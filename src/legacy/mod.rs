//! The pooled client to the monolith: header hygiene, timeouts, and errors sorted for the sender.

pub mod headers;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use http::uri::{PathAndQuery, Uri};
use http::{header, Request, Response};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::Legacy;
use crate::ingress::Body;

/// Why the monolith gave no answer. Each maps to a status and a metric reason.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("the monolith is unreachable: {0}")]
    Unavailable(String),
    #[error("the monolith did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the request body exceeded the size limit")]
    BodyTooLarge,
    #[error("the request to the monolith failed: {0}")]
    Failed(String),
}

impl LegacyError {
    /// Every value [`Self::reason`] gives, for metrics that exist at zero before the first error.
    pub const REASONS: [&'static str; 4] = ["unavailable", "timeout", "body_too_large", "failed"];

    /// Bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            LegacyError::Unavailable(_) => "unavailable",
            LegacyError::Timeout(_) => "timeout",
            LegacyError::BodyTooLarge => "body_too_large",
            LegacyError::Failed(_) => "failed",
        }
    }
}

/// A keep-alive pool of connections to the monolith, over TLS for `https://` upstreams.
#[derive(Clone)]
pub struct LegacyClient {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    response_timeout: Duration,
    preserve_host: bool,
}

impl LegacyClient {
    pub fn new(cfg: &Legacy) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        // The TLS layer takes `https://` URLs; plain ones pass through it untouched.
        connector.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(cfg.tls.client.as_ref().clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self { client, response_timeout: cfg.response_timeout, preserve_host: cfg.preserve_host }
    }

    /// Sends `req` to `upstream` (a base URL), keeping path and query. Returns once the response
    /// head arrives; the body streams on.
    pub async fn forward(
        &self,
        upstream: &Uri,
        mut req: Request<Body>,
        client: SocketAddr,
    ) -> Result<Response<Incoming>, LegacyError> {
        let path = req.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut parts = upstream.clone().into_parts();
        parts.path_and_query = Some(path);
        *req.uri_mut() = Uri::from_parts(parts).map_err(|e| LegacyError::Failed(e.to_string()))?;
        *req.version_mut() = http::Version::HTTP_11;

        let host = req.headers().get(header::HOST).cloned();
        let headers = req.headers_mut();
        headers::strip_hop_by_hop(headers);
        headers::add_forwarded(headers, client.ip(), host.as_ref());
        if !self.preserve_host {
            // The client then derives Host from the upstream URL.
            headers.remove(header::HOST);
        }

        let mut resp = match tokio::time::timeout(self.response_timeout, self.client.request(req)).await {
            Err(_) => return Err(LegacyError::Timeout(self.response_timeout)),
            Ok(Err(e)) => return Err(classify(e)),
            Ok(Ok(resp)) => resp,
        };
        headers::strip_hop_by_hop(resp.headers_mut());
        Ok(resp)
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> LegacyError {
    // A TLS failure (unknown CA, refused client certificate) means no usable connection, however
    // far the handshake got: with TLS 1.3 a refused client certificate shows only at the first read.
    if let Some(why) = tls::reason(&e) {
        return LegacyError::Unavailable(format!("TLS: {why}"));
    }
    if e.is_connect() {
        return LegacyError::Unavailable(chain(&e));
    }
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return LegacyError::BodyTooLarge;
        }
        source = s.source();
    }
    LegacyError::Failed(e.to_string())
}

/// `e` and its sources, `: `-joined ("client error (Connect): tcp connect error: Connection refused").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let s_text = s.to_string();
        if !out.ends_with(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        next = s.source();
    }
    out
}
