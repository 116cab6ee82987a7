//! Cross-scheme tests of `Verifier`: modes, the typestate, redaction, construction and labels.

use std::time::Duration;

use super::common::testing::{at, headers};
use super::*;

fn enforcing(scheme: Scheme, secret: &str) -> Verifier {
    let secrets = vec![Secret::new(secret)];
    Verifier::new(scheme, secrets, Duration::from_secs(300), Mode::Enforce).expect("valid")
}

fn webhook(headers: http::HeaderMap, body: &'static [u8]) -> Webhook {
    Webhook {
        method: http::Method::POST,
        uri: http::Uri::from_static("/hooks/github"),
        headers,
        body: bytes::Bytes::from_static(body),
    }
}

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn github(mode: Mode, secrets: &[&str]) -> Verifier {
    let secrets = secrets.iter().map(|s| Secret::new(*s)).collect();
    Verifier::new(Scheme::Github, secrets, Duration::from_secs(300), mode).expect("valid")
}

fn good() -> Webhook {
    webhook(headers(&[("X-Hub-Signature-256", GITHUB_SIG)]), b"Hello, World!")
}

fn bad() -> Webhook {
    webhook(headers(&[("X-Hub-Signature-256", GITHUB_SIG)]), b"Hello, World?")
}

#[test]
fn enforce_rejects_failures_and_hands_the_webhook_back() {
    let v = github(Mode::Enforce, &[GITHUB_SECRET]);
    let verified = v.check(good(), at(0)).expect("valid signature");
    assert_eq!(verified.status(), &SignatureStatus::Valid);
    assert_eq!(verified.get().uri, "/hooks/github");
    let rejected = v.check(bad(), at(0)).expect_err("bad signature");
    assert_eq!(rejected.error, VerifyError::Mismatch);
    assert_eq!(rejected.webhook.body.as_ref(), b"Hello, World?");
}

#[test]
fn observe_lets_failures_through_with_the_reason() {
    let v = github(Mode::Observe, &[GITHUB_SECRET]);
    assert_eq!(v.check(good(), at(0)).expect("observe").status(), &SignatureStatus::Valid);
    let (webhook, status) = v.check(bad(), at(0)).expect("observe").into_parts();
    assert_eq!(status, SignatureStatus::Invalid(VerifyError::Mismatch));
    assert_eq!(status.label(), "invalid");
    assert_eq!(webhook.body.as_ref(), b"Hello, World?");
    let missing = webhook_without_headers();
    let status = v.check(missing, at(0)).expect("observe").into_parts().1;
    assert_eq!(status.label(), "invalid");
}

fn webhook_without_headers() -> Webhook {
    webhook(http::HeaderMap::new(), b"")
}

#[test]
fn off_checks_nothing_even_without_secrets() {
    for v in [github(Mode::Off, &[]), github(Mode::Off, &["wrong"])] {
        for w in [good(), bad(), webhook_without_headers()] {
            let status = v.check(w, at(0)).expect("off").into_parts().1;
            assert_eq!(status, SignatureStatus::Unchecked);
            assert_eq!(status.label(), "unchecked");
        }
    }
    let v = github(Mode::Off, &[]);
    assert_eq!(v.verify(&good().headers, b"Hello, World!", at(0)), Err(VerifyError::NoSecrets));
    assert_eq!(v.mode(), Mode::Off);
    assert_eq!(v.scheme().name(), "github");
}

#[test]
fn new_requires_secrets_unless_off() {
    for mode in [Mode::Enforce, Mode::Observe] {
        let result = Verifier::new(Scheme::Stripe, vec![], Duration::from_secs(300), mode);
        assert!(result.is_err(), "{mode:?}");
    }
    let result = Verifier::new(Scheme::Stripe, vec![], Duration::from_secs(300), Mode::Off);
    assert!(result.is_ok());
    let empty = vec![Secret::new("ok"), Secret::new("")];
    let err = Verifier::new(Scheme::Github, empty, Duration::from_secs(300), Mode::Enforce).expect_err("empty secret");
    assert!(err.contains("#2"), "{err}");
    let bad = vec![Secret::new("not-whsec")];
    let result = Verifier::new(Scheme::StandardWebhooks, bad, Duration::ZERO, Mode::Enforce);
    assert!(result.expect_err("bad whsec").contains("whsec_"));
}

#[test]
fn debug_output_never_contains_secrets() {
    let plain = "super-secret-value-123";
    let v = enforcing(Scheme::Github, plain);
    let debug = format!("{v:?}");
    assert!(!debug.contains(plain) && debug.contains("[redacted]"), "{debug}");
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let debug = format!("{:#?}", enforcing(Scheme::StandardWebhooks, whsec));
    assert!(!debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{debug}");
    assert!(!debug.contains("49, 242"), "decoded key bytes leaked: {debug}");
    let secret = Secret::new(plain);
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(format!("{secret}"), "[redacted]");
}

#[test]
fn labels_are_bounded() {
    let errors = [
        (VerifyError::MissingHeader("x".into()), "missing"),
        (VerifyError::Malformed("y".into()), "malformed"),
        (VerifyError::Stale { timestamp: 1, now: 2, tolerance_secs: 0 }, "stale"),
        (VerifyError::Mismatch, "mismatch"),
        (VerifyError::NoSecrets, "no_secret"),
    ];
    for (error, reason) in &errors {
        assert_eq!(error.reason(), *reason);
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(errors.map(|(_, r)| r), VerifyError::REASONS, "REASONS lists every reason");
    assert_eq!(SignatureStatus::Valid.label(), "valid");
}

#[test]
fn names_and_config_enums() {
    let names: Vec<_> = [Scheme::Github, Scheme::Stripe, Scheme::Shopify, Scheme::Slack, Scheme::StandardWebhooks]
        .iter()
        .map(Scheme::name)
        .collect();
    assert_eq!(names, ["github", "stripe", "shopify", "slack", "standard-webhooks"]);
    let modes: Vec<Mode> = serde_json::from_str(r#"["enforce","observe","off"]"#).expect("modes");
    assert_eq!(modes, [Mode::Enforce, Mode::Observe, Mode::Off]);
    let algorithm: Algorithm = serde_json::from_str(r#""sha512""#).expect("algorithm");
    assert_eq!(algorithm, Algorithm::Sha512);
    let encoding: Encoding = serde_json::from_str(r#""base64""#).expect("encoding");
    assert_eq!(encoding, Encoding::Base64);
    assert!(serde_json::from_str::<Mode>(r#""Enforce""#).is_err());
}

#[test]
fn clock_extremes_do_not_overflow() {
    let v = enforcing(Scheme::Slack, "secret");
    let h = headers(&[
        ("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
        ("X-Slack-Request-Timestamp", "9223372036854775807"),
    ]);
    for now in [at(i64::MIN / 2), at(0), std::time::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4)] {
        assert!(v.verify(&h, b"", now).is_err());
    }
}
