//! Shopify: `X-Shopify-Hmac-Sha256` = base64 HMAC-SHA256(app secret, raw body), no timestamp.

use http::HeaderMap;

use super::common::{decode_tag, header, malformed, optional_header, verify_any, Context};
use super::{Algorithm, Encoding, VerifyError};

const SIGNATURE: &str = "x-shopify-hmac-sha256";
const DELIVERY: &str = "x-shopify-webhook-id";

/// Shopify signs no timestamp; replays are caught by deduplicating on the webhook id.
pub(super) fn verify(ctx: &Context<'_>, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let value = header(headers, SIGNATURE)?;
    let tag = decode_tag(value, Encoding::Base64, Algorithm::Sha256).map_err(|why| malformed(format!("`{SIGNATURE}`: {why}")))?;
    verify_any(Algorithm::Sha256, ctx.keys, &[body], &[tag])
}

pub(super) fn delivery_id(headers: &HeaderMap) -> Option<String> {
    optional_header(headers, DELIVERY)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    use super::super::common::testing::{assert_garbage_rejected, at, headers, hmac_sha256, verifier};
    use super::super::{Scheme, VerifyError};

    const SECRET: &str = "shpss_strangler_test";
    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    // python3: base64.b64encode(hmac.new(SECRET, BODY, hashlib.sha256).digest())
    const SIGNATURE: &str = "40DUTEOJfdJFOScfuVh9ymzkRwAYzyPvpRwHxBYIjHU=";

    fn signed() -> http::HeaderMap {
        headers(&[("X-Shopify-Hmac-Sha256", SIGNATURE)])
    }

    #[test]
    fn literal_vector_matches_independent_hmac() {
        assert_eq!(STANDARD.encode(hmac_sha256(SECRET.as_bytes(), BODY)), SIGNATURE);
    }

    #[test]
    fn valid_signature_verifies_at_any_time() {
        let v = verifier(Scheme::Shopify, &[SECRET]);
        for now in [0, 1_700_000_000, i64::from(u32::MAX)] {
            assert_eq!(v.verify(&signed(), BODY, at(now)), Ok(()));
        }
    }

    #[test]
    fn wrong_secret_or_changed_body_mismatch() {
        let wrong = verifier(Scheme::Shopify, &["shpss_other"]);
        assert_eq!(wrong.verify(&signed(), BODY, at(0)), Err(VerifyError::Mismatch));
        let v = verifier(Scheme::Shopify, &[SECRET]);
        let mut body = BODY.to_vec();
        body.push(b' ');
        assert_eq!(v.verify(&signed(), &body, at(0)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn rotation_accepts_any_secret() {
        let v = verifier(Scheme::Shopify, &["shpss_old", SECRET]);
        assert_eq!(v.verify(&signed(), BODY, at(0)), Ok(()));
    }

    #[test]
    fn missing_header() {
        let v = verifier(Scheme::Shopify, &[SECRET]);
        let err = v.verify(&headers(&[]), BODY, at(0));
        assert_eq!(err, Err(VerifyError::MissingHeader("x-shopify-hmac-sha256".into())));
    }

    #[test]
    fn truncated_or_malformed_headers() {
        let v = verifier(Scheme::Shopify, &[SECRET]);
        let cases = [
            "",
            &SIGNATURE[..SIGNATURE.len() - 1],
            &SIGNATURE[..40],
            "40DUTEOJfdJFOScfuVh9ymzkRwAYzyPvpRwHxBYIjHU",
            "sha256=40DUTEOJfdJFOScfuVh9ymzkRwAYzyPvpRwHxBYIjHU=",
            "e34d4d4c43897dd245393ff9b9587dca6ce447001832aef8",
            "!!!!",
        ];
        for case in cases {
            let h = headers(&[("X-Shopify-Hmac-Sha256", case)]);
            let result = v.verify(&h, BODY, at(0));
            assert!(matches!(result, Err(VerifyError::Malformed(_))), "{case:?}: {result:?}");
        }
    }

    #[test]
    fn garbage_never_verifies() {
        let v = verifier(Scheme::Shopify, &[SECRET]);
        assert_garbage_rejected(&v, &signed(), "X-Shopify-Hmac-Sha256", BODY, at(0));
    }

    #[test]
    fn delivery_id_comes_from_the_header() {
        let h = headers(&[("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")]);
        let id = Scheme::Shopify.delivery_id(&h, BODY);
        assert_eq!(id.as_deref(), Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"));
        assert_eq!(Scheme::Shopify.delivery_id(&headers(&[("X-Shopify-Webhook-Id", " ")]), BODY), None);
        assert_eq!(Scheme::Shopify.delivery_id(&headers(&[]), BODY), None);
    }
}
