use super::*;
use crate::core::ws::encode::encode_close;
use crate::core::ws::fuzz_harness::FUZZ_HANDSHAKE;
use crate::core::ws::test_util::{client_frame, pieces};

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn config() -> WsConfig {
    WsConfig {
        max_message_size: 1000,
        max_header_size: 1024,
        path: Some("/ws".into()),
    }
}

/// A connection past its handshake.
fn open() -> WsServerConn {
    let mut conn = WsServerConn::new(config());
    let feed = conn.feed(UPGRADE);
    assert!(feed.handshake.is_some());
    assert!(feed.to_send.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(conn.is_open());
    conn
}

fn close_frame(code: Option<u16>, reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_close(&mut out, code, reason);
    out
}

fn text(s: &str) -> WsMessage {
    WsMessage {
        binary: false,
        payload: s.as_bytes().to_vec(),
    }
}

#[test]
fn handshake_with_pipelined_frames_in_one_read() {
    let mut conn = WsServerConn::new(config());
    let mut data = FUZZ_HANDSHAKE.to_vec();
    data.extend(client_frame(true, 2, b"\x01\x02"));
    data.extend(client_frame(true, 1, b"hi"));
    let feed = conn.feed(&data);
    let handshake = feed.handshake.expect("handshake");
    assert_eq!(
        (handshake.path.as_str(), handshake.query.as_deref()),
        ("/ws", Some("x=1"))
    );
    assert_eq!(handshake.subprotocol, Some(Subprotocol::Proto));
    assert_eq!(conn.subprotocol(), Some(Subprotocol::Proto));
    assert_eq!(conn.codec(), Subprotocol::Proto);
    assert!(feed.to_send.ends_with(b"Sec-WebSocket-Protocol: glide.proto\r\n\r\n"));
    assert_eq!(
        feed.messages,
        vec![
            WsMessage {
                binary: true,
                payload: vec![1, 2]
            },
            text("hi")
        ]
    );
    assert_eq!(feed.close, None);
}

#[test]
fn partial_input_produces_an_empty_feed() {
    let mut conn = WsServerConn::new(config());
    let (head, tail) = UPGRADE.split_at(20);
    assert!(conn.feed(head).is_empty());
    assert_eq!(conn.state(), WsState::Handshaking);
    assert!(conn.feed(tail).handshake.is_some());
    let frame = client_frame(true, 1, b"hello");
    assert!(conn.feed(frame.get(..3).unwrap()).is_empty());
    assert_eq!(conn.feed(frame.get(3..).unwrap()).messages, vec![text("hello")]);
    // The handshake is reported once only.
    assert!(conn.feed(&client_frame(true, 1, b"x")).handshake.is_none());
}

#[test]
fn ping_gets_a_pong_and_pong_is_only_flagged() {
    let mut conn = open();
    let mut data = client_frame(true, 9, b"abc");
    data.extend(client_frame(true, 9, b""));
    data.extend(client_frame(true, 10, b"late pong"));
    let feed = conn.feed(&data);
    assert_eq!(feed.to_send, [0x8A, 3, b'a', b'b', b'c', 0x8A, 0]);
    assert!(feed.messages.is_empty());
    assert!(feed.pong_received);
    assert!(conn.is_open());
}

#[test]
fn peer_close_is_echoed() {
    let mut conn = open();
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"going");
    let mut data = client_frame(true, 1, b"last words");
    data.extend(client_frame(true, 8, &payload));
    data.extend(client_frame(true, 1, b"ignored"));
    let feed = conn.feed(&data);
    assert_eq!(feed.messages, vec![text("last words")]);
    assert_eq!(feed.to_send, close_frame(Some(1001), ""));
    assert_eq!(
        feed.close,
        Some(CloseRequest {
            code: 1001,
            reason: "going".into(),
            error: None
        })
    );
    assert_eq!(conn.state(), WsState::Closed);
    assert!(conn.feed(&client_frame(true, 9, b"")).is_empty());
    assert!(conn.close(1000, "").is_empty());
}

