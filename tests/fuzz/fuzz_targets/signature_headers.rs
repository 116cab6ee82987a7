//! Every signature scheme against hostile headers and bodies: `Verifier::verify` must never panic.
//!
//! Input: `[flags][now: i64 LE, 8 bytes][tolerance: u16 LE, 2 bytes]` then `\n`-separated pieces
//! (header values cannot hold a newline); whatever follows the last piece used is the body.
//! Missing prefix bytes read as zero.
//!
//! flags bit 1 clear, "raw": the pieces are the values of, in order, X-Hub-Signature-256,
//! Stripe-Signature, X-Shopify-Hmac-Sha256, X-Slack-Signature, X-Slack-Request-Timestamp,
//! webhook-id, webhook-timestamp, webhook-signature, X-Signature, X-Signature-Timestamp. An empty
//! piece leaves the header out; a value `HeaderValue::from_bytes` refuses is skipped.
//!
//! flags bit 1 set, "signed": the pieces are a timestamp, a webhook id and a junk signature entry;
//! the target signs the body correctly for every scheme (junk entry first) so verification gets
//! past the MAC to the timestamp window, and checks the verdict against an independent model.
//!
//! flags bit 0: every header is sent twice. flags bit 2: `now` is the i64 as unix seconds (any
//! instant, before 1970 too); otherwise `now` is 1_700_000_000 + the low 16 bits as an i16, or in
//! "signed" mode the signed timestamp + that i16, so both sides of the window edge are reached.

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sha2::{Sha256, Sha512};
use strangler::verify::{Algorithm, Encoding, HmacScheme, Mode, Scheme, Secret, Verifier, VerifyError};

const SECRET: &str = "fuzz-secret";
// "whsec_" + base64("fuzz-secret")
const WHSEC: &str = "whsec_ZnV6ei1zZWNyZXQ=";
const BASE: i64 = 1_700_000_000;

const RAW_HEADERS: [&str; 10] = [
    "x-hub-signature-256",
    "stripe-signature",
    "x-shopify-hmac-sha256",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-signature",
    "x-signature-timestamp",
];

/// `X-Signature: sha256=<hex>` over `<X-Signature-Timestamp>.<body>`.
fn hmac_timestamped() -> Scheme {
    Scheme::Hmac(HmacScheme {
        header: HeaderName::from_static("x-signature"),
        algorithm: Algorithm::Sha256,
        encoding: Encoding::Hex,
        prefix: Some("sha256=".into()),
        timestamp_header: Some(HeaderName::from_static("x-signature-timestamp")),
        timestamp_separator: ".".into(),
    })
}

/// `X-Signature: <base64>` (SHA-512) over the body alone.
fn hmac_plain() -> Scheme {
    Scheme::Hmac(HmacScheme {
        header: HeaderName::from_static("x-signature"),
        algorithm: Algorithm::Sha512,
        encoding: Encoding::Base64,
        prefix: None,
        timestamp_header: None,
        timestamp_separator: String::new(),
    })
}

fn schemes() -> Vec<(Scheme, &'static str)> {
    vec![
        (Scheme::Github, SECRET),
        (Scheme::Stripe, SECRET),
        (Scheme::Shopify, SECRET),
        (Scheme::Slack, SECRET),
        (Scheme::StandardWebhooks, WHSEC),
        (hmac_timestamped(), SECRET),
        (hmac_plain(), SECRET),
    ]
}

fn at(secs: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

fn sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    parts.iter().for_each(|p| mac.update(p));
    mac.finalize().into_bytes().to_vec()
}

fn sha512(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
    parts.iter().for_each(|p| mac.update(p));
    mac.finalize().into_bytes().to_vec()
}

