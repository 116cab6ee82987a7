//! The public listener: a hyper 1 HTTP/1.1 server running the tower stack from [`stack`].
//!
//! `serve` accepts until shutdown is signalled, then stops accepting and lets in-flight requests
//! finish within the grace period.

pub mod body_limit;
pub mod error;
pub mod metrics;
pub mod new_path;
pub mod proxy;
pub mod stack;
pub mod timeout;

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Service, ServiceExt};

/// The body type between layers and toward the monolith.
pub type Body = BoxBody<Bytes, crate::BoxError>;

/// Request id header, set on every request and echoed on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label for answers given before routing (body limit, request timeout).
pub const UNROUTED: &str = "_unrouted";

/// The client's address, attached to each request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
}

/// Tags a response with its route and outcome for the metrics layer.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub route: Cow<'static, str>,
    pub outcome: &'static str,
}

/// Connection-level settings.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// How long a client may take to send the request head (slowloris).
    pub header_read_timeout: Duration,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub grace: Duration,
}

/// Serves `service` on `listener` until `shutdown` turns true; then drains within the grace time.
pub async fn serve<S>(listener: TcpListener, service: S, opts: ServeOptions, shutdown: watch::Receiver<bool>)
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let stop = stopped(shutdown);
    tokio::pin!(stop);
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(opts.header_read_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = service.clone();
        let per_request = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnInfo { peer });
            svc.clone().oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), per_request));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(opts.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?opts.grace, "in-flight requests still running after the grace period");
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}
