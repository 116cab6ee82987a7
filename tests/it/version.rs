//! `strangler --version`: the crate version and the git commit the binary was built from.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_strangler");

#[test]
fn version_prints_the_crate_version_and_the_git_commit() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The suite runs in the git checkout it was built from (build.rs asks the same git).
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(root).output().unwrap();
    assert!(head.status.success(), "git rev-parse: {}", String::from_utf8_lossy(&head.stderr));
    let head = String::from_utf8(head.stdout).unwrap().trim().to_string();
    assert_eq!(head.len(), 12, "{head}");
    assert_eq!(printed.trim_end(), format!("strangler {} ({head})", env!("CARGO_PKG_VERSION")));
}
