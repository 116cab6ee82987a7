//! `kafka.security_protocol`, `[kafka.tls]` and `[kafka.sasl]`: how strangler's Kafka clients
//! authenticate, validated and translated to librdkafka properties.
//!
//! The properties go first into `Kafka::librdkafka`, which every client strangler builds
//! (producers, consumers, the admin client) applies; the operator's `[kafka.librdkafka]` goes
//! after them and so still overrides. Validation reads the certificate files (so a typo in a path
//! fails `check-config`, not the first connection) and the password's environment variable.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::validate::EnvLookup;
use super::ConfigError;

/// `[kafka.tls]`: the CA to trust and an optional client certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafkaTls {
    /// PEM file of the CA(s) the brokers' certificates chain to. Absent: the system's store.
    pub ca: Option<String>,
    /// PEM client certificate, for brokers that authenticate clients by certificate.
    pub cert: Option<String>,
    /// PEM private key of `cert`.
    pub key: Option<String>,
}

/// `[kafka.sasl]`: the SASL login. The password comes from an environment variable.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafkaSasl {
    pub mechanism: String,
    pub username: String,
    /// The NAME of the environment variable holding the password.
    pub password_env: Option<String>,
    /// Refused with a message: accepted by the parser only so the error can say what to do.
    pub password: Option<toml::Value>,
}

const PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Validates the security settings of `[kafka]` and returns the librdkafka properties they mean
/// (empty for plaintext). `embedded`: no `kafka.brokers` (the embedded broker speaks plaintext).
pub(super) fn properties(
    protocol: &str,
    tls: Option<&RawKafkaTls>,
    sasl: Option<&RawKafkaSasl>,
    embedded: bool,
    env: EnvLookup<'_>,
    errs: &mut Vec<ConfigError>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let protocol = protocol.to_ascii_lowercase();
    if !PROTOCOLS.contains(&protocol.as_str()) {
        let expected = "one of `plaintext`, `ssl`, `sasl_plaintext`, `sasl_ssl`";
        errs.push(ConfigError::new("kafka.security_protocol", expected, format!("`{protocol}`")));
        return out;
    }
    let uses_tls = protocol.ends_with("ssl");
    let uses_sasl = protocol.starts_with("sasl_");
    if embedded && protocol != "plaintext" {
        let expected = "`plaintext` when kafka.brokers is not set (the embedded broker speaks plaintext only)";
        errs.push(ConfigError::new("kafka.security_protocol", expected, format!("`{protocol}`")));
    }
    if protocol != "plaintext" {
        out.insert("security.protocol".into(), protocol.clone());
    }
    match tls {
        Some(_) if !uses_tls => errs.push(ConfigError::new(
            "kafka.tls",
            "no [kafka.tls] unless kafka.security_protocol is `ssl` or `sasl_ssl`",
            format!("[kafka.tls] with security_protocol `{protocol}` (it would be ignored)"),
        )),
        Some(t) => tls_properties(t, &mut out, errs),
        None if uses_tls => {
            // librdkafka looks for the system's CA bundle in the usual places.
            out.insert("ssl.ca.location".into(), "probe".into());
        }
        None => {}
    }
    match sasl {
        None if uses_sasl => errs.push(ConfigError::new(
            "kafka.security_protocol",
            "a [kafka.sasl] table (mechanism, username, password_env) with a sasl_* protocol",
            format!("`{protocol}` and no [kafka.sasl]"),
        )),
        Some(_) if !uses_sasl => errs.push(ConfigError::new(
            "kafka.sasl",
            "no [kafka.sasl] unless kafka.security_protocol is `sasl_plaintext` or `sasl_ssl`",
            format!("[kafka.sasl] with security_protocol `{protocol}` (it would be ignored)"),
        )),
        Some(s) => sasl_properties(s, env, &mut out, errs),
        None => {}
    }
    out
}

fn tls_properties(t: &RawKafkaTls, out: &mut BTreeMap<String, String>, errs: &mut Vec<ConfigError>) {
    match &t.ca {
        Some(ca) => {
            if pem_file("kafka.tls.ca", ca, "CERTIFICATE", errs) {
                out.insert("ssl.ca.location".into(), ca.clone());
            }
        }
        None => {
            out.insert("ssl.ca.location".into(), "probe".into());
        }
    }
    match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => {
            if pem_file("kafka.tls.cert", cert, "CERTIFICATE", errs) {
                out.insert("ssl.certificate.location".into(), cert.clone());
            }
            if pem_file("kafka.tls.key", key, "PRIVATE KEY", errs) {
                out.insert("ssl.key.location".into(), key.clone());
            }
        }
        (None, None) => {}
        (Some(_), None) => errs.push(ConfigError::new("kafka.tls.cert", "kafka.tls.key with kafka.tls.cert", "no key")),
        (None, Some(_)) => errs.push(ConfigError::new("kafka.tls.key", "kafka.tls.cert with kafka.tls.key", "no cert")),
    }
}

