//! The `strangler` binary: `check-config` messages, every shipped config file, and `run` on the
//! embedded broker read by a separate consumer.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::{Method, StatusCode};
use rdkafka::message::Message;

use crate::harness::{eventually, post, send};
use crate::sign;
use crate::support::kafka::{consume, header};

const BIN: &str = env!("CARGO_BIN_EXE_strangler");
const ALL_SECRETS: [(&str, &str); 9] = [
    ("STRANGLER_TOKEN_ALICE", "alice-token-0123456789"),
    ("GH_SECRET", "a"),
    ("GH_SECRET_OLD", "b"),
    ("STRIPE_SECRET", "whsec_x"),
    ("SHOPIFY_SECRET", "c"),
    ("SLACK_SECRET", "d"),
    ("BILLING_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("PARTNER_SECRET", "e"),
    ("UNUSED", "f"),
];

fn check(file: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(BIN).arg("check-config").arg(file).env_clear().envs(env.iter().copied()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_file_under_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (ok, err) = check(&path, &ALL_SECRETS);
            assert!(ok, "{}: {err}", path.display());
            n += 1;
        }
    }
    assert!(n >= 2);
}

const BASE: &str = "[legacy]\nurl = \"http://127.0.0.1:3000\"\n\n[[route]]\nname = \"github\"\nmatch = { path = \"/webhooks/github\" }\ntopic = \"webhooks.github\"\nsignature = { scheme = \"github\", secrets_env = [\"GH_SECRET\"] }\n";

#[test]
fn invalid_files_name_the_file_line_key_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, &str, &[&str])> = vec![
        ("unknown key", BASE.replace("topic =", "topik ="), ":7:", &["route[0]", "unknown field `topik`"]),
        ("bad url", BASE.replace("http://127.0.0.1:3000", "localhost:3000"), ":2:", &["legacy.url", "expected an http:// URL", "found `localhost:3000`"]),
        ("https url with a path", BASE.replace("http://127.0.0.1:3000", "https://legacy/base"), ":2:", &["legacy.url", "found `https://legacy/base`"]),
        ("duplicate name", format!("{BASE}\n[[route]]\nname = \"github\"\nmatch = {{ path = \"/other\" }}\ntopic = \"t\"\nsignature = {{ scheme = \"github\", secrets_env = [\"GH_SECRET\"] }}\n"), ":11:", &["route[1].name", "duplicate `github`"]),
        ("duplicate path", format!("{BASE}\n[[route]]\nname = \"two\"\nmatch = {{ path = \"/webhooks/github\" }}\ntopic = \"t\"\nsignature = {{ scheme = \"github\", secrets_env = [\"GH_SECRET\"] }}\n"), ":12:", &["route[1].match.path", "`POST /webhooks/github`, which overlaps `POST /webhooks/github` of route `github`"]),
        ("missing env", BASE.replace("[\"GH_SECRET\"]", "[\"GH_SECRET\", \"GH_MISSING\"]"), ":8:", &["route[0].signature.secrets_env[1]", "GH_MISSING to be set", "found it unset"]),
        ("type mismatch", format!("[server]\nmax_body_bytes = \"big\"\n{BASE}"), ":2:", &["server.max_body_bytes", "invalid type: string \"big\", expected u64"]),
        ("bad scheme", BASE.replace("scheme = \"github\"", "scheme = \"gitlab\""), ":8:", &["route[0].signature.scheme", "found `gitlab`"]),
        ("bad mode", BASE.replace("secrets_env = [\"GH_SECRET\"]", "secrets_env = [\"GH_SECRET\"], mode = \"strict\""), ":8:", &["route[0].signature.mode", "unknown variant `strict`"]),
        ("hmac key on github", BASE.replace("secrets_env = [\"GH_SECRET\"]", "secrets_env = [\"GH_SECRET\"], encoding = \"hex\""), ":8:", &["route[0].signature.encoding", "only with scheme = \"hmac\""]),
    ];
    for (name, src, line, needles) in cases {
        let file = dir.path().join(format!("{}.toml", name.replace(' ', "_")));
        std::fs::write(&file, &src).unwrap();
        let (ok, err) = check(&file, &[("GH_SECRET", "s")]);
        assert!(!ok, "{name}: accepted\n{src}");
        assert!(err.contains(&format!("{}{line}", file.display())), "{name}: wants file and line {line} in: {err}");
        for needle in needles {
            assert!(err.contains(needle), "{name}: wants `{needle}` in: {err}");
        }
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("std.toml");
    std::fs::write(&file, BASE.replace("scheme = \"github\"", "scheme = \"standard-webhooks\"")).unwrap();
    let (ok, err) = check(&file, &[("GH_SECRET", "super-secret-value")]);
    assert!(!ok);
    assert!(err.contains("whsec_"), "{err}");
    assert!(!err.contains("super-secret-value"), "{err}");
}

/// Kills the child if a test fails half-way.
pub struct Proc(pub Child);

