//! Header hygiene between hops: what is stripped, discarded and added, and the name matches
//! that must spell the same lists as the statics.

use super::*;

#[test]
fn strips_hop_by_hop_and_connection_named_headers() {
    let mut h = HeaderMap::new();
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, X-Secret-Hop"));
    h.insert("x-secret-hop", HeaderValue::from_static("1"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert("x-github-event", HeaderValue::from_static("push"));
    strip_hop_by_hop(&mut h);
    assert_eq!(h.len(), 1);
    assert!(h.contains_key("x-github-event"));
}

#[test]
fn connection_cannot_name_the_headers_strangler_and_the_monolith_rely_on() {
    let mut h = HeaderMap::new();
    h.insert(header::CONNECTION, HeaderValue::from_static("Host, X-Request-Id, Content-Type, X-Hub-Signature-256, x-hop"));
    for name in ["host", "x-request-id", "content-type", "x-hub-signature-256", "x-hop"] {
        h.insert(HeaderName::from_static(name), HeaderValue::from_static("v"));
    }
    strip_hop_by_hop(&mut h);
    let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
    left.sort_unstable();
    assert_eq!(left, ["content-type", "host", "x-hub-signature-256", "x-request-id"]);
}

#[test]
fn forwarded_headers_append_and_keep_prior_values() {
    let mut h = HeaderMap::new();
    add_forwarded(&mut h, "10.0.0.1".parse().unwrap(), Some(&HeaderValue::from_static("hooks.example")));
    assert_eq!(h["x-forwarded-for"], "10.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "hooks.example");

    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    add_forwarded(&mut h, "10.0.0.2".parse().unwrap(), None);
    assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2");
    assert_eq!(h["x-forwarded-proto"], "https");

    // Several lines from a trusted proxy make one chain; empty ones are dropped.
    let mut h = HeaderMap::new();
    h.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 2.2.2.2"));
    h.append("x-forwarded-for", HeaderValue::from_static(" "));
    h.append("x-forwarded-for", HeaderValue::from_static("3.3.3.3"));
    add_forwarded(&mut h, "10.0.0.9".parse().unwrap(), None);
    assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9");
}

#[test]
fn the_name_matches_spell_the_lists() {
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        assert_eq!(hop_index(name.as_str()), Some(i), "{name}");
    }
    for (i, name) in FORWARDED.iter().enumerate() {
        assert_eq!(forwarded_index(name.as_str()), Some(i), "{name}");
    }
    for name in PROTECTED.iter().chain([&header::DATE, &HeaderName::from_static("close")]) {
        assert_eq!((hop_index(name.as_str()), forwarded_index(name.as_str())), (None, None), "{name}");
    }
}

#[test]
fn connection_may_name_a_header_in_any_case_and_close_is_a_name_too() {
    let mut h = HeaderMap::new();
    h.append(header::CONNECTION, HeaderValue::from_static("Keep-Alive, CLOSE"));
    h.append(header::CONNECTION, HeaderValue::from_static(" X-Hop ,, x-request-id, TE"));
    for name in ["keep-alive", "close", "x-hop", "x-request-id", "x-kept"] {
        h.insert(HeaderName::from_static(name), HeaderValue::from_static("v"));
    }
    strip_hop_by_hop(&mut h);
    let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
    left.sort_unstable();
    assert_eq!(left, ["x-kept", "x-request-id"]);
}

#[test]
fn addresses_are_spelled_as_display_spells_them() {
    for ip in ["0.0.0.0", "1.2.3.4", "10.0.100.9", "127.0.0.1", "255.255.255.255", "99.100.101.10", "::1", "::ffff:10.0.0.1"] {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(ip_value(ip), ip.to_string().as_str());
    }
}

#[test]
fn only_present_hop_by_hop_headers_go_and_upgrade_alone_is_stripped() {
    let mut h = HeaderMap::new();
    h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    h.insert("x-kept", HeaderValue::from_static("1"));
    strip_hop_by_hop(&mut h);
    assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-kept"]);

    // `Connection` naming a hop-by-hop header that is absent, and `Upgrade`.
    let mut h = HeaderMap::new();
    h.insert(header::CONNECTION, HeaderValue::from_static("close, te, upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.append("keep-alive", HeaderValue::from_static("a"));
    h.append("keep-alive", HeaderValue::from_static("b"));
    h.insert("x-kept", HeaderValue::from_static("1"));
    strip_hop_by_hop(&mut h);
    assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-kept"]);
}

#[test]
fn untrusted_forwarding_claims_are_discarded_then_set_from_the_connection() {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-port", "443"),
        ("forwarded", "for=1.2.3.4;proto=https"),
        ("x-real-ip", "1.2.3.4"),
        ("x-client-ip", "1.2.3.4"),
        ("true-client-ip", "1.2.3.4"),
        ("x-original-url", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("x-github-event", "push"),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    h.append("x-forwarded-for", HeaderValue::from_static("5.6.7.8"));
    discard_forwarded(&mut h);
    assert_eq!(h.len(), 1, "{h:?}");
    add_forwarded(&mut h, "127.0.0.1".parse().unwrap(), Some(&HeaderValue::from_static("hooks.example")));
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "hooks.example");
    assert!(!h.contains_key("forwarded") && !h.contains_key("x-real-ip"));
}