/// True when `path` is readable and holds a PEM block whose label ends with `label`.
fn pem_file(key: &str, path: &str, label: &str, errs: &mut Vec<ConfigError>) -> bool {
    let what = if label == "CERTIFICATE" { "a PEM certificate" } else { "a PEM private key" };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let found = text.lines().any(|l| l.starts_with("-----BEGIN ") && l.trim_end().ends_with(&format!("{label}-----")));
            if !found {
                errs.push(ConfigError::new(key, format!("a file holding {what}"), format!("{path} without one")));
            }
            found
        }
        Err(e) => {
            errs.push(ConfigError::new(key, format!("a readable file holding {what}"), format!("{path}: {e}")));
            false
        }
    }
}

fn sasl_properties(s: &RawKafkaSasl, env: EnvLookup<'_>, out: &mut BTreeMap<String, String>, errs: &mut Vec<ConfigError>) {
    let mechanism = s.mechanism.to_ascii_uppercase();
    if MECHANISMS.contains(&mechanism.as_str()) {
        out.insert("sasl.mechanisms".into(), mechanism);
    } else {
        let expected = "one of `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`";
        errs.push(ConfigError::new("kafka.sasl.mechanism", expected, format!("`{}`", s.mechanism)));
    }
    if s.username.is_empty() {
        errs.push(ConfigError::new("kafka.sasl.username", "a user name (or API key)", "an empty string"));
    } else {
        out.insert("sasl.username".into(), s.username.clone());
    }
    if s.password.is_some() {
        let expected = "no password in the file: set `password_env` to the name of an environment variable holding it";
        errs.push(ConfigError::new("kafka.sasl.password", expected, "a password in the file"));
        return;
    }
    match &s.password_env {
        None => errs.push(ConfigError::new(
            "kafka.sasl",
            "`password_env`: the name of the environment variable holding the password",
            "none",
        )),
        Some(var) => match env(var) {
            Some(v) if !v.is_empty() => {
                out.insert("sasl.password".into(), v);
            }
            _ => errs.push(ConfigError::new(
                "kafka.sasl.password_env",
                format!("environment variable {var} to be set"),
                "it unset or empty",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    //! SASL is tested here only, against the property translation: Tansu has no SASL.
    use super::super::load_str;

    const LEGACY: &str = "[legacy]\nurl = \"http://127.0.0.1:3000\"\n";

    fn load(kafka: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
        let src = format!("{LEGACY}[kafka]\nbrokers = \"b:9093\"\n{kafka}");
        let env = |var: &str| (var == "KAFKA_PASSWORD").then(|| "s3cr3t-key".to_string());
        load_str(&src, "f.toml", &env).map(|c| c.kafka.librdkafka).map_err(|e| e.to_string())
    }

    fn pem(dir: &std::path::Path, name: &str, label: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, format!("-----BEGIN {label}-----\nMIIB\n-----END {label}-----\n")).unwrap();
        path.display().to_string()
    }

    #[test]
    fn sasl_ssl_translates_to_librdkafka_properties_with_the_password_from_env() {
        let got = load(
            "security_protocol = \"SASL_SSL\"\n[kafka.sasl]\nmechanism = \"scram-sha-512\"\nusername = \"key\"\n\
             password_env = \"KAFKA_PASSWORD\"\n[kafka.librdkafka]\n\"sasl.username\" = \"override\"\n",
        )
        .unwrap();
        let want = [
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.password", "s3cr3t-key"),
            ("sasl.username", "override"),
            ("security.protocol", "sasl_ssl"),
            ("ssl.ca.location", "probe"),
        ];
        assert_eq!(got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), want);

        // The configuration's Debug (what a log line or a panic would print) hides the password.
        let src = format!(
            "{LEGACY}[kafka]\nbrokers = \"b:9093\"\nsecurity_protocol = \"sasl_plaintext\"\n[kafka.sasl]\n\
             mechanism = \"PLAIN\"\nusername = \"key\"\npassword_env = \"KAFKA_PASSWORD\"\n"
        );
        let cfg = load_str(&src, "f.toml", &|_: &str| Some("s3cr3t-key".to_string())).unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t-key") && shown.contains("\"sasl.password\": \"<redacted>\""), "{shown}");
    }

    #[test]
    fn plaintext_adds_no_property_and_tls_files_become_locations() {
        assert!(load("").unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = (
            pem(dir.path(), "ca.pem", "CERTIFICATE"),
            pem(dir.path(), "c.pem", "CERTIFICATE"),
            pem(dir.path(), "k.pem", "PRIVATE KEY"),
        );
        let got = load(&format!("security_protocol = \"ssl\"\n[kafka.tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n"))
            .unwrap();
        assert_eq!(got["security.protocol"], "ssl");
        assert_eq!(got["ssl.ca.location"], ca);
        assert_eq!(got["ssl.certificate.location"], cert);
        assert_eq!(got["ssl.key.location"], key);
        assert!(!got.contains_key("sasl.password"));
    }

    #[test]
    fn refusals_name_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = pem(dir.path(), "ca.pem", "CERTIFICATE");
        let not_pem = dir.path().join("x.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let not_pem = not_pem.display().to_string();
        let sasl = "mechanism = \"PLAIN\"\nusername = \"u\"\n";
        let cases = [
            ("security_protocol = \"tls\"\n".to_string(), "f.toml:5:1: key `kafka.security_protocol`", "one of `plaintext`"),
            ("security_protocol = \"sasl_ssl\"\n".into(), "key `kafka.security_protocol`", "no [kafka.sasl]"),
            (format!("[kafka.tls]\nca = \"{ca}\"\n"), "f.toml:5:1: key `kafka.tls`", "it would be ignored"),
            (format!("security_protocol = \"sasl_plaintext\"\n[kafka.tls]\nca = \"{ca}\"\n[kafka.sasl]\n{sasl}password_env = \"KAFKA_PASSWORD\"\n"), "key `kafka.tls`", "sasl_plaintext"),
            (format!("security_protocol = \"ssl\"\n[kafka.sasl]\n{sasl}password_env = \"KAFKA_PASSWORD\"\n"), "key `kafka.sasl`", "it would be ignored"),
            (format!("security_protocol = \"sasl_ssl\"\n[kafka.sasl]\n{sasl}password = \"hunter2\"\n"), "f.toml:9:1: key `kafka.sasl.password`", "set `password_env`"),
            (format!("security_protocol = \"sasl_ssl\"\n[kafka.sasl]\n{sasl}password_env = \"UNSET_PW\"\n"), "f.toml:9:1: key `kafka.sasl.password_env`", "UNSET_PW to be set"),
            (format!("security_protocol = \"sasl_ssl\"\n[kafka.sasl]\n{sasl}"), "key `kafka.sasl`", "`password_env`"),
            ("security_protocol = \"sasl_ssl\"\n[kafka.sasl]\nmechanism = \"GSSAPI\"\nusername = \"u\"\npassword_env = \"KAFKA_PASSWORD\"\n".into(), "f.toml:7:1: key `kafka.sasl.mechanism`", "`SCRAM-SHA-256`"),
            ("security_protocol = \"ssl\"\n[kafka.tls]\nca = \"/nonexistent/ca.pem\"\n".into(), "f.toml:7:1: key `kafka.tls.ca`", "/nonexistent/ca.pem: No such file"),
            (format!("security_protocol = \"ssl\"\n[kafka.tls]\nca = \"{not_pem}\"\n"), "key `kafka.tls.ca`", "without one"),
            (format!("security_protocol = \"ssl\"\n[kafka.tls]\ncert = \"{ca}\"\n"), "key `kafka.tls.cert`", "no key"),
            (format!("security_protocol = \"ssl\"\n[kafka.tls]\ncert = \"{ca}\"\nkey = \"{ca}\"\n"), "key `kafka.tls.key`", "a PEM private key"),
        ];
        for (kafka, located, says) in cases {
            let err = load(&kafka).expect_err(&kafka);
            assert!(err.contains(located) && err.contains(says), "{kafka}\n=> {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let embedded = load_str(&format!("{LEGACY}[kafka]\nsecurity_protocol = \"ssl\"\n"), "f.toml", &|_| None);
        let err = embedded.expect_err("ssl without brokers").to_string();
        assert!(err.contains("key `kafka.security_protocol`") && err.contains("embedded broker"), "{err}");
    }
}
