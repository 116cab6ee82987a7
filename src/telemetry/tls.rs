//! Metrics of TLS at the listeners: failed handshakes, certificate reloads and certificate expiry.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Values of the `listener` and `cert` labels: the public listener and the admin listener.
pub const LISTENERS: [&str; 2] = ["server", "admin"];

/// Registered at start-up; a listener's series are created when it starts serving TLS.
#[derive(Clone)]
pub struct TlsMetrics {
    /// `strangler_tls_handshake_failures_total{listener}`: handshakes that failed or timed out.
    pub handshake_failures: IntCounterVec,
    /// `strangler_tls_reloads_total{listener,result}`: `ok` or `error` (the old pair kept serving).
    pub reloads: IntCounterVec,
    /// `strangler_tls_cert_expiry_seconds{cert}`: the served leaf's notAfter, Unix seconds.
    pub cert_expiry: IntGaugeVec,
}

impl TlsMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let handshake_failures = IntCounterVec::new(
            Opts::new("strangler_tls_handshake_failures_total", "TLS handshakes that failed or timed out, by listener."),
            &["listener"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new("strangler_tls_reloads_total", "Certificate re-reads, by listener and result (ok, error)."),
            &["listener", "result"],
        )?;
        let cert_expiry = IntGaugeVec::new(
            Opts::new("strangler_tls_cert_expiry_seconds", "notAfter of the certificate served, in Unix seconds."),
            &["cert"],
        )?;
        registry.register(Box::new(handshake_failures.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(cert_expiry.clone()))?;
        Ok(Self { handshake_failures, reloads, cert_expiry })
    }

    /// Creates `listener`'s series at zero and sets its expiry gauge.
    pub fn init_listener(&self, listener: &str, not_after: i64) {
        self.handshake_failures.with_label_values(&[listener]);
        for result in ["ok", "error"] {
            self.reloads.with_label_values(&[listener, result]);
        }
        self.cert_expiry.with_label_values(&[listener]).set(not_after);
    }

    /// Sets the expiry gauge of a client certificate strangler presents (`legacy_client`: mTLS to
    /// the monolith, `[legacy.tls] cert`; `kafka_client`: `[kafka.tls] cert`), read at start-up.
    pub fn client_cert(&self, cert: &str, path: Option<&str>) {
        if let Some(not_after) = path.and_then(|p| crate::config::tls::leaf_not_after(std::path::Path::new(p))) {
            self.cert_expiry.with_label_values(&[cert]).set(not_after);
        }
    }

    /// Counts a re-read; a good one also moves the expiry gauge.
    pub fn reloaded(&self, listener: &str, not_after: Result<i64, ()>) {
        match not_after {
            Ok(t) => {
                self.reloads.with_label_values(&[listener, "ok"]).inc();
                self.cert_expiry.with_label_values(&[listener]).set(t);
            }
            Err(()) => self.reloads.with_label_values(&[listener, "error"]).inc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_starts_at_zero_and_a_reload_moves_the_gauge() {
        let registry = Registry::new();
        let m = TlsMetrics::new(&registry).unwrap();
        m.init_listener("server", 100);
        assert_eq!(m.handshake_failures.with_label_values(&["server"]).get(), 0);
        assert_eq!(registry.gather().iter().map(|f| f.get_metric().len()).sum::<usize>(), 4, "1 + 2 + 1 series");
        m.reloaded("server", Err(()));
        assert_eq!(m.cert_expiry.with_label_values(&["server"]).get(), 100, "an error keeps the old figure");
        m.reloaded("server", Ok(200));
        assert_eq!(m.cert_expiry.with_label_values(&["server"]).get(), 200);
        assert_eq!(m.reloads.with_label_values(&["server", "ok"]).get(), 1);
        assert_eq!(m.reloads.with_label_values(&["server", "error"]).get(), 1);
    }
}
