//! Who may say where a request came from: `X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `X-Client-IP`,
//! `True-Client-IP`, `X-Original-URL` and `X-Rewrite-URL` are
//! believed only from a peer in `server.trusted_proxies`. From anyone else they are discarded here,
//! before any later layer, the event mapping or the monolith sees them; the legacy client then sets
//! `X-Forwarded-For`, `-Proto` and `-Host` afresh from the connection
//! ([`crate::legacy::headers::add_forwarded`]).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderName;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use super::ConnInfo;
use crate::legacy::headers::discard_forwarded;

/// An IP network: an address and a prefix length, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a
    /// dual-stack listener reports for IPv4 peers) match as the IPv4 address they carry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask(u128::from(u32::from(ip)), self.prefix, 32) == u128::from(u32::from(net)),
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask(u128::from(ip), self.prefix, 128) == u128::from(net),
            _ => false,
        }
    }
}

/// `bits` with all but the first `prefix` of its `width` bits cleared.
fn mask(bits: u128, prefix: u8, width: u32) -> u128 {
    let host_bits = width - u32::from(prefix);
    if host_bits >= 128 {
        0
    } else {
        bits & !((1u128 << host_bits) - 1)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.0.0.0/8`, `2001:db8::/32`, or one address (`10.1.2.3` = `/32`, `::1` = `/128`).
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| format!("`{addr}` is not an IP address"))?;
        let width: u8 = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => Some(p)
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("the prefix length must be a number from 0 to {width}"))?,
        };
        let bits = match net {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let masked = mask(bits, prefix, u32::from(width));
        if masked != bits {
            let network = match net {
                IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(masked as u32)),
                IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(masked)),
            };
            return Err(format!("host bits are set; the network is {network}/{prefix}"));
        }
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Discards forwarding headers from untrusted peers.
#[derive(Clone)]
pub struct ForwardedLayer {
    trusted: Arc<[Cidr]>,
}

impl ForwardedLayer {
    pub fn new(trusted: &[Cidr]) -> Self {
        Self { trusted: trusted.into() }
    }
}

impl<S> Layer<S> for ForwardedLayer {
    type Service = Forwarded<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Forwarded { inner, trusted: self.trusted.clone() }
    }
}

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// See [`ForwardedLayer`].
#[derive(Clone)]
pub struct Forwarded<S> {
    inner: S,
    trusted: Arc<[Cidr]>,
}

impl<S, B> Service<Request<B>> for Forwarded<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // No ConnInfo (never on the public listener) counts as untrusted.
        let conn = req.extensions().get::<ConnInfo>().copied();
        let trusted = conn.is_some_and(|c| self.trusted.iter().any(|n| n.contains(c.peer.ip())));
        if !trusted {
            discard_forwarded(req.headers_mut());
        }
        // Over TLS the scheme the sender used is https, unless a trusted proxy in front said otherwise
        // (legacy::headers::add_forwarded keeps a value already there).
        if conn.is_some_and(|c| c.tls) {
            req.headers_mut().entry(X_FORWARDED_PROTO).or_insert(HeaderValue::from_static("https"));
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_networks_and_single_addresses() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped peers of a dual-stack listener");
        assert!(!net.contains(ip("::1")));

        let one: Cidr = "192.168.1.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.168.1.7/32");
        assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));

        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("2001:db8::1")));
        assert!("::/0".parse::<Cidr>().unwrap().contains(ip("2001:db8::1")));
        assert!("::1".parse::<Cidr>().unwrap().contains(ip("::1")));
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for (bad, why) in [
            ("10.0.0.0/33", "prefix length"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/-1", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("2001:db8::/129", "prefix length"),
            ("10.0.0.1/8", "host bits are set; the network is 10.0.0.0/8"),
            ("localhost", "not an IP address"),
            ("10.0.0/8", "not an IP address"),
            (" 10.0.0.0/8", "not an IP address"),
            ("", "not an IP address"),
        ] {
            let err = bad.parse::<Cidr>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
