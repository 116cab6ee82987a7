//! Generic HMAC for senders without a dedicated scheme, shaped by `HmacScheme`.

use http::HeaderMap;

use super::common::{check_window, decode_tag, header, malformed, parse_timestamp, verify_any, Context};
use super::{HmacScheme, VerifyError};

/// Signature first, window second, so `Stale` only ever describes genuine requests.
pub(super) fn verify(scheme: &HmacScheme, ctx: &Context<'_>, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let name = scheme.header.as_str();
    let value = header(headers, name)?;
    let encoded = match scheme.prefix.as_deref() {
        Some(prefix) => value.strip_prefix(prefix).ok_or_else(|| malformed(format!("`{name}` lacks the `{prefix}` prefix")))?,
        None => value,
    };
    let tag = decode_tag(encoded, scheme.encoding, scheme.algorithm).map_err(|why| malformed(format!("`{name}`: {why}")))?;

    let Some(timestamp_header) = &scheme.timestamp_header else {
        return verify_any(scheme.algorithm, ctx.keys, &[body], &[tag]);
    };
    let ts_name = timestamp_header.as_str();
    let raw_timestamp = header(headers, ts_name)?;
    let timestamp = parse_timestamp(raw_timestamp, &format!("`{ts_name}`"))?;
    let message: [&[u8]; 3] = [raw_timestamp.as_bytes(), scheme.timestamp_separator.as_bytes(), body];
    verify_any(scheme.algorithm, ctx.keys, &message, &[tag])?;
    check_window(timestamp, ctx)
}

#[cfg(test)]
mod tests {
    use ::hmac::{Hmac, Mac};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use http::HeaderName;
    use sha2::Sha512;

    use super::super::common::testing::{assert_garbage_rejected, at, headers, hmac_sha256, verifier};
    use super::super::{Algorithm, Encoding, HmacScheme, Scheme, VerifyError};

    const SECRET: &str = "generic-secret";
    const BODY: &[u8] = br#"{"ok":true}"#;
    const T: i64 = 1_700_000_000;
    // python3: hmac.new(SECRET, BODY, hashlib.sha512).hexdigest()
    const SHA512_HEX: &str = "0db8b804d6086ce18dbae5b505513360cff58c637e6ac557771007ec86c12a42c38d50170d011f11c4d17330aabcbb2c88d63127a2291706dd927f67feef7dbc";
    // python3: base64.b64encode(hmac.new(SECRET, b"1700000000:" + BODY, hashlib.sha256).digest())
    const SHA256_TS_B64: &str = "THQ+QQ2L/ykfO3rZ3cH/jM/2vpJWsh0k7cZOdu0kI9w=";

    /// `X-Signature: sha512=<hex>` over the body.
    fn plain() -> Scheme {
        Scheme::Hmac(HmacScheme {
            header: HeaderName::from_static("x-signature"),
            algorithm: Algorithm::Sha512,
            encoding: Encoding::Hex,
            prefix: Some("sha512=".into()),
            timestamp_header: None,
            timestamp_separator: String::new(),
        })
    }

    /// `X-Sig: <base64>` over `<X-Sig-Timestamp>:<body>`.
    fn timestamped() -> Scheme {
        Scheme::Hmac(HmacScheme {
            header: HeaderName::from_static("x-sig"),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Base64,
            prefix: None,
            timestamp_header: Some(HeaderName::from_static("x-sig-timestamp")),
            timestamp_separator: ":".into(),
        })
    }

    fn plain_headers() -> http::HeaderMap {
        headers(&[("X-Signature", &format!("sha512={SHA512_HEX}"))])
    }

    fn timestamped_headers() -> http::HeaderMap {
        headers(&[("X-Sig", SHA256_TS_B64), ("X-Sig-Timestamp", "1700000000")])
    }

    #[test]
    fn literal_vectors_match_independent_hmac() {
        let mut mac = Hmac::<Sha512>::new_from_slice(SECRET.as_bytes()).expect("any key length");
        mac.update(BODY);
        assert_eq!(hex::encode(mac.finalize().into_bytes()), SHA512_HEX);
        let message = [b"1700000000:".as_slice(), BODY].concat();
        assert_eq!(STANDARD.encode(hmac_sha256(SECRET.as_bytes(), &message)), SHA256_TS_B64);
    }

