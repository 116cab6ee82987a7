//! `[server.tls]` and `[admin.tls]`: a PEM certificate chain and its private key, checked as a pair.
//!
//! The same [`load_pair`] runs at validation (so `check-config`, start-up and a config reload
//! refuse a bad pair with file, line and key) and when the listener re-reads the files (SIGHUP or
//! a change on disk, see `ingress::tls`). Relative paths are taken from the working directory,
//! like `admin.token.file` and `spool.dir`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::ConfigError;

/// `[server.tls]` / `[admin.tls]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM file: the server certificate first, then any intermediates.
    pub cert: String,
    /// PEM file: the certificate's private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: String,
}

/// A listener's TLS settings, the pair loaded and checked.
#[derive(Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The pair as validated; the listener starts serving it.
    pub pair: Pair,
}

/// A certificate chain with its signing key, and the leaf's notAfter.
#[derive(Clone)]
pub struct Pair {
    pub certified: Arc<CertifiedKey>,
    /// The leaf certificate's notAfter, Unix seconds.
    pub not_after: i64,
}

/// The paths only: a configuration reload compares settings by their `Debug` text, and a pair
/// rotated on disk since start-up is not a setting that changed.
impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair").field("certs", &self.certified.cert.len()).field("not_after", &self.not_after).finish()
    }
}

/// Which file of the pair a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Cert,
    Key,
}

impl Part {
    pub fn key(self) -> &'static str {
        match self {
            Part::Cert => "cert",
            Part::Key => "key",
        }
    }
}

/// Why a pair cannot be served.
#[derive(Debug, Clone, PartialEq)]
pub struct PairError {
    pub part: Part,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}, found {}", self.part.key(), self.expected, self.found)
    }
}

const CERT_EXPECTED: &str = "a PEM file holding the server certificate (then any intermediates)";
const KEY_EXPECTED: &str = "a PEM file holding a PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key";

/// Validates `[<at>]` (`server.tls` or `admin.tls`); `None` when absent or wrong.
pub(super) fn validate(at: &str, raw: Option<&RawTls>, errs: &mut Vec<ConfigError>) -> Option<Tls> {
    let raw = raw?;
    let mut bad = false;
    for (part, path) in [(Part::Cert, &raw.cert), (Part::Key, &raw.key)] {
        if path.trim().is_empty() {
            errs.push(ConfigError::new(format!("{at}.{}", part.key()), "a file path", "an empty string"));
            bad = true;
        }
    }
    if bad {
        return None;
    }
    let (cert, key) = (PathBuf::from(&raw.cert), PathBuf::from(&raw.key));
    match load_pair(&cert, &key) {
        Ok(pair) => Some(Tls { cert, key, pair }),
        Err(e) => {
            errs.push(ConfigError::new(format!("{at}.{}", e.part.key()), e.expected, e.found));
            None
        }
    }
}

