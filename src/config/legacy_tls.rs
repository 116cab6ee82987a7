//! `[legacy.tls]`: which CA the monolith's certificate must chain to, and the client certificate
//! strangler shows it (mTLS). Read here, at load and reload, so a bad file is a config error.

use std::fmt;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::ConfigError;
use crate::legacy::tls::{self, BuildError, Material};

/// `[legacy.tls]` as written. Paths are read relative to strangler's working directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLegacyTls {
    /// PEM file of the CA certificates to trust, and only those. Absent: the Mozilla set.
    pub ca: Option<String>,
    /// PEM file of the client certificate chain (leaf first), for mTLS.
    pub cert: Option<String>,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<String>,
}

/// The validated `[legacy.tls]`: a ready rustls client configuration.
#[derive(Clone)]
pub struct LegacyTls {
    pub client: Arc<ClientConfig>,
    /// `legacy.tls.ca`, `cert` and `key` as set (the files' contents are in `client`).
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl fmt::Debug for LegacyTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LegacyTls { client: _, ca, cert, key } = self;
        f.debug_struct("LegacyTls").field("ca", ca).field("cert", cert).field("key", key).finish_non_exhaustive()
    }
}

impl Default for LegacyTls {
    fn default() -> Self {
        Self { client: Arc::new(tls::default_config()), ca: None, cert: None, key: None }
    }
}

/// Reads and checks the files; every mistake is pushed to `errs`, keyed `legacy.tls.*`.
pub(super) fn validate(raw: Option<&RawLegacyTls>, errs: &mut Vec<ConfigError>) -> LegacyTls {
    let Some(raw) = raw else { return LegacyTls::default() };
    let before = errs.len();
    let roots = raw.ca.as_deref().map(|path| certs("legacy.tls.ca", path, "a PEM file of CA certificates", errs));
    let identity = match (&raw.cert, &raw.key) {
        (Some(cert), Some(key)) => {
            let chain = certs("legacy.tls.cert", cert, "a PEM file of the client certificate chain", errs);
            private_key("legacy.tls.key", key, errs).map(|k| (chain, k))
        }
        (None, None) => None,
        (Some(_), None) => {
            errs.push(ConfigError::new("legacy.tls.cert", "`legacy.tls.key` beside it (both or neither)", "no key"));
            None
        }
        (None, Some(_)) => {
            errs.push(ConfigError::new("legacy.tls.key", "`legacy.tls.cert` beside it (both or neither)", "no certificate"));
            None
        }
    };
    if errs.len() > before {
        return LegacyTls::default();
    }
    match tls::client_config(Material { roots, identity }) {
        Ok(client) => LegacyTls { client: Arc::new(client), ca: raw.ca.clone(), cert: raw.cert.clone(), key: raw.key.clone() },
        Err(BuildError::Root(e)) => {
            errs.push(ConfigError::new("legacy.tls.ca", "CA certificates rustls accepts", e.to_string()));
            LegacyTls::default()
        }
        Err(BuildError::Identity(e)) => {
            let expected = "the private key of `legacy.tls.cert`'s first certificate";
            errs.push(ConfigError::new("legacy.tls.key", expected, e.to_string()));
            LegacyTls::default()
        }
    }
}

fn read(key: &str, path: &str, expected: &str, errs: &mut Vec<ConfigError>) -> Option<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| errs.push(ConfigError::new(key, format!("{expected}, readable"), format!("{path}: {e}"))))
        .ok()
}

/// Every `CERTIFICATE` block of the file; at least one.
fn certs(key: &str, path: &str, expected: &str, errs: &mut Vec<ConfigError>) -> Vec<CertificateDer<'static>> {
    let Some(pem) = read(key, path, expected, errs) else { return Vec::new() };
    match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if !certs.is_empty() => certs,
        Ok(_) => {
            errs.push(ConfigError::new(key, expected, format!("{path}: no CERTIFICATE block")));
            Vec::new()
        }
        Err(e) => {
            errs.push(ConfigError::new(key, expected, format!("{path}: {e}")));
            Vec::new()
        }
    }
}

