//! The operator console on the admin listener: the page and its assets with their headers (CSP,
//! ETag, long cache), and `GET /api/routes/{name}/trend` from real traffic through the sample
//! monolith and a consumer-kit service, with the dial's change marked.

use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use strangler::demo::decision::Order;
use strangler::demo::service::disagrees;

use crate::control::{call, control_config, get_json, ALICE, ENV};
use crate::harness::{eventually, send, start_proxy, Reply};
use crate::parity::{deciding_monolith, order, send_orders, start_service};
use crate::support::broker::Tansu;

const WAIT: Duration = Duration::from_secs(120);
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// One event in ten decided differently by the service.
const DISAGREE_BP: u32 = 1000;

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header: {:?}", reply.headers))
}

fn text(reply: &Reply) -> &str {
    std::str::from_utf8(&reply.body).unwrap()
}

/// The `/console/...` paths that `page` loads, in `src="..."` and `href="..."`.
fn assets(page: &str) -> Vec<String> {
    page.split(['"', '\'']).filter(|s| s.starts_with("/console/")).map(str::to_string).collect()
}

async fn get(url: &str, headers: &[(String, String)]) -> Reply {
    send(Method::GET, url, headers, "").await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_are_served_with_csp_etag_and_long_cache_even_when_reads_need_a_token() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let cfg = control_config(&monolith.url(), &tansu.brokers, "")
        .replace("[[admin.token]]\nname = \"alice\"", "read_requires_token = true\n[[admin.token]]\nname = \"alice\"");
    let proxy = start_proxy(&cfg, &ENV, None).await;
    let admin = format!("http://{}", proxy.admin_addr);

    // The page loads without a token; reads still need one.
    let page = get(&format!("{admin}/"), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "content-security-policy"), CSP);
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let etag = header(&page, "etag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
    let html = text(&page).to_string();

    let again = get(&format!("{admin}/"), &[("If-None-Match".into(), etag.clone())]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!((header(&again, "etag"), header(&again, "content-security-policy")), (etag.as_str(), CSP));
    let stale = get(&format!("{admin}/"), &[("If-None-Match".into(), "\"something-else\"".into())]).await;
    assert_eq!(stale.status, StatusCode::OK);

    // Nothing inline that the CSP would block: scripts only by `src`, no style attributes or handlers.
    assert!(!html.contains("style="), "no style attributes");
    assert!(!html.contains("<style"), "no inline style element");
    assert!(!html.to_lowercase().contains(" onclick=") && !html.to_lowercase().contains(" onload="));
    for script in html.split("<script").skip(1) {
        let (tag, rest) = script.split_once('>').unwrap();
        assert!(tag.contains("src=\"/console/"), "a script from the console's path: {tag}");
        assert!(rest.starts_with("</script>"), "an empty script element: {rest}");
    }

    // Every asset the page loads, and every module those import (`from "./x.js"`), in turn.
    let mut paths = assets(&html);
    assert_eq!(paths.iter().filter(|p| p.ends_with("/app.js") || p.ends_with("/app.css")).count(), 2, "{paths:?}");
    let mut served = 0;
    while let Some(path) = paths.pop() {
        let asset = get(&format!("{admin}{path}"), &[]).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        let content_type = if path.ends_with(".js") { "text/javascript; charset=utf-8" } else { "text/css; charset=utf-8" };
        assert_eq!(header(&asset, "content-type"), content_type, "{path}");
        assert_eq!(header(&asset, "cache-control"), "public, max-age=31536000, immutable", "{path}");
        assert_eq!(header(&asset, "content-security-policy"), CSP, "{path}");
        assert!(!asset.body.is_empty());
        served += 1;
        if path.ends_with(".js") {
            for parses in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
                assert!(!text(&asset).contains(parses), "{path} writes text through textContent only: {parses}");
            }
            let dir = path.rsplit_once('/').unwrap().0;
            for import in text(&asset).split("from \"./").skip(1) {
                paths.push(format!("{dir}/{}", import.split('"').next().unwrap()));
            }
        }
    }
    let version = html.split("/console/").nth(1).unwrap().split('/').next().unwrap().to_string();

    // An unknown file, or a known file under another version, is a JSON 404 like other unknown paths.
    for path in [format!("/console/{version}/nope.js"), "/console/0.0.0-old/app.js".to_string()] {
        let missing = get(&format!("{admin}{path}"), &[]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&missing, "content-type"), "application/json");
        assert_eq!(missing.json()["error"]["code"], "not_found");
    }

    // The trend is a read: refused without the token, answered with it.
    let trend = format!("{admin}/api/routes/orders/trend");
    assert_eq!(get(&trend, &[]).await.status, StatusCode::UNAUTHORIZED);
    let with = get(&trend, &[("Authorization".into(), format!("Bearer {ALICE}"))]).await;
    assert_eq!(with.status, StatusCode::OK, "{:?}", with.body);
    assert_eq!(with.json()["buckets"].as_array().map(Vec::len), Some(360));
    let unknown = get(&format!("{admin}/api/routes/nope/trend"), &[("Authorization".into(), format!("Bearer {ALICE}"))]).await;
    assert_eq!((unknown.status, unknown.json()["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_route")));

    let counted = |endpoint: &str, status: &str| proxy.metrics.control.requests.with_label_values(&[endpoint, status]).get();
    assert_eq!((counted("/", "200"), counted("/", "304")), (2, 1));
    assert_eq!(counted("/console/{version}/{file}", "200"), served);
    assert_eq!(counted("/console/{version}/{file}", "404"), 2);
    assert_eq!(counted("/api/routes/{name}/trend", "401"), 1);
    proxy.shutdown().await;
}