    #[test]
    fn valid_signatures_verify() {
        let v = verifier(plain(), &[SECRET]);
        assert_eq!(v.verify(&plain_headers(), BODY, at(0)), Ok(()));
        let v = verifier(timestamped(), &[SECRET]);
        assert_eq!(v.verify(&timestamped_headers(), BODY, at(T)), Ok(()));
    }

    #[test]
    fn window_applies_only_with_a_timestamp_header() {
        let v = verifier(plain(), &[SECRET]);
        assert_eq!(v.verify(&plain_headers(), BODY, at(T + 1_000_000)), Ok(()));
        let v = verifier(timestamped(), &[SECRET]);
        for skew in [-300, 300] {
            assert_eq!(v.verify(&timestamped_headers(), BODY, at(T + skew)), Ok(()));
        }
        for skew in [-301, 301] {
            let stale = VerifyError::Stale { timestamp: T, now: T + skew, tolerance_secs: 300 };
            assert_eq!(v.verify(&timestamped_headers(), BODY, at(T + skew)), Err(stale));
        }
    }

    #[test]
    fn wrong_secret_or_changed_body_mismatch() {
        for (scheme, h, now) in [(plain(), plain_headers(), 0), (timestamped(), timestamped_headers(), T)] {
            let wrong = verifier(scheme.clone(), &["other"]);
            assert_eq!(wrong.verify(&h, BODY, at(now)), Err(VerifyError::Mismatch));
            let v = verifier(scheme, &[SECRET]);
            assert_eq!(v.verify(&h, br#"{"ok":false}"#, at(now)), Err(VerifyError::Mismatch));
        }
    }

    #[test]
    fn rotation_accepts_any_secret() {
        let v = verifier(plain(), &["old", SECRET]);
        assert_eq!(v.verify(&plain_headers(), BODY, at(0)), Ok(()));
        let v = verifier(timestamped(), &["old", SECRET]);
        assert_eq!(v.verify(&timestamped_headers(), BODY, at(T)), Ok(()));
    }

    #[test]
    fn missing_headers() {
        let v = verifier(plain(), &[SECRET]);
        let err = v.verify(&headers(&[]), BODY, at(0));
        assert_eq!(err, Err(VerifyError::MissingHeader("x-signature".into())));
        let v = verifier(timestamped(), &[SECRET]);
        let err = v.verify(&headers(&[("X-Sig", SHA256_TS_B64)]), BODY, at(T));
        assert_eq!(err, Err(VerifyError::MissingHeader("x-sig-timestamp".into())));
    }

    #[test]
    fn truncated_or_malformed_headers() {
        let v = verifier(plain(), &[SECRET]);
        let unprefixed = SHA512_HEX.to_owned();
        let sha256_length = format!("sha512={}", &SHA512_HEX[..64]);
        for case in ["sha512=", "", &unprefixed, &sha256_length, "sha512=xyz"] {
            let result = v.verify(&headers(&[("X-Signature", case)]), BODY, at(0));
            assert!(matches!(result, Err(VerifyError::Malformed(_))), "{case:?}: {result:?}");
        }
        let v = verifier(timestamped(), &[SECRET]);
        for ts in ["", "soon", "1.5"] {
            let h = headers(&[("X-Sig", SHA256_TS_B64), ("X-Sig-Timestamp", ts)]);
            assert!(matches!(v.verify(&h, BODY, at(T)), Err(VerifyError::Malformed(_))), "{ts:?}");
        }
    }

    #[test]
    fn garbage_never_verifies() {
        let v = verifier(plain(), &[SECRET]);
        assert_garbage_rejected(&v, &plain_headers(), "X-Signature", BODY, at(0));
        let v = verifier(timestamped(), &[SECRET]);
        assert_garbage_rejected(&v, &timestamped_headers(), "X-Sig", BODY, at(T));
        assert_garbage_rejected(&v, &timestamped_headers(), "X-Sig-Timestamp", BODY, at(T));
    }

    #[test]
    fn has_no_delivery_id() {
        let h = headers(&[("webhook-id", "msg_1"), ("X-GitHub-Delivery", "d")]);
        assert_eq!(plain().delivery_id(&h, br#"{"id":"evt_1","event_id":"Ev1"}"#), None);
    }
}
