//! A strangler replica as a real process: the binary run with a config file, its addresses read
//! from the lines it prints, its log kept in a file, stopped with SIGTERM (killed on drop).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_strangler");

/// One running `strangler run` process.
pub struct Replica {
    child: Option<Child>,
    /// `host:port` of the public listener.
    pub public: String,
    /// `http://host:port` of the admin listener.
    pub admin: String,
    pub log: PathBuf,
}

impl Replica {
    /// Starts `strangler run --config file` with `env`, and waits until it prints its addresses
    /// (it prints them only once it has read the control topic and listens).
    pub fn start(file: &Path, env: &[(&str, &str)], log: PathBuf) -> Replica {
        let err = std::fs::File::create(&log).expect("replica log");
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(file)
            .envs(env.iter().copied())
            .env("RUST_LOG", "strangler=info")
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("spawn strangler");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            lines.push(line);
            if lines.len() == 3 {
                break;
            }
        }
        let field = |prefix: &str| lines.iter().find_map(|l| l.strip_prefix(prefix)).map(str::to_string);
        let (Some(public), Some(admin)) = (field("strangler listening on "), field("strangler admin on ")) else {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("replica did not start: {lines:?}\n{text}");
        };
        let admin = format!("http://{}", admin.trim_start_matches("http://").trim_end_matches("/metrics"));
        Replica { child: Some(child), public, admin, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by name (`-HUP`, `-TERM`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// SIGTERM, then waits up to `within` for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self, within: Duration) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        self.signal_child(&child, "-TERM");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn signal_child(&self, child: &Child, signal: &str) {
        let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("replica log at {}:\n{}", self.log.display(), self.log_text());
        }
    }
}
