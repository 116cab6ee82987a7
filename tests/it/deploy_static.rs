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

#[test]
fn prometheusrule_is_generated_from_the_alert_file() {
    let out = Command::new(root().join("scripts/gen-prometheusrule")).arg("--stdout").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read(root().join("deploy/kubernetes/base/prometheusrule.yaml")).unwrap();
    assert!(
        out.stdout == committed,
        "deploy/kubernetes/base/prometheusrule.yaml has drifted from deploy/prometheus/alerts.yml: run scripts/gen-prometheusrule"
    );
    // And it says the same as the alert file, parsed.
    let rule = yaml(&root().join("deploy/kubernetes/base/prometheusrule.yaml"));
    assert_eq!(rule["spec"], yaml(&root().join("deploy/prometheus/alerts.yml")));
}

/// The Kubernetes objects of one kustomization, validated (kubernetes-validate, strict).
fn kustomize(dir: &str) -> Vec<Value> {
    checker("check_kubernetes.py", &[&root().join("deploy/kubernetes").join(dir)]).as_array().unwrap().clone()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// A named or numeric container port, as a number.
fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let ports = container["ports"].as_array().unwrap();
    ports.iter().find(|p| p["name"] == *port).unwrap_or_else(|| panic!("no container port {port}"))["containerPort"]
        .as_u64()
        .unwrap()
}

/// The policies every strangler workload (Deployment or StatefulSet) must keep; returns the
/// pod's volume names so the caller can check where the spool lives.
fn check_workload(objects: &[Value], workload: &Value) -> (String, BTreeSet<String>) {
    let name = format!("{}/{}", workload["kind"], workload["metadata"]["name"]);
    let pod = &workload["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let cm = find(objects, "ConfigMap")[0];
    let text = cm["data"]["strangler.toml"].as_str().expect("ConfigMap strangler.toml");
    let cfg: toml::Value = toml::from_str(text).unwrap();
    let admin = port(cfg["admin"]["listen"].as_str().unwrap()) as u64;
    let public = port(cfg["server"]["listen"].as_str().unwrap()) as u64;

    // The config is mounted where --config reads it, from this ConfigMap.
    let config = arg_after(&strs(&c["args"]), "--config");
    let mount = |path: &str| c["volumeMounts"].as_array().unwrap().iter().find(|m| m["mountPath"] == path).cloned();
    let cfg_mount = mount(Path::new(&config).parent().unwrap().to_str().unwrap()).expect("config directory mounted");
    let cfg_vol = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == cfg_mount["name"]).unwrap();
    assert_eq!(cfg_vol["configMap"]["name"], cm["metadata"]["name"], "{name}");

    // Probes on the admin port.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
    assert_eq!(container_port(c, &c["livenessProbe"]["httpGet"]["port"]), admin, "{name}");
    assert_eq!(container_port(c, &c["readinessProbe"]["httpGet"]["port"]), admin, "{name}");
    assert_eq!(container_port(c, &Value::from("http")), public, "{name}");
    // The drain (shutdown grace, then the Kafka flush) ends before the kubelet's SIGKILL.
    let ms = |t: &str, k: &str, d: i64| cfg.get(t).and_then(|t| t.get(k)).and_then(|v| v.as_integer()).unwrap_or(d);
    let drain_s = (ms("server", "shutdown_grace_ms", 10_000) + ms("kafka", "flush_timeout_ms", 5_000)) as f64 / 1000.0;
    let grace = pod["terminationGracePeriodSeconds"].as_f64().expect("terminationGracePeriodSeconds");
    assert!(grace > drain_s, "{name}: grace {grace} s <= drain {drain_s} s");
    // Non-root, read-only root, no privilege escalation, no capabilities, resources.
    let sc = &c["securityContext"];
    assert!(pod["securityContext"]["runAsNonRoot"] == true || sc["runAsNonRoot"] == true, "{name}");
    assert_ne!(pod["securityContext"]["runAsUser"], 0, "{name}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(strs(&sc["capabilities"]["drop"]), vec!["ALL"], "{name}");
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string(), "{name}");

    // Secrets come from a Secret by reference (envFrom or secretKeyRef), never a literal value,
    // and the shipped example Secret holds every variable the config needs: check-config passes.
    let mut needed = BTreeSet::new();
    needed_env(&cfg, &mut needed);
    let example = yaml(&root().join("deploy/kubernetes/base/secret.example.yaml"));
    let from_secret: Vec<&Value> = c["envFrom"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    for var in &needed {
        let direct = c["env"].as_array().and_then(|e| e.iter().find(|e| e["name"] == var.as_str()));
        match direct {
            Some(e) => assert!(
                e["value"].is_null() && e["valueFrom"]["secretKeyRef"].is_object(),
                "{name}: {var} must come from a Secret"
            ),
            None => {
                assert!(from_secret.iter().any(|f| f["secretRef"]["name"] == example["metadata"]["name"]), "{name}: {var} unset")
            }
        }
        assert!(example["stringData"].get(var).is_some(), "secret.example.yaml lacks {var}");
    }
    let env: BTreeMap<String, String> = needed.iter().map(|v| (v.clone(), "x".repeat(40))).collect();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("strangler.toml");
    std::fs::write(&file, text).unwrap();
    check_config(&file, &env);

    let spool = cfg["spool"]["dir"].as_str().expect("spool.dir");
    let spool_mount = mount(spool).unwrap_or_else(|| panic!("{name}: nothing mounted at spool.dir {spool}"));
    let volumes = pod["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
    (spool_mount["name"].as_str().unwrap().to_string(), volumes)
}

/// Service ports lead to container ports; the ServiceMonitor scrapes the admin port's /metrics.
fn check_service_and_monitor(objects: &[Value], container: &Value, admin: u64) {
    let svc = find(objects, "Service").into_iter().find(|s| s["metadata"]["name"] == "strangler").expect("Service strangler");
    for p in svc["spec"]["ports"].as_array().unwrap() {
        container_port(container, &p["targetPort"]);
    }
    let sm = find(objects, "ServiceMonitor")[0];
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(ep["path"], "/metrics");
    let sp = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == ep["port"])
        .expect("ServiceMonitor port is a Service port");
    assert_eq!(container_port(container, &sp["targetPort"]), admin);
    assert_eq!(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]);
}

