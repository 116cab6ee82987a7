//! Standard Webhooks: space-separated `v1,<base64>` entries in `webhook-signature`, each an
//! HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` keyed with the base64 part of `whsec_...`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderMap;

use super::common::{check_window, decode_tag, header, malformed, optional_header, parse_timestamp, verify_any, Context};
use super::{Algorithm, Encoding, Secret, VerifyError};

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";
const SECRET_PREFIX: &str = "whsec_";

/// Decodes a `whsec_<base64>` secret into the MAC key, once, at configuration time.
pub(super) fn decode_secret(secret: &Secret) -> Result<Secret, String> {
    let unusable = || format!("expected a `{SECRET_PREFIX}<base64>` secret");
    let encoded = secret.expose().strip_prefix(SECRET_PREFIX.as_bytes()).ok_or_else(unusable)?;
    match STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(Secret::from_bytes(key)),
        _ => Err(unusable()),
    }
}

/// Signature first, window second, so `Stale` only ever describes genuine requests.
pub(super) fn verify(ctx: &Context<'_>, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let id = header(headers, ID)?;
    let raw_timestamp = header(headers, TIMESTAMP)?;
    let value = header(headers, SIGNATURE)?;
    let timestamp = parse_timestamp(raw_timestamp, &format!("`{TIMESTAMP}`"))?;
    // Other versions (e.g. asymmetric `v1a`) are skipped, as are unusable v1 entries, so that
    // one bad entry cannot hide a good one.
    let tags: Vec<Vec<u8>> = value
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, tag)| decode_tag(tag, Encoding::Base64, Algorithm::Sha256).ok())
        .collect();
    if tags.is_empty() {
        return Err(malformed(format!("`{SIGNATURE}` has no usable `v1` entry")));
    }
    let message: [&[u8]; 5] = [id.as_bytes(), b".", raw_timestamp.as_bytes(), b".", body];
    verify_any(Algorithm::Sha256, ctx.keys, &message, &tags)?;
    check_window(timestamp, ctx)
}

pub(super) fn delivery_id(headers: &HeaderMap) -> Option<String> {
    optional_header(headers, ID)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::common::testing::{assert_garbage_rejected, at, headers, verifier};
    use super::super::{Mode, Scheme, Secret, Verifier, VerifyError};

    // The reference libraries' vector (also in tests/vectors/signatures.json).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER: &str = "whsec_c3RyYW5nbGVyLW90aGVyLXNlY3JldA==";
    const T: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const V1: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn signed(signature: &str) -> http::HeaderMap {
        headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", signature),
        ])
    }

    #[test]
    fn window_applies_both_ways() {
        let v = verifier(Scheme::StandardWebhooks, &[SECRET]);
        for skew in [-300, -299, 0, 299, 300] {
            assert_eq!(v.verify(&signed(V1), BODY, at(T + skew)), Ok(()), "skew {skew}");
        }
        for skew in [-301, 301] {
            let stale = VerifyError::Stale { timestamp: T, now: T + skew, tolerance_secs: 300 };
            assert_eq!(v.verify(&signed(V1), BODY, at(T + skew)), Err(stale));
        }
    }

    #[test]
    fn any_entry_may_match_and_unknown_versions_are_ignored() {
        let v = verifier(Scheme::StandardWebhooks, &[SECRET]);
        let zero = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let header = format!("v1a,abc v2,xyz {zero} v1,!!! v1, {V1}");
        assert_eq!(v.verify(&signed(&header), BODY, at(T)), Ok(()));
    }

    #[test]
    fn wrong_secret_changed_body_or_id_mismatch() {
        let wrong = verifier(Scheme::StandardWebhooks, &[OTHER]);
        assert_eq!(wrong.verify(&signed(V1), BODY, at(T)), Err(VerifyError::Mismatch));
        let v = verifier(Scheme::StandardWebhooks, &[SECRET]);
        assert_eq!(v.verify(&signed(V1), br#"{"test": 2432232315}"#, at(T)), Err(VerifyError::Mismatch));
        let mut h = signed(V1);
        h.insert("webhook-id", http::HeaderValue::from_static("msg_other"));
        assert_eq!(v.verify(&h, BODY, at(T)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn rotation_accepts_any_secret() {
        let v = verifier(Scheme::StandardWebhooks, &[OTHER, SECRET]);
        assert_eq!(v.verify(&signed(V1), BODY, at(T)), Ok(()));
    }

    #[test]
    fn missing_headers() {
        let v = verifier(Scheme::StandardWebhooks, &[SECRET]);
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut h = signed(V1);
            h.remove(name);
            assert_eq!(v.verify(&h, BODY, at(T)), Err(VerifyError::MissingHeader(name.into())));
        }
    }

    #[test]
    fn truncated_or_malformed_headers() {
        let v = verifier(Scheme::StandardWebhooks, &[SECRET]);
        for case in ["v1,", "", "v1", "v1a,abc", "v1,!!!", "v1,g0hM9SsE+OTPJTGt", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="]
        {
            let result = v.verify(&signed(case), BODY, at(T));
            assert!(matches!(result, Err(VerifyError::Malformed(_))), "{case:?}: {result:?}");
        }
        for ts in ["", "now", "1614265330.0", "-1"] {
            let mut h = signed(V1);
            h.insert("webhook-timestamp", http::HeaderValue::from_str(ts).expect("valid"));
            assert!(matches!(v.verify(&h, BODY, at(T)), Err(VerifyError::Malformed(_))), "{ts:?}");
        }
    }

    #[test]
    fn garbage_never_verifies() {
        let v = verifier(Scheme::StandardWebhooks, &[SECRET]);
        for name in ["webhook-signature", "webhook-timestamp", "webhook-id"] {
            assert_garbage_rejected(&v, &signed(V1), name, BODY, at(T));
        }
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_",
            "whsec_!!!",
            "whsec_MfKQ9r8GKYq",
            "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            let result = Verifier::new(Scheme::StandardWebhooks, vec![Secret::new(bad)], Duration::from_secs(300), Mode::Enforce);
            let err = result.expect_err(bad);
            assert!(err.contains("expected a `whsec_<base64>` secret"), "{err}");
            assert!(!err.contains("MfKQ"), "error echoes the secret: {err}");
        }
    }

    #[test]
    fn delivery_id_is_the_webhook_id() {
        let id = Scheme::StandardWebhooks.delivery_id(&signed(V1), BODY);
        assert_eq!(id.as_deref(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
        assert_eq!(Scheme::StandardWebhooks.delivery_id(&headers(&[("webhook-id", "")]), BODY), None);
    }
}
