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
    assert!(cfg.kafka.brokers.is_none(), "no brokers means the embedded broker");
    assert_eq!(cfg.kafka.partitions, 3);
    assert!(cfg.legacy.preserve_host);
}
