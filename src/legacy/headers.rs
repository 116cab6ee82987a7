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
#[path = "headers_tests.rs"]
mod tests;
