use super::*;
use crate::core::ws::test_util::{client_frame, pieces, raw_frame, MASK};

const MAX: usize = 1 << 20;

fn text(s: &str) -> WsEvent {
    WsEvent::Message(WsMessage {
        binary: false,
        payload: s.as_bytes().to_vec(),
    })
}

fn binary(b: &[u8]) -> WsEvent {
    WsEvent::Message(WsMessage {
        binary: true,
        payload: b.to_vec(),
    })
}

/// Parse `data` whole, byte by byte and in several random splittings; all must agree.
fn parse_all(data: &[u8], max: usize) -> (Vec<WsEvent>, Result<(), ProtocolError>) {
    let run = |chunks: Vec<&[u8]>| {
        let mut p = FrameParser::new(max);
        let mut out = Vec::new();
        let mut result = Ok(());
        for c in chunks {
            result = result.and(p.feed(c, &mut out));
        }
        (out, result)
    };
    let whole = run(vec![data]);
    if data.len() <= 70_000 {
        assert_eq!(run(data.chunks(1).collect()), whole, "byte by byte");
    }
    for seed in 1..8 {
        assert_eq!(run(pieces(data, seed)), whole, "seed {seed}");
    }
    whole
}

fn ok(data: &[u8]) -> Vec<WsEvent> {
    let (events, result) = parse_all(data, MAX);
    assert_eq!(result, Ok(()));
    events
}

fn err(data: &[u8]) -> u16 {
    err_with(data, MAX).code
}

fn err_with(data: &[u8], max: usize) -> ProtocolError {
    parse_all(data, max).1.expect_err("expected a protocol error")
}

#[test]
fn rfc_masked_hello() {
    // RFC 6455 §5.7: a single-frame masked text message.
    let frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(ok(&frame), vec![text("Hello")]);
    assert_eq!(client_frame(true, 1, b"Hello"), frame);
}

#[test]
fn rfc_unmasked_examples_are_rejected_from_a_client() {
    // The §5.7 unmasked examples are server frames: a server must fail them with 1002.
    assert_eq!(err(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]), 1002);
    assert_eq!(err(&[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]), 1002);
    assert_eq!(err(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]), 1002);
}

#[test]
fn rfc_fragmented_hello_masked() {
    let mut data = client_frame(false, 1, b"Hel");
    data.extend(client_frame(true, 0, b"lo"));
    assert_eq!(ok(&data), vec![text("Hello")]);
}

#[test]
fn rfc_masked_pong_and_ping() {
    let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(ok(&pong), vec![WsEvent::Pong(b"Hello".to_vec())]);
    assert_eq!(
        ok(&client_frame(true, 9, b"Hello")),
        vec![WsEvent::Ping(b"Hello".to_vec())]
    );
}

#[test]
fn rfc_256_bytes_and_64_kib() {
    let payload: Vec<u8> = (0..256u32).map(|i| i as u8).collect();
    let frame = client_frame(true, 2, &payload);
    assert_eq!(frame.get(..4), Some([0x82, 0xFE, 0x01, 0x00].as_slice()));
    assert_eq!(ok(&frame), vec![binary(&payload)]);

    let big: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
    let frame = client_frame(true, 2, &big);
    assert_eq!(frame.get(..10), Some([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0].as_slice()));
    assert_eq!(ok(&frame), vec![binary(&big)]);
}

#[test]
fn length_boundaries() {
    for len in [0usize, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 65537] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut p = FrameParser::new(MAX);
        let mut out = Vec::new();
        p.feed(&client_frame(true, 2, &payload), &mut out).unwrap();
        assert_eq!(out, vec![binary(&payload)], "len {len}");
    }
}

#[test]
fn several_frames_in_one_chunk_and_empty_frames() {
    let mut data = client_frame(true, 1, b"");
    data.extend(client_frame(true, 2, b""));
    data.extend(client_frame(false, 1, b""));
    data.extend(client_frame(false, 0, b""));
    data.extend(client_frame(true, 0, b"x"));
    data.extend(client_frame(true, 9, b""));
    data.extend(client_frame(true, 1, "é".as_bytes()));
    assert_eq!(
        ok(&data),
        vec![text(""), binary(b""), text("x"), WsEvent::Ping(vec![]), text("é")]
    );
}

