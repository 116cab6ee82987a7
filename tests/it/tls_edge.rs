//! HTTPS at the edge and on the admin listener: a verifying client gets through, one trusting
//! another CA does not (and is counted), ALPN is `http/1.1`, and the certificate is swapped with
//! requests in flight (new connections and a kept-alive one) without failing any of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use strangler::demo::monolith::Monolith;

use crate::harness::{eventually, github_config, metric, scrape, start_proxy};
use crate::sign;
use crate::support::broker::Tansu;

const WAIT: Duration = Duration::from_secs(20);

/// A test CA that signs leaf certificates for 127.0.0.1.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Self { cert: params.self_signed(&key).unwrap(), key }
    }

    /// A leaf (cert PEM, key PEM) with this serial, CN and notAfter (1 January of `year`).
    fn leaf(&self, serial: u8, cn: &str, year: i32) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(vec![serial]));
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        (params.signed_by(&key, &self.cert, &self.key).unwrap().pem(), key.serialize_pem())
    }

    fn client_config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(self.cert.der().to_vec())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// An HTTPS-only client trusting only this CA, opening a new connection per request.
    fn client(&self) -> Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.client_config(&[]))
            .https_only()
            .enable_http1()
            .build();
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(https)
    }

    /// One handshake: the negotiated ALPN protocol and the leaf's serial.
    async fn handshake(&self, addr: SocketAddr, alpn: &[&[u8]]) -> (Option<Vec<u8>>, Vec<u8>) {
        let tls = self.connect(addr, alpn).await;
        let conn = tls.get_ref().1;
        let leaf = conn.peer_certificates().unwrap()[0].clone();
        let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        (conn.alpn_protocol().map(<[u8]>::to_vec), parsed.raw_serial().to_vec())
    }

    async fn connect(&self, addr: SocketAddr, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.client_config(alpn)));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.expect("handshake")
    }
}

