//! The operator CLI as an operator runs it: the `strangler` binary's `status`, `dial`, `mode`,
//! `rollback`, `rollout resume`, `audit` and `reload` against one real replica on a Tansu broker,
//! with their output and exit codes (0 ok, 1 refused, 2 usage, 3 unreachable).

use std::process::Command;
use std::time::Duration;

use crate::control::{control_config, start_replica, ALICE, ENV};
use crate::harness::eventually;
use crate::parity::deciding_monolith;
use crate::support::broker::Tansu;

const BIN: &str = env!("CARGO_BIN_EXE_strangler");
const WAIT: Duration = Duration::from_secs(60);

/// What one run of the binary printed, and how it exited.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `strangler ARGS` with only `env` set of the CLI's variables (none inherited from the shell).
async fn strangler(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("STRANGLER_ADMIN").env_remove("STRANGLER_ADMIN_TOKEN").envs(env.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run strangler")).await.unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `strangler ARGS --admin ADMIN` as alice.
async fn as_alice(admin: &str, args: &[&str]) -> Out {
    let args: Vec<&str> = args.iter().copied().chain(["--admin", admin]).collect();
    strangler(&args, &[("STRANGLER_ADMIN_TOKEN", ALICE)]).await
}

/// The orders route as `status --json` shows it.
async fn orders(admin: &str) -> serde_json::Value {
    let out = as_alice(admin, &["status", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let all: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    all["routes"].as_array().unwrap().iter().find(|r| r["name"] == "orders").cloned().expect("orders listed")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_cli_reads_changes_and_refuses_with_exit_codes() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strangler.toml");
    std::fs::write(&file, control_config(&monolith.url(), &tansu.brokers, "")).unwrap();
    let replica = start_replica(&file, &ENV, "cli").await;
    let admin = replica.admin.as_str();

    // A fresh route is in shadow: the monolith owns everything.
    let out = as_alice(admin, &["status"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split("  ").filter(|c| !c.is_empty()).map(str::trim).collect();
    assert_eq!(header, ["ROUTE", "MODE", "SHARE", "PARITY 5m", "SAMPLES", "NEW ERR", "GUARD", "ROLLOUT", "VERSION"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["orders", "shadow", "0%"], "{}", out.stdout);

    // A dial, then the state it put in force.
    let out = as_alice(admin, &["dial", "orders", "12.5", "--reason", "x"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let now = orders(admin).await;
    let version = now["version"].as_u64().unwrap();
    assert!(version > 0);
    assert_eq!((now["mode"].as_str(), now["share_percent"].as_f64()), (Some("split"), Some(12.5)));
    assert_eq!(out.stdout.trim(), format!("orders: split 12.5% (version {version}) by alice"));

    // Refusals by the server exit 1 and say why in plain words.
    let out = strangler(&["dial", "orders", "20", "--reason", "x", "--admin", admin], &[]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("strangler: refused (401 unauthorized): "), "{}", out.stderr);
    assert!(out.stderr.contains("STRANGLER_ADMIN_TOKEN"), "the hint names the variable: {}", out.stderr);
    let stale = (version - 1).to_string();
    let out = as_alice(admin, &["dial", "orders", "20", "--reason", "x", "--expected-version", &stale]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(&format!("refused (409 version_conflict): version {version} is in force")), "{}", out.stderr);
    let out = as_alice(admin, &["mode", "orders", "cutover", "--reason", "x", "--expected-version", &stale, "--json"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    let body: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("--json prints the refusal ({e}): {out:?}"));
    assert_eq!((body["error"]["code"].as_str(), body["error"]["version"].as_u64()), (Some("version_conflict"), Some(version)));
    let out = as_alice(admin, &["rollout", "resume", "orders"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("(409 no_rollout)"), "{}", out.stderr);
    assert_eq!(orders(admin).await["version"].as_u64(), Some(version), "nothing refused was applied");

    // The operator's mistakes exit 2, before any call.
    for args in [
        &["dial", "orders", "101", "--reason", "x"][..],
        &["dial", "orders", "abc", "--reason", "x"],
        &["dial", "orders", "-1", "--reason", "x"],
        &["dial", "orders", "12.5"],
        &["mode", "orders", "sideways", "--reason", "x"],
    ] {
        let out = as_alice(admin, args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
    }
    // https:// to a plain listener cannot reach it (exit 3); an unreadable CA file is a usage error.
    let out = strangler(&["status", "--admin", &admin.replace("http://", "https://")], &[]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    let out = strangler(&["status"], &[("STRANGLER_ADMIN_CA", "/nonexistent/ca.pem")]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("STRANGLER_ADMIN_CA: /nonexistent/ca.pem"), "{}", out.stderr);

    // Nothing listening exits 3 and names the URL; STRANGLER_ADMIN is read when --admin is not given.
    let out = strangler(&["status", "--admin", "http://127.0.0.1:1"], &[]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("cannot reach the admin API at http://127.0.0.1:1"), "{}", out.stderr);
    let out = strangler(&["status"], &[("STRANGLER_ADMIN", admin)]).await;
    assert_eq!(out.code, Some(0), "{out:?}");

    // A mode change with the version in force, then a rollback: shadow at 0 again.
    let v = version.to_string();
    let out = as_alice(admin, &["mode", "orders", "cutover", "--reason", "all in", "--expected-version", &v]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("orders: cutover 100%, dial kept at 12.5% (version "), "{}", out.stdout);
    let out = as_alice(admin, &["rollback", "orders", "--reason", "y"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("orders: shadow 0%"), "{}", out.stdout);
    let now = orders(admin).await;
    assert_eq!((now["mode"].as_str(), now["share_percent"].as_f64()), (Some("shadow"), Some(0.0)));

    // The audit trail is read back from its topic: every change, newest first, by alice.
    let audited = || async { as_alice(admin, &["audit", "orders"]).await.stdout.lines().count() == 4 };
    assert!(eventually(WAIT, audited).await, "{:?}", as_alice(admin, &["audit", "orders"]).await);
    let out = as_alice(admin, &["audit", "orders", "--limit", "10"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert!(rows[0].contains("orders") && rows[0].contains("alice") && rows[0].ends_with("  y"), "{}", out.stdout);
    assert!(rows[2].contains(&format!("shadow 0% v0 → split 12.5% v{version}")) && rows[2].ends_with("  x"), "{}", out.stdout);

    // Reloading the unchanged file changes nothing.
    let out = as_alice(admin, &["reload"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "reloaded: 1 route(s) in force: orders\nadded: none\nremoved: none\nrestart needed: none");
    drop(replica);
}
