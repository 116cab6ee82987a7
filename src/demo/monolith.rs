//! Sample "legacy monolith": a small hyper HTTP/1.1 server that records every request it receives.
//!
//! Used by the integration tests and by `strangler demo`. Every request is read in full, recorded,
//! and answered with `200` and `{"ok":true,"seq":<n>}` (`n` = 1-based arrival number). A path
//! ending in `/status/<code>` is answered with that status code instead (same JSON body). A path
//! ending in `/hang` is recorded and never answered (until shutdown): a stuck monolith. A path
//! ending in `/hold` is recorded and answered once [`MonolithHandle::release_held`] is called.
//! Each `x-monolith-reply-header: Name: value` request header is echoed as a response header.
//! An `x-monolith-reply-bytes: N` request header makes the body [`reply_bytes`]`(N)` instead
//! (`text/plain`): a large answer. [`Monolith::start_tls`] serves the same over TLS (https).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One request as seen by the monolith.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// Request method.
    pub method: Method,
    /// Request target as sent (path and query).
    pub uri: Uri,
    /// Request headers as sent.
    pub headers: HeaderMap,
    /// The complete request body.
    pub body: Bytes,
    /// Address of the client that sent the request.
    pub peer: SocketAddr,
}

/// Entry point for starting a sample monolith.
pub struct Monolith;

/// Handle to a running monolith; cheap to clone, all clones refer to the same server.
///
/// The server runs until [`MonolithHandle::shutdown`] is called or its tokio runtime stops.
#[derive(Clone)]
pub struct MonolithHandle {
    shared: Arc<Shared>,
}

struct Shared {
    addr: SocketAddr,
    /// The listening socket; `None` once shut down. Taking it out drops (closes) the socket.
    listener: Mutex<Option<TcpListener>>,
    received: Mutex<Vec<ReceivedRequest>>,
    /// Number of recorded requests, for `wait_for`.
    count: watch::Sender<usize>,
    /// Flips to `true` on shutdown; the accept loop and every connection watch it.
    shutdown: watch::Sender<bool>,
    /// Flips to `true` on `release_held`: `/hold` requests are answered then.
    released: watch::Sender<bool>,
    behaviour: Behaviour,
    /// Requests answered, recorded or not.
    seen: std::sync::atomic::AtomicUsize,
    /// Serve https with this configuration (it may require client certificates).
    tls: Option<tokio_rustls::TlsAcceptor>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How the sample monolith answers and what it keeps.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Answer with the demo's business decision ([`super::decision::decide`]) instead of `{"ok","seq"}`.
    pub decide: bool,
    /// Keep every request for [`MonolithHandle::received`] (off for long demo runs).
    pub record: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self { decide: false, record: true }
    }
}

impl Monolith {
    /// Binds `addr` (port 0 picks a free port) and starts serving on the current tokio runtime.
    pub async fn start(addr: SocketAddr) -> std::io::Result<MonolithHandle> {
        Self::start_with(addr, Behaviour::default()).await
    }

    /// Like [`Monolith::start`], with a chosen behaviour.
    pub async fn start_with(addr: SocketAddr, behaviour: Behaviour) -> std::io::Result<MonolithHandle> {
        Self::serve(addr, behaviour, None).await
    }

    /// Like [`Monolith::start`], over TLS with `config` (e.g. one that requires client certificates).
    pub async fn start_tls(addr: SocketAddr, config: Arc<rustls::ServerConfig>) -> std::io::Result<MonolithHandle> {
        Self::serve(addr, Behaviour::default(), Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn serve(
        addr: SocketAddr,
        behaviour: Behaviour,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<MonolithHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            listener: Mutex::new(Some(listener)),
            received: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            released: watch::Sender::new(false),
            behaviour,
            seen: std::sync::atomic::AtomicUsize::new(0),
            tls,
        });
        tokio::spawn(accept_loop(shared.clone()));
        tracing::info!(%addr, "sample monolith listening");
        Ok(MonolithHandle { shared })
    }
}

impl MonolithHandle {
    /// The bound address (with the real port if started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT` (`https://` when started with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.shared.addr)
    }

    /// Snapshot of every request recorded so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.received).clone()
    }

    /// Waits until at least `n` requests have been recorded, or until `timeout` has elapsed,
    /// and returns a snapshot either way (callers assert on its length).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        let mut count = self.shared.count.subscribe();
        let _ = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        self.received()
    }

    /// Answers every request held on a `/hold` path, and those that arrive later.
    pub fn release_held(&self) {
        self.shared.released.send_replace(true);
    }

    /// Stops the server: the listening socket is closed before this returns (new connections
    /// are refused), idle keep-alive connections are closed, requests already being handled
    /// finish, and requests arriving later on kept-alive connections get no answer. Idempotent.
    pub fn shutdown(&self) {
        let listener = lock(&self.shared.listener).take();
        drop(listener);
        self.shared.shutdown.send_replace(true);
        tracing::info!(addr = %self.shared.addr, "sample monolith shut down");
    }
}

