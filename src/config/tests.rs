//! Table tests for validation rules that the CLI tests do not reach.

use super::load_str;

const HEAD: &str = "[legacy]\nurl = \"http://127.0.0.1:3000\"\n";

fn route(signature: &str, event: &str) -> String {
    format!("{HEAD}[[route]]\nname = \"r\"\nmatch = {{ path = \"/r\" }}\ntopic = \"t\"\nsignature = {{ {signature} }}\nevent = {{ {event} }}\n")
}

fn errors(src: &str) -> String {
    match load_str(src, "f.toml", &|var| (var != "UNSET").then(|| "s3cr3t".to_string())) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn each_rule_names_its_key() {
    let gh = "scheme = \"github\", secrets_env = [\"S\"]";
    let cases = [
        (
            route(gh, "key_pointer = \"/a\", key_header = \"X-A\""),
            "route[0].event.key_pointer",
            "either key_header or key_pointer",
        ),
        (route(gh, "id_pointer = \"a\""), "route[0].event.id_pointer", "a JSON pointer"),
        (route(gh, "type = \"x\", type_pointer = \"/t\""), "route[0].event.type", "at most one"),
        (route(gh, "forward_headers = [\"bad header\"]"), "route[0].event.forward_headers[0]", "header name"),
        (route("scheme = \"hmac\", secrets_env = [\"S\"]", ""), "route[0].signature.header", "required with scheme"),
        (route("scheme = \"github\"", ""), "route[0].signature.secrets_env", "found none"),
        (route("scheme = \"github\", secrets_env = [\"UNSET\"]", ""), "route[0].signature.secrets_env[0]", "UNSET to be set"),
        (format!("[server]\nlisten = \"nowhere\"\n{HEAD}"), "server.listen", "an address"),
        (format!("[kafka]\npartitions = 0\n{HEAD}"), "kafka.partitions", "at least 1"),
        (
            format!("[server]\nmax_body_bytes = 2000\nmax_buffered_body_bytes = 1999\n{HEAD}"),
            "server.max_buffered_body_bytes",
            "at least server.max_body_bytes (2000)",
        ),
        (
            format!(
                "{HEAD}[[route]]\nname = \"a b\"\nmatch = {{ path = \"r\" }}\ntopic = \"bad topic\"\nsignature = {{ {gh} }}\n"
            ),
            "route[0].name",
            "letters",
        ),
        (
            format!("{HEAD}[[route]]\nname = \"a\"\nmatch = {{ path = \"r\" }}\ntopic = \"t\"\nsignature = {{ {gh} }}\n"),
            "route[0].match.path",
            "absolute path",
        ),
        (
            format!(
                "{HEAD}[[route]]\nname = \"a\"\nmatch = {{ path = \"/r\" }}\ntopic = \"bad topic\"\nsignature = {{ {gh} }}\n"
            ),
            "route[0].topic",
            "Kafka topic name",
        ),
        (format!("{HEAD}upstream = 1\n"), "legacy.upstream", "unknown field"),
        (
            format!(
                "{HEAD}[[route]]\nname = \"a\"\nmatch = {{ path = \"/r\" }}\ntopic = \"strangler.dead-letter\"\nsignature = {{ {gh} }}\n"
            ),
            "route[0].topic",
            "other than strangler's own and the new services' (it is kafka.dead_letter_topic)",
        ),
        (
            format!(
                "[kafka]\nservice_topics = [\"decisions\"]\n{HEAD}[[route]]\nname = \"a\"\nmatch = {{ path = \"/r\" }}\ntopic = \"decisions\"\nsignature = {{ {gh} }}\n"
            ),
            "route[0].topic",
            "(it is kafka.service_topics)",
        ),
    ];
    for (src, key, text) in cases {
        let err = errors(&src);
        assert!(err.contains(&format!("key `{key}`")), "wants key {key} in: {err}\n{src}");
        assert!(err.contains(text), "wants `{text}` in: {err}");
        assert!(!err.contains("s3cr3t"), "a secret leaked: {err}");
    }
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let src = format!("[server]\nlisten = \"x\"\n[admin]\nlisten = \"y\"\n{HEAD}");
    let err = errors(&src);
    assert!(err.contains("f.toml:2:") && err.contains("f.toml:4:"), "{err}");
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let cfg = load_str(HEAD, "f.toml", &|_| None).unwrap();
    assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(cfg.admin.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(cfg.server.max_body_bytes, 1024 * 1024);
    assert_eq!(cfg.server.max_buffered_body_bytes, 64 * 1024 * 1024);
    assert!(cfg.kafka.brokers.is_none(), "no brokers means the embedded broker");
    assert_eq!(cfg.kafka.partitions, 3);
    assert!(cfg.legacy.preserve_host);
}

/// A valid route with `extra` lines added to its table.
fn with_control(extra: &str) -> String {
    format!("{}{extra}\n", route("scheme = \"github\", secrets_env = [\"S\"]", ""))
}

#[test]
fn guard_and_rollout_tables_become_specs() {
    use crate::route::assign::Share;
    use crate::route::{GuardAction, GuardSpec, RolloutSpec};
    use std::time::Duration;

    let specs = |extra: &str| {
        let cfg = load_str(&with_control(extra), "f.toml", &|_| Some("s".into())).unwrap_or_else(|e| panic!("{e}"));
        (cfg.routes[0].guard.clone(), cfg.routes[0].rollout.clone())
    };
    let steps = |percents: &[f64]| percents.iter().map(|&p| Share::from_percent(p).unwrap()).collect::<Vec<_>>();
    let (guard, rollout) = specs(
        "guard = { min_parity = 0.995, min_samples = 50, window = \"90s\", max_new_error_rate = 0.02, action = \"hold\" }\n\
         rollout = { steps = [1, 5, 12.5, 100], interval = \"1h 30m\" }",
    );
    let want = GuardSpec {
        min_parity: 0.995,
        min_samples: 50,
        window: Duration::from_secs(90),
        max_new_error_rate: 0.02,
        action: GuardAction::Hold,
    };
    assert_eq!(guard, Some(want));
    assert_eq!(rollout, Some(RolloutSpec { steps: steps(&[1.0, 5.0, 12.5, 100.0]), interval: Duration::from_secs(5400) }));

    let (guard, rollout) = specs("guard = {}\nrollout = { steps = [50] }");
    let defaults = GuardSpec {
        min_parity: 0.99,
        min_samples: 200,
        window: Duration::from_secs(300),
        max_new_error_rate: 0.01,
        action: GuardAction::Rollback,
    };
    assert_eq!(guard, Some(defaults));
    assert_eq!(rollout, Some(RolloutSpec { steps: steps(&[50.0]), interval: Duration::from_secs(600) }));

    assert_eq!(specs(""), (None, None), "neither table: no guard, no rollout");
}

#[test]
fn guard_and_rollout_errors_name_their_key() {
    #[rustfmt::skip]
    let cases = [
        ("guard = { min_parity = 1.5 }", "route[0].guard.min_parity", "expected a ratio from 0 to 1, found 1.5"),
        ("guard = { min_parity = nan }", "route[0].guard.min_parity", "a ratio from 0 to 1"),
        ("guard = { max_new_error_rate = -0.1 }", "route[0].guard.max_new_error_rate", "a ratio from 0 to 1, found -0.1"),
        ("guard = { min_samples = 0 }", "route[0].guard.min_samples", "a count of 1 or more"),
        ("guard = { window = \"soon\" }", "route[0].guard.window", "a duration above 0"),
        ("guard = { window = \"0s\" }", "route[0].guard.window", "found `0s`"),
        ("guard = { action = \"panic\" }", "route[0].guard.action", "unknown variant `panic`"),
        ("guard = { min_ratio = 0.9 }", "route[0].guard.min_ratio", "unknown field `min_ratio`"),
        ("rollout = { steps = [] }", "route[0].rollout.steps", "at least one step"),
        ("rollout = { interval = \"10m\" }", "route[0].rollout", "missing field `steps`"),
        ("rollout = { steps = [1, 5, 5] }", "route[0].rollout.steps[2]", "a step above the one before it, 5 (steps rise strictly), found 5"),
        ("rollout = { steps = [25, 5] }", "route[0].rollout.steps[1]", "above the one before it, 25 (steps rise strictly), found 5"),
        ("rollout = { steps = [0, 5] }", "route[0].rollout.steps[0]", "a percent above 0"),
        ("rollout = { steps = [1, 101] }", "route[0].rollout.steps[1]", "a percent from 0 to 100"),
        ("rollout = { steps = [1, 12.345] }", "route[0].rollout.steps[1]", "at most two decimals"),
        ("rollout = { steps = [1], interval = \"ten minutes\" }", "route[0].rollout.interval", "a duration above 0"),
        ("rollout = { steps = [1], pace = \"fast\" }", "route[0].rollout.pace", "unknown field `pace`"),
    ];
    for (extra, key, text) in cases {
        let err = errors(&with_control(extra));
        assert!(err.contains(&format!("key `{key}`")), "wants key {key} in: {err}\n{extra}");
        assert!(err.contains(text), "wants `{text}` in: {err}");
    }
}

/// Secrets: refused when empty, whitespace or (Standard Webhooks) under 24 bytes decoded; warned
/// about when an HMAC secret is under 16 bytes. Each names file, line and key, never the secret.
#[test]
fn blank_and_short_secrets_are_refused_and_weak_ones_warned_about() {
    let load = |scheme: &str, secret: &str| {
        let src = route(&format!("scheme = \"{scheme}\", secrets_env = [\"S\"]"), "");
        load_str(&src, "f.toml", &|_| Some(secret.to_string()))
    };
    let line = "f.toml:7:";
    for (scheme, secret, found) in [
        ("github", "", "found it empty"),
        ("stripe", " \t ", "found only whitespace"),
        ("standard-webhooks", "   ", "found only whitespace"),
        (
            "standard-webhooks",
            "whsec_c3RyYW5nbGVyLW90aGVyLXNlY3JldA==",
            "at least 24 bytes (the Standard Webhooks minimum), found a key of 22 bytes",
        ),
    ] {
        let err = load(scheme, secret).map(|_| ()).unwrap_err().to_string();
        assert!(err.starts_with(line) && err.contains("key `route[0].signature.secrets_env[0]`"), "{err}");
        assert!(err.contains(found), "{scheme} {secret:?}: {err}");
        assert!(secret.trim().is_empty() || !err.contains(secret), "a secret leaked: {err}");
    }

    let weak = load("github", "fifteen-bytes!!").unwrap();
    let warnings: Vec<String> = weak.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["f.toml:7:49: warning: key `route[0].signature.secrets_env[0]`: expected an HMAC secret of at least 16 bytes (32 random bytes or more is better), found 15 bytes in environment variable S"]
    );
    assert!(load("github", "sixteen-bytes!!!").unwrap().warnings.is_empty());
    assert!(load("standard-webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap().warnings.is_empty(), "24 bytes decoded");
}

#[test]
fn comparator_bounds_name_file_line_and_key() {
    let body = route("scheme = \"github\", secrets_env = [\"S\"]", "");
    #[rustfmt::skip]
    let cases = [
        ("max_pending = 0", "comparator.max_pending", "expected at least 1, found 0"),
        ("max_pending_bytes = 100", "comparator.max_pending_bytes", "expected at least 4608, found 100"),
        ("max_pending_bytes = 65536\nkeep_body_bytes = 8192", "comparator.keep_body_bytes", "at most a sixteenth of comparator.max_pending_bytes, found 8192"),
        ("max_pending = -1", "comparator.max_pending", "invalid value"),
        ("max_pending_entries = 5", "comparator.max_pending_entries", "unknown field `max_pending_entries`"),
    ];
    for (keys, key, text) in cases {
        let err = errors(&format!("[comparator]\n{keys}\n{body}"));
        assert!(err.contains(&format!("key `{key}`")), "wants key {key} in: {err}");
        assert!(err.contains(text), "wants `{text}` in: {err}");
        assert!(err.starts_with("f.toml:2:") || err.starts_with("f.toml:3:"), "names the line: {err}");
    }
    let ok = load_str(
        &format!("[comparator]\nmax_pending = 5\nmax_pending_bytes = 65536\nkeep_body_bytes = 0\n{body}"),
        "f.toml",
        &|_| Some("s3cr3t".into()),
    )
    .unwrap();
    assert_eq!(
        (ok.comparator.limits.max_pending, ok.comparator.limits.max_pending_bytes, ok.comparator.keep_body_bytes),
        (5, 65536, 0)
    );
    let defaults = load_str(&body, "f.toml", &|_| Some("s3cr3t".into())).unwrap().comparator;
    assert_eq!(
        (defaults.limits.max_pending, defaults.limits.max_pending_bytes, defaults.keep_body_bytes),
        (100_000, 32 << 20, 512)
    );
}
