//! Slack: `X-Slack-Signature: v0=<hex>` = HMAC-SHA256(signing secret, `v0:<timestamp>:<body>`),
//! with `X-Slack-Request-Timestamp` checked against the tolerance.

use http::HeaderMap;
use serde::Deserialize;

use super::common::{check_window, decode_tag, header, malformed, parse_timestamp, verify_any, Context};
use super::{Algorithm, Encoding, VerifyError};

const SIGNATURE: &str = "x-slack-signature";
const TIMESTAMP: &str = "x-slack-request-timestamp";
const PREFIX: &str = "v0=";

/// Signature first, window second, so `Stale` only ever describes genuine requests.
pub(super) fn verify(ctx: &Context<'_>, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let value = header(headers, SIGNATURE)?;
    let raw_timestamp = header(headers, TIMESTAMP)?;
    let hex = value.strip_prefix(PREFIX).ok_or_else(|| malformed(format!("`{SIGNATURE}` lacks the `{PREFIX}` prefix")))?;
    let tag = decode_tag(hex, Encoding::Hex, Algorithm::Sha256).map_err(|why| malformed(format!("`{SIGNATURE}`: {why}")))?;
    let timestamp = parse_timestamp(raw_timestamp, &format!("`{TIMESTAMP}`"))?;
    let message: [&[u8]; 4] = [b"v0:", raw_timestamp.as_bytes(), b":", body];
    verify_any(Algorithm::Sha256, ctx.keys, &message, &[tag])?;
    check_window(timestamp, ctx)
}

#[derive(Deserialize)]
struct Envelope {
    event_id: Option<String>,
}

/// Events API callbacks carry `event_id`; slash commands and interactivity are form-encoded
/// and have none.
pub(super) fn delivery_id(body: &[u8]) -> Option<String> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    envelope.event_id.filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{assert_garbage_rejected, at, headers, hmac_sha256, verifier};
    use super::super::{Scheme, VerifyError};

    // The vector from Slack's documentation (also in tests/vectors/signatures.json).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const T: i64 = 1_531_420_618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn signed() -> http::HeaderMap {
        headers(&[("X-Slack-Signature", SIGNATURE), ("X-Slack-Request-Timestamp", "1531420618")])
    }

    #[test]
    fn documented_vector_matches_independent_hmac() {
        let message = [format!("v0:{T}:").as_bytes(), BODY].concat();
        let expected = format!("v0={}", hex::encode(hmac_sha256(SECRET.as_bytes(), &message)));
        assert_eq!(expected, SIGNATURE);
    }

    #[test]
    fn window_applies_both_ways() {
        let v = verifier(Scheme::Slack, &[SECRET]);
        for skew in [-300, -299, 0, 299, 300] {
            assert_eq!(v.verify(&signed(), BODY, at(T + skew)), Ok(()), "skew {skew}");
        }
        for skew in [-301, 301] {
            let stale = VerifyError::Stale { timestamp: T, now: T + skew, tolerance_secs: 300 };
            assert_eq!(v.verify(&signed(), BODY, at(T + skew)), Err(stale));
        }
    }

    #[test]
    fn wrong_secret_changed_body_or_timestamp_mismatch() {
        let wrong = verifier(Scheme::Slack, &["not the secret"]);
        assert_eq!(wrong.verify(&signed(), BODY, at(T)), Err(VerifyError::Mismatch));
        let v = verifier(Scheme::Slack, &[SECRET]);
        let mut body = BODY.to_vec();
        body[0] = b'T';
        assert_eq!(v.verify(&signed(), &body, at(T)), Err(VerifyError::Mismatch));
        let mut h = signed();
        h.insert("x-slack-request-timestamp", http::HeaderValue::from_static("1531420619"));
        assert_eq!(v.verify(&h, BODY, at(T)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn rotation_accepts_any_secret() {
        let v = verifier(Scheme::Slack, &["old secret", SECRET]);
        assert_eq!(v.verify(&signed(), BODY, at(T)), Ok(()));
    }

    #[test]
    fn missing_headers() {
        let v = verifier(Scheme::Slack, &[SECRET]);
        let no_sig = headers(&[("X-Slack-Request-Timestamp", "1531420618")]);
        assert_eq!(v.verify(&no_sig, BODY, at(T)), Err(VerifyError::MissingHeader("x-slack-signature".into())));
        let no_ts = headers(&[("X-Slack-Signature", SIGNATURE)]);
        assert_eq!(v.verify(&no_ts, BODY, at(T)), Err(VerifyError::MissingHeader("x-slack-request-timestamp".into())));
    }

    #[test]
    fn truncated_or_malformed_headers() {
        let v = verifier(Scheme::Slack, &[SECRET]);
        let bad_signatures = ["v0=", "", "v1=00", &SIGNATURE[3..], &SIGNATURE[..20]];
        for case in bad_signatures {
            let h = headers(&[("X-Slack-Signature", case), ("X-Slack-Request-Timestamp", "1531420618")]);
            let result = v.verify(&h, BODY, at(T));
            assert!(matches!(result, Err(VerifyError::Malformed(_))), "{case:?}: {result:?}");
        }
        for case in ["", "abc", "1531420618.5", "-1531420618", "99999999999999999999"] {
            let h = headers(&[("X-Slack-Signature", SIGNATURE), ("X-Slack-Request-Timestamp", case)]);
            let result = v.verify(&h, BODY, at(T));
            assert!(matches!(result, Err(VerifyError::Malformed(_))), "{case:?}: {result:?}");
        }
    }

    #[test]
    fn garbage_never_verifies() {
        let v = verifier(Scheme::Slack, &[SECRET]);
        assert_garbage_rejected(&v, &signed(), "X-Slack-Signature", BODY, at(T));
        assert_garbage_rejected(&v, &signed(), "X-Slack-Request-Timestamp", BODY, at(T));
    }

    #[test]
    fn delivery_id_is_the_events_api_event_id() {
        let event = br#"{"type":"event_callback","event_id":"Ev0PV52K21","event":{"type":"app_mention"}}"#;
        assert_eq!(Scheme::Slack.delivery_id(&headers(&[]), event).as_deref(), Some("Ev0PV52K21"));
        assert_eq!(Scheme::Slack.delivery_id(&signed(), BODY), None);
        assert_eq!(Scheme::Slack.delivery_id(&headers(&[]), br#"{"event_id":""}"#), None);
        assert_eq!(Scheme::Slack.delivery_id(&headers(&[]), br#"{"type":"url_verification"}"#), None);
    }
}
