//! The public listener: a hyper 1 HTTP/1.1 server running the tower stack from [`stack`].
//!
//! `serve` accepts until shutdown is signalled, then stops accepting and lets in-flight requests
//! finish within the grace period.
//!
//! Limits live where they can be enforced cheapest: head size, header count, the header read
//! timeout and the connection cap on the connection, here (hyper answers 431 and 400 itself, with
//! an empty body); load shedding, forwarding-header trust, the request timeout and the body's
//! size and deadline as layers of [`stack`].

pub mod body_budget;
pub mod body_limit;
pub mod captured;
mod contract;
pub mod error;
pub mod forwarded;
pub mod hygiene;
pub mod load_shed;
pub mod metrics;
pub mod new_path;
pub mod proxy;
pub mod stack;
pub mod timeout;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::{Service, ServiceExt};

use crate::telemetry::RouteMetrics;

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
    /// The connection is TLS (`server.tls`): the monolith is told `X-Forwarded-Proto: https`.
    pub tls: bool,
}

/// Tags a response with its route and outcome for the metrics layer.
#[derive(Clone)]
pub struct Outcome {
    pub route: RouteTag,
    pub outcome: &'static str,
}

/// The route an answer is counted on: its handles, or `_unrouted` (answered before routing).
#[derive(Clone)]
pub enum RouteTag {
    Unrouted,
    Route(Arc<RouteMetrics>),
}

impl RouteTag {
    /// The route label.
    pub fn label(&self) -> &str {
        match self {
            RouteTag::Unrouted => UNROUTED,
            RouteTag::Route(m) => &m.name,
        }
    }
}

/// Connection-level settings.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// How long a client may take to send the request head (slowloris).
    pub header_read_timeout: Duration,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub grace: Duration,
    /// Request line plus headers, in bytes; larger heads get hyper's own 431 (empty body).
    pub max_header_bytes: usize,
    /// Header lines; more get hyper's own 431 (empty body).
    pub max_headers: usize,
    /// Open connections; at the cap the listener stops accepting until one closes.
    pub max_connections: usize,
}

/// hyper's default header count, kept on the stack; any other count is allocated per request.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// hyper refuses a read buffer smaller than this.
const HYPER_MIN_BUF_SIZE: usize = 8192;

impl ServeOptions {
    /// The `[server]` settings a connection enforces.
    pub fn new(server: &crate::config::Server) -> Self {
        Self {
            header_read_timeout: server.header_read_timeout,
            grace: server.shutdown_grace,
            max_header_bytes: server.max_header_bytes,
            max_headers: server.max_headers,
            max_connections: server.max_connections,
        }
    }
}

/// Serves `service` on `listener` until `shutdown` turns true; then drains within the grace time.
/// With `tls`, each connection's handshake runs in its own task, bounded by the header read timeout.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    opts: ServeOptions,
    shutdown: watch::Receiver<bool>,
    tls: Option<tls::Acceptor>,
) where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let stop = stopped(shutdown);
    tokio::pin!(stop);
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        // hyper checks the head's exact size once parsed; its read buffer must also hold a head
        // that size while it arrives, and hyper will not go below 8 KiB. A head that outgrows
        // either gets 431, and the buffer bounds what a half-sent head costs.
        .max_header_size(opts.max_header_bytes)
        .max_buf_size(opts.max_header_bytes.max(HYPER_MIN_BUF_SIZE));
    if opts.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        http.max_headers(opts.max_headers);
    }
    let http = Arc::new(http);
    let connections = Arc::new(Semaphore::new(opts.max_connections));
    let mut warned_full: Option<Instant> = None;
    loop {
        // At the cap, stop accepting: new connections wait in the kernel's backlog.
        let slot = match connections.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned_full.is_none_or(|at| at.elapsed() > FULL_WARNING_EVERY) {
                    tracing::warn!(
                        max_connections = opts.max_connections,
                        "connection cap reached: not accepting until one closes"
                    );
                    warned_full = Some(Instant::now());
                }
                tokio::select! {
                    slot = connections.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut stop => break,
                }
            }
        };
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
        let on_tls = tls.is_some();
        let per_request = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnInfo { peer, tls: on_tls });
            svc.clone().oneshot(req)
        });
        // Watched from accept, so shutdown waits for a connection still in its handshake too.
        let (watcher, http, tls) = (graceful.watcher(), http.clone(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let served = match tls {
                None => watcher.watch(http.serve_connection(TokioIo::new(stream), per_request)).await,
                Some(tls) => match tls.accept(stream, opts.header_read_timeout).await {
                    Some(stream) => watcher.watch(http.serve_connection(TokioIo::new(stream), per_request)).await,
                    None => return,
                },
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(opts.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?opts.grace, "in-flight requests still running after the grace period");
    }
}

/// At most one "connection cap reached" warning this often.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}
