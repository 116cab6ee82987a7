//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, each v1 = HMAC-SHA256 of `<t>.<body>`
//! keyed with the whole `whsec_...` string.

use http::HeaderMap;
use serde::Deserialize;

use super::common::{check_window, decode_tag, header, malformed, parse_timestamp, verify_any, Context};
use super::{Algorithm, Encoding, VerifyError};

const SIGNATURE: &str = "stripe-signature";

/// Signature first, window second: `Stale` then means "genuine but outside the window"
/// (a replay or clock skew), which is a more useful signal than "too old and maybe forged".
pub(super) fn verify(ctx: &Context<'_>, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let value = header(headers, SIGNATURE)?;
    let mut timestamp = None;
    let mut tags = Vec::new();
    for item in value.split(',') {
        let Some((key, val)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" if timestamp.is_some() => {
                return Err(malformed(format!("`{SIGNATURE}` has more than one `t`")));
            }
            "t" => timestamp = Some(val.trim()),
            // Stripe may add entries for other schemes (v0 in test mode); an unusable v1 is
            // skipped so that one bad entry cannot hide a good one.
            "v1" => tags.extend(decode_tag(val.trim(), Encoding::Hex, Algorithm::Sha256).ok()),
            _ => {}
        }
    }
    let raw_timestamp = timestamp.ok_or_else(|| malformed(format!("`{SIGNATURE}` has no `t` entry")))?;
    let parsed = parse_timestamp(raw_timestamp, "`t`")?;
    if tags.is_empty() {
        return Err(malformed(format!("`{SIGNATURE}` has no usable `v1` entry")));
    }
    let message: [&[u8]; 3] = [raw_timestamp.as_bytes(), b".", body];
    verify_any(Algorithm::Sha256, ctx.keys, &message, &tags)?;
    check_window(parsed, ctx)
}

#[derive(Deserialize)]
struct Event {
    id: Option<String>,
}

/// The event id (`evt_...`) from the JSON body.
pub(super) fn delivery_id(body: &[u8]) -> Option<String> {
    let event: Event = serde_json::from_slice(body).ok()?;
    event.id.filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{assert_garbage_rejected, at, headers, hmac_sha256, verifier};
    use super::super::{Scheme, VerifyError};

    const SECRET: &str = "whsec_strangler_test_0123456789";
    const T: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1NqQ9z2eZvKYlo2C","object":"event","type":"charge.succeeded"}"#;
    // python3: hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    const V1: &str = "b4e402e356cb4ac53dd2d6c6a055d1a852b213d8eb95aa71093be34f7abace2a";

    fn signed(value: &str) -> http::HeaderMap {
        headers(&[("Stripe-Signature", value)])
    }

    fn good() -> http::HeaderMap {
        signed(&format!("t={T},v1={V1}"))
    }

    #[test]
    fn literal_vector_matches_independent_hmac() {
        let message = [format!("{T}.").as_bytes(), BODY].concat();
        assert_eq!(hex::encode(hmac_sha256(SECRET.as_bytes(), &message)), V1);
    }

    #[test]
    fn valid_signature_verifies() {
        let v = verifier(Scheme::Stripe, &[SECRET]);
        assert_eq!(v.verify(&good(), BODY, at(T)), Ok(()));
        let spaced = signed(&format!(" t={T} , v0=abc, v1={V1} "));
        assert_eq!(v.verify(&spaced, BODY, at(T)), Ok(()));
    }

    #[test]
    fn any_v1_may_match() {
        let v = verifier(Scheme::Stripe, &[SECRET]);
        let other = "0".repeat(64);
        let h = signed(&format!("t={T},v1={other},v1={V1},v0={other}"));
        assert_eq!(v.verify(&h, BODY, at(T)), Ok(()));
        let h = signed(&format!("t={T},v1=not-hex,v1={V1}"));
        assert_eq!(v.verify(&h, BODY, at(T)), Ok(()));
    }

    #[test]
    fn window_applies_both_ways() {
        let v = verifier(Scheme::Stripe, &[SECRET]);
        for skew in [-300, -299, 0, 299, 300] {
            assert_eq!(v.verify(&good(), BODY, at(T + skew)), Ok(()), "skew {skew}");
        }
        for skew in [-301, 301, 86_400] {
            let stale = VerifyError::Stale { timestamp: T, now: T + skew, tolerance_secs: 300 };
            assert_eq!(v.verify(&good(), BODY, at(T + skew)), Err(stale));
        }
    }

    #[test]
    fn signed_timestamp_cannot_be_swapped() {
        let v = verifier(Scheme::Stripe, &[SECRET]);
        let h = signed(&format!("t={},v1={V1}", T + 100));
        assert_eq!(v.verify(&h, BODY, at(T + 100)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn wrong_secret_or_changed_body_mismatch() {
        let wrong = verifier(Scheme::Stripe, &["whsec_other"]);
        assert_eq!(wrong.verify(&good(), BODY, at(T)), Err(VerifyError::Mismatch));
        let v = verifier(Scheme::Stripe, &[SECRET]);
        let mut body = BODY.to_vec();
        body[2] ^= 1;
        assert_eq!(v.verify(&good(), &body, at(T)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn rotation_accepts_any_secret() {
        let v = verifier(Scheme::Stripe, &["whsec_old", SECRET]);
        assert_eq!(v.verify(&good(), BODY, at(T)), Ok(()));
    }

    #[test]
    fn missing_header() {
        let v = verifier(Scheme::Stripe, &[SECRET]);
        let err = v.verify(&headers(&[]), BODY, at(T));
        assert_eq!(err, Err(VerifyError::MissingHeader("stripe-signature".into())));
    }

    #[test]
    fn truncated_or_malformed_headers() {
        let v = verifier(Scheme::Stripe, &[SECRET]);
        let cases = [
            "t=123,v1=".to_owned(),
            String::new(),
            format!("v1={V1}"),
            format!("t=,v1={V1}"),
            format!("t=abc,v1={V1}"),
            format!("t=+{T},v1={V1}"),
            format!("t={T},t={T},v1={V1}"),
            format!("t={T}"),
            format!("t={T},v0={V1}"),
            format!("t={T},v1={}", &V1[..62]),
        ];
        for case in cases {
            let result = v.verify(&signed(&case), BODY, at(T));
            assert!(matches!(result, Err(VerifyError::Malformed(_))), "{case:?}: {result:?}");
        }
    }

    #[test]
    fn garbage_never_verifies() {
        let v = verifier(Scheme::Stripe, &[SECRET]);
        assert_garbage_rejected(&v, &good(), "Stripe-Signature", BODY, at(T));
    }

    #[test]
    fn delivery_id_is_the_event_id() {
        let id = Scheme::Stripe.delivery_id(&headers(&[]), BODY);
        assert_eq!(id.as_deref(), Some("evt_1NqQ9z2eZvKYlo2C"));
        for body in [&b"not json"[..], b"", b"{\"id\":\"\"}", b"{\"id\":42}", b"[1]", b"{\"data\":{\"id\":\"x\"}}"] {
            assert_eq!(Scheme::Stripe.delivery_id(&headers(&[]), body), None, "{body:?}");
        }
    }
}
