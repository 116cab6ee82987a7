//! Kafka over TLS for tests: a CA and server certificate minted with rcgen, a Tansu broker that
//! advertises the TLS port, and Debian's `stunnel4` terminating TLS in front of it.
//!
//! Tansu speaks plaintext only; stunnel accepts TLS on [`TlsBroker::brokers`] and forwards to
//! Tansu, which tells clients to reconnect to the stunnel port, so every connection is TLS.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use super::broker::{free_port, Tansu};

/// How long stunnel may take to accept connections.
const READY_DEADLINE: Duration = Duration::from_secs(20);

/// A CA minted for one test: its certificate file and what signs with it.
pub struct Ca {
    /// PEM file of the CA certificate (what `[kafka.tls] ca` points at).
    pub pem: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    /// Mints a self-signed CA named `name`, writing `name.pem` into `dir`.
    pub fn mint(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("strangler test {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).expect("write CA pem");
        Ca { pem, cert, key }
    }

    /// Issues a server certificate for 127.0.0.1 and localhost; returns (cert, key) PEM files.
    pub fn issue_server(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("server params");
        params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("server cert");
        let (cert_path, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).expect("write server cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write server key");
        (cert_path, key_path)
    }
}

/// Tansu behind stunnel. Dropping it stops stunnel (killed) and then Tansu.
pub struct TlsBroker {
    /// `bootstrap.servers` for TLS clients: the stunnel port, e.g. `127.0.0.1:PORT`.
    pub brokers: String,
    /// The CA that signed the broker's (stunnel's) certificate.
    pub ca: Ca,
    pub tansu: Tansu,
    /// Holds the certificates, stunnel's config and its log.
    pub dir: tempfile::TempDir,
    child: Child,
}

impl TlsBroker {
    /// Mints the certificates, starts Tansu advertising a free port and stunnel on that port,
    /// and returns once stunnel accepts TCP connections there.
    pub fn start() -> TlsBroker {
        let dir = tempfile::tempdir().expect("tls temp dir");
        let ca = Ca::mint(dir.path(), "ca");
        let (cert, key) = ca.issue_server(dir.path(), "broker");
        let port = free_port();
        let tansu = Tansu::start_advertising(port);
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\ndebug = notice\n[kafka]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{}\n\
                 cert = {}\nkey = {}\n",
                tansu.port(),
                cert.display(),
                key.display()
            ),
        )
        .expect("write stunnel.conf");
        let log = File::create(dir.path().join("stunnel.log")).expect("stunnel log");
        let bin = if which("stunnel4") { "stunnel4" } else { "stunnel" };
        let child = Command::new(bin)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} not started ({e}): run ./scripts/test.sh, which installs stunnel4"));
        let mut broker = TlsBroker { brokers: format!("127.0.0.1:{port}"), ca, tansu, dir, child };
        broker.wait_accepting(port);
        broker
    }

    /// stunnel's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stunnel.log")).unwrap_or_default()
    }

    fn wait_accepting(&mut self, port: u16) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("stunnel exited ({status}) before accepting:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "stunnel not accepting on {port} after {READY_DEADLINE:?}:\n{}", self.log());
            // Polling a condition (the port accepts), not a timing assumption.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(bin).is_file()))
}
