//! `Secret`: signing-key material that never shows up in logs, `Debug` output or error messages.

use std::fmt;
use std::sync::Arc;

/// A webhook signing secret.
///
/// `Debug` and `Display` both print `[redacted]`, so a `Secret` can sit inside
/// structs that derive `Debug` (configs, `Verifier`) without leaking into logs.
/// There is deliberately no `PartialEq`: comparing secrets or MACs with `==`
/// is not constant time.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// Wraps a configured secret; its UTF-8 bytes are the key unless the scheme
    /// says otherwise (Standard Webhooks base64-decodes after `whsec_`).
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into().into_bytes()))
    }

    /// Key material that is not text, e.g. a decoded `whsec_` secret.
    pub(super) fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Arc::from(bytes))
    }

    /// The raw bytes of the secret, to be fed to a MAC and nowhere else.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:#?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some([redacted])");
    }

    #[test]
    fn expose_returns_the_utf8_bytes() {
        assert_eq!(Secret::new("whsec_abc").expose(), b"whsec_abc");
        assert_eq!(Secret::new(String::from("é")).expose(), "é".as_bytes());
        assert_eq!(Secret::from_bytes(vec![0, 255]).expose(), &[0, 255]);
    }
}