async fn accept_loop(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        // The listener lock is only held while polling, never across an await, so `shutdown`
        // can take the listener out (and close it) at any time.
        let accepted = poll_fn(|cx| match lock(&shared.listener).as_ref() {
            Some(listener) => listener.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        });
        let (stream, peer) = tokio::select! {
            res = accepted => match res {
                Some(Ok(conn)) => conn,
                Some(Err(err)) => {
                    // E.g. EMFILE: back off briefly instead of spinning on the error.
                    tracing::warn!(%err, "sample monolith accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                None => return,
            },
            _ = stopped(&mut stop) => return,
        };
        match shared.tls.clone() {
            None => drop(tokio::spawn(serve_connection(shared.clone(), stream, peer))),
            Some(acceptor) => drop(tokio::spawn(serve_tls(shared.clone(), acceptor, stream, peer))),
        }
    }
}

async fn serve_tls(shared: Arc<Shared>, acceptor: tokio_rustls::TlsAcceptor, stream: TcpStream, peer: SocketAddr) {
    match acceptor.accept(stream).into_fallible().await {
        Ok(tls) => serve_connection(shared, tls, peer).await,
        Err((err, mut stream)) => {
            tracing::debug!(%peer, %err, "sample monolith TLS handshake failed");
            // Close as a web server does: FIN after the alert, and read what the client already
            // sent, so that no reset destroys the alert before the client reads it.
            let _ = stream.shutdown().await;
            let mut sink = [0u8; 4096];
            let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
            let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        }
    }
}

/// Resolves once shutdown has been requested (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn serve_connection<S>(shared: Arc<Shared>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut stop = shared.shutdown.subscribe();
    let service = {
        let shared = shared.clone();
        service_fn(move |req| handle(shared.clone(), peer, req))
    };
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        res = conn.as_mut() => res,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "sample monolith connection ended with error");
    }
}

async fn handle(shared: Arc<Shared>, peer: SocketAddr, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, BoxError> {
    if *shared.shutdown.borrow() {
        // A request that reached us on a kept-alive connection after `shutdown`: drop the
        // connection without answering, as a dead process would.
        return Err("sample monolith is shut down".into());
    }
    let (parts, body) = req.into_parts();
    let extra = reply_headers(&parts.headers);
    let sized = reply_size(&parts.headers);
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path().to_string();
    let status = status_from_path(&path).unwrap_or(StatusCode::OK);
    let seq = shared.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let (status, reply) = if shared.behaviour.decide {
        let (code, decision) = super::decision::decide(&body);
        (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), decision.to_string())
    } else {
        (status, format!("{{\"ok\":true,\"seq\":{seq}}}"))
    };
    let recorded = if shared.behaviour.record {
        let mut received = lock(&shared.received);
        received.push(ReceivedRequest { method: parts.method, uri: parts.uri, headers: parts.headers, body, peer });
        received.len()
    } else {
        seq
    };
    // `wait_for(n)` promises n recorded requests, so count what is recorded.
    shared.count.send_replace(recorded);
    tracing::debug!(%peer, seq, %status, "sample monolith recorded request");
    if path.ends_with("/hold") {
        let _ = shared.released.subscribe().wait_for(|go| *go).await;
    }
    if path.ends_with("/hang") {
        let _ = shared.shutdown.subscribe().wait_for(|stop| *stop).await;
        return Err("sample monolith shut down while hanging".into());
    }

    let mut resp = Response::new(Full::new(sized.map_or_else(|| Bytes::from(reply), reply_bytes)));
    *resp.status_mut() = status;
    let content_type = if sized.is_some() { "text/plain" } else { "application/json" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in extra {
        resp.headers_mut().append(name, value);
    }
    Ok(resp)
}

/// Response headers a test asks for: each `x-monolith-reply-header: Name: value` request header
/// becomes `Name: value` on the answer (to show what a proxy does with a monolith's headers).
fn reply_headers(headers: &HeaderMap) -> Vec<(http::HeaderName, HeaderValue)> {
    headers
        .get_all("x-monolith-reply-header")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split_once(':'))
        .filter_map(|(n, v)| {
            Some((http::HeaderName::from_bytes(n.trim().as_bytes()).ok()?, HeaderValue::from_str(v.trim()).ok()?))
        })
        .collect()
}

/// The body asked for with `x-monolith-reply-bytes: N`: `N` bytes cycling through `a`..`z`.
pub fn reply_bytes(n: usize) -> Bytes {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>().into()
}

fn reply_size(headers: &HeaderMap) -> Option<usize> {
    headers.get("x-monolith-reply-bytes")?.to_str().ok()?.trim().parse().ok()
}

/// `.../status/<code>` → that status code, if it is a valid one.
fn status_from_path(path: &str) -> Option<StatusCode> {
    let (rest, code) = path.rsplit_once('/')?;
    if !rest.ends_with("/status") && rest != "status" {
        return None;
    }
    code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_path_rule() {
        assert_eq!(status_from_path("/status/503"), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(status_from_path("/hooks/x/status/404"), Some(StatusCode::NOT_FOUND));
        assert_eq!(status_from_path("/hooks/status"), None);
        assert_eq!(status_from_path("/mystatus/500"), None);
        assert_eq!(status_from_path("/status/abc"), None);
        assert_eq!(status_from_path("/status/99"), None);
        assert_eq!(status_from_path("/webhooks/stripe"), None);
    }
}
