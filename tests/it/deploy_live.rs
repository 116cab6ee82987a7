//! The container's moving parts, run for real without Docker: the Dockerfile's HEALTHCHECK
//! command against a running strangler's admin port, and `strangler sample-monolith`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use http::StatusCode;

use crate::harness::post;

const BIN: &str = env!("CARGO_BIN_EXE_strangler");

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `strangler ARGS` and returns it with its first stdout line starting with `prefix`.
fn spawn_until(args: &[&str], env: &[(&str, &str)], prefix: &str) -> (Proc, String) {
    let mut child =
        Command::new(BIN).args(args).envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let proc = Proc(child);
    // Blocks until the line is printed or the process exits (EOF): no timing involved.
    let line = stdout.lines().map_while(Result::ok).find_map(|l| l.strip_prefix(prefix).map(String::from));
    (proc, line.unwrap_or_else(|| panic!("strangler {args:?} exited without printing `{prefix}`")))
}

/// The HEALTHCHECK's CMD array, read from deploy/docker/Dockerfile.
fn healthcheck() -> Vec<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/docker/Dockerfile");
    let text = std::fs::read_to_string(file).unwrap().replace("\\\n", " ");
    let line = text.lines().find(|l| l.starts_with("HEALTHCHECK")).expect("a HEALTHCHECK");
    let cmd = line.split_once(" CMD ").expect("HEALTHCHECK ... CMD [...]").1.trim();
    serde_json::from_str(cmd).unwrap_or_else(|e| panic!("CMD is not an exec-form JSON array ({e}): {cmd}"))
}

fn run_healthcheck(admin_port: u16) -> bool {
    let cmd = healthcheck();
    Command::new(&cmd[0]).args(&cmd[1..]).env("STRANGLER_ADMIN_PORT", admin_port.to_string()).status().unwrap().success()
}

#[test]
fn dockerfile_healthcheck_passes_on_a_running_admin_port_and_fails_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("strangler.toml");
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/embedded.toml")).unwrap();
    std::fs::write(&file, format!("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{src}")).unwrap();
    let (proc, admin) = spawn_until(
        &["run", "--config", file.to_str().unwrap()],
        &[("GH_SECRET", "healthcheck-secret-0123456789")],
        "strangler admin on ",
    );
    let port: u16 = admin.trim_end_matches("/metrics").rsplit(':').next().unwrap().parse().unwrap();
    assert!(run_healthcheck(port), "HEALTHCHECK fails against a running strangler on {admin}");
    drop(proc);
    // Nothing listens there any more: the check must fail, not hang or pass.
    assert!(!run_healthcheck(port), "HEALTHCHECK passes with strangler stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_monolith_subcommand_answers_with_the_demo_decision() {
    let (mut proc, url) = spawn_until(&["sample-monolith", "--listen", "127.0.0.1:0"], &[], "sample monolith listening on ");
    let order = br#"{"id":"o-1","customer":"c-1","amount_cents":4200,"country":"US","amount":42}"#;
    let reply = post(&format!("{url}/webhooks/orders"), &[], &order[..]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), serde_json::json!({"order_id":"o-1","approved":true,"risk":"low","customer":"c-1"}));
    let reply = post(&format!("{url}/webhooks/orders"), &[], "not an order").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    // SIGTERM stops it with status 0.
    let pid = proc.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || proc.0.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status}");
}
