use super::*;
use crate::core::ws::test_util::pieces;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request(extra: &str) -> String {
    format!(
        "GET /ws?token=a%20b HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A request with one header line replaced (`name` removed when `line` is empty).
fn request_with(name: &str, line: &str) -> String {
    let base = request("");
    let mut out = String::new();
    for l in base.split_inclusive("\r\n") {
        if l.to_ascii_lowercase()
            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        {
            out.push_str(line);
        } else {
            out.push_str(l);
        }
    }
    out
}

fn parse(data: &[u8]) -> Result<Option<HandshakeDone>, HandshakeError> {
    RequestParser::new(8192, None).feed(data)
}

fn reject(data: &str) -> HandshakeError {
    parse(data.as_bytes()).expect_err("expected a rejection")
}

fn accept(data: &str) -> HandshakeDone {
    parse(data.as_bytes()).expect("valid").expect("complete")
}

#[test]
fn rfc_accept_value() {
    // RFC 6455 §1.3.
    assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn valid_request_and_response() {
    let done = accept(&request("Origin: https://app.example\r\nX-Real-IP: 10.0.0.1\r\n"));
    assert_eq!(
        done.consumed,
        request("Origin: https://app.example\r\nX-Real-IP: 10.0.0.1\r\n").len()
    );
    let h = &done.handshake;
    assert_eq!(h.path, "/ws");
    assert_eq!(h.query.as_deref(), Some("token=a%20b"));
    assert_eq!(h.subprotocol, None);
    assert_eq!(h.codec(), Subprotocol::Json);
    assert_eq!(h.origin.as_deref(), Some("https://app.example"));
    assert_eq!(h.header("x-real-ip"), Some("10.0.0.1"));
    assert_eq!(h.header("HOST"), Some("example.com"));
    assert_eq!(h.headers.len(), 7);
    assert_eq!(
        String::from_utf8(done.response).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
}

#[test]
fn tolerant_where_rfc_allows() {
    let req = "GET / HTTP/1.1\r\nhost: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, \t Upgrade \r\n\
               sec-websocket-key:dGhlIHNhbXBsZSBub25jZQ==  \r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n";
    let done = accept(req);
    assert_eq!(done.handshake.path, "/");
    assert_eq!(done.handshake.query, None);
    // Connection may also be split over several headers, and an empty query is still a query.
    let req = request_with("Connection", "Connection: keep-alive\r\nConnection: upgrade\r\n")
        .replace("/ws?token=a%20b", "/ws?");
    assert_eq!(accept(&req).handshake.query.as_deref(), Some(""));
    // HTTP/1.2 is "at least 1.1".
    accept(&request("").replace("HTTP/1.1\r\n", "HTTP/1.2\r\n"));
}

#[test]
fn incremental_and_pipelined() {
    let req = request("Sec-WebSocket-Protocol: glide.proto\r\n");
    let mut stream = req.clone().into_bytes();
    stream.extend_from_slice(b"\x81\x80FRAME");
    for seed in 0..30 {
        let mut p = RequestParser::new(8192, None);
        let mut fed = 0;
        let mut done = None;
        for piece in pieces(&stream, seed) {
            assert!(done.is_none(), "input after completion");
            if let Some(d) = p.feed(piece).unwrap() {
                // The frame bytes left over are exactly the tail of this piece.
                assert_eq!(piece.get(d.consumed..), stream.get(fed + d.consumed..fed + piece.len()));
                assert_eq!(fed + d.consumed, req.len());
                done = Some(d);
                break;
            }
            fed += piece.len();
        }
        let done = done.expect("complete");
        assert_eq!(done.handshake.subprotocol, Some(Subprotocol::Proto));
    }
    // One byte at a time, the terminator split in every way.
    let mut p = RequestParser::new(8192, None);
    let bytes = req.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        let r = p.feed(std::slice::from_ref(b)).unwrap();
        assert_eq!(r.is_some(), i == bytes.len() - 1, "byte {i}");
    }
}

#[test]
fn subprotocol_choice() {
    let cases: [(&str, Option<Subprotocol>); 7] = [
        (
            "Sec-WebSocket-Protocol: glide.json, glide.proto\r\n",
            Some(Subprotocol::Json),
        ),
        (
            "Sec-WebSocket-Protocol: chat, glide.proto,glide.json\r\n",
            Some(Subprotocol::Proto),
        ),
        (
            "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: glide.json\r\n",
            Some(Subprotocol::Json),
        ),
        ("Sec-WebSocket-Protocol: GLIDE.PROTO\r\n", None),
        ("Sec-WebSocket-Protocol: chat, superchat\r\n", None),
        ("Sec-WebSocket-Protocol: \r\n", None),
        ("", None),
    ];
    for (extra, want) in cases {
        let done = accept(&request(extra));
        assert_eq!(done.handshake.subprotocol, want, "{extra:?}");
        let response = String::from_utf8(done.response).unwrap();
        match want {
            Some(p) => assert!(response.contains(&format!("\r\nSec-WebSocket-Protocol: {}\r\n", p.name()))),
            None => assert!(!response.contains("Sec-WebSocket-Protocol")),
        }
    }
}

#[test]
fn bad_requests_are_400() {
    let cases = [
        request("").replace("GET ", "POST "),
        request("").replace("GET /ws?token=a%20b HTTP/1.1", "GET /ws HTTP/1.0"),
        request("").replace("HTTP/1.1\r\n", "HTTP/2.0\r\n"),
        request("").replace("GET /ws?token=a%20b HTTP/1.1", "GET  /ws HTTP/1.1"),
        request("").replace("GET /ws?token=a%20b HTTP/1.1", "GET /ws"),
        request("").replace("/ws?token=a%20b", "*"),
        request("").replace("/ws?token=a%20b", "http://h/ws"),
        request("").replace("/ws?token=a%20b", "/ws#frag"),
        request("").replace("/ws?token=a%20b", "/w\u{e9}"),
        request_with("Host", ""),
        request_with("Host", "Host:   \r\n"),
        request("Host: other\r\n"),
        request_with("Upgrade", ""),
        request_with("Upgrade", "Upgrade: h2c\r\n"),
        request_with("Connection", ""),
        request_with("Connection", "Connection: keep-alive\r\n"),
        request_with("Connection", "Connection: upgraded\r\n"),
        request_with("Sec-WebSocket-Key", ""),
        request_with("Sec-WebSocket-Key", "Sec-WebSocket-Key: not base64!\r\n"),
        // 15 and 17 bytes; and 16 bytes with non-zero trailing bits.
        request_with("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n"),
        request_with("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n"),
        request_with("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n"),
        request(&format!("Sec-WebSocket-Key: {KEY}\r\n")),
        request("Content-Length: 5\r\n"),
        request("Transfer-Encoding: chunked\r\n"),
        request("NoColonHere\r\n"),
        request("Bad Name: x\r\n"),
        request("Name : x\r\n"),
        request(": empty name\r\n"),
        request("X-Folded: a\r\n  continued\r\n"),
        request("X-Ctl: a\x01b\r\n"),
        request("X-Bare-Lf: a\nb\r\n"),
        request("X-Del: a\x7fb\r\n"),
        request("Origin: a\r\nOrigin: b\r\n"),
    ];
    for case in cases {
        let e = reject(&case);
        assert_eq!(e.status, 400, "{case:?} -> {e}");
        let response = String::from_utf8(e.response()).unwrap();
        assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(response.contains("\r\nConnection: close\r\n"));
        assert!(response.ends_with(&format!("\r\n\r\n{}\n", e.reason)));
    }
    // Content-Length: 0 is harmless.
    accept(&request("Content-Length: 0\r\n"));
}

#[test]
fn version_mismatch_is_426() {
    for case in [
        request_with("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8\r\n"),
        request_with("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8\r\n"),
        request_with("Sec-WebSocket-Version", ""),
    ] {
        let e = reject(&case);
        assert_eq!(e.status, 426, "{case:?}");
        let response = String::from_utf8(e.response()).unwrap();
        assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }
    assert_eq!(
        reject(&request("Sec-WebSocket-Version: 13\r\n")).status,
        400,
        "duplicate"
    );
}

#[test]
fn garbage_is_rejected_on_its_first_bytes() {
    let mut p = RequestParser::new(8192, None);
    // A TLS ClientHello.
    assert_eq!(p.feed(b"\x16").unwrap_err().status, 400);
    let mut p = RequestParser::new(8192, None);
    assert_eq!(p.feed(b"GE").unwrap(), None);
    assert_eq!(p.feed(b"T\t").unwrap_err().status, 400);
    assert_eq!(reject("\r\n\r\n").status, 400);
    assert_eq!(reject("GET \r\n\r\n").status, 400);
    assert_eq!(reject("GET / HTTP/1.1\r\n\r\n").reason, "missing Host header");
}

#[test]
fn oversized_header_block_is_431_without_buffering_more() {
    let mut p = RequestParser::new(64, None);
    assert_eq!(p.feed(b"GET /").unwrap(), None);
    let e = p.feed(&[b'a'; 100_000]).unwrap_err();
    assert_eq!(e.status, 431);
    assert!(p.buf.len() <= 64);
    // Exactly at the limit is fine, one byte over is not.
    let req = request("");
    assert!(RequestParser::new(req.len(), None)
        .feed(req.as_bytes())
        .unwrap()
        .is_some());
    let mut p = RequestParser::new(req.len() - 1, None);
    assert_eq!(p.feed(req.as_bytes()).unwrap_err().status, 431);
    // Byte by byte too.
    let mut p = RequestParser::new(req.len() - 1, None);
    let mut last = Ok(None);
    for b in req.as_bytes() {
        last = p.feed(std::slice::from_ref(b));
        if last.is_err() {
            break;
        }
    }
    assert_eq!(last.unwrap_err().status, 431);
}

#[test]
fn wrong_path_is_404_and_query_is_ignored() {
    let mut p = RequestParser::new(8192, Some("/ws".into()));
    assert!(p.feed(request("").as_bytes()).unwrap().is_some());
    let mut p = RequestParser::new(8192, Some("/chat".into()));
    let e = p.feed(request("").as_bytes()).unwrap_err();
    assert_eq!(e.status, 404);
    assert!(String::from_utf8(e.response())
        .unwrap()
        .starts_with("HTTP/1.1 404 Not Found\r\n"));
    // The path is judged first: a plain GET to a wrong path is a 404, not a 400.
    let mut p = RequestParser::new(8192, Some("/ws".into()));
    assert_eq!(p.feed(b"GET /favicon.ico HTTP/1.1\r\n\r\n").unwrap_err().status, 404);
}
