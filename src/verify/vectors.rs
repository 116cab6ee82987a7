//! The published signature vectors (`tests/vectors/signatures.json`) must verify, and must
//! be refused once outside their scheme's window.

use std::collections::BTreeMap;

use super::common::testing::{at, headers};
use super::*;

#[derive(Deserialize)]
struct Vector {
    secret: String,
    body: String,
    timestamp: Option<i64>,
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Vectors {
    github: Vec<Vector>,
    slack: Vec<Vector>,
    #[serde(rename = "standard-webhooks")]
    standard_webhooks: Vec<Vector>,
}

fn enforcing(scheme: Scheme, secret: &str) -> Verifier {
    let secrets = vec![Secret::new(secret)];
    Verifier::new(scheme, secrets, Duration::from_secs(300), Mode::Enforce).expect("valid")
}

#[test]
fn published_vectors_verify_inside_the_window_only() {
    let vectors: Vectors = serde_json::from_str(include_str!("../../tests/vectors/signatures.json")).expect("vector file parses");
    let all =
        [(Scheme::Github, vectors.github), (Scheme::Slack, vectors.slack), (Scheme::StandardWebhooks, vectors.standard_webhooks)];
    let mut checked = 0;
    for (scheme, list) in all {
        assert!(!list.is_empty(), "no {} vectors", scheme.name());
        for vector in list {
            let v = enforcing(scheme.clone(), &vector.secret);
            let pairs: Vec<(&str, &str)> = vector.headers.iter().map(|(k, val)| (k.as_str(), val.as_str())).collect();
            let h = headers(&pairs);
            let body = vector.body.as_bytes();
            let Some(t) = vector.timestamp else {
                for now in [0, 1_700_000_000, 4_000_000_000] {
                    assert_eq!(v.verify(&h, body, at(now)), Ok(()), "{}", scheme.name());
                }
                checked += 1;
                continue;
            };
            for skew in [0, -299, 299] {
                assert_eq!(v.verify(&h, body, at(t + skew)), Ok(()), "{} {skew}", scheme.name());
            }
            for skew in [-301, 301] {
                let result = v.verify(&h, body, at(t + skew));
                assert!(
                    matches!(result, Err(VerifyError::Stale { timestamp, .. }) if timestamp == t),
                    "{} {skew}: {result:?}",
                    scheme.name()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 3);
}