fn private_key(key: &str, path: &str, errs: &mut Vec<ConfigError>) -> Option<PrivateKeyDer<'static>> {
    let expected = "a PEM file of one private key (PKCS#8, PKCS#1 or SEC1)";
    let pem = read(key, path, expected, errs)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| {
            let why = match e {
                rustls_pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY block".to_string(),
                e => e.to_string(),
            };
            errs.push(ConfigError::new(key, expected, format!("{path}: {why}")));
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::load_str;

    /// A CA, a client certificate it signed (with its key), and a key of nobody's, as PEM files.
    fn files(dir: &Path) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["strangler".to_string()]).unwrap();
        let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("cert.pem", leaf.pem()),
            ("key.pem", leaf_key.serialize_pem()),
            ("other.pem", other.serialize_pem()),
            ("junk.pem", "not pem at all\n".to_string()),
        ] {
            std::fs::write(dir.join(name), pem).unwrap();
        }
    }

    /// Loads a config whose `[legacy.tls]` table is `tls` (paths relative to `dir`).
    fn load(dir: &Path, tls: &str) -> Result<super::LegacyTls, String> {
        let d = dir.display();
        let src = format!("[legacy]\nurl = \"https://127.0.0.1:3000\"\n\n[legacy.tls]\n{}", tls.replace("DIR", &d.to_string()));
        load_str(&src, "f.toml", &|_| None).map(|c| c.legacy.tls).map_err(|e| e.to_string())
    }

    #[test]
    fn a_ca_and_a_matching_client_pair_load() {
        let dir = tempfile::tempdir().unwrap();
        files(dir.path());
        let tls = load(dir.path(), "ca = \"DIR/ca.pem\"\ncert = \"DIR/cert.pem\"\nkey = \"DIR/key.pem\"\n").unwrap();
        assert!(tls.cert.is_some() && tls.key.is_some());
        assert!(tls.client.client_auth_cert_resolver.has_certs());
        let tls = load(dir.path(), "ca = \"DIR/ca.pem\"\n").unwrap();
        assert!(tls.cert.is_none());
        assert!(tls.ca.is_some_and(|ca| ca.ends_with("ca.pem")));
    }

    #[test]
    fn each_mistake_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        files(dir.path());
        let cases = [
            ("ca = \"DIR/missing.pem\"\n", "f.toml:5:1: key `legacy.tls.ca`", "missing.pem: No such file"),
            ("ca = \"DIR/other.pem\"\n", "f.toml:5:1: key `legacy.tls.ca`", "no CERTIFICATE block"),
            ("ca = \"DIR/junk.pem\"\n", "f.toml:5:1: key `legacy.tls.ca`", "no CERTIFICATE block"),
            ("cert = \"DIR/cert.pem\"\n", "f.toml:5:1: key `legacy.tls.cert`", "both or neither"),
            ("key = \"DIR/key.pem\"\n", "f.toml:5:1: key `legacy.tls.key`", "both or neither"),
            ("cert = \"DIR/cert.pem\"\nkey = \"DIR/junk.pem\"\n", "f.toml:6:1: key `legacy.tls.key`", "no PRIVATE KEY block"),
            ("cert = \"DIR/ca.pem\"\nkey = \"DIR/key.pem\"\n", "f.toml:6:1: key `legacy.tls.key`", "private key of"),
            ("cert = \"DIR/cert.pem\"\nkey = \"DIR/other.pem\"\n", "f.toml:6:1: key `legacy.tls.key`", "private key of"),
            ("cert = \"DIR/key.pem\"\nkey = \"DIR/key.pem\"\n", "f.toml:5:1: key `legacy.tls.cert`", "no CERTIFICATE block"),
            ("ca_only = true\n", "f.toml:5:1: key `legacy.tls.ca_only`", "unknown field"),
        ];
        for (tls, at, found) in cases {
            let err = load(dir.path(), tls).expect_err(tls);
            assert!(err.starts_with(at), "{tls}: {err}");
            assert!(err.contains(found), "{tls}: {err}");
        }
    }

    #[test]
    fn https_upstreams_are_accepted_and_other_schemes_are_not() {
        let ok = "[legacy]\nurl = \"https://monolith.internal\"\n[[route]]\nname = \"r\"\nmatch = { path = \"/r\" }\nmode = \"passthrough\"\ntopic = \"t\"\nupstream = \"https://other:8443\"\nsignature = { scheme = \"github\", secrets_env = [\"S\"] }\n";
        let cfg = load_str(ok, "f.toml", &|_| Some("a-secret-long-enough-to-pass".into())).unwrap();
        assert_eq!(cfg.legacy.url.scheme_str(), Some("https"));
        assert_eq!(cfg.routes[0].upstream.to_string(), "https://other:8443/");
        assert!(cfg.legacy.tls.ca.is_none() && !cfg.legacy.tls.client.client_auth_cert_resolver.has_certs());
        let bad = "[legacy]\nurl = \"ftp://monolith\"\n";
        let err = load_str(bad, "f.toml", &|_| None).unwrap_err().to_string();
        assert!(err.contains("key `legacy.url`: expected an http:// URL or https:// URL"), "{err}");
    }
}