#[test]
fn empty_peer_close_is_answered_with_an_empty_close() {
    let mut conn = open();
    let feed = conn.feed(&client_frame(true, 8, b""));
    assert_eq!(feed.to_send, [0x88, 0]);
    assert_eq!(
        feed.close,
        Some(CloseRequest {
            code: 1005,
            reason: String::new(),
            error: None
        })
    );
}

#[test]
fn violations_send_a_close_frame_with_the_right_code() {
    let mut fragmented_text = client_frame(false, 1, b"a\xe2");
    fragmented_text.extend(client_frame(true, 0, b"\x82"));
    let cases: [(Vec<u8>, u16); 7] = [
        (vec![0x81, 0x00], 1002),
        (client_frame(true, 0, b"x"), 1002),
        (client_frame(true, 8, &[3]), 1002),
        (client_frame(true, 8, &1005u16.to_be_bytes()), 1002),
        (client_frame(true, 1, b"\xff"), 1007),
        (fragmented_text, 1007),
        (client_frame(true, 2, &[0; 1001]), 1009),
    ];
    for (data, code) in cases {
        let mut conn = open();
        let feed = conn.feed(&data);
        let close = feed.close.expect("close");
        assert_eq!(close.code, code);
        assert_eq!(close.error.as_deref(), Some(close.reason.as_str()));
        assert_eq!(feed.to_send, close_frame(Some(code), &close.reason));
        assert_eq!(conn.state(), WsState::Closed);
        assert!(conn.feed(&client_frame(true, 1, b"x")).is_empty());
    }
}

#[test]
fn messages_before_a_violation_are_delivered() {
    let mut conn = open();
    let mut data = client_frame(true, 1, b"ok");
    data.extend(client_frame(true, 9, b"p"));
    data.extend([0x83, 0x80]);
    let feed = conn.feed(&data);
    assert_eq!(feed.messages, vec![text("ok")]);
    let mut expected = vec![0x8A, 1, b'p'];
    expected.extend(close_frame(Some(1002), "unknown opcode"));
    assert_eq!(feed.to_send, expected);
}

#[test]
fn server_initiated_close() {
    let mut conn = open();
    assert_eq!(
        conn.close(1001, "shutting down"),
        close_frame(Some(1001), "shutting down")
    );
    assert_eq!(conn.state(), WsState::Closing);
    assert!(!conn.is_open());
    assert!(conn.close(1000, "again").is_empty());
    // Data and pings received while closing are dropped, and nothing is sent.
    let mut data = client_frame(true, 1, b"dropped");
    data.extend(client_frame(true, 9, b"no pong"));
    data.extend(client_frame(true, 10, b""));
    let feed = conn.feed(&data);
    assert!(feed.messages.is_empty() && feed.to_send.is_empty() && feed.close.is_none());
    assert!(feed.pong_received);
    // The peer's reply ends the connection without another close frame from us.
    let feed = conn.feed(&client_frame(true, 8, &1001u16.to_be_bytes()));
    assert!(feed.to_send.is_empty());
    assert_eq!(
        feed.close,
        Some(CloseRequest {
            code: 1001,
            reason: String::new(),
            error: None
        })
    );
    assert_eq!(conn.state(), WsState::Closed);
}

#[test]
fn violation_while_closing_sends_nothing_more() {
    let mut conn = open();
    assert!(!conn.close(1000, "").is_empty());
    let feed = conn.feed(&client_frame(true, 1, b"\xc3"));
    assert!(feed.to_send.is_empty());
    assert_eq!(feed.close.map(|c| c.code), Some(1007));
}

#[test]
fn unsendable_close_codes_become_an_empty_close() {
    let mut conn = open();
    assert_eq!(conn.close(1006, "abnormal"), [0x88, 0]);
}

