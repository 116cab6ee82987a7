//! The live dial across replicas: real `strangler` processes on one Tansu broker, changed through
//! the admin API, with the control and audit topics read back from the broker.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use http::{Method, StatusCode};
use rdkafka::Message;
use strangler::event::Owner;
use strangler::route::assign::{assign, Mode, Share};

use crate::harness::{eventually, post, send, Reply};
use crate::parity::{deciding_monolith, order, orders_config, SECRET};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::{drain, header};
use crate::support::replica::Replica;

const WAIT: Duration = Duration::from_secs(60);
pub const ALICE: &str = "alice-token-0123456789";
pub const BOB: &str = "bob-token-9876543210xx";

/// The orders route behind two named tokens, on port 0 listeners.
pub fn control_config(legacy: &str, brokers: &str, route_extra: &str) -> String {
    let head = "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
                [[admin.token]]\nname = \"alice\"\nenv = \"TOKEN_ALICE\"\n\
                [[admin.token]]\nname = \"bob\"\nenv = \"TOKEN_BOB\"\n";
    format!("{head}{}", orders_config(legacy, brokers, route_extra))
}

pub const ENV: [(&str, &str); 3] = [("S", SECRET), ("TOKEN_ALICE", ALICE), ("TOKEN_BOB", BOB)];

pub async fn start_replica(file: &Path, env: &[(&str, &str)], name: &str) -> Replica {
    let (file, log) = (file.to_path_buf(), file.with_file_name(format!("{name}.log")));
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Replica::start(&file, &env, log)
    })
    .await
    .unwrap()
}

pub fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".into(), format!("Bearer {token}")), ("Content-Type".into(), "application/json".into())]
}

/// `PUT`/`POST` a JSON body to the admin API.
pub async fn call(method: Method, url: &str, token: Option<&str>, body: serde_json::Value) -> Reply {
    let headers = match token {
        Some(t) => bearer(t),
        None => vec![("Content-Type".into(), "application/json".into())],
    };
    send(method, url, &headers, body.to_string()).await
}

pub async fn get_json(url: &str) -> serde_json::Value {
    let reply = send(Method::GET, url, &[], "").await;
    assert_eq!(reply.status, StatusCode::OK, "{url}: {:?}", reply.body);
    reply.json()
}

