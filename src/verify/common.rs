//! Plumbing shared by every scheme: header access, timestamp windows, signature decoding and the
//! constant-time "does any secret produce any of these tags" check.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::Mac;
use http::HeaderMap;

use super::{Algorithm, Encoding, Secret, VerifyError};

/// Everything a scheme needs besides the request itself.
pub(super) struct Context<'a> {
    pub(super) keys: &'a [Secret],
    pub(super) tolerance: Duration,
    pub(super) now: SystemTime,
}

pub(super) fn malformed(what: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(what.into())
}

/// The single value of header `name`, trimmed of surrounding whitespace.
pub(super) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or_else(|| VerifyError::MissingHeader(name.to_owned()))?;
    // With two copies the proxy and the upstream could each trust a different one.
    if values.next().is_some() {
        return Err(malformed(format!("`{name}` header appears more than once")));
    }
    value.to_str().map(str::trim).map_err(|_| malformed(format!("`{name}` header is not valid ASCII text")))
}

/// A header value that is optional metadata (delivery ids), so any oddity just means "none".
pub(super) fn optional_header(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Parses a unix timestamp in seconds. Only plain digits: the raw text is what gets signed, so
/// it should have exactly one spelling per instant (no `+1`, `-0` or `01.0`).
pub(super) fn parse_timestamp(raw: &str, what: &str) -> Result<i64, VerifyError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("{what} is not a unix timestamp")));
    }
    raw.parse().map_err(|_| malformed(format!("{what} is out of range")))
}

fn unix_secs(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Refuses timestamps more than `tolerance` away from `now` in either direction: a
/// timestamp from the future is as suspicious as an old one.
pub(super) fn check_window(timestamp: i64, ctx: &Context<'_>) -> Result<(), VerifyError> {
    let now = unix_secs(ctx.now);
    let tolerance_secs = ctx.tolerance.as_secs();
    // i128 so that neither extreme timestamps nor extreme clocks can overflow.
    let skew = (i128::from(timestamp) - i128::from(now)).unsigned_abs();
    if skew > u128::from(tolerance_secs) {
        return Err(VerifyError::Stale { timestamp, now, tolerance_secs });
    }
    Ok(())
}

impl Algorithm {
    fn output_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// Decodes one transmitted tag, or says what is wrong with it (without echoing it).
pub(super) fn decode_tag(text: &str, encoding: Encoding, algorithm: Algorithm) -> Result<Vec<u8>, &'static str> {
    if text.is_empty() {
        return Err("signature is empty");
    }
    let bytes = match encoding {
        Encoding::Hex => hex::decode(text).map_err(|_| "signature is not hex")?,
        Encoding::Base64 => STANDARD.decode(text).map_err(|_| "signature is not base64")?,
    };
    if bytes.len() != algorithm.output_len() {
        return Err("signature has the wrong length");
    }
    Ok(bytes)
}

/// Ok if HMAC(key, concatenation of `parts`) equals any of `tags` for any key.
///
/// Taking the message in parts avoids copying the body just to prepend a timestamp.
/// Comparison goes through `Mac::verify_slice`, which is constant time.
pub(super) fn verify_any(algorithm: Algorithm, keys: &[Secret], parts: &[&[u8]], tags: &[Vec<u8>]) -> Result<(), VerifyError> {
    match algorithm {
        Algorithm::Sha256 => verify_any_with(keys, Secret::hmac_sha256, parts, tags),
        Algorithm::Sha512 => verify_any_with(keys, Secret::hmac_sha512, parts, tags),
    }
}

fn verify_any_with<M: Mac + Clone>(
    keys: &[Secret],
    keyed: fn(&Secret) -> M,
    parts: &[&[u8]],
    tags: &[Vec<u8>],
) -> Result<(), VerifyError> {
    for key in keys {
        let mut mac = keyed(key);
        for part in parts {
            mac.update(part);
        }
        if tags.iter().any(|tag| mac.clone().verify_slice(tag).is_ok()) {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// Helpers for the per-scheme unit tests.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::verify::{Mode, Scheme, Verifier};
    use hmac::Hmac;
    use http::HeaderValue;
    use sha2::Sha256;

    pub(crate) fn at(secs: i64) -> SystemTime {
        let magnitude = Duration::from_secs(secs.unsigned_abs());
        if secs >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    pub(crate) fn verifier(scheme: Scheme, secrets: &[&str]) -> Verifier {
        let secrets = secrets.iter().map(|s| Secret::new(*s)).collect();
        Verifier::new(scheme, secrets, Duration::from_secs(300), Mode::Enforce).expect("test secrets are valid")
    }

    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = http::HeaderName::from_bytes(name.as_bytes()).expect("test header name");
            map.append(name, HeaderValue::from_str(value).expect("test header value"));
        }
        map
    }

    /// HMAC-SHA256 computed independently of `verify_any`, to build expected signatures.
    pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    /// Header values that must never verify: hand-picked edge cases plus a deterministic
    /// pseudo-random mix of the characters the parsers care about.
    pub(crate) fn garbage() -> Vec<HeaderValue> {
        let mut raw: Vec<Vec<u8>> = [
            "",
            " ",
            "\t",
            "=",
            ",",
            ",,,",
            " , , ",
            "v1,!!!",
            "v1,",
            "v1",
            "v0=",
            "v0",
            "sha256=",
            "sha256",
            "t=",
            "t=,v1=",
            "t=123,v1=",
            "t=123",
            "v1=",
            "t=abc,v1=00",
            "t=-5,v1=00",
            "t=99999999999999999999999,v1=00",
            "v1,v1,v1,",
            "v1,====",
            "v1,AAAA",
            "sha256=zz",
            "sha256=0",
            "v0=0000",
            "==,==",
            "t=1=2,v1=3=4",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        raw.push(vec![b'a'; 100_000]);
        raw.push("v1,".repeat(20_000).into_bytes());
        raw.push("t=1,".repeat(20_000).into_bytes());
        raw.push(format!("sha256={}", "f".repeat(100_000)).into_bytes());
        raw.push(vec![0xff, 0xfe, 0x80]);
        raw.push([b"sha256=".as_slice(), &[0xc3, 0x28, 0xff]].concat());
        raw.push([b"v1,".as_slice(), &[0xe2, 0x82]].concat());
        raw.push("é".as_bytes().to_vec());

        let alphabet = b"v01t=,. s:ha2561fFAZ+/=-\t";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = usize::try_from(state >> 58).unwrap_or(0) + 1;
            let value = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let i = usize::try_from(state >> 59).unwrap_or(0) % alphabet.len();
                    alphabet[i]
                })
                .collect();
            raw.push(value);
        }
        raw.iter().map(|bytes| HeaderValue::from_bytes(bytes).expect("no control characters")).collect()
    }

    /// Replaces `name` in otherwise valid `base` headers with each garbage value; all must fail.
    pub(crate) fn assert_garbage_rejected(verifier: &Verifier, base: &HeaderMap, name: &str, body: &[u8], now: SystemTime) {
        assert_eq!(verifier.verify(base, body, now), Ok(()), "base headers must verify");
        for value in garbage() {
            let mut headers = base.clone();
            headers.insert(http::HeaderName::from_bytes(name.as_bytes()).expect("test header name"), value.clone());
            let result = verifier.verify(&headers, body, now);
            assert!(result.is_err(), "{name}: {value:?} was accepted");
        }
    }
}
