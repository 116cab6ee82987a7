//! Static checks of deploy/: the compose stack, the Prometheus config, the Kubernetes manifests
//! and the Dockerfile's HEALTHCHECK, against the strangler configs they carry (no Docker here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::python_contract::python;

const BIN: &str = env!("CARGO_BIN_EXE_strangler");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a tests/deploy checker and returns its JSON; its stderr names every problem.
fn checker(script: &str, args: &[&Path]) -> Value {
    let out =
        Command::new(python()).arg(root().join("tests/deploy").join(script)).args(args).current_dir(root()).output().unwrap();
    assert!(out.status.success(), "{script} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn yaml(path: &Path) -> Value {
    let code = "import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)";
    let out = Command::new(python()).args(["-c", code]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap_or_else(|_| panic!("no port in {addr}"))
}

/// Every environment variable a strangler config names: `env = "..."` and `*_env` keys
/// (a string or a list), at any depth (secrets_env, admin tokens, Kafka's password_env...).
fn needed_env(v: &toml::Value, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                if k == "env" || k.ends_with("_env") {
                    match v {
                        toml::Value::String(s) => drop(out.insert(s.clone())),
                        toml::Value::Array(a) => out.extend(a.iter().filter_map(|s| s.as_str().map(String::from))),
                        _ => {}
                    }
                }
                needed_env(v, out);
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| needed_env(v, out)),
        _ => {}
    }
}

/// `strangler check-config FILE` with exactly `env`.
fn check_config(file: &Path, env: &BTreeMap<String, String>) {
    let out = Command::new(BIN).arg("check-config").arg(file).env_clear().envs(env).output().unwrap();
    assert!(out.status.success(), "check-config {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
}

/// `${VAR:-default}` as compose resolves it with VAR unset; anything else as written.
fn interpolate(v: &str) -> String {
    match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')).and_then(|r| r.split_once(":-")) {
        Some((_, default)) => default.to_string(),
        None => v.to_string(),
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

fn arg_after(args: &[String], flag: &str) -> String {
    let i = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    args[i + 1].clone()
}

#[test]
fn compose_stack_is_valid_and_agrees_with_the_strangler_config_it_mounts() {
    let dir = root().join("deploy/compose");
    let compose = checker("check_compose.py", &[&dir.join("docker-compose.yml"), &root().join("tests/deploy/compose-spec.json")]);
    let services = compose["services"].as_object().unwrap();
    for name in ["kafka", "strangler", "monolith", "orders-service", "prometheus", "grafana"] {
        assert!(services.contains_key(name), "no service {name}");
    }
    // Every host path mounted exists; every named volume is declared.
    let mut mounts: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for (name, svc) in services {
        for m in strs(&svc["volumes"]) {
            let parts: Vec<&str> = m.split(':').collect();
            if parts[0].starts_with('.') {
                let host = dir.join(parts[0]);
                assert!(host.exists(), "service {name} mounts {} which does not exist", host.display());
                mounts.insert((name.clone(), parts[1].to_string()), host);
            } else {
                assert!(compose["volumes"].get(parts[0]).is_some(), "service {name}: volume {} is not declared", parts[0]);
            }
        }
    }
    let s = &services["strangler"];
    let config_path = arg_after(&strs(&s["command"]), "--config");
    let host_config =
        mounts.get(&("strangler".into(), config_path.clone())).unwrap_or_else(|| panic!("{config_path} is not mounted"));
    let cfg: toml::Value = toml::from_str(&std::fs::read_to_string(host_config).unwrap()).unwrap();
    let (public, admin) = (port(cfg["server"]["listen"].as_str().unwrap()), port(cfg["admin"]["listen"].as_str().unwrap()));

    // Published container ports are exactly the config's listeners.
    let published: BTreeSet<u16> = strs(&s["ports"]).iter().map(|p| p.rsplit(':').next().unwrap().parse().unwrap()).collect();
    assert_eq!(published, BTreeSet::from([public, admin]));
    // Every variable the config names is set on the service, and check-config passes with them.
    let env: BTreeMap<String, String> =
        s["environment"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), interpolate(v.as_str().unwrap()))).collect();
    let mut needed = BTreeSet::new();
    needed_env(&cfg, &mut needed);
    assert!(!needed.is_empty());
    for var in &needed {
        assert!(env.contains_key(var), "strangler's config needs {var}, the compose service does not set it");
    }
    check_config(host_config, &env);
    // The spool volume is where the config spools.
    assert!(strs(&s["volumes"]).iter().any(|m| m.split(':').nth(1) == cfg["spool"]["dir"].as_str()));

    // The monolith listens where legacy.url points; the example service reads the route's topic
    // from the config's brokers.
    let legacy = cfg["legacy"]["url"].as_str().unwrap();
    let listen = arg_after(&strs(&services["monolith"]["command"]), "--listen");
    assert_eq!(legacy, format!("http://monolith:{}", port(&listen)));
    let svc_args = strs(&services["orders-service"]["command"]);
    assert_eq!(arg_after(&svc_args, "--brokers"), cfg["kafka"]["brokers"].as_str().unwrap());
    assert_eq!(arg_after(&svc_args, "--topic"), cfg["route"][0]["topic"].as_str().unwrap());

    // Prometheus scrapes strangler's admin port, and its rule file resolves the same way in the
    // container (mount layout) as in the repository (promtool below).
    let prom_cfg = arg_after(
        &strs(&services["prometheus"]["command"]).iter().flat_map(|a| a.splitn(2, '=').map(String::from)).collect::<Vec<_>>(),
        "--config.file",
    );
    let host_prom = mounts.get(&("prometheus".into(), prom_cfg.clone())).expect("prometheus.yml is mounted at --config.file");
    let prom = yaml(host_prom);
    let job = prom["scrape_configs"].as_array().unwrap().iter().find(|j| j["job_name"] == "strangler").expect("job strangler");
    assert_eq!(strs(&job["static_configs"][0]["targets"]), vec![format!("strangler:{admin}")]);
    for rule in strs(&prom["rule_files"]) {
        let in_container = Path::new(&prom_cfg).parent().unwrap().join(&rule);
        let in_container = normalize(&in_container);
        let host = mounts
            .get(&("prometheus".into(), in_container.clone()))
            .unwrap_or_else(|| panic!("{rule} is not mounted at {in_container}"));
        assert_eq!(host.canonicalize().unwrap(), host_prom.parent().unwrap().join(&rule).canonicalize().unwrap());
    }
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(p: &Path) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.to_str().unwrap().split('/') {
        match c {
            ".." => drop(out.pop()),
            "." => {}
            c => out.push(c),
        }
    }
    out.join("/")
}

#[test]
fn promtool_accepts_the_compose_prometheus_config() {
    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let out = Command::new(&promtool).args(["check", "config", "deploy/compose/prometheus.yml"]).current_dir(root()).output();
    let out = out.unwrap_or_else(|e| panic!("{promtool}: {e} (./scripts/test.sh installs Debian's prometheus package)"));
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
