//! Webhook signature verification: provider schemes, secret rotation, modes and the `Verified` typestate.

mod common;
mod github;
mod hmac;
mod secret;
mod shopify;
mod slack;
mod standard;
mod stripe;

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use common::Context;
pub use secret::{strength, Secret, Strength, HMAC_WEAK_BELOW_BYTES, STANDARD_WEBHOOKS_MIN_KEY_BYTES};

/// What to do with a webhook whose signature does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Reject it.
    Enforce,
    /// Let it through but record why it failed; for rolling verification out safely.
    Observe,
    /// Do not verify at all.
    Off,
}

impl Mode {
    /// The `mode` label of `strangler_signature_failures_total` (`off` never fails).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
            Mode::Off => "off",
        }
    }

    /// The modes in which a signature can fail.
    pub const FAILING: [Mode; 2] = [Mode::Enforce, Mode::Observe];
}

/// Hash function of a generic HMAC scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA256 (32-byte tags).
    Sha256,
    /// HMAC-SHA512 (64-byte tags).
    Sha512,
}

/// How a generic HMAC scheme transmits its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Hex, either case.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// A provider-agnostic HMAC scheme for senders without a dedicated implementation.
#[derive(Clone, Debug)]
pub struct HmacScheme {
    /// Header carrying the tag.
    pub header: http::HeaderName,
    /// Hash function.
    pub algorithm: Algorithm,
    /// Encoding of the tag.
    pub encoding: Encoding,
    /// Text stripped before decoding, e.g. `sha256=`; when `Some` it must be present.
    pub prefix: Option<String>,
    /// Header carrying a unix timestamp that is signed and checked against the tolerance.
    pub timestamp_header: Option<http::HeaderName>,
    /// With a timestamp header the message is `<timestamp><separator><body>`.
    pub timestamp_separator: String,
}

/// A signature scheme.
#[derive(Clone, Debug)]
pub enum Scheme {
    /// GitHub `X-Hub-Signature-256`.
    Github,
    /// Stripe `Stripe-Signature`.
    Stripe,
    /// Shopify `X-Shopify-Hmac-Sha256`.
    Shopify,
    /// Slack `X-Slack-Signature` (v0).
    Slack,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhooks,
    /// Generic HMAC.
    Hmac(HmacScheme),
}

impl Scheme {
    /// Stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Shopify => "shopify",
            Scheme::Slack => "slack",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Hmac(_) => "hmac",
        }
    }

    /// The provider's delivery id, if the scheme has one: github X-GitHub-Delivery header; stripe the
    /// body's JSON top-level "id"; shopify X-Shopify-Webhook-Id header; slack the body's JSON top-level
    /// "event_id" (Events API) else None; standard-webhooks the webhook-id header; hmac None.
    /// Never panics on non-JSON bodies; empty values -> None.
    pub fn delivery_id(&self, headers: &http::HeaderMap, body: &[u8]) -> Option<String> {
        match self {
            Scheme::Github => github::delivery_id(headers),
            Scheme::Stripe => stripe::delivery_id(body),
            Scheme::Shopify => shopify::delivery_id(headers),
            Scheme::Slack => slack::delivery_id(body),
            Scheme::StandardWebhooks => standard::delivery_id(headers),
            Scheme::Hmac(_) => None,
        }
    }
}

/// Verifies one scheme against a set of secrets (several during rotation).
#[derive(Clone, Debug)]
pub struct Verifier {
    scheme: Scheme,
    /// Ready-to-use MAC keys; `Secret` keeps them out of `Debug`.
    keys: Vec<Secret>,
    tolerance: Duration,
    mode: Mode,
}

