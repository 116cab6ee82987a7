//! HTTPS to the monolith: `legacy.url = "https://localhost:PORT"` with `[legacy.tls]`, against the
//! sample monolith serving TLS with certificates minted here (rcgen) into a tempdir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use strangler::demo::monolith::{Monolith, MonolithHandle};

use crate::harness::{metric, post, scrape, send, start_proxy, url};
use crate::sign;
use crate::support::broker::Tansu;

const WAIT: Duration = Duration::from_secs(20);

/// A test PKI: a CA, the monolith's certificate for `localhost`, strangler's client certificate,
/// and an unrelated CA; the PEM files strangler reads live in `dir`.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

fn pki() -> Pki {
    let (ca_cert, ca_key) = ca("strangler test CA");
    let (other_ca, _) = ca("another CA");
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let server = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(vec!["strangler".to_string()]).unwrap();
    client.not_after = rcgen::date_time_ymd(2033, 3, 1);
    let client = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, pem) in [
        ("ca.pem", ca_cert.pem()),
        ("other-ca.pem", other_ca.pem()),
        ("client.pem", client.pem()),
        ("client-key.pem", client_key.serialize_pem()),
    ] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    Pki { dir, ca: ca_cert.der().clone(), server_chain: vec![server.der().clone()], server_key: server_key.serialize_der() }
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The monolith's TLS: its certificate, and with `require_client` a client certificate
    /// signed by the test CA is required.
    fn server_config(&self, require_client: bool) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
        let builder = if require_client {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        Arc::new(builder.with_single_cert(self.server_chain.clone(), key).unwrap())
    }

    /// `[legacy.tls]` trusting `ca_file` (in the tempdir), with the client pair when `mtls`.
    fn legacy_tls(&self, ca_file: &str, mtls: bool) -> String {
        let mut s = format!("\n[legacy.tls]\nca = {:?}\n", self.path(ca_file).display().to_string());
        if mtls {
            s.push_str(&format!("cert = {:?}\n", self.path("client.pem").display().to_string()));
            s.push_str(&format!("key = {:?}\n", self.path("client-key.pem").display().to_string()));
        }
        s
    }
}

async fn tls_monolith(pki: &Pki, require_client: bool) -> MonolithHandle {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Monolith::start_tls(addr, pki.server_config(require_client)).await.unwrap()
}

/// The monolith by name, so the certificate for `localhost` matches (SNI and verification).
fn https_url(monolith: &MonolithHandle) -> String {
    format!("https://localhost:{}", monolith.addr().port())
}

fn config(legacy: &str, brokers: &str, tls: &str) -> String {
    format!("{}{tls}", crate::harness::github_config(legacy, brokers, ""))
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_webhooks_and_passthrough_reach_an_https_monolith_byte_for_byte() {
    let pki = pki();
    let tansu = Tansu::start();
    let monolith = tls_monolith(&pki, false).await;
    assert!(monolith.url().starts_with("https://"));
    let proxy =
        start_proxy(&config(&https_url(&monolith), &tansu.brokers, &pki.legacy_tls("ca.pem", false)), &[("GH", "s")], None).await;

    let hook = br#"{"repository":{"full_name":"a/b"},"n":1}"#;
    let r1 = post(&url(&proxy, "/webhooks/github"), &sign::github("s", hook), &hook[..]).await;
    let binary = b"\x00\x01binary \xff payload".to_vec();
    let r2 = send(Method::PUT, &url(&proxy, "/api/orders?id=7"), &[], binary.clone()).await;
    let r3 = post(&url(&proxy, "/legacy/status/418"), &[], "teapot").await;
    assert_eq!((r1.status, r2.status, r3.status), (StatusCode::OK, StatusCode::OK, StatusCode::IM_A_TEAPOT));
    assert_eq!(r1.json()["ok"], true, "the sender gets the monolith's answer");
    assert_eq!(r3.json()["ok"], true);

    let got = monolith.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].body.as_ref(), &hook[..]);
    assert_eq!(got[0].uri.path(), "/webhooks/github");
    assert_eq!((got[1].method.clone(), got[1].body.to_vec()), (Method::PUT, binary));
    assert_eq!(got[1].uri.path_and_query().unwrap().as_str(), "/api/orders?id=7");
    assert_eq!(got[2].body.as_ref(), b"teapot");
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_legacy_errors_total", &[]), 0.0);
    proxy.shutdown().await;
    monolith.shutdown();
}

