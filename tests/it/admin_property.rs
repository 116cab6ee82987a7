//! A property-based run over the admin API from its own OpenAPI description (schemathesis, from
//! PyPI, installed into the test venv by `./scripts/test.sh`): whatever it sends, with and
//! without a token, no answer is a 5xx and the process stays up.

use std::process::Command;

use http::{Method, StatusCode};

use crate::control::{control_config, ALICE, ENV};
use crate::harness::{send, start_proxy};
use crate::parity::deciding_monolith;
use crate::python_contract::python;
use crate::support::broker::Tansu;

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_in_the_admin_api() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let extra = "guard = {}\nrollout = { steps = [1, 5], interval = \"1h\" }";
    let proxy = start_proxy(&control_config(&monolith.url(), &tansu.brokers, extra), &ENV, None).await;
    let spec = format!("http://{}/api/openapi.json", proxy.admin_addr);
    let schemathesis = python().with_file_name("schemathesis");
    // schemathesis keeps a cache in its working directory: keep it out of the tree.
    let scratch = tempfile::tempdir().unwrap();
    let run = |token: Option<&str>| {
        let mut cmd = Command::new(&schemathesis);
        cmd.current_dir(scratch.path());
        cmd.args(["run", &spec, "--checks", "not_a_server_error", "--max-examples", "25", "--seed", "7"]);
        cmd.args(["--request-timeout", "20", "--no-color"]);
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        cmd
    };
    for token in [Some(ALICE), None] {
        let mut cmd = run(token);
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run schemathesis")).await.unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "schemathesis found a problem (token: {}):\n{text}", token.is_some());
        // `N generated, N passed`: every case passed the check (without a token the changes all
        // answer 401, which schemathesis reports as a warning, not a failure).
        let cases = text.lines().find(|l| l.contains(" generated, ")).unwrap_or_default().trim().to_string();
        let (generated, passed) = cases.split_once(" generated, ").unwrap_or_default();
        assert!(!generated.is_empty() && passed == format!("{generated} passed"), "{cases}\n{text}");
    }
    let health = send(Method::GET, &format!("http://{}/healthz", proxy.admin_addr), &[], "").await;
    assert_eq!(health.status, StatusCode::OK, "still up");
    let text = crate::harness::scrape(&proxy).await;
    assert_eq!(crate::harness::metric(&text, "strangler_admin_requests_total", &[("status", "500")]), 0.0);
    assert_eq!(crate::harness::metric(&text, "strangler_admin_requests_total", &[("status", "503")]), 0.0);
    proxy.shutdown().await;
}
