//! Test-side signers, written from each provider's documentation independently of `src/verify`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

fn hmac256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

pub fn github(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![("X-Hub-Signature-256".into(), format!("sha256={}", hex::encode(hmac256(secret.as_bytes(), &[body]))))]
}

pub fn stripe(secret: &str, t: i64, body: &[u8]) -> Vec<(String, String)> {
    let sig = hex::encode(hmac256(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]));
    vec![("Stripe-Signature".into(), format!("t={t},v1={sig}"))]
}

pub fn shopify(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![("X-Shopify-Hmac-Sha256".into(), B64.encode(hmac256(secret.as_bytes(), &[body])))]
}

pub fn slack(secret: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let sig = hex::encode(hmac256(secret.as_bytes(), &[b"v0:", ts.to_string().as_bytes(), b":", body]));
    vec![("X-Slack-Request-Timestamp".into(), ts.to_string()), ("X-Slack-Signature".into(), format!("v0={sig}"))]
}

pub fn standard(whsec: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let key = B64.decode(whsec.trim_start_matches("whsec_")).unwrap();
    let sig = B64.encode(hmac256(&key, &[id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body]));
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        ("webhook-signature".into(), format!("v1,{sig}")),
    ]
}

/// Generic HMAC-SHA512, base64, with prefix `v1=` and a `:`-separated timestamp.
pub fn partner(secret: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.to_string().as_bytes());
    mac.update(b":");
    mac.update(body);
    let sig = B64.encode(mac.finalize().into_bytes());
    vec![("X-Partner-Timestamp".into(), ts.to_string()), ("X-Partner-Signature".into(), format!("v1={sig}"))]
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
