use super::*;

fn naive_mask(data: &[u8], mask: [u8; 4]) -> Vec<u8> {
    data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect()
}

/// A server-side frame (unmasked), built independently of the code under test.
fn server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![(if fin { 0x80 } else { 0 }) | op];
    if payload.len() < 126 {
        v.push(payload.len() as u8);
    } else if payload.len() <= 65535 {
        v.push(126);
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    } else {
        v.push(127);
        v.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

#[test]
fn rfc_example_accept_key() {
    // RFC 6455 §1.3.
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(client_key([0; 16]).len(), 24);
}

#[test]
fn mask_matches_naive_for_every_length_and_is_an_involution() {
    let mask = [0x12, 0x34, 0x56, 0x78];
    for len in 0..40 {
        let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(31)).collect();
        let mut m = data.clone();
        apply_mask(&mut m, mask);
        assert_eq!(m, naive_mask(&data, mask), "len {len}");
        apply_mask(&mut m, mask);
        assert_eq!(m, data);
    }
}

#[test]
fn encoded_frames_carry_mask_bit_lengths_and_masked_payload() {
    let mask = [1, 2, 3, 4];
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
        let payload = vec![b'a'; len];
        let mut out = Vec::new();
        encode_frame(&mut out, opcode::TEXT, &payload, mask);
        assert_eq!(out[0], 0x81);
        assert_eq!(out[1] & 0x80, 0x80, "client frames are masked");
        let (n, head) = match out[1] & 0x7F {
            126 => (u16::from_be_bytes([out[2], out[3]]) as usize, 4),
            127 => (u64::from_be_bytes(out[2..10].try_into().unwrap()) as usize, 10),
            n => (n as usize, 2),
        };
        assert_eq!(n, len);
        assert_eq!(&out[head..head + 4], &mask);
        assert_eq!(out[head + 4..], naive_mask(&payload, mask)[..]);
        // Minimal length encoding (RFC 6455 §5.2).
        assert_eq!(
            head,
            if len < 126 {
                2
            } else if len < 65536 {
                4
            } else {
                10
            }
        );
    }
}

#[test]
fn parses_server_frames_of_every_length_class() {
    for len in [0usize, 5, 125, 126, 65535, 65536] {
        let payload = vec![b'x'; len];
        let wire = server_frame(true, opcode::TEXT, &payload);
        let (f, n) = parse_frame(&wire, 1 << 20).unwrap().unwrap();
        assert_eq!(n, wire.len());
        assert!(f.fin);
        assert_eq!(f.opcode, opcode::TEXT);
        assert_eq!(f.payload.len(), len);
    }
}

#[test]
fn every_prefix_of_a_frame_is_incomplete_not_an_error() {
    for len in [3usize, 200, 70000] {
        let wire = server_frame(true, opcode::BINARY, &vec![7u8; len]);
        for cut in 0..wire.len().min(300) {
            assert_eq!(parse_frame(&wire[..cut], 1 << 20).unwrap(), None, "cut {cut}");
        }
        assert_eq!(parse_frame(&wire[..wire.len() - 1], 1 << 20).unwrap(), None);
    }
}

#[test]
fn two_frames_back_to_back() {
    let mut wire = server_frame(true, opcode::TEXT, b"one");
    wire.extend(server_frame(true, opcode::TEXT, b"two"));
    let (f, n) = parse_frame(&wire, 100).unwrap().unwrap();
    assert_eq!(f.payload, b"one");
    let (g, m) = parse_frame(&wire[n..], 100).unwrap().unwrap();
    assert_eq!(g.payload, b"two");
    assert_eq!(n + m, wire.len());
}