impl Proc {
    /// Sends `signal` (e.g. `-TERM`) and returns whether the child exited with success within `within`.
    pub async fn stop(&mut self, signal: &str, within: Duration) -> bool {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
        let exited = eventually(within, || {
            let done = matches!(self.0.try_wait(), Ok(Some(_)));
            async move { done }
        })
        .await;
        assert!(exited, "did not stop within {within:?} of {signal}");
        self.0.try_wait().unwrap().is_some_and(|status| status.success())
    }
}
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_default_runs_from_one_route_and_a_separate_process_consumes_it() {
    let monolith = strangler::demo::monolith::Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("embedded.toml");
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/embedded.toml")).unwrap();
    let src = src.replace("http://127.0.0.1:3000", &monolith.url());
    std::fs::write(&file, format!("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{src}")).unwrap();

    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "run", "--config"])
        .arg(&file)
        .env("GH_SECRET", "embedded-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let mut proc = Proc(child);
    let lines =
        tokio::task::spawn_blocking(move || stdout.lines().take(3).map(Result::unwrap).collect::<Vec<_>>()).await.unwrap();
    let field = |prefix: &str| {
        lines.iter().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no `{prefix}` in {lines:?}")).to_string()
    };
    let public = field("strangler listening on ");
    let admin = field("strangler admin on ").replace("/metrics", "");
    let bootstrap = field("strangler kafka bootstrap ");
    assert!(bootstrap.contains("NOT DURABLE") || bootstrap.contains("NOTHING IS DURABLE"), "{bootstrap}");
    let bootstrap = bootstrap.split_whitespace().next().unwrap().to_string();

    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let mut headers = sign::github("embedded-secret", body);
    headers.push(("X-GitHub-Delivery".into(), "embedded-1".into()));
    headers.push(("X-GitHub-Event".into(), "ping".into()));
    let reply = post(&format!("http://{public}/webhooks/github"), &headers, &body[..]).await;
    assert_eq!(reply.status, StatusCode::OK);

    // This test process is the separate consumer, reading from the printed address only.
    let msgs = consume(&bootstrap, "webhooks.github", 1, Duration::from_secs(20)).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload(), Some(&body[..]));
    assert_eq!(header(&msgs[0], "ce_id").as_deref(), Some("embedded-1"));
    assert_eq!(header(&msgs[0], "ce_type").as_deref(), Some("com.github.ping"));

    let ready = send(Method::GET, &format!("{admin}/readyz"), &[], "").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["durable"], false);
    assert!(ready.json()["warning"].as_str().unwrap().contains("nothing is durable"));

    // SIGTERM: drains, flushes and exits 0 on its own.
    assert!(proc.stop("-TERM", Duration::from_secs(30)).await, "exit status 0");
    let log = std::io::read_to_string(stderr).unwrap();
    let records: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let said = |text: &str| records.iter().any(|r| r["message"].as_str().is_some_and(|m| m.contains(text)));
    assert!(said("NOTHING IS DURABLE"), "start-up warning: {log}");
    assert!(said("strangler stopped"), "{log}");
}

#[test]
fn check_config_refuses_blank_and_short_secrets_and_warns_about_weak_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.toml");
    std::fs::write(&file, BASE).unwrap();
    for (secret, found) in [("", "found it empty"), ("  \t", "found only whitespace")] {
        let (ok, err) = check(&file, &[("GH_SECRET", secret)]);
        assert!(!ok, "{secret:?} accepted");
        assert!(err.contains(&format!("{}:8:", file.display())) && err.contains("route[0].signature.secrets_env[0]"), "{err}");
        assert!(err.contains(found), "{err}");
    }
    let std = dir.path().join("std.toml");
    std::fs::write(&std, BASE.replace("scheme = \"github\"", "scheme = \"standard-webhooks\"")).unwrap();
    let (ok, err) = check(&std, &[("GH_SECRET", "whsec_c3RyYW5nbGVyLW90aGVyLXNlY3JldA==")]);
    assert!(!ok && err.contains("at least 24 bytes") && err.contains("found a key of 22 bytes"), "{err}");
    assert!(!err.contains("c3RyYW5nbGVy"), "the secret leaked: {err}");

    // Weak: accepted (exit 0, `ok` on stdout), with a warning line on stderr naming file, line and key.
    let out = Command::new(BIN).arg("check-config").arg(&file).env_clear().env("GH_SECRET", "short").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok (1 route(s))"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:8:", file.display());
    assert!(
        stderr.lines().any(|l| l.starts_with(&expected)
            && l.contains("warning: key `route[0].signature.secrets_env[0]`")
            && l.contains("found 5 bytes in environment variable GH_SECRET")),
        "{stderr}"
    );
    assert!(!stderr.contains("short"), "the secret leaked: {stderr}");
}

#[test]
fn run_refuses_a_blank_secret_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blank.toml");
    std::fs::write(&file, BASE).unwrap();
    let out = Command::new(BIN).args(["run", "--config"]).arg(&file).env_clear().env("GH_SECRET", " ").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:8:", file.display())) && stderr.contains("route[0].signature.secrets_env[0]"),
        "{stderr}"
    );
    assert!(stderr.contains("found only whitespace"), "{stderr}");
}