fn put(headers: &mut HeaderMap, name: &'static str, value: &[u8], twice: bool) {
    let Ok(value) = HeaderValue::from_bytes(value) else { return };
    headers.append(name, value.clone());
    if twice {
        headers.append(name, value);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut prefix = [0u8; 11];
    let n = data.len().min(prefix.len());
    prefix[..n].copy_from_slice(&data[..n]);
    let rest = &data[n..];
    let flags = prefix[0];
    let (twice, signed, absolute) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
    let raw_now = i64::from_le_bytes(prefix[1..9].try_into().unwrap());
    let tolerance = Duration::from_secs(u64::from(u16::from_le_bytes([prefix[9], prefix[10]])));

    let pieces_wanted = if signed { 3 } else { RAW_HEADERS.len() };
    let mut pieces = Vec::with_capacity(pieces_wanted);
    let mut body = rest;
    while pieces.len() < pieces_wanted {
        match body.iter().position(|&b| b == b'\n') {
            Some(i) => {
                pieces.push(&body[..i]);
                body = &body[i + 1..];
            }
            None => {
                pieces.push(body);
                body = &[];
            }
        }
    }

    if !signed {
        let mut headers = HeaderMap::new();
        for (name, value) in RAW_HEADERS.iter().zip(&pieces) {
            if !value.is_empty() {
                put(&mut headers, name, value, twice);
            }
        }
        let now_secs = if absolute { raw_now } else { BASE + i64::from(raw_now as i16) };
        let Some(now) = at(now_secs) else { return };
        for (scheme, secret) in schemes() {
            let verifier = Verifier::new(scheme, vec![Secret::new(secret)], tolerance, Mode::Enforce).expect("valid secret");
            let _ = verifier.verify(&headers, body, now);
            let _ = verifier.scheme().delivery_id(&headers, body);
        }
        return;
    }

    // "signed": correct signatures over the fuzzed timestamp, id and body.
    let (ts_raw, id_raw, junk) = (pieces[0], pieces[1], pieces[2]);
    let Ok(ts_value) = HeaderValue::from_bytes(ts_raw) else { return };
    let Ok(id_value) = HeaderValue::from_bytes(id_raw) else { return };
    // The verifiers sign the trimmed text of the header; non-ASCII text is malformed before any MAC.
    let (Ok(ts), Ok(id)) = (ts_value.to_str().map(str::trim), id_value.to_str().map(str::trim)) else { return };
    let parsed = (!ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit())).then(|| ts.parse::<i64>().ok());
    let now_secs = match (absolute, parsed) {
        (true, _) => raw_now,
        (false, Some(Some(t))) => t.saturating_add(i64::from(raw_now as i16)),
        (false, _) => BASE + i64::from(raw_now as i16),
    };
    let Some(now) = at(now_secs) else { return };
    // What every timestamped scheme must answer, computed independently of the crate.
    let expected_timed = match parsed {
        None => "malformed",
        Some(None) => "malformed",
        Some(Some(t)) if (i128::from(t) - i128::from(now_secs)).unsigned_abs() <= u128::from(tolerance.as_secs()) => "ok",
        Some(Some(_)) => "stale",
    };
    // Printable ASCII only, so every header built below is one `HeaderValue::from_bytes` accepts.
    let junk: String = junk.iter().filter(|b| (b' '..=b'~').contains(b)).map(|&b| char::from(b)).collect();
    let key = SECRET.as_bytes();
    let whsec_key = STANDARD.decode(&WHSEC["whsec_".len()..]).unwrap();

    let mut headers = HeaderMap::new();
    let github = format!("sha256={}", hex::encode(sha256(key, &[body])));
    put(&mut headers, "x-hub-signature-256", github.as_bytes(), twice);
    // Junk goes first as its own `v1` entry; with a comma it could forge a second `t`, so leave it out then.
    let junk_v1 = if junk.contains(',') { String::new() } else { format!("v1={junk},") };
    let stripe = format!("t={ts},{junk_v1}v1={}", hex::encode(sha256(key, &[ts.as_bytes(), b".", body])));
    put(&mut headers, "stripe-signature", stripe.as_bytes(), twice);
    put(&mut headers, "x-shopify-hmac-sha256", STANDARD.encode(sha256(key, &[body])).as_bytes(), twice);
    let slack = format!("v0={}", hex::encode(sha256(key, &[b"v0:", ts.as_bytes(), b":", body])));
    put(&mut headers, "x-slack-signature", slack.as_bytes(), twice);
    put(&mut headers, "x-slack-request-timestamp", ts.as_bytes(), twice);
    put(&mut headers, "webhook-id", id.as_bytes(), twice);
    put(&mut headers, "webhook-timestamp", ts.as_bytes(), twice);
    let standard = STANDARD.encode(sha256(&whsec_key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]));
    put(&mut headers, "webhook-signature", format!("v1,{junk} v1,{standard}").as_bytes(), twice);
    put(&mut headers, "x-signature-timestamp", ts.as_bytes(), twice);

    for (scheme, secret) in schemes() {
        let mut headers = headers.clone();
        match &scheme {
            Scheme::Hmac(h) if h.timestamp_header.is_some() => {
                let tag = format!("sha256={}", hex::encode(sha256(key, &[ts.as_bytes(), b".", body])));
                put(&mut headers, "x-signature", tag.as_bytes(), twice);
            }
            Scheme::Hmac(_) => put(&mut headers, "x-signature", STANDARD.encode(sha512(key, &[body])).as_bytes(), twice),
            _ => {}
        }
        let name = scheme.name();
        let timed = !matches!(&scheme, Scheme::Github | Scheme::Shopify)
            && !matches!(&scheme, Scheme::Hmac(h) if h.timestamp_header.is_none());
        let verifier = Verifier::new(scheme, vec![Secret::new(secret)], tolerance, Mode::Enforce).expect("valid secret");
        let result = verifier.verify(&headers, body, now);
        let got = match &result {
            // A header sent twice is refused before anything else.
            Err(VerifyError::Malformed(why)) if twice && why.contains("more than once") => continue,
            Ok(()) => "ok",
            Err(VerifyError::Stale { .. }) => "stale",
            Err(VerifyError::Malformed(_)) => "malformed",
            Err(_) => "other",
        };
        // A comma in a bad `t` makes Stripe read a different (maybe valid) `t` than the one signed.
        if matches!(verifier.scheme(), Scheme::Stripe) && parsed.is_none() && ts.contains(',') {
            continue;
        }
        let expected = if timed { expected_timed } else { "ok" };
        assert_eq!(got, expected, "{name}: {result:?} (ts {ts:?}, id {id:?}, now {now_secs}, tolerance {tolerance:?})");
    }
});