#[test]
fn hostile_server_frames_are_refused() {
    let masked = [0x81, 0x81, 1, 2, 3, 4, b'a' ^ 1];
    assert!(matches!(parse_frame(&masked, 100), Err(FrameError::Protocol(_))));
    let rsv = [0xC1, 0x00];
    assert!(matches!(parse_frame(&rsv, 100), Err(FrameError::Protocol(_))));
    for op in [3u8, 7, 0xB, 0xF] {
        assert!(
            matches!(parse_frame(&[0x80 | op, 0], 100), Err(FrameError::Protocol(_))),
            "op {op}"
        );
    }
    let long_ping = server_frame(true, opcode::PING, &[0; 126]);
    assert!(matches!(parse_frame(&long_ping, 1000), Err(FrameError::Protocol(_))));
    let fragmented_ping = server_frame(false, opcode::PING, b"x");
    assert!(matches!(
        parse_frame(&fragmented_ping, 1000),
        Err(FrameError::Protocol(_))
    ));
    // Length checked before the payload arrives: a 2^63 length never allocates or waits.
    let huge = [0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(parse_frame(&huge, 1 << 20), Err(FrameError::TooLarge));
    assert_eq!(
        parse_frame(&server_frame(true, 1, &[0; 101]), 100),
        Err(FrameError::TooLarge)
    );
}

#[test]
fn reassembles_fragments_and_passes_control_frames_between_them() {
    let mut r = Reassembler::default();
    let a = server_frame(false, opcode::TEXT, b"hel");
    let p = server_frame(true, opcode::PING, b"pp");
    let b = server_frame(true, opcode::CONTINUATION, b"lo");
    let (fa, _) = parse_frame(&a, 100).unwrap().unwrap();
    assert_eq!(r.push(fa, 100).unwrap(), Message::Pending);
    let (fp, _) = parse_frame(&p, 100).unwrap().unwrap();
    assert_eq!(r.push(fp, 100).unwrap(), Message::Ping(b"pp"));
    let (fb, _) = parse_frame(&b, 100).unwrap().unwrap();
    match r.push(fb, 100).unwrap() {
        Message::Data(op, data) => {
            assert_eq!(op, opcode::TEXT);
            assert_eq!(&data[..], b"hello");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reassembly_refuses_orphans_interleaving_and_oversize() {
    let mut r = Reassembler::default();
    let cont = server_frame(true, opcode::CONTINUATION, b"x");
    let (f, _) = parse_frame(&cont, 100).unwrap().unwrap();
    assert!(matches!(r.push(f, 100), Err(FrameError::Protocol(_))));

    let mut r = Reassembler::default();
    let first = server_frame(false, opcode::TEXT, b"abc");
    let (f, _) = parse_frame(&first, 100).unwrap().unwrap();
    r.push(f, 100).unwrap();
    let second = server_frame(true, opcode::TEXT, b"new");
    let (g, _) = parse_frame(&second, 100).unwrap().unwrap();
    assert!(matches!(r.push(g, 100), Err(FrameError::Protocol(_))));

    let mut r = Reassembler::default();
    let (f, _) = parse_frame(&first, 100).unwrap().unwrap();
    r.push(f, 4).unwrap();
    let more = server_frame(true, opcode::CONTINUATION, b"de");
    let (g, _) = parse_frame(&more, 100).unwrap().unwrap();
    assert_eq!(r.push(g, 4), Err(FrameError::TooLarge));
}

#[test]
fn close_frames_report_their_code() {
    let mut r = Reassembler::default();
    let c = server_frame(true, opcode::CLOSE, &[0x03, 0xE9, b'b', b'y']);
    let (f, _) = parse_frame(&c, 100).unwrap().unwrap();
    assert_eq!(r.push(f, 100).unwrap(), Message::Close(Some(1001)));
    let empty = server_frame(true, opcode::CLOSE, b"");
    let (f, _) = parse_frame(&empty, 100).unwrap().unwrap();
    assert_eq!(r.push(f, 100).unwrap(), Message::Close(None));
    let one = server_frame(true, opcode::CLOSE, b"x");
    let (f, _) = parse_frame(&one, 100).unwrap().unwrap();
    assert!(r.push(f, 100).is_err());
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const GOOD: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

#[test]
fn accepts_a_good_response_and_reports_where_frames_start() {
    let mut buf = GOOD.as_bytes().to_vec();
    buf.extend_from_slice(&server_frame(true, 1, b"{}"));
    assert_eq!(parse_handshake_response(&buf, KEY).unwrap(), Some(GOOD.len()));
    // Header names and tokens are case-insensitive; Connection may list several tokens.
    let odd = GOOD
        .replace("Upgrade: websocket", "upgrade: WebSocket")
        .replace("Connection: Upgrade", "connection: keep-alive, upgrade");
    assert!(parse_handshake_response(odd.as_bytes(), KEY).unwrap().is_some());
}

#[test]
fn incomplete_response_waits_for_more() {
    for cut in 0..GOOD.len() {
        assert_eq!(
            parse_handshake_response(&GOOD.as_bytes()[..cut], KEY).unwrap(),
            None,
            "cut {cut}"
        );
    }
}

#[test]
fn refuses_bad_responses() {
    let cases = [
        GOOD.replace("101 Switching Protocols", "404 Not Found"),
        GOOD.replace("HTTP/1.1", "SPDY/3"),
        GOOD.replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        GOOD.replace("Upgrade: websocket\r\n", ""),
        GOOD.replace("Connection: Upgrade", "Connection: close"),
        GOOD.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
        GOOD.replace("Upgrade: websocket", "garbage-without-colon"),
    ];
    for bad in cases {
        assert!(
            matches!(
                parse_handshake_response(bad.as_bytes(), KEY),
                Err(FrameError::Handshake(_))
            ),
            "{bad}"
        );
    }
    let endless = vec![b'a'; MAX_RESPONSE_HEAD + 1];
    assert!(parse_handshake_response(&endless, KEY).is_err());
    let not_utf8 = b"HTTP/1.1 101 \xff\xfe\r\n\r\n";
    assert!(parse_handshake_response(not_utf8, KEY).is_err());
}

#[test]
fn request_names_path_host_key_and_version() {
    let req = String::from_utf8(handshake_request("127.0.0.1:8080", "/ws", KEY)).unwrap();
    assert!(req.starts_with("GET /ws HTTP/1.1\r\n"));
    assert!(req.contains("\r\nHost: 127.0.0.1:8080\r\n"));
    assert!(req.contains(&format!("\r\nSec-WebSocket-Key: {KEY}\r\n")));
    assert!(req.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    assert!(req.ends_with("\r\n\r\n"));
}
