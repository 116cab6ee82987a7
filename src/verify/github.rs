//! GitHub: `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256(secret, raw body), no timestamp.

use http::HeaderMap;

use super::common::{decode_tag, header, malformed, optional_header, verify_any, Context};
use super::{Algorithm, Encoding, VerifyError};

const SIGNATURE: &str = "x-hub-signature-256";
const DELIVERY: &str = "x-github-delivery";
const PREFIX: &str = "sha256=";

/// GitHub signs no timestamp; replays are caught by deduplicating on the delivery id instead.
pub(super) fn verify(ctx: &Context<'_>, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let value = header(headers, SIGNATURE)?;
    let hex = value.strip_prefix(PREFIX).ok_or_else(|| malformed(format!("`{SIGNATURE}` lacks the `{PREFIX}` prefix")))?;
    let tag = decode_tag(hex, Encoding::Hex, Algorithm::Sha256).map_err(|why| malformed(format!("`{SIGNATURE}`: {why}")))?;
    verify_any(Algorithm::Sha256, ctx.keys, &[body], &[tag])
}

pub(super) fn delivery_id(headers: &HeaderMap) -> Option<String> {
    optional_header(headers, DELIVERY)
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{assert_garbage_rejected, at, headers, hmac_sha256, verifier};
    use super::super::{Scheme, VerifyError};

    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    // From GitHub's documentation.
    const SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn signed() -> http::HeaderMap {
        headers(&[("X-Hub-Signature-256", SIGNATURE)])
    }

    #[test]
    fn documented_vector_matches_independent_hmac() {
        let expected = format!("sha256={}", hex::encode(hmac_sha256(SECRET.as_bytes(), BODY)));
        assert_eq!(expected, SIGNATURE);
    }

    #[test]
    fn valid_signature_verifies_at_any_time() {
        let v = verifier(Scheme::Github, &[SECRET]);
        for now in [0, 1_700_000_000, -5, i64::from(u32::MAX)] {
            assert_eq!(v.verify(&signed(), BODY, at(now)), Ok(()));
        }
    }

    #[test]
    fn uppercase_hex_and_header_case_are_accepted() {
        let v = verifier(Scheme::Github, &[SECRET]);
        let upper = format!("sha256={}", SIGNATURE["sha256=".len()..].to_ascii_uppercase());
        let h = headers(&[("x-HUB-signature-256", &upper)]);
        assert_eq!(v.verify(&h, BODY, at(0)), Ok(()));
    }

    #[test]
    fn wrong_secret_or_changed_body_mismatch() {
        let wrong = verifier(Scheme::Github, &["not it"]);
        assert_eq!(wrong.verify(&signed(), BODY, at(0)), Err(VerifyError::Mismatch));
        let v = verifier(Scheme::Github, &[SECRET]);
        assert_eq!(v.verify(&signed(), b"Hello, World?", at(0)), Err(VerifyError::Mismatch));
        assert_eq!(v.verify(&signed(), b"", at(0)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn rotation_accepts_any_secret() {
        let v = verifier(Scheme::Github, &["old secret", SECRET]);
        assert_eq!(v.verify(&signed(), BODY, at(0)), Ok(()));
    }

    #[test]
    fn missing_header() {
        let v = verifier(Scheme::Github, &[SECRET]);
        let err = v.verify(&headers(&[("X-Hub-Signature", "sha1=00")]), BODY, at(0));
        assert_eq!(err, Err(VerifyError::MissingHeader("x-hub-signature-256".into())));
    }

    #[test]
    fn truncated_or_malformed_headers() {
        let v = verifier(Scheme::Github, &[SECRET]);
        let cases = [
            "sha256=".to_owned(),
            String::new(),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_owned(),
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_owned(),
            SIGNATURE[..SIGNATURE.len() - 2].to_owned(),
            format!("{SIGNATURE}00"),
            "sha256=zz".to_owned(),
        ];
        for case in cases {
            let result = v.verify(&headers(&[("X-Hub-Signature-256", &case)]), BODY, at(0));
            assert!(matches!(result, Err(VerifyError::Malformed(_))), "{case:?}: {result:?}");
        }
    }

    #[test]
    fn duplicate_signature_headers_are_malformed() {
        let v = verifier(Scheme::Github, &[SECRET]);
        let h = headers(&[("X-Hub-Signature-256", SIGNATURE), ("X-Hub-Signature-256", SIGNATURE)]);
        assert!(matches!(v.verify(&h, BODY, at(0)), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn garbage_never_verifies() {
        let v = verifier(Scheme::Github, &[SECRET]);
        assert_garbage_rejected(&v, &signed(), "X-Hub-Signature-256", BODY, at(0));
    }

    #[test]
    fn delivery_id_comes_from_the_header() {
        let h = headers(&[("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")]);
        let id = Scheme::Github.delivery_id(&h, b"not json");
        assert_eq!(id.as_deref(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        assert_eq!(Scheme::Github.delivery_id(&headers(&[("X-GitHub-Delivery", "")]), b""), None);
        assert_eq!(Scheme::Github.delivery_id(&headers(&[]), b"{\"id\":\"x\"}"), None);
    }
}
