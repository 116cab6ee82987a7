//! `Secret`: signing-key material that never shows up in logs, `Debug` output or error messages.

use std::fmt;
use std::sync::{Arc, OnceLock};

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

use super::Scheme;

/// The Standard Webhooks spec's minimum key size, once `whsec_` is base64-decoded.
pub const STANDARD_WEBHOOKS_MIN_KEY_BYTES: usize = 24;

/// HMAC secrets shorter than this are accepted with a warning.
pub const HMAC_WEAK_BELOW_BYTES: usize = 16;

/// What configuration makes of a secret before it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strength {
    /// Usable (or, for a `whsec_` value that does not decode, left to the scheme to refuse).
    Ok,
    /// Empty or only whitespace: refused.
    Blank,
    /// Below the scheme's minimum: refused.
    TooShort { bytes: usize, min: usize },
    /// Accepted, but short enough to guess or brute-force: warned about.
    Weak { bytes: usize, recommended: usize },
}

/// Judges `secret` for `scheme`: lengths are of the key the MAC uses (the UTF-8 bytes, or a
/// Standard Webhooks key after decoding).
pub fn strength(scheme: &Scheme, secret: &Secret) -> Strength {
    if std::str::from_utf8(secret.expose()).is_ok_and(|s| s.trim().is_empty()) {
        return Strength::Blank;
    }
    match scheme {
        Scheme::StandardWebhooks => match super::standard::decode_secret(secret) {
            Ok(key) if key.expose().len() < STANDARD_WEBHOOKS_MIN_KEY_BYTES => {
                Strength::TooShort { bytes: key.expose().len(), min: STANDARD_WEBHOOKS_MIN_KEY_BYTES }
            }
            _ => Strength::Ok,
        },
        _ if secret.expose().len() < HMAC_WEAK_BELOW_BYTES => {
            Strength::Weak { bytes: secret.expose().len(), recommended: HMAC_WEAK_BELOW_BYTES }
        }
        _ => Strength::Ok,
    }
}

/// A webhook signing secret.
///
/// `Debug` and `Display` both print `[redacted]`, so a `Secret` can sit inside
/// structs that derive `Debug` (configs, `Verifier`) without leaking into logs.
/// There is deliberately no `PartialEq`: comparing secrets or MACs with `==`
/// is not constant time.
#[derive(Clone)]
pub struct Secret(Arc<Keyed>);

/// The key, and the HMAC states keyed with it, made on first use: every request then starts
/// from a copy instead of hashing the padded key twice.
struct Keyed {
    bytes: Box<[u8]>,
    sha256: OnceLock<Hmac<Sha256>>,
    sha512: OnceLock<Hmac<Sha512>>,
}

impl Secret {
    /// Wraps a configured secret; its UTF-8 bytes are the key unless the scheme
    /// says otherwise (Standard Webhooks base64-decodes after `whsec_`).
    pub fn new(value: impl Into<String>) -> Self {
        Self::from_bytes(value.into().into_bytes())
    }

    /// Key material that is not text, e.g. a decoded `whsec_` secret.
    pub(super) fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Arc::new(Keyed { bytes: bytes.into_boxed_slice(), sha256: OnceLock::new(), sha512: OnceLock::new() }))
    }

    /// The raw bytes of the secret, to be fed to a MAC and nowhere else.
    pub fn expose(&self) -> &[u8] {
        &self.0.bytes
    }

    /// A fresh HMAC-SHA256 keyed with this secret.
    pub(super) fn hmac_sha256(&self) -> Hmac<Sha256> {
        self.0.sha256.get_or_init(|| Hmac::new_from_slice(&self.0.bytes).expect("HMAC takes keys of any length")).clone()
    }

    /// A fresh HMAC-SHA512 keyed with this secret.
    pub(super) fn hmac_sha512(&self) -> Hmac<Sha512> {
        self.0.sha512.get_or_init(|| Hmac::new_from_slice(&self.0.bytes).expect("HMAC takes keys of any length")).clone()
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
    fn blank_short_and_weak_secrets_are_told_apart() {
        let judge = |scheme: &Scheme, s: &str| strength(scheme, &Secret::new(s));
        for blank in ["", " ", "\t\n", "\u{a0}"] {
            assert_eq!(judge(&Scheme::Github, blank), Strength::Blank, "{blank:?}");
            assert_eq!(judge(&Scheme::StandardWebhooks, blank), Strength::Blank);
        }
        assert_eq!(judge(&Scheme::Github, "0123456789abcde"), Strength::Weak { bytes: 15, recommended: 16 });
        assert_eq!(judge(&Scheme::Stripe, "0123456789abcdef"), Strength::Ok);
        // 24 bytes decoded (the reference vector's key) is the minimum; 22 is not enough.
        assert_eq!(judge(&Scheme::StandardWebhooks, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Strength::Ok);
        assert_eq!(
            judge(&Scheme::StandardWebhooks, "whsec_c3RyYW5nbGVyLW90aGVyLXNlY3JldA=="),
            Strength::TooShort { bytes: 22, min: 24 }
        );
        // Not decodable at all: the scheme itself refuses it, with its own message.
        assert_eq!(judge(&Scheme::StandardWebhooks, "not-whsec"), Strength::Ok);
    }

    #[test]
    fn expose_returns_the_utf8_bytes() {
        assert_eq!(Secret::new("whsec_abc").expose(), b"whsec_abc");
        assert_eq!(Secret::new(String::from("é")).expose(), "é".as_bytes());
        assert_eq!(Secret::from_bytes(vec![0, 255]).expose(), &[0, 255]);
    }
}