/// The notAfter (Unix seconds) of the first certificate in the PEM file at `path`; `None` when it
/// cannot be read or parsed (validation has reported that already).
pub fn leaf_not_after(path: &Path) -> Option<i64> {
    let pem = std::fs::read(path).ok()?;
    let leaf = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// Reads both files and checks that the key is the certificate's and that ring can sign with it.
pub fn load_pair(cert: &Path, key: &Path) -> Result<Pair, PairError> {
    let err = |part, expected: &str, found: String| PairError { part, expected: expected.to_string(), found };
    let cert_pem = std::fs::read(cert).map_err(|e| err(Part::Cert, CERT_EXPECTED, format!("{}: {e}", cert.display())))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(Part::Cert, CERT_EXPECTED, format!("{}: {e}", cert.display())))?;
    let Some(leaf) = chain.first() else {
        return Err(err(Part::Cert, CERT_EXPECTED, format!("{}: no CERTIFICATE block", cert.display())));
    };
    let not_after = match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, parsed)) => parsed.validity().not_after.timestamp(),
        Err(e) => return Err(err(Part::Cert, CERT_EXPECTED, format!("{}: not an X.509 certificate ({e})", cert.display()))),
    };
    let key_pem = std::fs::read(key).map_err(|e| err(Part::Key, KEY_EXPECTED, format!("{}: {e}", key.display())))?;
    let der = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(der) => der,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(err(Part::Key, KEY_EXPECTED, format!("{}: no private key block", key.display())))
        }
        Err(e) => return Err(err(Part::Key, KEY_EXPECTED, format!("{}: {e}", key.display()))),
    };
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(der).map_err(|e| {
        err(Part::Key, "a private key ring can sign with (RSA, ECDSA P-256/P-384, Ed25519)", format!("{}: {e}", key.display()))
    })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            let found = format!("{}: the key of another certificate than {}", key.display(), cert.display());
            return Err(err(Part::Key, "the private key of the certificate in `cert`", found));
        }
        Err(e) => return Err(err(Part::Cert, CERT_EXPECTED, format!("{}: {e}", cert.display()))),
    }
    Ok(Pair { certified: Arc::new(certified), not_after })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rcgen::{CertificateParams, KeyPair};

    use super::super::load_str;
    use super::{load_pair, Part};

    /// A self-signed certificate for `localhost` and its key, as PEM.
    fn minted() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn load_error(src: &str) -> String {
        match load_str(src, "f.toml", &|_| None) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn each_bad_pair_is_a_located_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).display().to_string();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let (cert, key) = minted();
        let (_, other_key) = minted();
        write("cert.pem", &cert);
        write("key.pem", &key);
        write("other.key", &other_key);
        write("empty.pem", "");
        write("garbage.pem", "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
        write("bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        let cases = [
            (at("missing.pem"), at("key.pem"), "server.tls.cert", "No such file"),
            (dir.path().display().to_string(), at("key.pem"), "server.tls.cert", "a directory"),
            (at("key.pem"), at("key.pem"), "server.tls.cert", "no CERTIFICATE block"),
            (at("empty.pem"), at("key.pem"), "server.tls.cert", "no CERTIFICATE block"),
            (at("garbage.pem"), at("key.pem"), "server.tls.cert", "a PEM file holding the server certificate"),
            (at("cert.pem"), at("missing.key"), "server.tls.key", "No such file"),
            (at("cert.pem"), at("cert.pem"), "server.tls.key", "no private key block"),
            (at("cert.pem"), at("bad.key"), "server.tls.key", "a private key ring can sign with"),
            (at("cert.pem"), at("other.key"), "server.tls.key", "the key of another certificate"),
            (String::new(), at("key.pem"), "server.tls.cert", "a file path, found an empty string"),
        ];
        for (cert, key, want_key, want) in cases {
            let src = format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ncert = {cert:?}\nkey = {key:?}\n[legacy]\nurl = \"http://127.0.0.1:3000\"\n"
            );
            let got = load_error(&src);
            let line = if want_key.ends_with("cert") { 4 } else { 5 };
            assert!(got.starts_with(&format!("f.toml:{line}:1: key `{want_key}`: ")), "{cert} {key}: {got}");
            assert!(got.contains(want), "{cert} {key}: want {want:?} in {got}");
        }
        let admin =
            format!("[admin.tls]\ncert = {:?}\nkey = {:?}\n[legacy]\nurl = \"http://x:1\"\n", at("cert.pem"), at("other.key"));
        assert!(load_error(&admin).starts_with("f.toml:3:1: key `admin.tls.key`"), "{}", load_error(&admin));
        let unknown = format!(
            "[server.tls]\ncert = {:?}\nkey = {:?}\nca = \"x\"\n[legacy]\nurl = \"http://x:1\"\n",
            at("cert.pem"),
            at("key.pem")
        );
        assert!(load_error(&unknown).contains("unknown field `ca`"), "{}", load_error(&unknown));
    }

    #[test]
    fn a_good_pair_loads_with_the_leafs_not_after() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 2, 3);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("c.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("k.pem"), key.serialize_pem()).unwrap();
        let pair = load_pair(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
        assert_eq!(pair.not_after, 1_927_843_200, "2031-02-03T00:00:00Z");
        assert_eq!(pair.certified.cert.len(), 1);
        let src = format!(
            "[server.tls]\ncert = {:?}\nkey = {:?}\n[legacy]\nurl = \"http://x:1\"\n",
            dir.path().join("c.pem"),
            dir.path().join("k.pem")
        );
        let cfg = load_str(&src, "f.toml", &|_| None).unwrap();
        assert_eq!(cfg.server.tls.as_ref().map(|t| t.pair.not_after), Some(1_927_843_200));
        assert!(cfg.admin.tls.is_none(), "absent [admin.tls]: plain HTTP");
        let missing = load_pair(Path::new("/nonexistent/c.pem"), Path::new("/nonexistent/k.pem")).unwrap_err();
        assert_eq!(missing.part, Part::Cert);
    }
}
