//! Documentation stays true: every configuration key is in the reference.

use std::path::Path;

fn keys(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = v {
        for (k, v) in t {
            // librdkafka's own keys are passed through, not ours to document one by one.
            if prefix == "kafka.librdkafka" {
                return;
            }
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            out.push(path.clone());
            keys(&path, v, out);
        }
    } else if let toml::Value::Array(a) = v {
        for item in a {
            keys(prefix, item, out);
        }
    }
}

#[test]
fn configuration_reference_lists_every_key_of_every_shipped_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reference = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("config")).unwrap() {
        let path = entry.unwrap().path();
        let doc: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut all = Vec::new();
        keys("", &doc, &mut all);
        for k in all {
            // Tables are documented by their heading: `[server]`, `route.signature`, ...
            let documented = reference.contains(&format!("`{k}`"))
                || reference.contains(&format!("`[{k}]`"))
                || ["route", "route.match"].contains(&k.as_str());
            if !documented {
                missing.push(format!("{} ({})", k, path.display()));
            }
        }
    }
    assert!(missing.is_empty(), "keys missing from docs/configuration.md: {missing:?}");
}