impl Verifier {
    /// Err(String) describes a secret unusable for the scheme, e.g. a standard-webhooks secret that
    /// is not `whsec_` + base64. Empty `secrets` is Err unless mode is Off.
    pub fn new(scheme: Scheme, secrets: Vec<Secret>, tolerance: Duration, mode: Mode) -> Result<Self, String> {
        if secrets.is_empty() && mode != Mode::Off {
            return Err(format!("{} verification needs at least one secret unless mode is `off`", scheme.name()));
        }
        // Secrets are checked even in `off` mode so a typo surfaces before someone turns it on.
        let keys = secrets
            .into_iter()
            .enumerate()
            .map(|(i, secret)| key_for(&scheme, secret).map_err(|why| format!("secret #{}: {why}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { scheme, keys, tolerance, mode })
    }

    /// The scheme this verifier checks.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// The configured mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Pure check of the raw request: Ok if the signature matches any secret and any signed
    /// timestamp is within the tolerance of `now` in both directions. Ignores the mode.
    pub fn verify(&self, headers: &http::HeaderMap, body: &[u8], now: SystemTime) -> Result<(), VerifyError> {
        if self.keys.is_empty() {
            return Err(VerifyError::NoSecrets);
        }
        let ctx = Context { keys: &self.keys, tolerance: self.tolerance, now };
        match &self.scheme {
            Scheme::Github => github::verify(&ctx, headers, body),
            Scheme::Stripe => stripe::verify(&ctx, headers, body),
            Scheme::Shopify => shopify::verify(&ctx, headers, body),
            Scheme::Slack => slack::verify(&ctx, headers, body),
            Scheme::StandardWebhooks => standard::verify(&ctx, headers, body),
            Scheme::Hmac(scheme) => hmac::verify(scheme, &ctx, headers, body),
        }
    }

    /// Applies the mode. Enforce: failure -> `Rejected`. Observe: failure -> `Verified` with status
    /// `Invalid`. Off: `Verified` with status `Unchecked`, without computing anything.
    // Both variants carry the whole webhook (the Ok side is just as large), so boxing the
    // error would add an allocation per rejection without shrinking the Result.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, webhook: Webhook, now: SystemTime) -> Result<Verified<Webhook>, Rejected> {
        let status = match self.mode {
            Mode::Off => SignatureStatus::Unchecked,
            Mode::Enforce | Mode::Observe => match self.verify(&webhook.headers, &webhook.body, now) {
                Ok(()) => SignatureStatus::Valid,
                Err(error) if self.mode == Mode::Enforce => return Err(Rejected { webhook, error }),
                Err(error) => SignatureStatus::Invalid(error),
            },
        };
        Ok(Verified { value: webhook, status })
    }
}

/// Turns a configured secret into the MAC key the scheme uses.
fn key_for(scheme: &Scheme, secret: Secret) -> Result<Secret, String> {
    if secret.expose().is_empty() {
        return Err("the secret is empty".to_owned());
    }
    match scheme {
        Scheme::StandardWebhooks => standard::decode_secret(&secret),
        _ => Ok(secret),
    }
}

/// An incoming webhook request with its body fully read.
#[derive(Clone, Debug)]
pub struct Webhook {
    /// Request method.
    pub method: http::Method,
    /// Request URI.
    pub uri: http::Uri,
    /// Request headers.
    pub headers: http::HeaderMap,
    /// Raw body, exactly as received: signatures cover these bytes.
    pub body: bytes::Bytes,
}

/// Typestate: only `Verifier::check` can build one (private fields, no public constructor).
#[derive(Debug)]
pub struct Verified<T> {
    value: T,
    status: SignatureStatus,
}

impl<T> Verified<T> {
    /// The checked value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// What the check concluded.
    pub fn status(&self) -> &SignatureStatus {
        &self.status
    }

    /// The value and what the check concluded.
    pub fn into_parts(self) -> (T, SignatureStatus) {
        (self.value, self.status)
    }
}

/// Outcome of `Verifier::check` for a webhook that was let through.
#[derive(Clone, Debug, PartialEq)]
pub enum SignatureStatus {
    /// The signature verified.
    Valid,
    /// The signature did not verify, but the mode is `observe`.
    Invalid(VerifyError),
    /// The mode is `off`.
    Unchecked,
}

impl SignatureStatus {
    /// Bounded metric label: "valid", "invalid" or "unchecked".
    pub fn label(&self) -> &'static str {
        match self {
            SignatureStatus::Valid => "valid",
            SignatureStatus::Invalid(_) => "invalid",
            SignatureStatus::Unchecked => "unchecked",
        }
    }
}

/// A webhook refused in `enforce` mode, handed back so the caller can still log or respond.
#[derive(Debug)]
pub struct Rejected {
    /// The refused request.
    pub webhook: Webhook,
    /// Why it was refused.
    pub error: VerifyError,
}

/// Why a signature did not verify. Messages never contain secret material or header values.
#[derive(thiserror::Error, Clone, Debug, PartialEq)]
pub enum VerifyError {
    /// A required header (named) is absent.
    #[error("missing `{0}` header")]
    MissingHeader(String),
    /// A header is present but unusable; says what is wrong.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// The signed timestamp is outside the tolerance window.
    /// The message never shows the server's clock (`now` is for the log: [`Self::server_time`]).
    #[error("timestamp {timestamp} is more than {tolerance_secs}s away from the server's time")]
    Stale {
        /// Signed timestamp, unix seconds.
        timestamp: i64,
        /// Verifier clock, unix seconds.
        now: i64,
        /// Allowed skew in either direction.
        tolerance_secs: u64,
    },
    /// Well-formed, but no secret produces it.
    #[error("signature does not match any configured secret")]
    Mismatch,
    /// The verifier has no secrets (only possible in `off` mode).
    #[error("no secrets configured")]
    NoSecrets,
}

impl VerifyError {
    /// Every value [`Self::reason`] gives, for metrics that exist at zero before the first failure.
    pub const REASONS: [&'static str; 5] = ["missing", "malformed", "stale", "mismatch", "no_secret"];

    /// The server's clock for a timestamp-window failure, for the log only (never in an answer).
    pub fn server_time(&self) -> Option<i64> {
        match self {
            VerifyError::Stale { now, .. } => Some(*now),
            _ => None,
        }
    }

    /// Bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::Stale { .. } => "stale",
            VerifyError::Mismatch => "mismatch",
            VerifyError::NoSecrets => "no_secret",
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod vectors;
