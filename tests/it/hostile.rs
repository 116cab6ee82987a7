//! Hostile input at the public listener: request smuggling, header and body limits, slow clients,
//! load shedding, hop-by-hop headers and forwarding headers. Raw sockets, real Tansu, the sample
//! monolith's received log as the witness of what got through.

use std::time::Duration;

use http::{Method, StatusCode};
use strangler::demo::monolith::{Monolith, MonolithHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{metric, post, scrape, send, start_proxy, url};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::wire::{exchange, find, read_until_closed, responses, Raw};

const WAIT: Duration = Duration::from_secs(20);

fn config(legacy: &str, brokers: &str, server: &str) -> String {
    crate::harness::github_config(legacy, brokers, &format!("[server]\nlisten = \"127.0.0.1:0\"\n{server}"))
}

fn chunk(data: &[u8]) -> Vec<u8> {
    [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat()
}

/// What the monolith recorded under `prefix`: (path after the prefix, body).
fn seen(monolith: &MonolithHandle, prefix: &str) -> Vec<(String, Vec<u8>)> {
    monolith
        .received()
        .into_iter()
        .filter_map(|r| r.uri.path().strip_prefix(prefix).map(|rest| (rest.to_string(), r.body.to_vec())))
        .collect()
}

/// One smuggling attempt: the bytes a client sends on one connection, the answers it must get
/// back, and exactly what the monolith must record.
struct Case {
    name: &'static str,
    wire: Vec<u8>,
    /// [`render`]ed answers: `"400"` is hyper's own, empty-bodied; `"400 body_read_failed"` strangler's JSON.
    answers: Vec<&'static str>,
    /// (path under `/sm/<name>/`, body), in order.
    forwarded: Vec<(&'static str, Vec<u8>)>,
}

/// A request to `/sm/<name>/a` with `headers` and `body`, then, unless the proxy closes the
/// connection first, a `/sm/<name>/marker` request that closes it.
fn case(name: &'static str, headers: &str, body: &[u8], answers: &[&'static str], forwarded: &[(&'static str, &[u8])]) -> Case {
    let mut wire = format!("POST /sm/{name}/a HTTP/1.1\r\nHost: x\r\n{headers}\r\n").into_bytes();
    wire.extend_from_slice(body);
    wire.extend_from_slice(marker(name).as_bytes());
    Case { name, wire, answers: answers.to_vec(), forwarded: forwarded.iter().map(|(p, b)| (*p, b.to_vec())).collect() }
}

fn marker(name: &str) -> String {
    format!("GET /sm/{name}/marker HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

fn smuggled(name: &str) -> String {
    format!("GET /sm/{name}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// strangler's answer to a request whose head was fine but whose body was not.
const BODY_400: &str = "400 body_read_failed";

/// `"200"` for a forwarded answer, the bare status for hyper's empty-bodied ones, else status and code.
fn render(r: &Raw) -> String {
    if r.status < 300 || r.body.is_empty() {
        r.status.to_string()
    } else {
        format!("{} {}", r.status, r.code())
    }
}

fn corpus() -> Vec<Case> {
    let hello: &[u8] = b"hello";
    let chunked_hello = [chunk(hello), b"0\r\n\r\n".to_vec()].concat();
    let ok_then_marker = ["200", "200"];
    let forwarded_hello: &[(&str, &[u8])] = &[("a", hello), ("marker", b"")];
    let mut cases = vec![
        // CL.TE: a front end trusting Content-Length would pass the smuggled request as body; one
        // trusting Transfer-Encoding sees it as a second request. hyper goes by Transfer-Encoding,
        // drops Content-Length and closes the connection after answering: the rest is never read.
        {
            let body = format!("0\r\n\r\n{}", smuggled("cl_te"));
            let headers = format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", body.len());
            case("cl_te", &headers, body.as_bytes(), &["200"], &[("a", b"")])
        },
        // TE.CL: the smuggled request is the chunked body; hyper reads it as body, then closes.
        {
            let s = smuggled("te_cl");
            let body = [chunk(s.as_bytes()), b"0\r\n\r\n".to_vec()].concat();
            let mut c = case("te_cl", "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", &body, &["200"], &[]);
            c.forwarded = vec![("a", s.into_bytes())];
            c
        },
        // Same Content-Length twice is one length; differing ones are refused.
        case("cl_cl_same", "Content-Length: 5\r\nContent-Length: 5\r\n", hello, &ok_then_marker, forwarded_hello),
        case("cl_cl_conflict", "Content-Length: 5\r\nContent-Length: 44\r\n", hello, &["400"], &[]),
        case("cl_list", "Content-Length: 5, 5\r\n", hello, &["400"], &[]),
        case("cl_plus", "Content-Length: +5\r\n", hello, &["400"], &[]),
        case("cl_negative", "Content-Length: -5\r\n", hello, &["400"], &[]),
        case("cl_hex", "Content-Length: 0x5\r\n", hello, &["400"], &[]),
        case("cl_overflow", "Content-Length: 99999999999999999999999\r\n", hello, &["400"], &[]),
        // Obfuscated Transfer-Encoding: anything but a final `chunked` is refused.
        case("te_xchunked", "Transfer-Encoding: xchunked\r\n", &chunked_hello, &["400"], &[]),
        case("te_chunked_identity", "Transfer-Encoding: chunked, identity\r\n", &chunked_hello, &["400"], &[]),
        case("te_twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", &chunked_hello, &["400"], &[]),
        case("te_space_before_colon", "Transfer-Encoding : chunked\r\n", &chunked_hello, &["400"], &[]),
        case("te_vtab", "Transfer-Encoding: \x0bchunked\r\n", &chunked_hello, &["400"], &[]),
        case("te_obs_fold", "X-Pad: 1\r\n Transfer-Encoding: chunked\r\n", &chunked_hello, &["400"], &[]),
        // Whitespace around the value is optional whitespace: still plainly chunked.
        case("te_leading_space", "Transfer-Encoding:  chunked\r\n", &chunked_hello, &ok_then_marker, forwarded_hello),
        case("te_tab", "Transfer-Encoding:\tchunked\r\n", &chunked_hello, &ok_then_marker, forwarded_hello),
        case("te_upper", "Transfer-Encoding: CHUNKED\r\n", &chunked_hello, &ok_then_marker, forwarded_hello),
        case("te_identity_chunked", "Transfer-Encoding: identity, chunked\r\n", &chunked_hello, &ok_then_marker, forwarded_hello),
        // A broken chunked body: the head was fine, so strangler answers (JSON) and forwards nothing.
        case("chunk_bad_size", "Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n", &[BODY_400], &[]),
        case(
            "chunk_overflow",
            "Transfer-Encoding: chunked\r\n",
            b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            &[BODY_400],
            &[],
        ),
        // Plain pipelining is not smuggling: three requests sent, three forwarded, in order.
        {
            let body = [hello, smuggled("pipelined").as_bytes()].concat();
            let mut c = case("pipelined", "Content-Length: 5\r\n", &body, &["200", "200", "200"], &[]);
            c.forwarded = vec![("a", hello.to_vec()), ("smuggled", Vec::new()), ("marker", Vec::new())];
            c
        },
    ];
    // Head limits at their defaults (16 KiB, 100 header lines): hyper answers 431 itself.
    let pad = |n: usize| format!("X-Pad: {}\r\nContent-Length: 5\r\n", "a".repeat(n));
    cases.push(case("head_too_large", &pad(20_000), hello, &["431"], &[]));
    cases.push(case("head_large_ok", &pad(12_000), hello, &ok_then_marker, forwarded_hello));
    let lines = |n: usize| (0..n).map(|i| format!("X-H{i}: {i}\r\n")).collect::<String>() + "Content-Length: 5\r\n";
    cases.push(case("too_many_headers", &lines(100), hello, &["431"], &[]));
    cases.push(case("many_headers_ok", &lines(90), hello, &ok_then_marker, forwarded_hello));
    // A header line starting with whitespace right after the request line.
    let mut leading = b"POST /sm/te_first_line_space/a HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n".to_vec();
    leading.extend_from_slice(&chunked_hello);
    leading.extend_from_slice(marker("te_first_line_space").as_bytes());
    cases.push(Case { name: "te_first_line_space", wire: leading, answers: vec!["400"], forwarded: vec![] });
    // Transfer-Encoding does not exist in HTTP/1.0.
    let mut http10 = b"POST /sm/te_http10/a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    http10.extend_from_slice(&chunked_hello);
    cases.push(Case { name: "te_http10", wire: http10, answers: vec!["400"], forwarded: vec![] });
    cases
}

#[tokio::test(flavor = "multi_thread")]
async fn smuggling_corpus_gets_the_documented_status_and_the_monolith_sees_exactly_what_was_sent() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", "s")], None).await;

    let mut failures = Vec::new();
    for c in corpus() {
        let wire = exchange(proxy.public_addr, &c.wire).await;
        let answers = responses(&wire);
        let rendered: Vec<String> = answers.iter().map(render).collect();
        // Every exchange is over once the proxy closed the connection, so the log is final.
        let prefix = format!("/sm/{}/", c.name);
        let got = seen(&monolith, &prefix);
        let expected: Vec<(String, Vec<u8>)> = c.forwarded.iter().map(|(p, b)| (p.to_string(), b.clone())).collect();
        if rendered != c.answers || got != expected {
            failures.push(format!(
                "{}: answers {rendered:?} (expected {:?}), monolith saw {:?} (expected {:?})",
                c.name,
                c.answers,
                got.iter().map(|(p, b)| (p, String::from_utf8_lossy(b))).collect::<Vec<_>>(),
                expected.iter().map(|(p, b)| (p, String::from_utf8_lossy(b))).collect::<Vec<_>>(),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Whatever the client framed, the monolith got one unambiguous framing.
    for r in monolith.received() {
        let te = r.headers.get_all("transfer-encoding").iter().count();
        let cl = r.headers.get_all("content-length").iter().count();
        assert!(te + cl <= 1, "{} arrived with {te} Transfer-Encoding and {cl} Content-Length", r.uri);
    }
    assert!(monolith.received().iter().all(|r| !r.uri.path().ends_with("/smuggled") || r.uri.path() == "/sm/pipelined/smuggled"));
    proxy.shutdown().await;
}

/// Reads exactly one response (Content-Length framed) off a kept-alive connection.
async fn read_one(stream: &mut TcpStream) -> Raw {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |n| n.trim().parse().unwrap());
                if buf.len() >= end + 4 + len {
                    return;
                }
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before a whole response: {}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("a response");
    responses(&buf).remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_head_limits_get_431_from_hyper_with_an_empty_body() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let limits = "max_header_bytes = 2048\nmax_headers = 10\n";
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, limits), &[("GH", "s")], None).await;

    let request = |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    let pad = |n: usize| format!("X-Pad: {}\r\n", "a".repeat(n));
    let lines = |n: usize| (0..n).map(|i| format!("X-H{i}: {i}\r\n")).collect::<String>();
    for (path, extra, status) in [
        ("/limits/big", pad(2100), 431),
        ("/limits/fits", pad(1800), 200),
        ("/limits/many", lines(9), 431), // with Host and Connection: 11 lines
        ("/limits/enough", lines(7), 200),
    ] {
        let answers = responses(&exchange(proxy.public_addr, request(path, &extra).as_bytes()).await);
        assert_eq!(answers.len(), 1, "{path}");
        assert_eq!(answers[0].status, status, "{path}");
        if status == 431 {
            assert!(answers[0].body.is_empty(), "hyper answers before strangler runs: no JSON");
            assert_eq!(answers[0].header("connection"), Some("close"));
        }
    }
    let paths: Vec<String> = monolith.received().iter().map(|r| r.uri.path().to_string()).collect();
    assert_eq!(paths, ["/limits/fits", "/limits/enough"]);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_headers_stay_on_their_hop_both_ways() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", "s")], None).await;

    // Request: hop-by-hop headers, and headers the Connection header names, never reach the monolith.
    let wire = b"POST /hop/request HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Hop, x-other-hop\r\nX-Hop: a\r\nX-Other-Hop: b\r\n\
Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nTrailer: X-T\r\n\
Upgrade: h2c\r\nX-Kept: yes\r\nContent-Length: 5\r\n\r\nhello";
    let mut request = wire.to_vec();
    request.extend_from_slice(marker("hop").as_bytes());
    let answers = responses(&exchange(proxy.public_addr, &request).await);
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), [200, 200]);
    let got = monolith.received();
    assert_eq!(got[0].uri.path(), "/hop/request");
    assert_eq!(got[0].body.as_ref(), b"hello");
    assert_eq!(got[0].headers["x-kept"], "yes");
    let hop = [
        "connection",
        "x-hop",
        "x-other-hop",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
    ];
    for name in hop {
        assert!(!got[0].headers.contains_key(name), "{name} reached the monolith");
    }

    // Response: a monolith's hop-by-hop headers never reach the sender. The sample monolith
    // answers with the headers each `x-monolith-reply-header` asks for.
    let ask: Vec<(String, String)> = [
        "Connection: X-Internal",
        "X-Internal: secret",
        "Keep-Alive: timeout=5",
        "Proxy-Connection: keep-alive",
        "Proxy-Authenticate: Basic",
        "Trailer: X-T",
        "Upgrade: h2c",
        "X-Kept: yes",
    ]
    .iter()
    .map(|h| ("x-monolith-reply-header".to_string(), h.to_string()))
    .collect();
    let direct = send(Method::GET, &format!("{}/hop/direct", monolith.url()), &ask, "").await;
    for name in ["x-internal", "keep-alive", "proxy-authenticate", "trailer", "upgrade"] {
        assert!(direct.headers.contains_key(name), "the monolith itself sends {name}: {:?}", direct.headers);
    }
    let reply = send(Method::GET, &url(&proxy, "/hop/response"), &ask, "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["x-kept"], "yes");
    for name in ["x-internal", "keep-alive", "proxy-connection", "proxy-authenticate", "trailer", "upgrade"] {
        assert!(!reply.headers.contains_key(name), "{name} reached the sender: {:?}", reply.headers);
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_chunked_body_to_an_unmatched_path_gets_413_and_never_reaches_the_monolith_whole() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, "max_body_bytes = 1024\n"), &[("GH", "s")], None).await;

    // Streamed, not declared: the proxy is already forwarding it to the monolith when the limit hits.
    let body = vec![b'x'; 8 * 1024];
    let chunked = |path: &str, body: &[u8]| {
        let mut wire =
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").into_bytes();
        for part in body.chunks(512) {
            wire.extend_from_slice(&chunk(part));
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        wire
    };
    let answers = responses(&exchange(proxy.public_addr, &chunked("/big/streamed", &body)).await);
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].status, answers[0].code()), (413, "body_too_large".to_string()));
    assert_eq!(answers[0].header("connection"), Some("close"));
    assert!(answers[0].header("x-request-id").is_some());

    // Declared too large: refused before a byte of the body is read.
    let declared = format!("POST /big/declared HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
    let mut wire = declared.into_bytes();
    wire.extend_from_slice(&body);
    let answers = responses(&exchange(proxy.public_addr, &wire).await);
    assert_eq!((answers[0].status, answers[0].code()), (413, "body_too_large".to_string()));

    // Exactly at the limit is fine, and arrives whole.
    let answers = responses(&exchange(proxy.public_addr, &chunked("/big/at-limit", &body[..1024])).await);
    assert_eq!(answers[0].status, 200);
    let got = monolith.received();
    assert_eq!(got.len(), 1, "{:?}", got.iter().map(|r| r.uri.path().to_string()).collect::<Vec<_>>());
    assert_eq!((got[0].uri.path(), got[0].body.len()), ("/big/at-limit", 1024));

    let text = scrape(&proxy).await;
    let too_large = [("route", "_unmatched"), ("status", "413"), ("outcome", "body_too_large")];
    assert_eq!(metric(&text, "strangler_requests_total", &too_large), 1.0);
    assert_eq!(metric(&text, "strangler_requests_total", &[("route", "_unrouted"), ("outcome", "body_too_large")]), 1.0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_or_trickled_body_gets_408_and_nothing_is_forwarded() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let server = "body_read_timeout_ms = 300\n";
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, server), &[("GH", "s")], None).await;

    // Stalled: part of the declared body, then nothing, on an unmatched path and on a route.
    for (path, extra) in [("/stall/unmatched", String::new()), ("/webhooks/github", "X-Hub-Signature-256: x\r\n".to_string())] {
        let wire = format!("POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: 100\r\n\r\n0123456789");
        let answers = responses(&exchange(proxy.public_addr, wire.as_bytes()).await);
        assert_eq!(answers.len(), 1, "{path}");
        assert_eq!((answers[0].status, answers[0].code()), (408, "body_timeout".to_string()), "{path}");
        assert_eq!(answers[0].header("connection"), Some("close"));
    }

    // Trickled: a byte every 20 ms never stalls, but the whole body would take 20 s; the deadline
    // is on the whole body, so it is cut off all the same.
    let mut stream = TcpStream::connect(proxy.public_addr).await.unwrap();
    stream.write_all(b"POST /stall/trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n").await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            if writer.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        writer
    });
    let mut wire = Vec::new();
    tokio::time::timeout(WAIT, reader.read_to_end(&mut wire)).await.expect("answered before the body ends").ok();
    trickle.abort();
    let answers = responses(&wire);
    assert_eq!((answers[0].status, answers[0].code()), (408, "body_timeout".to_string()));

    assert!(monolith.received().is_empty(), "nothing is forwarded whole");
    let text = scrape(&proxy).await;
    for route in ["_unmatched", "github"] {
        let labels = [("route", route), ("status", "408"), ("outcome", "body_timeout")];
        assert!(metric(&text, "strangler_requests_total", &labels) >= 1.0, "{route}");
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_slow_clients_do_not_stop_a_normal_one_and_are_closed_after_the_timeouts() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // Long enough that the normal request is served well inside them, short enough for a test.
    let server = "header_read_timeout_ms = 4000\nbody_read_timeout_ms = 4000\n";
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, server), &[("GH", "s")], None).await;

    // 500 connections, 4 kinds: a partial head, and a partial body to an unmatched path (streamed
    // on to the monolith) or to a route (collected for the signature check).
    let partial_head = "POST /slow/head HTTP/1.1\r\nHost: x\r\nX-Pad: aaaa";
    let partial_unmatched = "POST /slow/body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    let partial_route =
        "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 100\r\n\r\n0123456789";
    let mut slow = Vec::new();
    for i in 0..500 {
        let mut stream = TcpStream::connect(proxy.public_addr).await.unwrap();
        let partial = match i % 4 {
            0 | 1 => partial_head,
            2 => partial_unmatched,
            _ => partial_route,
        };
        stream.write_all(partial.as_bytes()).await.unwrap();
        slow.push((i % 4 >= 2, stream));
    }

    let body = br#"{"repository":{"full_name":"a/b"}}"#;
    assert_eq!(post(&url(&proxy, "/normal"), &[], "hi").await.status, StatusCode::OK);
    assert_eq!(post(&url(&proxy, "/webhooks/github"), &sign::github("s", body), &body[..]).await.status, StatusCode::OK);
    // ...while every slow client is still connected and unanswered.
    for (_, stream) in &slow {
        let mut buf = [0u8; 64];
        let err = stream.try_read(&mut buf).expect_err("a slow client was answered or closed before its timeout");
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    }

    // Then the timeouts close them: a partial head without an answer (hyper), a partial body with 408.
    let mut timed_out = 0;
    for (body_sent, mut stream) in slow {
        let wire = read_until_closed(&mut stream).await;
        if body_sent {
            let answers = responses(&wire);
            assert_eq!((answers[0].status, answers[0].code()), (408, "body_timeout".to_string()));
            timed_out += 1;
        } else {
            assert!(wire.is_empty(), "hyper closes a connection whose head timed out without answering");
        }
    }
    assert_eq!(timed_out, 250);
    let paths: Vec<String> = monolith.received().iter().map(|r| r.uri.path().to_string()).collect();
    assert_eq!(paths, ["/normal", "/webhooks/github"], "no slow request reached the monolith whole");
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_requests_total", &[("status", "408"), ("outcome", "body_timeout")]), 250.0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_concurrent_requests_the_next_one_is_shed_with_503_and_everything_drains() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy =
        start_proxy(&config(&monolith.url(), &tansu.brokers, "max_concurrent_requests = 4\n"), &[("GH", "s")], None).await;

    let held: Vec<_> = (0..4)
        .map(|i| {
            let target = url(&proxy, &format!("/shed/{i}/hold"));
            tokio::spawn(async move { post(&target, &[], "held").await })
        })
        .collect();
    assert_eq!(monolith.wait_for(4, WAIT).await.len(), 4, "four requests parked in the monolith");

    let shed = post(&url(&proxy, "/shed/5"), &[], "one too many").await;
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.json()["error"]["code"], "overloaded");
    assert_eq!(shed.headers["retry-after"], "1");
    assert!(shed.headers.contains_key("x-request-id"));
    assert_eq!(monolith.received().len(), 4, "a shed request is not forwarded");

    monolith.release_held();
    for h in held {
        assert_eq!(h.await.unwrap().status, StatusCode::OK);
    }
    // Slots are free again: a burst as large as the limit goes through.
    let after: Vec<_> = (0..4)
        .map(|i| {
            let target = url(&proxy, &format!("/shed/after/{i}"));
            tokio::spawn(async move { post(&target, &[], "").await.status })
        })
        .collect();
    for h in after {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }

    let text = scrape(&proxy).await;
    let overloaded = [("route", "_unrouted"), ("status", "503"), ("outcome", "overloaded")];
    assert_eq!(metric(&text, "strangler_requests_total", &overloaded), 1.0);
    assert_eq!(metric(&text, "strangler_load_shed_total", &[]), 1.0);
    assert_eq!(metric(&text, "strangler_requests_total", &[("route", "_unmatched"), ("status", "200")]), 8.0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_max_connections_the_listener_waits_for_one_to_close() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, "max_connections = 2\n"), &[("GH", "s")], None).await;

    // Two kept-alive connections, each served once: the cap is reached.
    let mut open = Vec::new();
    for i in 0..2 {
        let mut stream = TcpStream::connect(proxy.public_addr).await.unwrap();
        stream.write_all(format!("GET /cap/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        assert_eq!(read_one(&mut stream).await.status, 200);
        open.push(stream);
    }
    // A third connects (the kernel's backlog) but is not served while the two stay open. This
    // bounded wait only checks for absence: it cannot fail a correct proxy, however slow.
    let mut third = TcpStream::connect(proxy.public_addr).await.unwrap();
    third.write_all(b"GET /cap/third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    assert!(tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await.is_err());
    assert_eq!(monolith.received().len(), 2);

    drop(open.remove(0));
    let answers = responses(&read_until_closed(&mut third).await);
    assert_eq!(answers[0].status, 200);
    assert_eq!(monolith.received().last().unwrap().uri.path(), "/cap/third");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_headers_are_believed_only_from_trusted_proxies() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let spoof: Vec<(String, String)> = [
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "spoofed.example"),
        ("Forwarded", "for=1.2.3.4;proto=https"),
        ("X-Real-IP", "1.2.3.4"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    // Untrusted (the default: nobody): the claims are discarded and the connection speaks.
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", "s")], None).await;
    assert_eq!(post(&url(&proxy, "/xff/untrusted"), &spoof, "").await.status, StatusCode::OK);
    let host = proxy.public_addr.to_string();
    proxy.shutdown().await;
    let got = monolith.received().pop().unwrap();
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(got.headers["x-forwarded-proto"], "http");
    assert_eq!(got.headers["x-forwarded-host"], host.as_str());
    assert!(!got.headers.contains_key("forwarded") && !got.headers.contains_key("x-real-ip"));

    // Trusted: the peer is appended to the chain, the rest is kept.
    let trusted = "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\n";
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, trusted), &[("GH", "s")], None).await;
    assert_eq!(post(&url(&proxy, "/xff/trusted"), &spoof, "").await.status, StatusCode::OK);
    proxy.shutdown().await;
    let got = monolith.received().pop().unwrap();
    assert_eq!(got.headers["x-forwarded-for"], "1.2.3.4, 127.0.0.1");
    assert_eq!(got.headers["x-forwarded-proto"], "https");
    assert_eq!(got.headers["x-forwarded-host"], "spoofed.example");
    assert_eq!(got.headers["forwarded"], "for=1.2.3.4;proto=https");
}

#[test]
fn server_limits_and_trusted_proxies_are_validated_with_the_key_and_index() {
    let src = r#"[server]
trusted_proxies = ["10.0.0.0/8", "10.0.0.1/8", "nope", "::1/129"]
max_header_bytes = 100
max_concurrent_requests = 0
body_read_timeout_ms = 0
[legacy]
url = "http://127.0.0.1:3000"
"#;
    let err = strangler::config::load_str(src, "bad.toml", &|_| None).unwrap_err().to_string();
    for expected in [
        "bad.toml:2:34: key `server.trusted_proxies[1]`: expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or one address, found `10.0.0.1/8` (host bits are set; the network is 10.0.0.0/8)",
        "key `server.trusted_proxies[2]`: expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or one address, found `nope` (`nope` is not an IP address)",
        "key `server.trusted_proxies[3]`",
        "key `server.max_header_bytes`: expected a number from 1024 to 1048576, found 100",
        "key `server.max_concurrent_requests`: expected a number from 1 to 1000000, found 0",
        "key `server.body_read_timeout_ms`",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("trusted_proxies[0]"), "{err}");
}
