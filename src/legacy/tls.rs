//! TLS to the monolith: the rustls client configuration behind `https://` upstreams, and the TLS
//! reason of a failed request for the log.

use std::sync::Arc;

use rustls::client::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What `[legacy.tls]` configures, parsed: the trusted roots and an optional client identity.
pub struct Material {
    /// `None`: the Mozilla set (webpki-roots). `Some`: only these.
    pub roots: Option<Vec<CertificateDer<'static>>>,
    /// Client certificate chain and its key, for mTLS.
    pub identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// Why the client configuration could not be built, naming the part at fault.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Root(rustls::Error),
    #[error("{0}")]
    Identity(rustls::Error),
}

/// The client configuration: ring provider, TLS 1.2 and 1.3 only, SNI from the URL host (set by
/// the connector), HTTP/1.1 (no ALPN).
pub fn client_config(material: Material) -> Result<ClientConfig, BuildError> {
    let mut roots = RootCertStore::empty();
    match material.roots {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(certs) => {
            for cert in certs {
                roots.add(cert).map_err(BuildError::Root)?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(BuildError::Root)?
        .with_root_certificates(roots);
    match material.identity {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(BuildError::Identity),
    }
}

/// The default: Mozilla's roots, no client certificate.
pub fn default_config() -> ClientConfig {
    client_config(Material { roots: None, identity: None }).expect("the built-in roots and protocol versions are valid")
}

/// The TLS error anywhere in `e`'s source chain, e.g. `invalid peer certificate: UnknownIssuer`.
///
/// tokio-rustls wraps a [`rustls::Error`] in an [`std::io::Error`] (and hyper-rustls that in
/// another), whose `source()` skips the wrapped error, so an I/O error's inner error is followed.
pub fn reason(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        next = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_trusts_the_mozilla_set() {
        let cfg = default_config();
        assert!(cfg.alpn_protocols.is_empty());
        assert!(!cfg.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn reason_finds_a_rustls_error_inside_an_io_error() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer: Box<dyn std::error::Error + Send + Sync> = Box::new(std::io::Error::other(io));
        assert_eq!(reason(outer.as_ref()).as_deref(), Some("invalid peer certificate: UnknownIssuer"));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(reason(&plain), None);
    }
}