/// A signed webhook and a passthrough request both get `502 upstream_unavailable`.
async fn assert_both_unavailable(proxy: &strangler::app::Running, hook: &[u8]) {
    for path in ["/webhooks/github", "/elsewhere"] {
        let refused = post(&url(proxy, path), &sign::github("s", hook), hook.to_vec()).await;
        assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{path}: {:?}", refused.body);
        assert_eq!(refused.json()["error"]["code"], "upstream_unavailable", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_works_with_the_client_certificate_and_is_unavailable_without_it() {
    let pki = pki();
    let tansu = Tansu::start();
    let monolith = tls_monolith(&pki, true).await;
    let with =
        start_proxy(&config(&https_url(&monolith), &tansu.brokers, &pki.legacy_tls("ca.pem", true)), &[("GH", "s")], None).await;
    let without =
        start_proxy(&config(&https_url(&monolith), &tansu.brokers, &pki.legacy_tls("ca.pem", false)), &[("GH", "s")], None).await;

    let hook = br#"{"repository":{"full_name":"a/b"}}"#;
    let ok = post(&url(&with, "/webhooks/github"), &sign::github("s", hook), &hook[..]).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let passthrough = post(&url(&with, "/elsewhere"), &[], "p").await;
    assert_eq!(passthrough.status, StatusCode::OK);
    assert_eq!(monolith.wait_for(2, WAIT).await.len(), 2);

    assert_both_unavailable(&without, hook).await;
    assert_eq!(monolith.received().len(), 2, "nothing reached the monolith without a client certificate");
    let text = scrape(&without).await;
    assert_eq!(metric(&text, "strangler_legacy_errors_total", &[("reason", "unavailable")]), 2.0);
    let with_text = scrape(&with).await;
    assert_eq!(metric(&with_text, "strangler_legacy_errors_total", &[]), 0.0);
    // The client certificate's expiry is exported for the expiry alert; none without one.
    let not_after = rcgen::date_time_ymd(2033, 3, 1).unix_timestamp() as f64;
    assert_eq!(metric(&with_text, "strangler_tls_cert_expiry_seconds", &[("cert", "legacy_client")]), not_after);
    assert!(!text.contains("strangler_tls_cert_expiry_seconds{"), "{text}");
    // The logged error names the monolith's refusal (TLS 1.3: an alert at the first read).
    let err = forward_directly(&https_url(&monolith), &pki.legacy_tls("ca.pem", false)).await;
    assert!(err.contains("TLS: received fatal alert: CertificateRequired"), "{err}");
    with.shutdown().await;
    without.shutdown().await;
    monolith.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_monolith_certificate_from_another_ca_is_unavailable_not_a_panic() {
    let pki = pki();
    let tansu = Tansu::start();
    let monolith = tls_monolith(&pki, false).await;
    let proxy =
        start_proxy(&config(&https_url(&monolith), &tansu.brokers, &pki.legacy_tls("other-ca.pem", false)), &[("GH", "s")], None)
            .await;

    let hook = br#"{"repository":{"full_name":"a/b"}}"#;
    assert_both_unavailable(&proxy, hook).await;
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_legacy_errors_total", &[("reason", "unavailable")]), 2.0);
    let health = send(Method::GET, &format!("http://{}/healthz", proxy.admin_addr), &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(monolith.received().is_empty());
    proxy.shutdown().await;

    // The error (logged as the reason) names the TLS failure; without `[legacy.tls]` the Mozilla
    // roots are trusted, which do not include the test CA either.
    for tls in [pki.legacy_tls("other-ca.pem", false), String::new()] {
        let err = forward_directly(&https_url(&monolith), &tls).await;
        assert!(err.contains("TLS: invalid peer certificate: UnknownIssuer"), "{err}");
    }
    monolith.shutdown();
}

/// Sends one request through a `LegacyClient` built from `tls`; returns its error's text.
async fn forward_directly(upstream: &str, tls: &str) -> String {
    let src = format!("[legacy]\nurl = \"{upstream}\"\n{tls}");
    let cfg = strangler::config::load_str(&src, "t.toml", &|_| None).unwrap();
    let client = strangler::legacy::LegacyClient::new(&cfg.legacy);
    let body: strangler::ingress::Body = Full::new(Bytes::from_static(b"x")).map_err(|e| match e {}).boxed();
    let req = Request::post("/hook").body(body).unwrap();
    let err = client.forward(&cfg.legacy.url, req, "127.0.0.1:1".parse().unwrap()).await.unwrap_err();
    assert_eq!(err.reason(), "unavailable");
    err.to_string()
}
