//! Test harness shared by the `ws_frames` fuzz target and the fuzz regression test, so both run
//! exactly the same checks. It panics when an invariant breaks: that is how a fuzzer sees a bug.
//! Production code never calls it.
//!
//! Input layout: byte 0 selects the mode, byte 1 seeds the chunking, the rest is the byte stream.
//! Mode bit 0 clear prefixes [`FUZZ_HANDSHAKE`] so frames are reached; set, the raw bytes go to the
//! handshake parser. Mode bit 1 (with the handshake prefix) starts a server-initiated close right
//! after the handshake, exercising the closing state.
//!
//! The stream is fed three ways (whole, in pseudo-random chunks, and, when short, byte by byte) and
//! every outcome must be identical: chunk boundaries must never change what the parser sees.

use super::close::{is_valid_close_code, INVALID_PAYLOAD, MESSAGE_TOO_BIG, PROTOCOL_ERROR};
use super::conn::{CloseRequest, WsConfig, WsFeed, WsServerConn, WsState};
use super::frame::WsMessage;
use super::handshake::Handshake;

/// A valid upgrade request asking for `glide.proto`.
pub const FUZZ_HANDSHAKE: &[u8] = b"GET /ws?x=1 HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: glide.proto\r\n\r\n";

/// Small limits so the fuzzer reaches the 1009 and 431 paths.
const MAX_MESSAGE: usize = 4096;
const MAX_HEADER: usize = 1024;
/// Byte-by-byte feeding is quadratic-free but slow; only short streams get it.
const BYTEWISE_LIMIT: usize = 4096;

/// Deterministic chunk sizes (xorshift32), mixing single bytes, header-sized and large pieces.
pub fn chunk_sizes(seed: u32) -> impl Iterator<Item = usize> {
    let mut state = seed | 1;
    std::iter::from_fn(move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let r = state as usize;
        Some(match r % 4 {
            0 => 1,
            1 => 1 + (r >> 2) % 8,
            2 => 1 + (r >> 2) % 64,
            _ => 1 + (r >> 2) % 1024,
        })
    })
}

/// Split `data` into consecutive pieces with the given sizes.
pub fn split<'a>(data: &'a [u8], sizes: impl Iterator<Item = usize> + 'a) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut sizes = sizes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// Everything a connection produced over its lifetime, merged across feeds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The handshake, if completed.
    pub handshake: Option<Handshake>,
    /// All data messages.
    pub messages: Vec<WsMessage>,
    /// All bytes to send, concatenated (including what `close()` returned).
    pub sent: Vec<u8>,
    /// The close request, if any.
    pub close: Option<CloseRequest>,
    /// Whether any pong arrived.
    pub pong: bool,
    /// The final state.
    pub state: Option<WsState>,
}

impl Outcome {
    fn absorb(&mut self, feed: WsFeed) {
        if self.close.is_some() {
            assert!(feed.is_empty(), "output after the connection closed: {feed:?}");
        }
        if let Some(h) = feed.handshake {
            assert!(self.handshake.is_none(), "handshake reported twice");
            assert!(self.sent.is_empty(), "bytes sent before the 101");
            self.handshake = Some(h);
        }
        for m in &feed.messages {
            assert!(m.payload.len() <= MAX_MESSAGE, "message over the limit");
            assert!(
                m.binary || std::str::from_utf8(&m.payload).is_ok(),
                "invalid UTF-8 text delivered"
            );
        }
        self.messages.extend(feed.messages);
        self.sent.extend_from_slice(&feed.to_send);
        self.pong |= feed.pong_received;
        if let Some(close) = feed.close {
            check_close(&close);
            self.close = Some(close);
        }
    }
}

fn check_close(close: &CloseRequest) {
    match &close.error {
        None => assert!(
            close.code == 1005 || is_valid_close_code(close.code),
            "bad peer code {}",
            close.code
        ),
        Some(_) if close.code < 1000 => assert!(matches!(close.code, 400 | 404 | 426 | 431)),
        Some(_) => assert!(matches!(close.code, PROTOCOL_ERROR | INVALID_PAYLOAD | MESSAGE_TOO_BIG)),
    }
}