/// Signs and sends one order to a replica's public listener.
pub async fn send_order(public: &str, id: &str, customer: &str, secret: &str) -> Reply {
    let body = serde_json::to_vec(&order(id, customer, 1234)).unwrap();
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    post(&format!("http://{public}/webhooks/orders"), &sign::stripe(secret, t, &body), body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dial_on_one_replica_is_in_force_on_every_replica_and_survives_a_restart() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strangler.toml");
    std::fs::write(&file, control_config(&monolith.url(), &tansu.brokers, "")).unwrap();
    let a = start_replica(&file, &ENV, "a").await;
    let mut b = start_replica(&file, &ENV, "b").await;

    let started = Instant::now();
    let dial = serde_json::json!({"percent": 30, "reason": "first step"});
    let reply = call(Method::PUT, &format!("{}/api/routes/orders/share", a.admin), Some(ALICE), dial).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let on_a = reply.json();
    assert_eq!(
        (on_a["mode"].as_str(), on_a["share_percent"].as_f64(), on_a["by"].as_str()),
        (Some("split"), Some(30.0), Some("alice"))
    );
    let version = on_a["version"].as_u64().unwrap();
    assert!(version > 0);
    let b_route = format!("{}/api/routes/orders", b.admin);
    let in_force_on_b = || async { get_json(&b_route).await["version"].as_u64() == Some(version) };
    assert!(eventually(WAIT, in_force_on_b).await, "B never applied version {version}");
    eprintln!("dial on A in force on B after {:?} (from the call on A to B's API showing it)", started.elapsed());
    assert_eq!(get_json(&b_route).await["share_percent"], 30.0);

    // Both replicas give each entity the same owner: the one the sticky assignment gives at 30 %.
    let customers: Vec<String> = (0..60).map(|i| format!("cus_{i:03}")).collect();
    for (i, c) in customers.iter().enumerate() {
        assert!(send_order(&a.public, &format!("evt_a_{i}"), c, SECRET).await.status.is_success());
        assert!(send_order(&b.public, &format!("evt_b_{i}"), c, SECRET).await.status.is_success());
    }
    let records = drain(&tansu.brokers, "webhooks.orders", WAIT).await;
    let mut owners: BTreeMap<String, BTreeMap<char, String>> = BTreeMap::new();
    for m in &records {
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        let via = header(m, "ce_id").unwrap().chars().nth(4).unwrap();
        owners.entry(key).or_default().insert(via, header(m, "ce_stranglerowner").unwrap());
    }
    assert_eq!(owners.len(), customers.len(), "{} records", records.len());
    for (customer, by_replica) in &owners {
        let expected = match assign(Mode::Split, "orders", customer, Share::from_percent(30.0).unwrap()) {
            Owner::New => "new",
            Owner::Legacy => "legacy",
        };
        assert_eq!(by_replica.get(&'a').map(String::as_str), Some(expected), "{customer} via A");
        assert_eq!(by_replica.get(&'b').map(String::as_str), Some(expected), "{customer} via B");
    }

    // A restarted replica resumes the dialled state before it serves.
    assert!(b.stop(Duration::from_secs(30)), "B exits 0");
    let b = start_replica(&file, &ENV, "b2").await;
    let after = get_json(&format!("{}/api/routes/orders", b.admin)).await;
    assert_eq!((after["version"].as_u64(), after["share_percent"].as_f64()), (Some(version), Some(30.0)));
    assert_eq!(after["mode"], "split");
    drop(a);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_dials_converge_and_an_expected_version_admits_exactly_one() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strangler.toml");
    std::fs::write(&file, control_config(&monolith.url(), &tansu.brokers, "")).unwrap();
    let a = start_replica(&file, &ENV, "a").await;
    let b = start_replica(&file, &ENV, "b").await;
    let replicas = [&a, &b];

    let dials = (1..=20).map(|i| {
        let admin = replicas[i % 2].admin.clone();
        let token = if i % 2 == 0 { ALICE } else { BOB };
        async move {
            let body = serde_json::json!({"percent": i, "reason": format!("dial {i}")});
            call(Method::PUT, &format!("{admin}/api/routes/orders/share"), Some(token), body).await
        }
    });
    let replies = join_all(dials).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let states = || async {
        let a = get_json(&format!("{}/api/routes/orders", a.admin)).await;
        let b = get_json(&format!("{}/api/routes/orders", b.admin)).await;
        (a, b)
    };
    let same = || async {
        let (a, b) = states().await;
        a["version"] == b["version"] && a["share_percent"] == b["share_percent"] && a["by"] == b["by"]
    };
    assert!(eventually(WAIT, same).await);
    let (final_a, _) = states().await;
    let versions: Vec<u64> = replies.iter().map(|r| r.json()["version"].as_u64().unwrap()).collect();
    assert_eq!(final_a["version"].as_u64(), versions.iter().max().copied(), "the last applied change is in force");

    // The audit topic holds all 20, each with its own version, in the order they were applied.
    let audit = drain(&tansu.brokers, "strangler.audit", WAIT).await;
    let entries: Vec<serde_json::Value> = audit.iter().map(|m| serde_json::from_slice(m.payload().unwrap()).unwrap()).collect();
    assert_eq!(entries.len(), 20, "{entries:?}");
    let mut audited: Vec<u64> = entries.iter().map(|e| e["new"]["version"].as_u64().unwrap()).collect();
    audited.sort_unstable();
    let mut applied = versions.clone();
    applied.sort_unstable();
    assert_eq!(audited, applied);
    for e in &entries {
        assert_eq!(e["route"], "orders");
        assert!(e["reason"].as_str().unwrap().starts_with("dial "), "{e}");
        assert!(e["old"]["version"].as_u64().unwrap() < e["new"]["version"].as_u64().unwrap(), "{e}");
    }
    // Each entry's old state is the previous entry's new state: one chain, no lost update.
    let mut chain: Vec<&serde_json::Value> = entries.iter().collect();
    chain.sort_by_key(|e| e["new"]["version"].as_u64());
    for pair in chain.windows(2) {
        assert_eq!(pair[0]["new"], pair[1]["old"], "audit chain");
    }
    let listed = || async {
        let n = |v: serde_json::Value| v["entries"].as_array().map_or(0, Vec::len);
        n(get_json(&format!("{}/api/audit?route=orders", a.admin)).await) == 20
            && n(get_json(&format!("{}/api/audit?route=orders", b.admin)).await) == 20
    };
    assert!(eventually(WAIT, listed).await, "GET /api/audit lists all 20 on both replicas");

    // 20 writers who all read the same version: exactly one applies.
    let base = final_a["version"].as_u64().unwrap();
    let guarded = (0..20).map(|i| {
        let admin = replicas[i % 2].admin.clone();
        async move {
            let body = serde_json::json!({"percent": 50 + i, "reason": "race", "expected_version": base});
            call(Method::PUT, &format!("{admin}/api/routes/orders/share"), Some(ALICE), body).await
        }
    });
    let replies = join_all(guarded).await;
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::OK).collect();
    let conflicts = replies.iter().filter(|r| r.status == StatusCode::CONFLICT).count();
    assert_eq!((ok.len(), conflicts), (1, 19), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    for r in replies.iter().filter(|r| r.status == StatusCode::CONFLICT) {
        assert_eq!(r.json()["error"]["code"], "version_conflict");
    }
    let winner = ok[0].json();
    assert!(eventually(WAIT, same).await);
    let (a_after, b_after) = states().await;
    assert_eq!(a_after["share_percent"], winner["share_percent"]);
    assert_eq!(b_after["share_percent"], winner["share_percent"]);
    assert_eq!(a_after["version"], winner["version"]);
    assert_eq!(drain(&tansu.brokers, "strangler.audit", WAIT).await.len(), 21, "one audit entry for the one that applied");
}
