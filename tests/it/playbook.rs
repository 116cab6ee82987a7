//! docs/migration-playbook.md's "Try it on the demo" walk-through, run as a new user would: every
//! ```sh block of that section, as written, in one bash session with the built binary first on
//! PATH; after each phase the admin API must show what the page says.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use http::Method;
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::harness::{eventually, send};
use crate::support::broker::free_port;

const SECTION: &str = "## Try it on the demo";
/// One block may start the demo (embedded broker included) on a busy machine.
const BLOCK_DEADLINE: Duration = Duration::from_secs(240);

/// The ```sh blocks between the section's heading and the next `## ` heading.
fn walk_through_blocks(page: &str) -> Vec<String> {
    let start = page.find(SECTION).unwrap_or_else(|| panic!("the playbook has a `{SECTION}` section"));
    let rest = &page[start + SECTION.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block in `{SECTION}`");
    blocks
}

/// The `--reason "..."` texts of a block, in order.
fn reasons(block: &str) -> Vec<String> {
    block.split("--reason \"").skip(1).map(|r| r[..r.find('"').expect("closing quote")].to_string()).collect()
}

/// A bash session in its own process group: everything the page starts in the background dies
/// with it, whatever happens to the test.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: UnboundedReceiver<String>,
    transcript: String,
    dir: tempfile::TempDir,
}

impl Session {
    fn start(env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_strangler")).parent().unwrap().to_path_buf();
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("bash");
        cmd.current_dir(dir.path())
            .env("PATH", path)
            .env_remove("STRANGLER_ADMIN_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("bash runs");
        let mut stdin = child.stdin.take().unwrap();
        // Stop at the first command that fails, as a careful user would; show its stderr.
        writeln!(stdin, "set -e -o pipefail; exec 2>&1").unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session { child, stdin: Some(stdin), lines, transcript: String::new(), dir }
    }

    /// Types `block` and waits until bash has run all of it.
    async fn run(&mut self, n: usize, block: &str) {
        let done = format!("@@ playbook block {n} done");
        self.transcript.push_str(&format!("$ # block {n}\n{block}"));
        let stdin = self.stdin.as_mut().expect("the session is open");
        write!(stdin, "{block}\necho '{done}'\n").unwrap();
        stdin.flush().unwrap();
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                if line == done {
                    return true;
                }
                self.transcript.push_str(&line);
                self.transcript.push('\n');
            }
            false
        };
        let finished = tokio::time::timeout(BLOCK_DEADLINE, wait).await;
        if finished != Ok(true) {
            let log = std::fs::read_to_string(self.dir.path().join("demo.log")).unwrap_or_default();
            panic!(
                "block {n} of the playbook {} \n--- session ---\n{}\n--- demo.log ---\n{log}",
                if finished.is_err() { "did not finish within the deadline" } else { "failed (bash exited)" },
                self.transcript
            );
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

async fn route(admin: &str) -> Value {
    send(Method::GET, &format!("{admin}/api/routes/orders"), &[], "").await.json()
}

fn state(v: &Value) -> (Option<&str>, Option<f64>) {
    (v["mode"].as_str(), v["share_percent"].as_f64())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_user_goes_from_shadow_to_25_percent_and_back_with_the_pages_commands() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/migration-playbook.md")).unwrap();
    let blocks = walk_through_blocks(&page);
    let find = |needle: &str| {
        blocks.iter().position(|b| b.contains(needle)).unwrap_or_else(|| panic!("a block of `{SECTION}` runs `{needle}`"))
    };
    let (start, to_25, rollback, stop) =
        (find("strangler demo"), find("strangler dial orders 25"), find("strangler rollback orders"), find("kill"));
    assert!(start < to_25 && to_25 < rollback && rollback < stop, "the phases are in order: {blocks:?}");

    // The page's own way of moving off busy default ports: the same variables a user would set.
    let admin = format!("http://127.0.0.1:{}", free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let mut session = Session::start(&[("STRANGLER_ADMIN", admin.clone()), ("STRANGLER_DEMO_LISTEN", listen)]);
    let mut expected_reasons = Vec::new();
    for (n, block) in blocks.iter().enumerate() {
        session.run(n, block).await;
        expected_reasons.extend(reasons(block));
        if n == start {
            assert_eq!(state(&route(&admin).await), (Some("shadow"), Some(0.0)), "phase 0: the demo runs in shadow");
        } else if n == to_25 {
            let v = route(&admin).await;
            assert_eq!(state(&v), (Some("split"), Some(25.0)), "phase 2: split at 25 %: {v}");
            assert_eq!(v["by"], "demo", "the change is by the token the page exported: {v}");
        } else if n == rollback {
            assert_eq!(state(&route(&admin).await), (Some("shadow"), Some(0.0)), "phase 4: back to shadow at 0 %");
            // The entry goes through the audit topic, so it is there a moment after the change.
            let url = format!("{admin}/api/audit?route=orders");
            let audit_of = |v: &Value| -> Vec<String> {
                v["entries"].as_array().unwrap().iter().rev().filter_map(|e| e["reason"].as_str().map(String::from)).collect()
            };
            let all_there = || {
                let (url, want) = (url.clone(), expected_reasons.clone());
                async move { audit_of(&send(Method::GET, &url, &[], "").await.json()) == want }
            };
            let complete = eventually(Duration::from_secs(30), all_there).await;
            let audit = send(Method::GET, &url, &[], "").await.json();
            assert!(complete, "the audit trail holds every reason the page gave, in order: {expected_reasons:?}: {audit}");
            let entries = audit["entries"].as_array().unwrap();
            assert!(entries.iter().all(|e| e["by"] == "demo"), "{audit}");
            assert_eq!(entries[0]["new"]["mode"], "shadow", "newest first: the rollback: {audit}");
        }
    }
    assert!(expected_reasons.len() >= 3, "the page dials at least twice and rolls back: {expected_reasons:?}");
    assert!(session.transcript.contains("orders"), "`strangler status` printed the route:\n{}", session.transcript);

    // The page stopped the demo: its admin listener is gone.
    let addr = admin.trim_start_matches("http://").to_string();
    let gone = || {
        let addr = addr.clone();
        async move { tokio::net::TcpStream::connect(addr).await.is_err() }
    };
    assert!(eventually(Duration::from_secs(30), gone).await, "the demo stopped");
    // End of input: bash exits with the status of the page's last command.
    drop(session.stdin.take());
    let status = tokio::task::block_in_place(|| session.child.wait()).unwrap();
    assert!(status.success(), "the session ended cleanly: {status}");
}

#[test]
fn the_walk_through_blocks_are_found_and_reasons_read() {
    let page = "intro\n```sh\nnot this\n```\n## Try it on the demo\ntext\n```sh\na --reason \"x y\"\nb\n```\n\
                ```text\nno\n```\n```sh\nc --reason \"z\"\n```\n## Next\n```sh\nnot this either\n```\n";
    let blocks = walk_through_blocks(page);
    assert_eq!(blocks, ["a --reason \"x y\"\nb\n", "c --reason \"z\"\n"]);
    assert_eq!(reasons(&blocks[0]), ["x y"]);
}