/// Feed `pieces` after an optional handshake-then-close prelude; returns the merged outcome.
pub fn drive<'a>(close_after_handshake: bool, pieces: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let config = WsConfig {
        max_message_size: MAX_MESSAGE,
        max_header_size: MAX_HEADER,
        path: Some("/ws".into()),
    };
    let mut conn = WsServerConn::new(config);
    let mut out = Outcome::default();
    if close_after_handshake {
        out.absorb(conn.feed(FUZZ_HANDSHAKE));
        assert_eq!(conn.state(), WsState::Open);
        let frame = conn.close(4000, "fuzz");
        assert!(!frame.is_empty());
        out.sent.extend_from_slice(&frame);
        assert!(conn.close(4000, "again").is_empty(), "second close wrote bytes");
    }
    for piece in pieces {
        out.absorb(conn.feed(piece));
    }
    out.state = Some(conn.state());
    if out.close.is_some() {
        assert_eq!(conn.state(), WsState::Closed);
    }
    check_sent(&out);
    out
}

/// What we wrote after the 101 must be well-formed unmasked server frames: pongs, then at most one close.
fn check_sent(out: &Outcome) {
    let mut rest = out.sent.as_slice();
    if out.handshake.is_some() {
        let end = memchr::memmem::find(rest, b"\r\n\r\n").expect("101 response") + 4;
        rest = rest.get(end..).unwrap_or_default();
    } else {
        if !rest.is_empty() {
            assert!(rest.starts_with(b"HTTP/1.1 4"), "non-4xx bytes before a handshake");
        }
        return;
    }
    let mut closed = false;
    while let [b0, len, tail @ ..] = rest {
        assert!(!closed, "frame after our close frame");
        assert!(*len <= 125, "server control frame too long or masked");
        let (payload, next) = tail
            .split_at_checked(usize::from(*len))
            .expect("truncated server frame");
        match b0 {
            0x8A => {}
            0x88 => {
                closed = true;
                assert!(payload.len() != 1);
                if let [hi, lo, reason @ ..] = payload {
                    assert!(is_valid_close_code(u16::from_be_bytes([*hi, *lo])));
                    assert!(std::str::from_utf8(reason).is_ok());
                }
            }
            other => panic!("unexpected server frame byte {other:#x}"),
        }
        rest = next;
    }
    assert!(rest.is_empty(), "truncated server frame");
}

/// Run one fuzz input (see the module docs for its layout).
pub fn run(input: &[u8]) {
    let [mode, seed, body @ ..] = input else {
        return;
    };
    let handshake = mode & 1 == 0;
    let close_early = handshake && mode & 2 != 0;
    let mut stream = Vec::with_capacity(FUZZ_HANDSHAKE.len() + body.len());
    if handshake && !close_early {
        stream.extend_from_slice(FUZZ_HANDSHAKE);
    }
    stream.extend_from_slice(body);
    let whole = drive(
        close_early,
        std::iter::once(stream.as_slice()).filter(|s| !s.is_empty()),
    );
    let seed = u32::from(*seed) << 8 | u32::from(*mode);
    let chunked = drive(close_early, split(&stream, chunk_sizes(seed)));
    assert_eq!(whole, chunked, "chunking changed the outcome");
    if stream.len() <= BYTEWISE_LIMIT {
        let bytewise = drive(close_early, stream.chunks(1));
        assert_eq!(whole, bytewise, "byte-by-byte feeding changed the outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under tests/fuzz_regressions/ws/ (crashes once found, tricky hand-made inputs) runs
    /// through the harness.
    #[test]
    fn fuzz_regressions() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/ws");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("regression folder") {
            let path = entry.expect("dir entry").path();
            let data = std::fs::read(&path).expect("regression file");
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "regression input {} failed", path.display());
            count += 1;
        }
        assert!(count >= 10, "expected the regression corpus, found {count} files");
    }

    #[test]
    fn chunking_covers_everything_in_order() {
        let data: Vec<u8> = (0..=255).collect();
        for seed in 0..50 {
            let joined: Vec<u8> = split(&data, chunk_sizes(seed)).flatten().copied().collect();
            assert_eq!(joined, data);
        }
    }

    #[test]
    fn harness_detects_a_broken_outcome() {
        // The harness must be able to fail: a message over the limit trips its assertion.
        let feed = WsFeed {
            messages: vec![WsMessage {
                binary: true,
                payload: vec![0; MAX_MESSAGE + 1],
            }],
            ..WsFeed::default()
        };
        let result = std::panic::catch_unwind(move || {
            let mut out = Outcome::default();
            out.absorb(feed);
        });
        assert!(result.is_err());
    }
}
