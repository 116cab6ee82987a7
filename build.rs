//! Build script: stamps the git commit into `strangler --version` (env `STRANGLER_GIT_COMMIT`).
//!
//! Order: `git rev-parse --short=12 HEAD`, else the `STRANGLER_GIT_COMMIT` environment variable
//! (the Docker build argument: the image's build context has no `.git`), else `unknown`. Never
//! fails the build. No `-dirty` mark: the script reruns when HEAD moves, not on every edit, so
//! such a mark would go stale and mislead.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=STRANGLER_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    // HEAD moves on checkout; the branch's ref file moves on commit. In a worktree `.git` is a
    // file, so ask git where its directories are.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        let head = Path::new(&git_dir).join("HEAD");
        println!("cargo:rerun-if-changed={}", head.display());
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or_else(|| git_dir.clone());
            for dir in [&git_dir, &common] {
                let file = Path::new(dir).join(&reference);
                if file.exists() {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
            }
            // A path that does not exist would make cargo rerun the script on every build.
            let packed = Path::new(&common).join("packed-refs");
            if packed.exists() {
                println!("cargo:rerun-if-changed={}", packed.display());
            }
        }
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|c| !c.is_empty())
        .or_else(|| std::env::var("STRANGLER_GIT_COMMIT").ok().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=STRANGLER_GIT_COMMIT={commit}");
}
