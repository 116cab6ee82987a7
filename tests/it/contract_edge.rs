//! Event contracts at the edge (issue 13), against real Tansu and the sample monolith: valid
//! events flow with `ce_dataschema`; invalid ones are flagged (observe) or dead-lettered with
//! their errors (dead_letter), counted and sampled; the monolith gets every request it owns; a
//! new-owned invalid request is refused 422 or falls back by policy; `check-config` refuses a
//! breaking `previous`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use http::{Method, StatusCode};
use rdkafka::message::{Message, OwnedMessage};
use strangler::demo::monolith::Monolith;

use crate::harness::{eventually, metric, post, scrape, send, start_proxy, url};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::{drain, header};

pub(crate) const WAIT: Duration = Duration::from_secs(60);
const V1_ID: &str = "https://schemas.example.com/order/v1.json";
pub(crate) const SECRET: &str = "contract-secret";

fn contracts() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts").display().to_string()
}

pub(crate) fn route(name: &str, extra: &str, contract: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\nmatch = {{ path = \"/webhooks/{name}\" }}\ntopic = \"webhooks.{name}\"\nsignature = {{ scheme = \"github\", secrets_env = [\"S\"], mode = \"observe\" }}\nevent = {{ id_pointer = \"/id\", type = \"order.created\" }}\n{extra}\ncontract = {{ schema = \"{}/order.v1.json\", {contract} }}\n",
        contracts()
    )
}

pub(crate) fn config(legacy: &str, brokers: &str, routes: &[String]) -> String {
    format!("[legacy]\nurl = \"{legacy}\"\n[kafka]\nbrokers = \"{brokers}\"\npartitions = 1\n{}", routes.concat())
}

pub(crate) async fn deliver(proxy: &strangler::app::Running, name: &str, body: &str, signed: bool) -> crate::harness::Reply {
    let headers = if signed { sign::github(SECRET, body.as_bytes()) } else { sign::github("wrong", body.as_bytes()) };
    post(&url(proxy, &format!("/webhooks/{name}")), &headers, body.to_string()).await
}

/// `ce_id`, `ce_dataschema`, `ce_stranglercontract`, `ce_stranglercontracterror` of a record.
type Stamp = (String, Option<String>, Option<String>, Option<String>);

pub(crate) fn by_id(msgs: &[OwnedMessage]) -> Vec<Stamp> {
    let mut out: Vec<_> = msgs
        .iter()
        .map(|m| {
            (
                header(m, "ce_id").unwrap(),
                header(m, "ce_dataschema"),
                header(m, "ce_stranglercontract"),
                header(m, "ce_stranglercontracterror"),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn observe_flags_and_dead_letter_diverts_invalid_events_while_the_monolith_gets_every_request() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let routes = [route("observed", "", "on_invalid = \"observe\""), route("guarded", "", "on_invalid = \"dead_letter\"")];
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, &routes), &[("S", SECRET)], None).await;

    // Each schema's series exists at zero from start-up.
    let t = scrape(&proxy).await;
    for name in ["observed", "guarded"] {
        let line = format!("strangler_contract_violations_total{{route=\"{name}\",type=\"*\"}} 0");
        assert!(t.contains(&line), "{line} missing:\n{t}");
    }

    let bodies = [
        (r#"{"id":"ok1","amount":5}"#, true),
        (r#"{"id":"ok2","amount":7,"note":"gift"}"#, true),
        (r#"{"id":"bad1","amount":-1}"#, true),
        // Signature invalid (observe mode): judged all the same.
        (r#"{"id":"bad2","amount":"ten"}"#, false),
    ];
    for name in ["observed", "guarded"] {
        for (body, signed) in bodies {
            let reply = deliver(&proxy, name, body, signed).await;
            assert_eq!(reply.status, StatusCode::OK, "{name} {body}: the monolith answers");
        }
    }
    assert_eq!(monolith.received().len(), 8, "the monolith received every request");

    // Counted, per route and type key, with the dead letters acknowledged.
    let text = || async { scrape(&proxy).await };
    let dead = || async {
        metric(&text().await, "strangler_dead_letters_total", &[("route", "guarded"), ("reason", "contract")]) == 2.0
    };
    assert!(eventually(WAIT, dead).await, "{}", text().await);
    let t = text().await;
    for name in ["observed", "guarded"] {
        assert_eq!(metric(&t, "strangler_contract_violations_total", &[("route", name), ("type", "*")]), 2.0, "{name}");
    }
    assert_eq!(metric(&t, "strangler_dead_letters_total", &[("route", "observed"), ("reason", "contract")]), 0.0);

    // observe: all four on the topic, the invalid ones flagged with their first error's pointer.
    let published = || async { proxy.metrics.publish.published.with_label_values(&["observed"]).get() >= 4 };
    assert!(eventually(WAIT, published).await);
    let v1 = Some(V1_ID.to_string());
    let invalid = Some("invalid".to_string());
    assert_eq!(
        by_id(&drain(&tansu.brokers, "webhooks.observed", WAIT).await),
        [
            ("bad1".into(), v1.clone(), invalid.clone(), Some("/amount".into())),
            ("bad2".into(), v1.clone(), invalid.clone(), Some("/amount".into())),
            ("ok1".into(), v1.clone(), None, None),
            ("ok2".into(), v1.clone(), None, None),
        ]
    );
    // dead_letter: only the valid ones on the route's topic; the invalid ones on the dead-letter topic.
    assert_eq!(
        by_id(&drain(&tansu.brokers, "webhooks.guarded", WAIT).await),
        [("ok1".into(), v1.clone(), None, None), ("ok2".into(), v1.clone(), None, None),]
    );
    let dlq = drain(&tansu.brokers, "strangler.dead-letter", WAIT).await;
    let mut dlq: Vec<_> = dlq.iter().filter(|m| header(m, "dlq_route").as_deref() == Some("guarded")).collect();
    dlq.sort_by_key(|m| header(m, "ce_id"));
    assert_eq!(dlq.len(), 2);
    for (m, id) in dlq.iter().zip(["bad1", "bad2"]) {
        assert_eq!(header(m, "ce_id").as_deref(), Some(id));
        assert_eq!(header(m, "dlq_reason").as_deref(), Some("contract"));
        assert_eq!(header(m, "dlq_topic").as_deref(), Some("webhooks.guarded"));
        assert_eq!(header(m, "ce_dataschema"), v1);
        assert_eq!(m.key(), Some(id.as_bytes()), "keyed as on the route's topic");
        let errors: serde_json::Value = serde_json::from_str(&header(m, "dlq_error").unwrap()).unwrap();
        assert_eq!(errors[0]["pointer"], "/amount", "{errors}");
        assert!(errors[0]["schema_pointer"].as_str().unwrap().contains("cents"), "{errors}");
        let size = header(m, "dlq_size").unwrap();
        assert_eq!(size, m.payload().unwrap().len().to_string());
    }

    // The API: samples newest first, the count, and the Route object's contract.
    let api = |path: String| {
        let admin = proxy.admin_addr;
        async move { send(Method::GET, &format!("http://{admin}{path}"), &[], "").await }
    };
    let v = api("/api/routes/guarded/contract-violations".into()).await.json();
    assert_eq!((v["route"].as_str(), v["violations"].as_u64()), (Some("guarded"), Some(2)));
    let ids: Vec<_> = v["samples"].as_array().unwrap().iter().map(|s| s["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["bad2", "bad1"], "newest first");
    let s = &v["samples"][0];
    assert_eq!((s["type"].as_str(), s["dataschema"].as_str()), (Some("com.github.order.created"), Some(V1_ID)));
    assert_eq!(s["errors"][0]["pointer"], "/amount");
    assert!(s["at"].as_str().unwrap().ends_with('Z'));
    let r = api("/api/routes/observed".into()).await.json();
    assert_eq!(r["contract"]["on_invalid"], "observe");
    assert_eq!(r["contract"]["violations"], 2);
    assert_eq!(r["contract"]["schemas"][0]["type"], "*");
    assert_eq!(r["contract"]["schemas"][0]["dataschema"], V1_ID);
    let missing = api("/api/routes/nope/contract-violations".into()).await;
    assert_eq!((missing.status, missing.json()["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_route")));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_owned_invalid_event_gets_422_or_goes_to_the_monolith_by_policy() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let split = "mode = \"split\"\nshare = 100";
    let routes = [
        route("rejecting", split, "on_invalid = \"dead_letter\", when_new_owned = \"reject\""),
        route("falling", split, "on_invalid = \"dead_letter\", when_new_owned = \"legacy\""),
    ];
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, &routes), &[("S", SECRET)], None).await;

    let reply = deliver(&proxy, "rejecting", r#"{"id":"r1","amount":1.5}"#, true).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "contract_violation");
    assert_eq!(error["errors"][0]["pointer"], "/amount", "{error}");
    assert!(monolith.received().is_empty(), "refused, not forwarded");
    let ok = deliver(&proxy, "rejecting", r#"{"id":"r2","amount":2}"#, true).await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "a valid new-owned event takes the new path");

    let reply = deliver(&proxy, "falling", r#"{"id":"f1"}"#, true).await;
    assert_eq!(reply.status, StatusCode::OK, "the monolith answers");
    let received = monolith.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, r#"{"id":"f1"}"#.as_bytes());

    let counted = || async {
        let t = scrape(&proxy).await;
        metric(&t, "strangler_dead_letters_total", &[("reason", "contract")]) == 2.0
            && metric(&t, "strangler_fallbacks_total", &[("route", "falling"), ("reason", "contract")]) == 1.0
            && metric(&t, "strangler_fallbacks_total", &[("route", "rejecting"), ("reason", "contract")]) == 0.0
    };
    assert!(eventually(WAIT, counted).await, "{}", scrape(&proxy).await);
    let ids: Vec<_> = drain(&tansu.brokers, "webhooks.rejecting", WAIT).await.iter().map(|m| header(m, "ce_id")).collect();
    assert_eq!(ids, [Some("r2".to_string())], "only the valid event is on the topic");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_compiles_the_new_schema_and_a_breaking_one_keeps_the_old() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strangler.toml");
    let write = |contract: &str| {
        // Loaded from a file with the process environment: no secret, so no signature check.
        let r = route("orders", "", "on_invalid = \"observe\"")
            .replace("secrets_env = [\"S\"], mode = \"observe\"", "mode = \"off\"")
            .replace(
                &format!("contract = {{ schema = \"{}/order.v1.json\", on_invalid = \"observe\" }}", contracts()),
                &format!("contract = {{ on_invalid = \"observe\", {} }}", contract.replace("DIR", &contracts())),
            );
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
            config(&monolith.url(), &tansu.brokers, &[r])
        );
        std::fs::write(&file, text).unwrap();
    };
    write("schema = \"DIR/order.v1.json\"");
    let cfg = strangler::config::load(&file).unwrap();
    let opts = strangler::app::Options { config_path: Some(file.clone()), ..Default::default() };
    let proxy = strangler::app::start(cfg, opts).await.expect("proxy starts");
    let no_currency = r#"{"id":"n1","amount":1}"#;
    let violations = || async {
        let admin = proxy.admin_addr;
        send(Method::GET, &format!("http://{admin}/api/routes/orders/contract-violations"), &[], "").await.json()
    };
    assert_eq!(deliver(&proxy, "orders", no_currency, true).await.status, StatusCode::OK);
    assert_eq!(violations().await["violations"], 0, "valid under v1");

    write("schema = \"DIR/order.v2-breaking.json\", previous = \"DIR/order.v1.json\"");
    let err = proxy.reload().await.expect_err("a breaking change is refused");
    assert!(err.contains("route[0].contract.schema") && err.contains("required_added"), "{err}");
    assert_eq!(deliver(&proxy, "orders", r#"{"id":"n2","amount":1}"#, true).await.status, StatusCode::OK);
    assert_eq!(violations().await["violations"], 0, "v1 still in force");

    write("schema = \"DIR/order.v2-breaking.json\", previous = \"DIR/order.v1.json\", compatibility = \"none\"");
    proxy.reload().await.expect("reload");
    assert_eq!(deliver(&proxy, "orders", r#"{"id":"n3","amount":1}"#, true).await.status, StatusCode::OK);
    let v = violations().await;
    assert_eq!(v["violations"], 1, "v2 in force: currency is required");
    assert_eq!(v["samples"][0]["dataschema"], "https://schemas.example.com/order/v2.json");
    assert_eq!(v["samples"][0]["errors"][0]["pointer"], "");
    proxy.shutdown().await;
}

#[test]
fn check_config_refuses_a_breaking_previous_naming_file_line_key_and_pointer() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["order.v1.json", "order.v2-breaking.json"] {
        std::fs::copy(Path::new(&contracts()).join(f), dir.path().join(f)).unwrap();
    }
    let file = dir.path().join("strangler.toml");
    let write = |contract: &str| {
        let text = format!("[legacy]\nurl = \"http://127.0.0.1:3000\"\n\n[[route]]\nname = \"orders\"\nmatch = {{ path = \"/orders\" }}\ntopic = \"orders\"\nsignature = {{ scheme = \"github\", mode = \"off\" }}\n\n[route.contract]\n{contract}");
        std::fs::write(&file, text).unwrap();
    };
    // Relative paths are taken from the working directory.
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_strangler"))
            .arg("check-config")
            .arg("strangler.toml")
            .current_dir(dir.path())
            .env_clear()
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    write("schema = \"order.v2-breaking.json\"\nprevious = \"order.v1.json\"\n");
    let (code, err) = check();
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("strangler.toml:11:1: key `route[0].contract.schema`"), "{err}");
    assert!(err.contains("breaks it at `/required` (required_added)"), "{err}");
    assert!(err.contains("currency"), "{err}");
    write("schema = \"order.v2-breaking.json\"\nprevious = \"order.v1.json\"\ncompatibility = \"none\"\n");
    let (code, err) = check();
    assert_eq!(code, Some(0), "{err}");
}
