//! Builder for server-to-client frames: unmasked, never fragmented, appended to a caller's buffer.

use super::close::{is_valid_close_code, NO_STATUS};
use super::frame::{OpCode, MAX_CONTROL_PAYLOAD};

/// A close reason may use what the 2-byte code leaves of a control frame's 125 bytes.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// A ping or pong payload longer than the 125 bytes a control frame may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlTooLong {
    /// The rejected payload length.
    pub len: usize,
}

impl std::fmt::Display for ControlTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "control frame payload of {} bytes exceeds {MAX_CONTROL_PAYLOAD}",
            self.len
        )
    }
}

impl std::error::Error for ControlTooLong {}

/// The header size of an unmasked frame carrying `payload_len` bytes (2, 4 or 10).
pub fn frame_header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Append one final, unmasked frame. Control payloads must be at most 125 bytes (checked by callers).
pub(crate) fn write_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let len = payload.len();
    out.reserve(frame_header_len(len) + len);
    out.push(0x80 | opcode.bits());
    // Always the shortest length encoding, as RFC 6455 §5.2 requires.
    match u16::try_from(len) {
        Ok(short) if short <= 125 => out.push(short as u8),
        Ok(short) => {
            out.push(126);
            out.extend_from_slice(&short.to_be_bytes());
        }
        Err(_) => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Append a text frame.
pub fn encode_text(out: &mut Vec<u8>, text: &str) {
    write_frame(out, OpCode::Text, text.as_bytes());
}

/// Append a binary frame.
pub fn encode_binary(out: &mut Vec<u8>, data: &[u8]) {
    write_frame(out, OpCode::Binary, data);
}

/// Append a text (`binary == false`) or binary frame. For text the caller guarantees `payload` is
/// UTF-8 (an encoder's output, say) so it need not be validated again.
pub fn encode_message(out: &mut Vec<u8>, binary: bool, payload: &[u8]) {
    write_frame(out, if binary { OpCode::Binary } else { OpCode::Text }, payload);
}

/// Append a ping frame.
pub fn encode_ping(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), ControlTooLong> {
    write_control(out, OpCode::Ping, payload)
}

/// Append a pong frame.
pub fn encode_pong(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), ControlTooLong> {
    write_control(out, OpCode::Pong, payload)
}

fn write_control(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) -> Result<(), ControlTooLong> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(ControlTooLong { len: payload.len() });
    }
    write_frame(out, opcode, payload);
    Ok(())
}

/// Append a close frame. `None` (or 1005, "no status") sends an empty payload and ignores `reason`;
/// a code that may not appear on the wire (see [`is_valid_close_code`]) is sent as an empty payload
/// too, since a peer would fail the connection on it. The reason is cut to 123 bytes, on a character
/// boundary.
pub fn encode_close(out: &mut Vec<u8>, code: Option<u16>, reason: &str) {
    let Some(code) = code.filter(|&c| c != NO_STATUS && is_valid_close_code(c)) else {
        write_frame(out, OpCode::Close, &[]);
        return;
    };
    let mut cut = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let reason = reason.get(..cut).unwrap_or_default();
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let (head, tail) = payload.split_at_mut(2);
    head.copy_from_slice(&code.to_be_bytes());
    if let Some(dst) = tail.get_mut(..reason.len()) {
        dst.copy_from_slice(reason.as_bytes());
    }
    write_frame(out, OpCode::Close, payload.get(..2 + reason.len()).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encodings_are_minimal() {
        for (len, header) in [
            (0usize, vec![0x82, 0]),
            (125, vec![0x82, 125]),
            (126, vec![0x82, 126, 0, 126]),
            (65535, vec![0x82, 126, 0xFF, 0xFF]),
            (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let payload = vec![7u8; len];
            let mut out = Vec::new();
            encode_binary(&mut out, &payload);
            assert_eq!(out.get(..header.len()), Some(header.as_slice()), "len {len}");
            assert_eq!(out.len(), header.len() + len);
            assert_eq!(frame_header_len(len), header.len());
        }
    }

    #[test]
    fn rfc_unmasked_hello() {
        // RFC 6455 §5.7: a single-frame unmasked text message.
        let mut out = Vec::new();
        encode_text(&mut out, "Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        // Appends rather than overwrites.
        encode_message(&mut out, true, b"x");
        assert_eq!(out.get(7..), Some([0x82, 0x01, b'x'].as_slice()));
    }

    #[test]
    fn ping_pong_limits() {
        let mut out = Vec::new();
        encode_ping(&mut out, b"Hello").unwrap();
        assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode_pong(&mut out, &[1u8; 125]).unwrap();
        assert_eq!(out.len(), 127);
        out.clear();
        assert_eq!(encode_pong(&mut out, &[1u8; 126]), Err(ControlTooLong { len: 126 }));
        assert_eq!(encode_ping(&mut out, &[1u8; 200]), Err(ControlTooLong { len: 200 }));
        assert!(out.is_empty(), "nothing written on error");
    }

    #[test]
    fn close_frames() {
        let mut out = Vec::new();
        encode_close(&mut out, Some(1000), "bye");
        assert_eq!(out, [0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);
        for code in [None, Some(1005), Some(1006), Some(999), Some(5000)] {
            out.clear();
            encode_close(&mut out, code, "ignored");
            assert_eq!(out, [0x88, 0], "{code:?}");
        }
    }

    #[test]
    fn close_reason_cut_on_char_boundary() {
        let mut out = Vec::new();
        // 61 two-byte characters plus one more: 124 bytes, cut to 122 (the 123rd byte is mid-character).
        let reason = "é".repeat(62);
        encode_close(&mut out, Some(4000), &reason);
        assert_eq!(out.get(1), Some(&(2 + 122)));
        assert!(std::str::from_utf8(out.get(4..).unwrap()).is_ok());
        out.clear();
        encode_close(&mut out, Some(4000), &"a".repeat(300));
        assert_eq!(out.len(), 2 + 125);
    }
}
