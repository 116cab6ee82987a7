//! Header hygiene between hops: hop-by-hop headers stay on their hop, `X-Forwarded-*` record the path.

use std::net::IpAddr;

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the legacy
/// `Proxy-Connection` and `Keep-Alive` that some clients still send, and `Upgrade` (whose
/// protocol switch strangler never forwards). [`hop_index`] spells the same list.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The index of `name` in [`HOP_BY_HOP`]: one match on the name instead of nine comparisons.
fn hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

/// End-to-end headers that `Connection` may never name: the message's own (`Host`, the request id,
/// the body's framing and type), and the signature, timestamp and delivery-id headers of the
/// built-in schemes, which the monolith checks as strangler did. A `Connection` header naming one
/// of these leaves it in place.
pub static PROTECTED: [HeaderName; 20] = [
    header::HOST,
    HeaderName::from_static("x-request-id"),
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    HeaderName::from_static("x-hub-signature-256"),
    HeaderName::from_static("x-hub-signature"),
    HeaderName::from_static("x-github-delivery"),
    HeaderName::from_static("x-github-event"),
    HeaderName::from_static("stripe-signature"),
    HeaderName::from_static("webhook-id"),
    HeaderName::from_static("webhook-timestamp"),
    HeaderName::from_static("webhook-signature"),
    HeaderName::from_static("x-shopify-hmac-sha256"),
    HeaderName::from_static("x-shopify-webhook-id"),
    HeaderName::from_static("x-shopify-topic"),
    HeaderName::from_static("x-slack-signature"),
    HeaderName::from_static("x-slack-request-timestamp"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];

/// Removes hop-by-hop headers, `Upgrade`, and every header the `Connection` header names except
/// the [`PROTECTED`] ones.
///
/// One pass over the names finds which are present; only those are removed, so a message with
/// none (most requests) costs a scan and no lookups.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_index(name.as_str()) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // `Connection` is HOP_BY_HOP[0].
    let named = if present & 1 != 0 { connection_named(headers) } else { Vec::new() };
    for name in &named {
        headers.remove(name);
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// The present headers `Connection` names that go with it: not [`PROTECTED`], and not
/// [`HOP_BY_HOP`] (those go anyway). `keep-alive` and `close`, the usual values, cost no allocation.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    let is = |list: &[HeaderName], token: &str| list.iter().any(|h| h.as_str().eq_ignore_ascii_case(token));
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|token| !is(&HOP_BY_HOP, token) && !is(&PROTECTED, token) && headers.contains_key(*token))
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect()
}

/// Headers in which a client describes the path its request took (its address, or the URL a
/// front proxy rewrote). Believed only from `server.trusted_proxies`: from anyone else they are
/// discarded ([`discard_forwarded`]).
pub static FORWARDED: [HeaderName; 10] = [
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-port"),
    header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-client-ip"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
];

/// The index of `name` in [`FORWARDED`]: one match on the name instead of ten comparisons.
fn forwarded_index(name: &str) -> Option<usize> {
    Some(match name {
        "x-forwarded-for" => 0,
        "x-forwarded-proto" => 1,
        "x-forwarded-host" => 2,
        "x-forwarded-port" => 3,
        "forwarded" => 4,
        "x-real-ip" => 5,
        "x-client-ip" => 6,
        "true-client-ip" => 7,
        "x-original-url" => 8,
        "x-rewrite-url" => 9,
        _ => return None,
    })
}

/// Removes every header of [`FORWARDED`]: what an untrusted client claims about its route.
/// One pass over the names; only those present are removed.
pub fn discard_forwarded(headers: &mut HeaderMap) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = forwarded_index(name.as_str()) {
            present |= 1 << i;
        }
    }
    for (i, name) in FORWARDED.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Appends the client to `X-Forwarded-For` (joining every line a trusted proxy sent into one), and
/// sets `X-Forwarded-Proto` and `X-Forwarded-Host` unless a trusted proxy in front already did.
/// Untrusted peers' forwarding headers are gone by now, so for them the chain starts here.
pub fn add_forwarded(headers: &mut HeaderMap, client: IpAddr, host: Option<&HeaderValue>) {
    let client = ip_value(client);
    match headers.entry(X_FORWARDED_FOR) {
        Entry::Vacant(slot) => {
            slot.insert(client);
        }
        Entry::Occupied(mut lines) => {
            let mut chain: Vec<&str> =
                lines.iter().filter_map(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).collect();
            chain.push(client.to_str().expect("an address is ASCII"));
            if let Ok(v) = HeaderValue::from_str(&chain.join(", ")) {
                lines.insert(v);
            }
        }
    }
    headers.entry(X_FORWARDED_PROTO).or_insert(HeaderValue::from_static("http"));
    if let Some(host) = host {
        headers.entry(X_FORWARDED_HOST).or_insert_with(|| host.clone());
    }
}

/// `ip` as a header value, as its `Display` spells it; IPv4 without the formatting machinery.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string()).expect("an address is a valid header value");
    };
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            buf[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            buf[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + octet % 10;
        n += 1;
    }
    HeaderValue::from_bytes(&buf[..n]).expect("digits and dots are a valid header value")
}

#[cfg(test)]
mod tests {
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
        for ip in ["0.0.0.0", "1.2.3.4", "10.0.100.9", "127.0.0.1", "255.255.255.255", "99.100.101.10", "::1", "::ffff:10.0.0.1"]
        {
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
}
