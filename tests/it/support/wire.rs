//! Raw HTTP/1.1 on a socket, for requests a client library would not send: write bytes, read
//! until the proxy closes, and split what came back into responses.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

/// Writes `bytes` on a fresh connection and reads until the proxy closes it.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_until_closed(&mut stream).await
}

/// Everything the peer sends until it closes (a reset after its answer counts as closed).
pub async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("the proxy closes the connection");
    out
}

/// One response parsed off the wire (header names lowercased).
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The JSON error body's `error.code`.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_string()
    }
}

/// Splits a byte stream into HTTP/1.1 responses (Content-Length or chunked bodies).
pub fn responses(mut wire: &[u8]) -> Vec<Raw> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let end = find(wire, b"\r\n\r\n").unwrap_or_else(|| panic!("incomplete head: {}", String::from_utf8_lossy(wire)));
        let head = std::str::from_utf8(&wire[..end]).unwrap();
        wire = &wire[end + 4..];
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| l.split_once(':').unwrap())
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut raw = Raw { status, headers, body: Vec::new() };
        if let Some(n) = raw.header("content-length").map(|n| n.parse::<usize>().unwrap()) {
            raw.body = wire[..n].to_vec();
            wire = &wire[n..];
        } else if raw.header("transfer-encoding") == Some("chunked") {
            loop {
                let line = find(wire, b"\r\n").unwrap();
                let size = usize::from_str_radix(std::str::from_utf8(&wire[..line]).unwrap(), 16).unwrap();
                wire = &wire[line + 2..];
                raw.body.extend_from_slice(&wire[..size]);
                wire = &wire[size + 2..];
                if size == 0 {
                    break;
                }
            }
        }
        out.push(raw);
    }
    out
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes `wire` on a fresh connection and returns the one answer, read until the proxy closes.
pub async fn answer(addr: SocketAddr, wire: &str) -> Raw {
    let mut answers = responses(&exchange(addr, wire.as_bytes()).await);
    assert_eq!(answers.len(), 1, "one answer to {wire:?}");
    answers.remove(0)
}
