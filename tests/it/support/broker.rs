//! Tansu broker harness: runs a real Kafka-protocol broker as a child process for one test.
//!
//! Each [`Tansu`] listens on its own free loopback port, logs to a file in its own temp dir and
//! is killed when dropped. Tansu does not auto-create topics: use `support::kafka::create_topic`.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// How long `start`/`restart` wait for the broker to answer a metadata request.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Path of the `tansu` binary: `$TANSU_BIN`, else `$CARGO_HOME/bin/tansu` (default
/// `~/.cargo/bin/tansu`) if it exists, else `tansu` found on `PATH`.
pub fn tansu_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(bin);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(bin) = cargo_home.map(|h| h.join("bin").join("tansu")) {
        if bin.is_file() {
            return bin;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(bin) = std::env::split_paths(&path).map(|dir| dir.join("tansu")).find(|bin| bin.is_file()) {
            return bin;
        }
    }
    panic!("tansu not found: run ./scripts/test.sh, which installs it");
}

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind an ephemeral port")
}

/// A running Tansu broker child process.
pub struct Tansu {
    /// `bootstrap.servers` value for clients, e.g. `127.0.0.1:PORT`.
    pub brokers: String,
    bin: PathBuf,
    port: u16,
    /// The port the broker tells clients to connect to (a relay's, or its own).
    advertised: u16,
    storage: String,
    /// Working directory of the broker (SQLite paths are resolved against it).
    cwd: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Holds the log; kept on disk (not deleted) if the test panics.
    dir: Option<tempfile::TempDir>,
}

impl Tansu {
    /// Starts a broker with in-memory storage on a free port and waits until it serves metadata.
    pub fn start() -> Tansu {
        let bin = tansu_bin();
        let dir = tempfile::tempdir().expect("tansu temp dir");
        let cwd = dir.path().to_path_buf();
        Self::launch(bin, dir, cwd, "memory://tansu/".to_owned())
    }

    /// Starts a broker whose data lives in the SQLite file `db` (created if missing), so a test
    /// can kill it and start a new broker (or [`Tansu::restart`]) on the same data.
    pub fn start_sqlite(db: &Path) -> Tansu {
        let bin = tansu_bin();
        let dir = tempfile::tempdir().expect("tansu temp dir");
        let db = std::path::absolute(db).expect("absolute sqlite path");
        let cwd = db.parent().expect("sqlite db has a parent dir").to_path_buf();
        std::fs::create_dir_all(&cwd).expect("create sqlite dir");
        let file = db.file_name().expect("sqlite db file name").to_string_lossy();
        // Tansu resolves `sqlite://host/path` as `$CWD/host/path`; "." keeps it in `cwd`.
        Self::launch(bin, dir, cwd, format!("sqlite://./{file}"))
    }

    /// Starts an in-memory broker that tells clients to connect to `advertised` (where a
    /// [`super::relay::Relay`] forwards to [`Tansu::port`]).
    pub fn start_advertising(advertised: u16) -> Tansu {
        let bin = tansu_bin();
        let dir = tempfile::tempdir().expect("tansu temp dir");
        let cwd = dir.path().to_path_buf();
        Self::launch_with(bin, dir, cwd, "memory://tansu/".to_owned(), Some(advertised))
    }

    /// Starts an in-memory broker on `port` (e.g. one a proxy was already pointed at).
    pub fn start_on(port: u16) -> Tansu {
        let bin = tansu_bin();
        let dir = tempfile::tempdir().expect("tansu temp dir");
        let cwd = dir.path().to_path_buf();
        Self::launch_on(bin, dir, cwd, "memory://tansu/".to_owned(), None, port)
    }

    /// The port the broker listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn launch(bin: PathBuf, dir: tempfile::TempDir, cwd: PathBuf, storage: String) -> Tansu {
        Self::launch_with(bin, dir, cwd, storage, None)
    }

    fn launch_with(bin: PathBuf, dir: tempfile::TempDir, cwd: PathBuf, storage: String, advertised: Option<u16>) -> Tansu {
        Self::launch_on(bin, dir, cwd, storage, advertised, free_port())
    }

    fn launch_on(
        bin: PathBuf,
        dir: tempfile::TempDir,
        cwd: PathBuf,
        storage: String,
        advertised: Option<u16>,
        port: u16,
    ) -> Tansu {
        let mut tansu = Tansu {
            brokers: format!("127.0.0.1:{port}"),
            bin,
            port,
            advertised: advertised.unwrap_or(port),
            storage,
            cwd,
            log: dir.path().join("tansu.log"),
            child: None,
            dir: Some(dir),
        };
        tansu.spawn_and_wait();
        tansu
    }

    /// Stops the temp dir holding the log from being deleted.
    fn keep_log(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
    }

    /// Path of the broker's combined stdout/stderr log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kills the broker (SIGKILL) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the broker (if running) and starts it again on the same port and storage.
    /// Only SQLite-backed brokers keep their data across a restart.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn_and_wait();
    }

    fn spawn_and_wait(&mut self) {
        let log = OpenOptions::new().create(true).append(true).open(&self.log).expect("open tansu log");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        let child = Command::new(&self.bin)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", &self.storage])
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut last_err = String::from("port not open yet");
        while started.elapsed() < READY_DEADLINE {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                self.fail(&format!("tansu exited early with {status}"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                match metadata_ok(&self.brokers) {
                    Ok(()) => {
                        tracing::debug!(brokers = %self.brokers, took = ?started.elapsed(), "tansu ready");
                        return;
                    }
                    Err(e) => last_err = e,
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        self.fail(&format!("tansu not ready after {READY_DEADLINE:?}: {last_err}"));
    }

    fn fail(&mut self, why: &str) -> ! {
        self.keep_log();
        let mut text = String::new();
        let _ = File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("{why} (storage {}, log {}):\n{}", self.storage, self.log.display(), tail.join("\n"));
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            self.keep_log();
            eprintln!("tansu log kept at {}", self.log.display());
        }
    }
}

/// One metadata round trip that lists at least one broker.
fn metadata_ok(brokers: &str) -> Result<(), String> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().map_err(|e| e.to_string())?;
    let md = consumer.fetch_metadata(None, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    if md.brokers().is_empty() {
        return Err("metadata lists no brokers".into());
    }
    Ok(())
}