#[test]
fn control_frames_inside_a_fragmented_message() {
    let mut data = client_frame(false, 2, b"ab");
    data.extend(client_frame(true, 9, b"p1"));
    data.extend(client_frame(false, 0, b"cd"));
    data.extend(client_frame(true, 10, b"p2"));
    data.extend(client_frame(true, 0, b"ef"));
    assert_eq!(
        ok(&data),
        vec![
            WsEvent::Ping(b"p1".to_vec()),
            WsEvent::Pong(b"p2".to_vec()),
            binary(b"abcdef")
        ]
    );
    // A close in the middle of a message ends everything; the partial message is never delivered.
    let mut data = client_frame(false, 1, b"ab");
    data.extend(client_frame(true, 8, &[0x03, 0xE8]));
    data.extend(client_frame(true, 0, b"cd"));
    assert_eq!(
        ok(&data),
        vec![WsEvent::Close {
            code: Some(1000),
            reason: String::new()
        }]
    );
}

#[test]
fn utf8_across_fragments() {
    // "€" is E2 82 AC; cut after each byte, and "𝄞" (4 bytes) cut in the middle.
    for cut in 1..3 {
        let euro = "€".as_bytes();
        let mut data = client_frame(false, 1, euro.get(..cut).unwrap());
        data.extend(client_frame(true, 9, b""));
        data.extend(client_frame(true, 0, euro.get(cut..).unwrap()));
        assert_eq!(ok(&data), vec![WsEvent::Ping(vec![]), text("€")]);
    }
    let clef = "a𝄞b".as_bytes();
    let mut data = client_frame(false, 1, clef.get(..3).unwrap());
    data.extend(client_frame(false, 0, clef.get(3..4).unwrap()));
    data.extend(client_frame(true, 0, clef.get(4..).unwrap()));
    assert_eq!(ok(&data), vec![text("a𝄞b")]);
}

#[test]
fn invalid_utf8_is_1007() {
    assert_eq!(err(&client_frame(true, 1, &[0xff])), 1007);
    assert_eq!(err(&client_frame(true, 1, b"ok\xed\xa0\x80")), 1007, "surrogate");
    assert_eq!(err(&client_frame(true, 1, b"\xc0\xaf")), 1007, "overlong");
    // A message that ends inside a code point, in one frame or across fragments.
    assert_eq!(err(&client_frame(true, 1, b"\xe2\x82")), 1007);
    let mut data = client_frame(false, 1, b"a\xe2");
    data.extend(client_frame(true, 0, b"\x82"));
    assert_eq!(err(&data), 1007);
    // Binary messages are not validated.
    assert_eq!(ok(&client_frame(true, 2, &[0xff])), vec![binary(&[0xff])]);
}

#[test]
fn invalid_utf8_fails_fast() {
    // The frame claims 1000 bytes but the bad sequence comes first: fail before the rest arrives.
    let mut payload = vec![b'a'; 1000];
    payload[3] = 0xC3;
    payload[4] = 0x28;
    let frame = client_frame(true, 1, &payload);
    let mut p = FrameParser::new(MAX);
    let mut out = Vec::new();
    assert_eq!(
        p.feed(frame.get(..4 + 8 + 5).unwrap(), &mut out).unwrap_err().code,
        1007
    );
    // Same in a first fragment that never gets its FIN.
    let mut p = FrameParser::new(MAX);
    assert_eq!(
        p.feed(&client_frame(false, 1, b"\xf5"), &mut out).unwrap_err().code,
        1007
    );
    assert!(out.is_empty());
}

#[test]
fn close_frames() {
    assert_eq!(
        ok(&client_frame(true, 8, b"")),
        vec![WsEvent::Close {
            code: None,
            reason: String::new()
        }]
    );
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice("bye ✓".as_bytes());
    assert_eq!(
        ok(&client_frame(true, 8, &payload)),
        vec![WsEvent::Close {
            code: Some(1001),
            reason: "bye ✓".into()
        }]
    );
    for code in [1000u16, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
        assert!(matches!(
            ok(&client_frame(true, 8, &code.to_be_bytes())).as_slice(),
            [WsEvent::Close { .. }]
        ));
    }
    assert_eq!(err(&client_frame(true, 8, &[0x03])), 1002, "1-byte payload");
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
        assert_eq!(err(&client_frame(true, 8, &code.to_be_bytes())), 1002, "code {code}");
    }
    assert_eq!(err(&client_frame(true, 8, b"\x03\xe8\xff")), 1007, "reason not UTF-8");
}

#[test]
fn input_after_close_is_ignored() {
    let mut data = client_frame(true, 8, b"");
    data.extend(client_frame(true, 1, b"late"));
    data.extend_from_slice(b"\x00\x00garbage");
    assert_eq!(
        ok(&data),
        vec![WsEvent::Close {
            code: None,
            reason: String::new()
        }]
    );
}