fn orders(n: usize) -> Vec<Order> {
    (0..n).map(|i| order(&format!("evt_trend_{i:03}"), &format!("cus_{}", i % 13), 500 + i as u64)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trend_has_the_hour_of_buckets_from_real_traffic_and_the_dials_change() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let proxy = start_proxy(&control_config(&monolith.url(), &tansu.brokers, ""), &ENV, None).await;
    let service = start_service(&tansu.brokers, DISAGREE_BP);
    let admin = format!("http://{}", proxy.admin_addr);
    let trend_url = format!("{admin}/api/routes/orders/trend");

    let sent = orders(40);
    assert!(send_orders(&proxy, &sent, 8).await.iter().all(|(s, _)| *s == StatusCode::OK));
    let mismatched = sent.iter().filter(|o| disagrees(&o.id, DISAGREE_BP)).count() as u64;
    assert!(mismatched > 0 && mismatched < 40, "{mismatched} of 40 disagree");
    let total =
        |t: &serde_json::Value, key: &str| t["buckets"].as_array().unwrap().iter().map(|b| b[key].as_u64().unwrap()).sum::<u64>();
    let all_decided = || async {
        let t = get_json(&trend_url).await;
        total(&t, "match") + total(&t, "mismatch") == 40
    };
    assert!(eventually(WAIT, all_decided).await, "{}", get_json(&trend_url).await);

    let t = get_json(&trend_url).await;
    assert_eq!((t["route"].as_str(), t["bucket_secs"].as_u64()), (Some("orders"), Some(10)));
    assert_eq!((total(&t, "match"), total(&t, "mismatch")), (40 - mismatched, mismatched));
    for key in ["missing_new", "missing_legacy", "truncated", "live", "new_errors"] {
        assert_eq!(total(&t, key), 0, "{key}");
    }
    let buckets = t["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 360);
    let starts: Vec<SystemTime> = buckets.iter().map(|b| humantime::parse_rfc3339(b["at"].as_str().unwrap()).unwrap()).collect();
    assert!(
        starts.windows(2).all(|w| w[1].duration_since(w[0]).ok() == Some(Duration::from_secs(10))),
        "10 s apart, oldest first"
    );
    assert!(starts[359] <= SystemTime::now() && SystemTime::now().duration_since(starts[359]).unwrap() < Duration::from_secs(20));
    for b in buckets {
        let (m, x) = (b["match"].as_u64().unwrap(), b["mismatch"].as_u64().unwrap());
        match m + x {
            0 => assert!(b["ratio"].is_null(), "{b}"),
            n => assert_eq!(b["ratio"].as_f64(), Some(m as f64 / n as f64), "{b}"),
        }
    }
    // The same totals as the route's last hour.
    let hour = get_json(&format!("{admin}/api/routes/orders")).await["parity"]["windows"]["1h"].clone();
    assert_eq!((hour["match"].as_u64(), hour["mismatch"].as_u64()), (Some(40 - mismatched), Some(mismatched)));
    assert_eq!(t["changes"], serde_json::json!([]), "no change yet: {}", t["changes"]);

    // A dial: marked on the trend with its version, who and why, once the audit trail has it.
    let dial = serde_json::json!({"percent": 10, "reason": "first step"});
    let reply = call(Method::PUT, &format!("{admin}/api/routes/orders/share"), Some(ALICE), dial).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let version = reply.json()["version"].as_u64().unwrap();
    let marked = || async { !get_json(&trend_url).await["changes"].as_array().unwrap().is_empty() };
    assert!(eventually(WAIT, marked).await, "the change never showed on the trend");
    let changes = get_json(&trend_url).await["changes"].clone();
    assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
    let c = &changes[0];
    assert_eq!(
        (c["version"].as_u64(), c["mode"].as_str(), c["share_percent"].as_f64(), c["by"].as_str(), c["reason"].as_str()),
        (Some(version), Some("split"), Some(10.0), Some("alice"), Some("first step"))
    );
    let at = humantime::parse_rfc3339(c["at"].as_str().unwrap()).unwrap();
    assert!(at >= starts[0], "within the hour the buckets cover");
    service.stop().await;
    proxy.shutdown().await;
}