#[test]
fn kubernetes_base_is_valid_and_keeps_the_policies() {
    let objects = kustomize("base");
    assert!(find(&objects, "Secret").is_empty(), "a Secret is inlined in the kustomization");
    for kind in ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule"] {
        assert_eq!(find(&objects, kind).len(), 1, "{kind}");
    }
    let dep = find(&objects, "Deployment")[0];
    let (spool, _) = check_workload(&objects, dep);
    let vol =
        dep["spec"]["template"]["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == spool.as_str()).unwrap();
    assert!(vol["emptyDir"].is_object(), "the base spools on an emptyDir");
    let cfg: toml::Value = toml::from_str(find(&objects, "ConfigMap")[0]["data"]["strangler.toml"].as_str().unwrap()).unwrap();
    check_service_and_monitor(
        &objects,
        &dep["spec"]["template"]["spec"]["containers"][0],
        port(cfg["admin"]["listen"].as_str().unwrap()) as u64,
    );
    let pdb = find(&objects, "PodDisruptionBudget")[0];
    assert_eq!(pdb["spec"]["selector"], dep["spec"]["selector"]);
}

#[test]
fn kubernetes_statefulset_overlay_gives_each_replica_its_own_spool_claim() {
    let objects = kustomize("overlays/statefulset");
    assert!(find(&objects, "Deployment").is_empty() && find(&objects, "Secret").is_empty());
    let sts = find(&objects, "StatefulSet")[0];
    let (spool, volumes) = check_workload(&objects, sts);
    assert!(!volumes.contains(&spool), "the spool must not be a pod volume shared by the replicas");
    let claims = sts["spec"]["volumeClaimTemplates"].as_array().unwrap();
    assert!(claims.iter().any(|c| c["metadata"]["name"] == spool.as_str()), "no volumeClaimTemplate {spool}");
    let headless = find(&objects, "Service").into_iter().find(|s| s["metadata"]["name"] == sts["spec"]["serviceName"]).unwrap();
    assert_eq!(headless["spec"]["clusterIP"], "None");
}

#[test]
fn dockerfile_runs_non_root_and_agrees_with_the_compose_config() {
    let text = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap().replace("\\\n", " ");
    let runtime = text.rsplit_once("\nFROM ").expect("a multi-stage build").1;
    let lines: Vec<&str> = runtime.lines().map(str::trim).collect();
    let instr = |name: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .map(|r| r.trim().to_string())
            .collect()
    };
    assert!(runtime.starts_with("debian:bookworm-slim"), "runtime stage: {}", runtime.lines().next().unwrap());
    assert_eq!(instr("USER"), vec!["10001:10001"]);
    assert_eq!(instr("ENTRYPOINT"), vec![r#"["strangler"]"#]);
    assert_eq!(instr("CMD"), vec![r#"["run", "--config", "/etc/strangler/strangler.toml"]"#]);
    assert!(text.contains("ARG STRANGLER_GIT_COMMIT"), "the build argument build.rs falls back to");
    assert!(instr("HEALTHCHECK")[0].contains("/healthz"));
    // The compose config listens on the exposed ports, the healthcheck asks its admin port, and
    // it spools on the image's volume.
    let cfg: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("deploy/compose/strangler.toml")).unwrap()).unwrap();
    let exposed: BTreeSet<u16> = instr("EXPOSE").iter().flat_map(|l| l.split_whitespace().map(|p| p.parse().unwrap())).collect();
    let admin = port(cfg["admin"]["listen"].as_str().unwrap());
    assert_eq!(exposed, BTreeSet::from([port(cfg["server"]["listen"].as_str().unwrap()), admin]));
    assert_eq!(instr("ENV"), vec![format!("STRANGLER_ADMIN_PORT={admin}")]);
    assert_eq!(instr("VOLUME"), vec![format!(r#"["{}"]"#, cfg["spool"]["dir"].as_str().unwrap())]);
    // .dockerignore keeps the build context small and leaves .git out (hence the build arg).
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for entry in [".git", "target", "tests/browser/node_modules"] {
        assert!(ignore.lines().any(|l| l.trim() == entry), ".dockerignore lacks {entry}");
    }
}
