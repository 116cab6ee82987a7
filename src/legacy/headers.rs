//! Header hygiene between hops: hop-by-hop headers stay on their hop, `X-Forwarded-*` record the path.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the legacy
/// `Proxy-Connection` and `Keep-Alive` that some clients still send.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// End-to-end headers that `Connection` may never name: the message's own (`Host`, the request id,
/// the body's framing and type), and the signature, timestamp and delivery-id headers of the
/// built-in schemes, which the monolith checks as strangler did. A `Connection` header naming one
/// of these leaves it in place.
pub const PROTECTED: [HeaderName; 20] = [
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
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !PROTECTED.contains(name))
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Headers in which a client describes the path its request took (its address, or the URL a
/// front proxy rewrote). Believed only from `server.trusted_proxies`: from anyone else they are
/// discarded ([`discard_forwarded`]).
pub const FORWARDED: [HeaderName; 10] = [
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

/// Removes every header of [`FORWARDED`]: what an untrusted client claims about its route.
pub fn discard_forwarded(headers: &mut HeaderMap) {
    for name in &FORWARDED {
        headers.remove(name);
    }
}

/// Appends the client to `X-Forwarded-For` (joining every line a trusted proxy sent into one), and
/// sets `X-Forwarded-Proto` and `X-Forwarded-Host` unless a trusted proxy in front already did.
/// Untrusted peers' forwarding headers are gone by now, so for them the chain starts here.
pub fn add_forwarded(headers: &mut HeaderMap, client: IpAddr, host: Option<&HeaderValue>) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let mut chain: Vec<String> = headers
        .get_all(&xff)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    chain.push(client.to_string());
    if let Ok(v) = HeaderValue::from_str(&chain.join(", ")) {
        headers.insert(xff, v);
    }
    let proto = HeaderName::from_static("x-forwarded-proto");
    if !headers.contains_key(&proto) {
        headers.insert(proto, HeaderValue::from_static("http"));
    }
    let fwd_host = HeaderName::from_static("x-forwarded-host");
    if let (false, Some(host)) = (headers.contains_key(&fwd_host), host) {
        headers.insert(fwd_host, host.clone());
    }
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