/// Writes a pair where the listener reads it, each file replaced in one rename.
fn install(dir: &Path, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    for (path, text) in [(&cert_path, cert), (&key_path, key)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (cert_path, key_path)
}

fn tls_table(table: &str, (cert, key): &(PathBuf, PathBuf)) -> String {
    format!("[{table}]\ncert = {:?}\nkey = {:?}\n", cert.display().to_string(), key.display().to_string())
}

/// Unix seconds of 1 January of `year`, 00:00 UTC.
fn new_year(year: i32) -> f64 {
    rcgen::date_time_ymd(year, 1, 1).unix_timestamp() as f64
}

async fn read(client: &Client<HttpsConnector<HttpConnector>, Full<Bytes>>, req: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    let resp = client.request(req).await.expect("request over TLS");
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_webhook_and_the_admin_api_are_served_over_verified_tls() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("strangler test CA");
    let files = install(dir.path(), &ca.leaf(1, "strangler edge", 2031));
    let head = tls_table("server.tls", &files) + &tls_table("admin.tls", &files);
    let proxy = start_proxy(&github_config(&monolith.url(), &tansu.brokers, &head), &[("GH", "s")], None).await;
    let client = ca.client();

    let body = br#"{"repository":{"full_name":"a/b"},"n":"\u00e9 \u0000"}"#.to_vec();
    let mut req = Request::post(format!("https://{}/webhooks/github", proxy.public_addr));
    for (k, v) in sign::github("s", &body) {
        req = req.header(k, v);
    }
    let (status, _) = read(&client, req.body(Full::new(Bytes::from(body.clone()))).unwrap()).await;
    assert!(status.is_success(), "{status}");
    let got = monolith.wait_for(1, WAIT).await;
    assert_eq!(got[0].body.to_vec(), body, "the monolith gets the byte-identical body");
    assert_eq!(got[0].headers["x-forwarded-proto"], "https", "the monolith is told the sender used https");

    let admin = format!("https://{}", proxy.admin_addr);
    let (status, _) = read(&client, Request::get(format!("{admin}/healthz")).body(Full::default()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, text) = read(&client, Request::get(format!("{admin}/metrics")).body(Full::default()).unwrap()).await;
    let text = String::from_utf8(text.to_vec()).unwrap();
    for cert in ["server", "admin"] {
        assert_eq!(metric(&text, "strangler_tls_cert_expiry_seconds", &[("cert", cert)]), new_year(2031), "{cert}");
    }
    assert!(text.contains("strangler_tls_reloads_total{listener=\"server\",result=\"error\"} 0"), "zero series: {text}");

    // The operator CLI speaks https to the TLS admin listener, trusting STRANGLER_ADMIN_CA only.
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.cert.pem()).unwrap();
    let status = |ca: Option<PathBuf>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_strangler"));
        cmd.arg("status").env("STRANGLER_ADMIN", &admin).env_remove("STRANGLER_ADMIN_TOKEN").env_remove("STRANGLER_ADMIN_CA");
        if let Some(ca) = ca {
            cmd.env("STRANGLER_ADMIN_CA", ca);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let trusted = status(Some(ca_pem)).await.unwrap();
    assert!(trusted.status.success() && String::from_utf8_lossy(&trusted.stdout).contains("github"), "{trusted:?}");
    let untrusted = status(None).await.unwrap();
    let stderr = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert_eq!(untrusted.status.code(), Some(3), "unreachable: {stderr}");
    assert!(stderr.contains("certificate") || stderr.contains("unknownissuer"), "{stderr}");

    // The server picks http/1.1 even when the client offers h2 first.
    let (alpn, serial) = ca.handshake(proxy.public_addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!((alpn.as_deref(), serial.as_slice()), (Some(&b"http/1.1"[..]), &[1u8][..]));

    // A client that trusts another CA refuses the certificate; the proxy counts the failed handshake.
    let stranger = Ca::new("another CA").client();
    let refused = stranger.request(Request::get(format!("https://{}/x", proxy.public_addr)).body(Full::default()).unwrap()).await;
    assert!(refused.is_err(), "a client trusting another CA must not get through");
    let failures = || async {
        let req = Request::get(format!("{admin}/metrics")).body(Full::default()).unwrap();
        let text = String::from_utf8(read(&client, req).await.1.to_vec()).unwrap();
        metric(&text, "strangler_tls_handshake_failures_total", &[("listener", "server")]) >= 1.0
    };
    assert!(eventually(WAIT, failures).await, "the failed handshake is counted");
    assert_eq!(monolith.received().len(), 1, "nothing from the refused client reached the monolith");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_certificate_is_swapped_under_load_without_failing_a_request() {
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(Ca::new("strangler test CA"));
    let files = install(dir.path(), &ca.leaf(1, "first", 2031));
    let cfg = format!("{}[legacy]\nurl = \"{}\"\n", tls_table("server.tls", &files), monolith.url());
    let proxy = start_proxy(&cfg, &[], None).await;
    let public = proxy.public_addr;

    // One kept-alive connection, handshaken with the first certificate, used throughout.
    let (mut kept, conn) = hyper::client::conn::http1::handshake(TokioIo::new(ca.connect(public, &[]).await)).await.unwrap();
    tokio::spawn(conn);
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let kept_alive = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Acquire) || n < 10 {
                let req = Request::post(format!("/kept/{n}")).header("host", "127.0.0.1").body(Full::new(Bytes::from("k")));
                match kept.send_request(req.unwrap()).await {
                    Ok(r) if r.status().is_success() => drop(r.into_body().collect().await),
                    _ => drop(failed.fetch_add(1, Ordering::AcqRel)),
                }
                sent.fetch_add(1, Ordering::AcqRel);
                n += 1;
            }
            n
        })
    };
    let fresh = {
        let (stop, sent, failed, client) = (stop.clone(), sent.clone(), failed.clone(), ca.client());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Acquire) || n < 10 {
                let req = Request::post(format!("https://{public}/fresh/{n}")).body(Full::new(Bytes::from("f"))).unwrap();
                match client.request(req).await {
                    Ok(r) if r.status().is_success() => drop(r.into_body().collect().await),
                    _ => drop(failed.fetch_add(1, Ordering::AcqRel)),
                }
                sent.fetch_add(1, Ordering::AcqRel);
                n += 1;
            }
            n
        })
    };

    // A bad pair (another certificate's key) is refused on the file change; the old one serves on.
    let (_, stray_key) = ca.leaf(9, "stray", 2040);
    let (_, first_key) = files.clone();
    std::fs::write(&first_key, stray_key).unwrap();
    let refused = || async { metric(&scrape(&proxy).await, "strangler_tls_reloads_total", &[("result", "error")]) >= 1.0 };
    assert!(eventually(WAIT, refused).await, "the bad pair is counted as a reload error");
    assert_eq!(ca.handshake(public, &[]).await.1, vec![1], "the old certificate still serves");

    // The good swap: a new certificate and key, then SIGHUP to this process.
    install(dir.path(), &ca.leaf(2, "second", 2032));
    // SAFETY: getpid and kill have no preconditions; the proxy's SIGHUP handler is installed.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    assert!(eventually(WAIT, || async { ca.handshake(public, &[]).await.1 == vec![2] }).await, "new connections get serial 2");
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_tls_cert_expiry_seconds", &[("cert", "server")]), new_year(2032));
    assert!(metric(&text, "strangler_tls_reloads_total", &[("result", "ok")]) >= 1.0, "{text}");

    stop.store(true, Ordering::Release);
    let (kept_n, fresh_n) = (kept_alive.await.unwrap(), fresh.await.unwrap());
    assert_eq!(failed.load(Ordering::Acquire), 0, "of {} requests", sent.load(Ordering::Acquire));
    assert!(kept_n >= 10 && fresh_n >= 10, "{kept_n} kept-alive and {fresh_n} fresh requests");
    assert_eq!(metric(&text, "strangler_tls_handshake_failures_total", &[]), 0.0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_and_a_stalled_handshake_are_cut_off_and_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = install(dir.path(), &Ca::new("strangler test CA").leaf(1, "edge", 2031));
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nheader_read_timeout_ms = 300\n{}[legacy]\nurl = \"{}\"\n",
        tls_table("server.tls", &files),
        monolith.url()
    );
    let proxy = start_proxy(&cfg, &[], None).await;

    // Plain HTTP to the TLS port: no HTTP answer, the connection is closed.
    let mut plain = tokio::net::TcpStream::connect(proxy.public_addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut answer)).await.expect("closed");
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));

    // A client that connects and never says hello is dropped after header_read_timeout_ms.
    let mut silent = tokio::net::TcpStream::connect(proxy.public_addr).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, silent.read_to_end(&mut rest)).await.expect("the silent connection is closed");
    assert!(rest.is_empty() || read.is_err(), "nothing is sent to a client that never said hello");
    let counted =
        || async { metric(&scrape(&proxy).await, "strangler_tls_handshake_failures_total", &[("listener", "server")]) == 2.0 };
    assert!(eventually(WAIT, counted).await, "both are counted");
    assert!(monolith.received().is_empty());
    proxy.shutdown().await;
}

#[test]
fn check_config_names_file_line_and_key_of_a_bad_pair() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("strangler test CA");
    let (cert, _) = install(dir.path(), &ca.leaf(1, "edge", 2031));
    let (_, other_key) = ca.leaf(2, "other", 2031);
    let stray = dir.path().join("other.key");
    std::fs::write(&stray, other_key).unwrap();
    let file = dir.path().join("s.toml");
    let toml = format!("[legacy]\nurl = \"http://127.0.0.1:3000\"\n\n{}", tls_table("server.tls", &(cert, stray.clone())));
    std::fs::write(&file, toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strangler")).arg("check-config").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = format!("{}:6:1: key `server.tls.key`: expected the private key of the certificate in `cert`", file.display());
    assert!(stderr.contains(&want), "{stderr}");
    assert!(stderr.contains(&stray.display().to_string()), "{stderr}");
}
