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

/// The first ```sh block under `heading` in docs/quickstart-compose.md.
fn doc_block(heading: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/quickstart-compose.md")).unwrap();
    let section = doc.split_once(heading).unwrap_or_else(|| panic!("no `{heading}`")).1;
    section.split_once("```sh\n").unwrap().1.split_once("```").unwrap().0.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_signed_webhook_command_is_accepted_by_the_compose_config() {
    use strangler::demo::monolith::{Behaviour, Monolith};
    let monolith = Monolith::start_with("127.0.0.1:0".parse().unwrap(), Behaviour { decide: true, record: true }).await.unwrap();
    // The compose stack's strangler.toml, with local addresses, the embedded broker and a
    // temporary spool instead of the containers'.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cfg: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("deploy/compose/strangler.toml")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg["server"]["listen"] = "127.0.0.1:0".into();
    cfg["admin"]["listen"] = "127.0.0.1:0".into();
    cfg["legacy"]["url"] = monolith.url().into();
    cfg["spool"]["dir"] = dir.path().join("spool").to_str().unwrap().into();
    cfg.remove("kafka");
    let file = dir.path().join("strangler.toml");
    std::fs::write(&file, toml::to_string(&cfg).unwrap()).unwrap();
    // The compose file's defaults for the two secrets.
    let env = [
        ("ORDERS_SECRET", "local-orders-secret-not-for-production"),
        ("STRANGLER_TOKEN_OPERATOR", "local-operator-token-not-for-production"),
    ];
    let (_proc, public) = spawn_until(&["run", "--config", file.to_str().unwrap()], &env, "strangler listening on ");

    // The page's commands as written (ORDERS_SECRET unset: the compose default), at this address.
    let script = doc_block("## 2. Send a signed webhook").replace("http://localhost:8080", &format!("http://{public}"));
    let out = Command::new("bash").args(["-euc", &script]).env_remove("ORDERS_SECRET").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(answer, serde_json::json!({"order_id":"o-1","approved":true,"risk":"low","customer":"c-1"}));
    let got = monolith.received();
    assert_eq!(got.len(), 1, "the monolith got the signed webhook once");
    assert_eq!(got[0].headers["x-github-delivery"], "o-1");
}
