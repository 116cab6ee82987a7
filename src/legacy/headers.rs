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

/// Removes hop-by-hop headers, `Upgrade`, and every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Appends the client to `X-Forwarded-For`, and sets `X-Forwarded-Proto` and `X-Forwarded-Host`
/// unless a load balancer in front already did.
pub fn add_forwarded(headers: &mut HeaderMap, client: IpAddr, host: Option<&HeaderValue>) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let chain = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {client}"),
        _ => client.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
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
    }
}
