//! HTTPS at a listener (`[server.tls]`, `[admin.tls]`): rustls with ring, TLS 1.2 and 1.3, ALPN
//! `http/1.1`, and a certificate that can be replaced while connections keep going.
//!
//! The served pair sits behind an `ArcSwap` read by a `ResolvesServerCert` at each handshake. It is
//! read again on SIGHUP and when either file's mtime, length or inode changes (checked every 2 s);
//! a pair that does not load keeps the old one serving, is logged and counted. A connection keeps
//! the certificate it was handshaken with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use prometheus::IntCounter;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio::signal::unix::Signal;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::tls::{load_pair, Tls};
use crate::telemetry::tls::TlsMetrics;

/// How often the certificate and key files are checked for a change.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// Hands the pair in force to each handshake.
#[derive(Debug)]
struct Resolver(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// Accepts TLS on one listener; cheap to clone into each connection's task.
#[derive(Clone)]
pub struct Acceptor {
    inner: TlsAcceptor,
    failures: IntCounter,
}

impl Acceptor {
    /// The handshake, bounded by `timeout`; `None` (counted, logged at debug) when it fails.
    pub async fn accept(&self, stream: TcpStream, timeout: Duration) -> Option<TlsStream<TcpStream>> {
        let peer = stream.peer_addr().ok();
        let handshake = async {
            // A connection closed before its first byte is a TCP probe (a load balancer's health
            // check, the readiness probe), not a failed handshake: not counted.
            if matches!(stream.peek(&mut [0u8; 1]).await, Ok(0)) {
                return None;
            }
            Some(self.inner.accept(stream).await)
        };
        let why = match tokio::time::timeout(timeout, handshake).await {
            Ok(None) => return None,
            Ok(Some(Ok(tls))) => return Some(tls),
            Ok(Some(Err(e))) => e.to_string(),
            Err(_) => format!("no handshake within {timeout:?}"),
        };
        self.failures.inc();
        tracing::debug!(?peer, error = %why, "TLS handshake failed");
        None
    }
}

/// Builds `listener`'s acceptor (`server` or `admin`) serving `tls`'s validated pair, and starts
/// the task that re-reads the files until `shutdown`. The SIGHUP handler is in place on return.
pub fn start(
    listener: &'static str,
    tls: &Tls,
    metrics: &TlsMetrics,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Acceptor> {
    start_polling(listener, tls, metrics, shutdown, POLL_EVERY)
}

/// [`start`], checking the files every `poll`.
fn start_polling(
    listener: &'static str,
    tls: &Tls,
    metrics: &TlsMetrics,
    shutdown: watch::Receiver<bool>,
    poll: Duration,
) -> anyhow::Result<Acceptor> {
    let resolver = Arc::new(Resolver(ArcSwap::new(tls.pair.certified.clone())));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    metrics.init_listener(listener, tls.pair.not_after);
    let reloader = Reloader { listener, cert: tls.cert.clone(), key: tls.key.clone(), resolver, metrics: metrics.clone() };
    let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hup) => Some(hup),
        Err(e) => {
            tracing::warn!(listener, error = %e, "no SIGHUP handler: TLS files are reloaded on change only");
            None
        }
    };
    tokio::spawn(reloader.run(hup, shutdown, poll));
    Ok(Acceptor {
        inner: TlsAcceptor::from(Arc::new(config)),
        failures: metrics.handshake_failures.with_label_values(&[listener]),
    })
}

/// Re-reads one listener's pair on SIGHUP and on a change of either file.
struct Reloader {
    listener: &'static str,
    cert: PathBuf,
    key: PathBuf,
    resolver: Arc<Resolver>,
    metrics: TlsMetrics,
}

/// What identifies a file's version: modification time, length and inode.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

impl Reloader {
    fn stamps(&self) -> (Stamp, Stamp) {
        (stamp(&self.cert), stamp(&self.key))
    }

    async fn run(self, mut hup: Option<Signal>, mut shutdown: watch::Receiver<bool>, poll: Duration) {
        let mut seen = self.stamps();
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => {
                    seen = self.stamps();
                    self.reload("SIGHUP");
                }
                _ = poll.tick() => {
                    let now = self.stamps();
                    if now != seen {
                        seen = now;
                        self.reload("file changed");
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Loads the pair; serves it if good, else keeps the old one.
    fn reload(&self, trigger: &str) {
        match load_pair(&self.cert, &self.key) {
            Ok(pair) => {
                self.resolver.0.store(pair.certified);
                self.metrics.reloaded(self.listener, Ok(pair.not_after));
                tracing::info!(listener = self.listener, trigger, not_after = pair.not_after, "TLS certificate reloaded");
            }
            Err(e) => {
                self.metrics.reloaded(self.listener, Err(()));
                let file = match e.part {
                    crate::config::tls::Part::Cert => &self.cert,
                    crate::config::tls::Part::Key => &self.key,
                };
                tracing::error!(
                    listener = self.listener, trigger, file = %file.display(), error = %e,
                    "TLS certificate reload refused; the previous certificate stays in force"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    /// Writes a self-signed pair expiring on 1 January of `year`.
    fn write_pair(dir: &Path, year: i32) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        std::fs::write(dir.join("c.pem"), params.self_signed(&key).unwrap().pem()).unwrap();
        std::fs::write(dir.join("k.pem"), key.serialize_pem()).unwrap();
    }

    /// SIGHUP alone reloads: the file check is set to an hour so it cannot be what did it.
    #[tokio::test(flavor = "multi_thread")]
    async fn sighup_reloads_the_pair() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), 2031);
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let tls = Tls { pair: load_pair(&cert, &key).unwrap(), cert, key };
        let metrics = TlsMetrics::new(&prometheus::Registry::new()).unwrap();
        let (stop, stopped) = watch::channel(false);
        start_polling("admin", &tls, &metrics, stopped, Duration::from_secs(3600)).unwrap();
        let expiry = metrics.cert_expiry.with_label_values(&["admin"]);
        assert_eq!(expiry.get(), rcgen::date_time_ymd(2031, 1, 1).unix_timestamp());

        write_pair(dir.path(), 2033);
        // SAFETY: getpid and kill have no preconditions; `start_polling` installed the handler.
        unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
        let want = rcgen::date_time_ymd(2033, 1, 1).unix_timestamp();
        let deadline = Instant::now() + Duration::from_secs(20);
        while expiry.get() != want {
            assert!(Instant::now() < deadline, "SIGHUP did not reload the pair");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(metrics.reloads.with_label_values(&["admin", "ok"]).get(), 1);
        let _ = stop.send(true);
    }
}
