//! Incremental parser for client-to-server frames (RFC 6455 §5).
//!
//! Input may be split anywhere, down to one byte per call. Headers are decoded in place from the
//! input slice; only a header cut by a chunk boundary is copied (into a 14-byte array). Payload bytes
//! are copied exactly once, into the message being assembled, and unmasked there eight bytes at a
//! time. Text is UTF-8-validated as it arrives, so a bad sequence fails the connection immediately.

use super::close::{is_valid_close_code, INVALID_PAYLOAD, MESSAGE_TOO_BIG, PROTOCOL_ERROR};

/// The largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// The longest possible frame header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Frame opcodes defined by RFC 6455 §5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: a later fragment of a text or binary message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// The opcode's 4-bit value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A complete data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsMessage {
    /// Binary (opcode 0x2) rather than text (0x1).
    pub binary: bool,
    /// The reassembled, unmasked payload; valid UTF-8 when `binary` is false.
    pub payload: Vec<u8>,
}

/// What the parser found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete (possibly reassembled) data message.
    Message(WsMessage),
    /// A ping with its payload (at most 125 bytes).
    Ping(Vec<u8>),
    /// A pong with its payload (at most 125 bytes).
    Pong(Vec<u8>),
    /// A close frame; the parser ignores all input after it.
    Close {
        /// The status code, `None` when the frame had an empty payload.
        code: Option<u16>,
        /// The reason text (empty when absent).
        reason: String,
    },
}

/// A protocol violation by the peer: the close code to fail the connection with and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError {
    /// 1002 (protocol error), 1007 (invalid UTF-8) or 1009 (message too big).
    pub code: u16,
    /// A short description, fit for a close frame's reason (under 123 bytes).
    pub reason: &'static str,
}

impl ProtocolError {
    const fn protocol(reason: &'static str) -> Self {
        ProtocolError {
            code: PROTOCOL_ERROR,
            reason,
        }
    }