#[test]
fn header_violations_are_1002() {
    for rsv in [0x40u8, 0x20, 0x10] {
        assert_eq!(err(&raw_frame(0x81 | rsv, 0x80, &[], MASK, b"")), 1002, "rsv {rsv:#x}");
    }
    for opcode in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        assert_eq!(
            err(&raw_frame(0x80 | opcode, 0x80, &[], MASK, b"")),
            1002,
            "opcode {opcode}"
        );
    }
    assert_eq!(err(&raw_frame(0x82, 0x01, &[], MASK, b"x")), 1002, "unmasked");
    // Non-minimal lengths, and a 64-bit length with its top bit set.
    assert_eq!(err(&raw_frame(0x82, 0xFE, &[0, 125], MASK, &[0; 125])), 1002);
    assert_eq!(err(&raw_frame(0x82, 0xFE, &[0, 0], MASK, b"")), 1002);
    assert_eq!(
        err(&raw_frame(0x82, 0xFF, &[0, 0, 0, 0, 0, 0, 0xFF, 0xFF], MASK, b"")),
        1002
    );
    assert_eq!(
        err(&raw_frame(0x82, 0xFF, &[0, 0, 0, 0, 0, 0, 0, 5], MASK, b"12345")),
        1002
    );
    assert_eq!(
        err(&raw_frame(0x82, 0xFF, &[0x80, 0, 0, 0, 0, 0, 0, 0], MASK, b"")),
        1002
    );
    // Control frames: fragmented, or longer than 125 (both 16- and 64-bit forms).
    assert_eq!(err(&raw_frame(0x09, 0x80, &[], MASK, b"")), 1002);
    assert_eq!(err(&raw_frame(0x88, 0x80 | 126, &[0, 126], MASK, &[0; 126])), 1002);
    assert_eq!(
        err(&raw_frame(0x8A, 0x80 | 127, &[0, 0, 0, 0, 0, 1, 0, 0], MASK, b"")),
        1002
    );
}

#[test]
fn fragmentation_violations_are_1002() {
    assert_eq!(err(&client_frame(true, 0, b"x")), 1002, "continuation first");
    let mut data = client_frame(true, 1, b"done");
    data.extend(client_frame(false, 0, b"x"));
    assert_eq!(err(&data), 1002, "continuation after a complete message");
    let mut data = client_frame(false, 1, b"a");
    data.extend(client_frame(true, 2, b"b"));
    assert_eq!(err(&data), 1002, "new message inside a fragmented one");
    // Events before the violation are still reported.
    let mut data = client_frame(true, 1, b"first");
    data.extend(client_frame(true, 0, b"x"));
    let (events, result) = parse_all(&data, MAX);
    assert_eq!(events, vec![text("first")]);
    assert_eq!(result.unwrap_err().code, 1002);
}

#[test]
fn oversize_is_1009_before_buffering() {
    assert_eq!(ok(&client_frame(true, 2, &[1; 10])).len(), 1);
    let mut p = FrameParser::new(10);
    let mut out = Vec::new();
    // Only the header of an 11-byte frame: rejected before any payload arrives.
    let frame = client_frame(true, 2, &[1; 11]);
    assert_eq!(p.feed(frame.get(..6).unwrap(), &mut out).unwrap_err().code, 1009);
    // A 64-bit length announcing 2^62 bytes.
    let huge = raw_frame(0x82, 0xFF, &(1u64 << 62).to_be_bytes(), MASK, b"");
    assert_eq!(err_with(&huge, 10).code, 1009);
    // Fragments add up: 6 + 5 > 10.
    let mut data = client_frame(false, 1, b"123456");
    data.extend(client_frame(true, 9, &[0; 100]));
    data.extend(client_frame(true, 0, b"78901"));
    assert_eq!(err_with(&data, 10).code, 1009);
    // Control frames do not count towards the message size.
    let mut data = client_frame(false, 1, b"123456");
    data.extend(client_frame(true, 9, &[0; 100]));
    data.extend(client_frame(true, 0, b"7890"));
    let (events, result) = parse_all(&data, 10);
    assert_eq!(result, Ok(()));
    assert_eq!(events.last(), Some(&text("1234567890")));
}

#[test]
fn errors_are_sticky() {
    let mut p = FrameParser::new(MAX);
    let mut out = Vec::new();
    assert!(p.feed(&[0x83], &mut out).is_ok(), "one byte cannot be judged yet");
    assert!(p.feed(&[0x80], &mut out).is_err());
    assert!(p.is_done());
    assert_eq!(p.feed(&client_frame(true, 1, b"x"), &mut out), Ok(()));
    assert!(out.is_empty());
}

#[test]
fn unmask_matches_bytewise_xor_for_every_phase() {
    let mask = [0x11, 0x22, 0x44, 0x88];
    for len in 0..40 {
        for phase in 0..8 {
            let data: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, mask, phase);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[(i + phase) % 4])
                .collect();
            assert_eq!(fast, slow, "len {len} phase {phase}");
        }
    }
}