#[test]
fn close_before_handshake_ends_silently() {
    let mut conn = WsServerConn::new(config());
    assert!(conn.feed(b"GET /ws HT").is_empty());
    assert!(conn.close(1001, "").is_empty());
    assert_eq!(conn.state(), WsState::Closed);
    assert!(conn.feed(UPGRADE).is_empty());
}

#[test]
fn rejected_handshakes() {
    let wrong_path = String::from_utf8(UPGRADE.to_vec()).unwrap().replace("/ws ", "/chat ");
    let bad_version = String::from_utf8(UPGRADE.to_vec())
        .unwrap()
        .replace("Version: 13", "Version: 7");
    let endless = [b"GET /".as_slice(), &[b'a'; 2000]].concat();
    let cases: [(&[u8], u16, &str); 4] = [
        (wrong_path.as_bytes(), 404, "HTTP/1.1 404 Not Found\r\n"),
        (bad_version.as_bytes(), 426, "HTTP/1.1 426 Upgrade Required\r\n"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            400,
            "HTTP/1.1 400 Bad Request\r\n",
        ),
        (&endless, 431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"),
    ];
    for (data, status, status_line) in cases {
        let mut conn = WsServerConn::new(config());
        let feed = conn.feed(data);
        assert!(feed.handshake.is_none());
        assert!(feed.to_send.starts_with(status_line.as_bytes()), "{status}");
        let close = feed.close.expect("close");
        assert_eq!(close.code, status);
        assert!(close.error.expect("error").starts_with("handshake rejected: "));
        assert_eq!(conn.state(), WsState::Closed);
        assert!(conn.feed(UPGRADE).is_empty());
    }
}

#[test]
fn any_path_without_a_configured_one() {
    let mut conn = WsServerConn::new(WsConfig::default());
    let req = String::from_utf8(UPGRADE.to_vec())
        .unwrap()
        .replace("/ws ", "/anything/else?q ");
    let h = conn.feed(req.as_bytes()).handshake.expect("handshake");
    assert_eq!((h.path.as_str(), h.query.as_deref()), ("/anything/else", Some("q")));
    assert_eq!(WsConfig::default().max_message_size, 65536);
}

#[test]
fn random_splits_of_a_long_session_agree() {
    let mut stream = UPGRADE.to_vec();
    let mut expected = Vec::new();
    for i in 0..40u32 {
        let body: String = (0..i * 7)
            .map(|j| char::from_u32(0x41 + (j % 26)).unwrap())
            .collect::<String>()
            + "é€𝄞";
        let bytes = body.as_bytes();
        // Alternate single frames and three-fragment messages with a ping in the middle.
        if i % 2 == 0 {
            stream.extend(client_frame(true, 1, bytes));
        } else {
            let (a, rest) = bytes.split_at(bytes.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            stream.extend(client_frame(false, 1, a));
            stream.extend(client_frame(true, 9, b"hb"));
            stream.extend(client_frame(false, 0, b));
            stream.extend(client_frame(true, 0, c));
        }
        expected.push(text(&body));
    }
    stream.extend(client_frame(true, 8, &1000u16.to_be_bytes()));
    for seed in 0..40 {
        let mut conn = WsServerConn::new(config());
        let mut messages = Vec::new();
        let mut sent = Vec::new();
        let mut close = None;
        for piece in pieces(&stream, seed) {
            let feed = conn.feed(piece);
            messages.extend(feed.messages);
            sent.extend(feed.to_send);
            close = close.or(feed.close);
        }
        assert_eq!(messages, expected, "seed {seed}");
        assert_eq!(
            close,
            Some(CloseRequest {
                code: 1000,
                reason: String::new(),
                error: None
            })
        );
        let pongs = sent.windows(4).filter(|w| *w == [0x8A, 2, b'h', b'b']).count();
        assert_eq!(pongs, 20);
        assert!(sent.ends_with(&close_frame(Some(1000), "")));
    }
}
