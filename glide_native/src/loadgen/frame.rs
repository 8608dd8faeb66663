//! WebSocket client framing (RFC 6455): the opening handshake, masked frames out, server frames in.
//!
//! Self-contained on purpose: `core::ws` is the *server* side (it unmasks client frames and refuses
//! unmasked ones); a client needs the mirror image.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Longest handshake response accepted; servers send a few hundred bytes.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Frame opcodes a client deals with.
pub mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// UTF-8 text message.
    pub const TEXT: u8 = 0x1;
    /// Binary message.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// Why the server's bytes are not an acceptable WebSocket stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The handshake response is not `101` with the right `Sec-WebSocket-Accept`.
    Handshake(String),
    /// A server frame is masked, uses reserved bits or opcodes, or is a malformed control frame.
    Protocol(&'static str),
    /// A frame (or reassembled message) exceeds the configured limit.
    TooLarge,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Handshake(why) => write!(f, "handshake refused: {why}"),
            FrameError::Protocol(why) => write!(f, "protocol error: {why}"),
            FrameError::TooLarge => f.write_str("message too large"),
        }
    }
}

/// `Sec-WebSocket-Accept` the server must answer for `key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID);
    B64.encode(h.finalize())
}

/// A `Sec-WebSocket-Key` from 16 random bytes.
pub fn client_key(random: [u8; 16]) -> String {
    B64.encode(random)
}

/// The HTTP/1.1 upgrade request for `path` on `host` (`host` includes the port).
pub fn handshake_request(host: &str, path: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: glide-bench\r\n\r\n"
    )
    .into_bytes()
}

/// Checks the server's handshake response in `buf`.
///
/// `Ok(None)`: the head is not complete yet; `Ok(Some(n))`: accepted, the first `n` bytes were the head
/// (anything after them is already frame data).
pub fn parse_handshake_response(buf: &[u8], key: &str) -> Result<Option<usize>, FrameError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(FrameError::Handshake("response head too long".into()));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| FrameError::Handshake("response is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code != "101" {
        return Err(FrameError::Handshake(format!("status line {status:?}")));
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(FrameError::Handshake(format!("malformed header line {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection = value.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") && !value.is_empty() {
            // We offered none, so a server that imposes one (e.g. permessage-deflate) breaks the stream.
            return Err(FrameError::Handshake(format!("unrequested extension {value:?}")));
        }
    }
    if !upgrade || !connection {
        return Err(FrameError::Handshake(
            "missing Upgrade: websocket / Connection: upgrade".into(),
        ));
    }
    if accept.as_deref() != Some(accept_key(key).as_str()) {
        return Err(FrameError::Handshake("wrong Sec-WebSocket-Accept".into()));
    }
    Ok(Some(end + 4))
}

/// Appends one final, masked frame carrying `payload` to `out`.
pub fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `data` with the repeating 4-byte `mask` (its own inverse), eight bytes at a time.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The tail starts at a multiple of 8, hence of 4: the mask index restarts at 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// One frame read from the server (servers never mask).
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// FIN bit: last fragment of its message.
    pub fin: bool,
    /// Opcode (see [`opcode`]).
    pub opcode: u8,
    /// Payload bytes.
    pub payload: &'a [u8],
}

/// Parses one server frame at the start of `buf`.
///
/// `Ok(None)`: incomplete; `Ok(Some((frame, n)))`: the frame used the first `n` bytes.
pub fn parse_frame(buf: &[u8], max_payload: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::Protocol("reserved bits set (no extension was negotiated)"));
    }
    if b1 & 0x80 != 0 {
        return Err(FrameError::Protocol("server frames must not be masked"));
    }
    let fin = b0 & 0x80 != 0;
    let op = b0 & 0x0F;
    let control = op & 0x08 != 0;
    match op {
        opcode::CONTINUATION | opcode::TEXT | opcode::BINARY | opcode::CLOSE | opcode::PING | opcode::PONG => {}
        _ => return Err(FrameError::Protocol("reserved opcode")),
    }
    let (len, head) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                (u64::from_be_bytes(w), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if control && (!fin || len > 125) {
        return Err(FrameError::Protocol(
            "control frames must be final and at most 125 bytes",
        ));
    }
    if len > max_payload as u64 {
        return Err(FrameError::TooLarge);
    }
    let len = len as usize;
    match buf.get(head..head + len) {
        Some(payload) => Ok(Some((
            Frame {
                fin,
                opcode: op,
                payload,
            },
            head + len,
        ))),
        None => Ok(None),
    }
}

/// Reassembles fragmented data messages; control frames pass straight through.
#[derive(Debug, Default)]
pub struct Reassembler {
    partial: Option<(u8, Vec<u8>)>,
}

/// What one frame amounts to once fragments are joined.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A complete data message (text or binary) and its opcode.
    Data(u8, std::borrow::Cow<'a, [u8]>),
    /// A ping whose payload must be echoed in a pong.
    Ping(&'a [u8]),
    /// A pong (ignored by the caller).
    Pong,
    /// A close frame: status code if present.
    Close(Option<u16>),
    /// A non-final fragment was buffered.
    Pending,
}

impl Reassembler {
    /// Feeds one frame; `max` bounds the joined message.
    pub fn push<'a>(&mut self, frame: Frame<'a>, max: usize) -> Result<Message<'a>, FrameError> {
        match frame.opcode {
            opcode::PING => Ok(Message::Ping(frame.payload)),
            opcode::PONG => Ok(Message::Pong),
            opcode::CLOSE => {
                let code = frame.payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                if frame.payload.len() == 1 {
                    return Err(FrameError::Protocol("close payload of one byte"));
                }
                Ok(Message::Close(code))
            }
            opcode::CONTINUATION => {
                let Some((op, mut buf)) = self.partial.take() else {
                    return Err(FrameError::Protocol("continuation without a message to continue"));
                };
                if buf.len() + frame.payload.len() > max {
                    return Err(FrameError::TooLarge);
                }
                buf.extend_from_slice(frame.payload);
                if frame.fin {
                    Ok(Message::Data(op, std::borrow::Cow::Owned(buf)))
                } else {
                    self.partial = Some((op, buf));
                    Ok(Message::Pending)
                }
            }
            op => {
                if self.partial.is_some() {
                    return Err(FrameError::Protocol("new message inside a fragmented one"));
                }
                if frame.fin {
                    Ok(Message::Data(op, std::borrow::Cow::Borrowed(frame.payload)))
                } else {
                    self.partial = Some((op, frame.payload.to_vec()));
                    Ok(Message::Pending)
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