    const fn utf8(reason: &'static str) -> Self {
        ProtocolError {
            code: INVALID_PAYLOAD,
            reason,
        }
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

impl std::error::Error for ProtocolError {}

/// The frame currently being read.
#[derive(Debug, Clone, Copy)]
struct Current {
    opcode: OpCode,
    fin: bool,
    remaining: u64,
    mask: [u8; 4],
    /// How many payload bytes were unmasked so far, modulo 4: where the mask resumes.
    mask_phase: usize,
}

/// Incremental frame parser for one client connection.
#[derive(Debug, Clone)]
pub struct FrameParser {
    max_message_size: usize,
    /// A frame header cut by a chunk boundary.
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// `Some` while a frame's payload is being read.
    current: Option<Current>,
    /// `Some(binary)` while a data message is being assembled (after its first frame started).
    message: Option<bool>,
    payload: Vec<u8>,
    /// Length of the prefix of `payload` known to be complete UTF-8.
    utf8_valid: usize,
    control: Vec<u8>,
    /// Set after a close frame or a protocol error: the rest of the input is ignored.
    done: bool,
}

impl FrameParser {
    /// A parser that fails messages longer than `max_message_size` bytes (all fragments added up).
    pub fn new(max_message_size: usize) -> Self {
        FrameParser {
            max_message_size,
            header: [0; MAX_HEADER],
            header_len: 0,
            current: None,
            message: None,
            payload: Vec::new(),
            utf8_valid: 0,
            control: Vec::new(),
            done: false,
        }
    }

    /// Whether a close frame or a protocol error ended parsing.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Parse the next chunk, appending what it completes to `out`. Events before a violation are kept
    /// in `out`; after an error or a close frame, later calls do nothing.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<WsEvent>) -> Result<(), ProtocolError> {
        let result = self.feed_inner(data, out);
        if result.is_err() {
            self.done = true;
            // Drop a half-assembled message now: nothing will ever complete it.
            self.payload = Vec::new();
        }
        result
    }

    fn feed_inner(&mut self, mut data: &[u8], out: &mut Vec<WsEvent>) -> Result<(), ProtocolError> {
        while !data.is_empty() && !self.done {
            let used = match self.current {
                Some(cur) => self.read_payload(cur, data, out)?,
                None => self.read_header(data, out)?,
            };
            data = data.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    /// Consume header bytes; returns how many were used.
    fn read_header(&mut self, data: &[u8], out: &mut Vec<WsEvent>) -> Result<usize, ProtocolError> {
        if self.header_len == 0 {
            if let [b0, b1, ..] = *data {
                self.check_start(b0, b1)?;
                let need = header_len(b1);
                if let Some(header) = data.get(..need) {
                    // The common case: the whole header is in this chunk, decode it where it lies.
                    self.start_frame(header, out)?;
                    return Ok(need);
                }
            }
        }
        // The header is cut by the chunk boundary: collect it byte by byte (14 bytes at most).
        for (i, &b) in data.iter().enumerate() {
            let Some(slot) = self.header.get_mut(self.header_len) else {
                return Err(ProtocolError::protocol("frame header too long"));
            };
            *slot = b;
            self.header_len += 1;
            if self.header_len < 2 {
                continue;
            }
            let [b0, b1, ..] = self.header;
            if self.header_len == 2 {
                self.check_start(b0, b1)?;
            }
            if self.header_len == header_len(b1) {
                let header = self.header;
                let n = self.header_len;
                self.header_len = 0;
                self.start_frame(header.get(..n).unwrap_or_default(), out)?;
                return Ok(i + 1);
            }
        }
        Ok(data.len())
    }

    /// Checks that need only the first two header bytes, so violations are caught as early as possible.
    fn check_start(&self, b0: u8, b1: u8) -> Result<(), ProtocolError> {
        if b0 & 0x70 != 0 {
            return Err(ProtocolError::protocol(
                "reserved bits set but no extension was negotiated",
            ));
        }
        let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(ProtocolError::protocol("unknown opcode"))?;
        if b1 & 0x80 == 0 {
            return Err(ProtocolError::protocol("client frame is not masked"));
        }
        let fin = b0 & 0x80 != 0;
        match opcode {
            _ if opcode.is_control() => {
                if !fin {
                    return Err(ProtocolError::protocol("fragmented control frame"));
                }
                if usize::from(b1 & 0x7F) > MAX_CONTROL_PAYLOAD {
                    return Err(ProtocolError::protocol("control frame payload longer than 125 bytes"));
                }
            }
            OpCode::Continuation if self.message.is_none() => {
                return Err(ProtocolError::protocol(
                    "continuation frame without a message in progress",
                ));
            }
            OpCode::Text | OpCode::Binary if self.message.is_some() => {
                return Err(ProtocolError::protocol(
                    "new data frame while a fragmented message is in progress",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Decode a complete header (already checked by `check_start`) and set up its payload.
    fn start_frame(&mut self, header: &[u8], out: &mut Vec<WsEvent>) -> Result<(), ProtocolError> {
        let (b0, b1, rest) = match *header {
            [b0, b1, ref rest @ ..] => (b0, b1, rest),
            _ => return Err(ProtocolError::protocol("truncated frame header")),
        };
        let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(ProtocolError::protocol("unknown opcode"))?;
        let (len, mask) = match (b1 & 0x7F, rest) {
            (126, &[a, b, m0, m1, m2, m3]) => {
                let len = u16::from_be_bytes([a, b]);
                if len < 126 {
                    return Err(ProtocolError::protocol("frame length not minimally encoded"));
                }
                (u64::from(len), [m0, m1, m2, m3])
            }
            (127, &[a, b, c, d, e, f, g, h, m0, m1, m2, m3]) => {
                let len = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                if len >> 63 != 0 {
                    return Err(ProtocolError::protocol("frame length has its most significant bit set"));
                }
                if len <= 0xFFFF {
                    return Err(ProtocolError::protocol("frame length not minimally encoded"));
                }
                (len, [m0, m1, m2, m3])
            }
            (len, &[m0, m1, m2, m3]) if len < 126 => (u64::from(len), [m0, m1, m2, m3]),
            _ => return Err(ProtocolError::protocol("truncated frame header")),
        };
        if opcode.is_control() {
            self.control.clear();
        } else {
            // Checked against the announced length, before a byte of payload is buffered.
            let total = (self.payload.len() as u64).saturating_add(len);
            if total > self.max_message_size as u64 {
                return Err(ProtocolError {
                    code: MESSAGE_TOO_BIG,
                    reason: "message too big",
                });
            }
            // `total` fits in usize now, being at most max_message_size.
            let len = len as usize;
            if opcode == OpCode::Continuation {
                // Amortised growth: many small fragments must not reallocate once each.
                self.payload.reserve(len);
            } else {
                self.message = Some(opcode == OpCode::Binary);
                self.utf8_valid = 0;
                self.payload.reserve_exact(len);
            }
        }
        let cur = Current {
            opcode,
            fin: b0 & 0x80 != 0,
            remaining: len,
            mask,
            mask_phase: 0,
        };
        if len == 0 {
            self.end_frame(cur, out)
        } else {
            self.current = Some(cur);
            Ok(())
        }
    }

    /// Consume payload bytes of the current frame; returns how many were used.
    fn read_payload(&mut self, mut cur: Current, data: &[u8], out: &mut Vec<WsEvent>) -> Result<usize, ProtocolError> {
        // `remaining` is bounded by the message size check (or 125), so it fits in usize when smaller.
        let take = usize::try_from(cur.remaining).map_or(data.len(), |r| r.min(data.len()));
        let chunk = data.get(..take).unwrap_or_default();
        let dest = if cur.opcode.is_control() {
            &mut self.control
        } else {
            &mut self.payload
        };
        let start = dest.len();
        dest.extend_from_slice(chunk);
        if let Some(fresh) = dest.get_mut(start..) {
            unmask(fresh, cur.mask, cur.mask_phase);
        }
        cur.mask_phase = (cur.mask_phase + take) % 4;
        cur.remaining -= take as u64;
        if self.message == Some(false) && !cur.opcode.is_control() {
            self.validate_text()?;
        }
        if cur.remaining == 0 {
            self.current = None;
            self.end_frame(cur, out)?;
        } else {
            self.current = Some(cur);
        }
        Ok(take)
    }

    /// Validate the text received since the last call; a code point cut by a frame or chunk boundary
    /// stays pending (at most 3 bytes are looked at again).
    fn validate_text(&mut self) -> Result<(), ProtocolError> {
        let fresh = self.payload.get(self.utf8_valid..).unwrap_or_default();
        if simdutf8::basic::from_utf8(fresh).is_ok() {
            self.utf8_valid = self.payload.len();
            return Ok(());
        }
        // The fast validator only says "no": ask the exact one whether the input is merely truncated.
        match simdutf8::compat::from_utf8(fresh) {
            Ok(_) => self.utf8_valid = self.payload.len(),
            Err(e) if e.error_len().is_none() => self.utf8_valid += e.valid_up_to(),
            Err(_) => return Err(ProtocolError::utf8("invalid UTF-8 in text message")),
        }
        Ok(())
    }

    fn end_frame(&mut self, cur: Current, out: &mut Vec<WsEvent>) -> Result<(), ProtocolError> {
        match cur.opcode {
            OpCode::Ping => out.push(WsEvent::Ping(std::mem::take(&mut self.control))),
            OpCode::Pong => out.push(WsEvent::Pong(std::mem::take(&mut self.control))),
            OpCode::Close => {
                let (code, reason) = parse_close(&self.control)?;
                self.done = true;
                out.push(WsEvent::Close { code, reason });
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if cur.fin {
                    let binary = self.message.take().unwrap_or(true);
                    if !binary && self.utf8_valid != self.payload.len() {
                        return Err(ProtocolError::utf8("text message ends inside a UTF-8 sequence"));
                    }
                    self.utf8_valid = 0;
                    out.push(WsEvent::Message(WsMessage {
                        binary,
                        payload: std::mem::take(&mut self.payload),
                    }));
                }
            }
        }
        Ok(())
    }
}

/// The header length implied by the second header byte (mask bit and 7-bit length).
fn header_len(b1: u8) -> usize {
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// Decode a close frame's payload: empty, or a valid code followed by a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<(Option<u16>, String), ProtocolError> {
    match *payload {
        [] => Ok((None, String::new())),
        [_] => Err(ProtocolError::protocol("close frame with a 1-byte payload")),
        [hi, lo, ref reason @ ..] => {
            let code = u16::from_be_bytes([hi, lo]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::protocol("invalid close code"));
            }
            let reason = simdutf8::basic::from_utf8(reason)
                .map_err(|_| ProtocolError::utf8("close reason is not valid UTF-8"))?;
            Ok((Some(code), reason.to_owned()))
        }
    }
}

/// XOR `buf` with the mask, starting `phase` bytes into it. Works on 8 bytes at a time: the mask
/// repeated twice is a u64, and native byte order on both load and store keeps bytes in place.
pub(crate) fn unmask(buf: &mut [u8], mask: [u8; 4], phase: usize) {
    let mut m = mask;
    m.rotate_left(phase % 4);
    let [a, b, c, d] = m;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // A multiple of 8 was consumed, so the tail starts in phase again.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(m.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests;
