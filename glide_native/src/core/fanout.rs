//! Fan-out encoding: one envelope, many recipients, each distinct wire format encoded exactly once.
//!
//! A WebSocket recipient gets a complete unmasked server frame (FIN set; text for JSON, binary for
//! protobuf); a TCP recipient gets a 4-byte big-endian length followed by the encoded envelope. Callers
//! hand the same bytes to every recipient of the same [`Wire`].

use std::sync::OnceLock;

use bytes::Bytes;

use super::codec_json;
use super::codec_proto::Prepared;
use super::envelope::{EncodeError, Envelope};

/// How one connection frames and encodes envelopes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Wire {
    /// WebSocket, JSON envelope in a text frame.
    WsJson,
    /// WebSocket, protobuf envelope in a binary frame.
    WsProto,
    /// TCP, 4-byte big-endian length + JSON envelope.
    TcpJson,
    /// TCP, 4-byte big-endian length + protobuf envelope.
    TcpProto,
}

impl Wire {
    /// Every variant, in declaration order.
    pub const ALL: [Wire; 4] = [Wire::WsJson, Wire::WsProto, Wire::TcpJson, Wire::TcpProto];

    /// Whether the envelope is protobuf-encoded (else JSON).
    pub fn is_proto(self) -> bool {
        matches!(self, Wire::WsProto | Wire::TcpProto)
    }

    /// Whether the transport is WebSocket (else length-prefixed TCP).
    pub fn is_websocket(self) -> bool {
        matches!(self, Wire::WsJson | Wire::WsProto)
    }

    /// The variant's position in [`Wire::ALL`].
    pub fn index(self) -> usize {
        match self {
            Wire::WsJson => 0,
            Wire::WsProto => 1,
            Wire::TcpJson => 2,
            Wire::TcpProto => 3,
        }
    }
}

/// WebSocket opcodes (RFC 6455 §5.2) with the FIN bit set: every message is a single frame.
const WS_TEXT: u8 = 0x81;
const WS_BINARY: u8 = 0x82;
/// Room reserved before a JSON body whose length is not known yet: the 16-bit-length header, the size
/// typical chat messages (126..65535 bytes) need, so usually nothing moves afterwards.
const JSON_WS_RESERVE: usize = 4;
const TCP_PREFIX: usize = 4;

/// The result of [`fanout`]: the distinct encodings, and which one each recipient gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fanout {
    /// One complete frame per distinct wire variant among the recipients, in order of first appearance.
    pub frames: Vec<(Wire, Vec<u8>)>,
    /// `slots[i]` indexes into `frames` for recipient `i` of the list given to [`fanout`].
    pub slots: Vec<usize>,
}

impl Fanout {
    /// The bytes to send to recipient `i`, or `None` past the end of the recipient list.
    pub fn frame_for(&self, recipient: usize) -> Option<&[u8]> {
        let slot = *self.slots.get(recipient)?;
        self.frames.get(slot).map(|(_, bytes)| bytes.as_slice())
    }
}

/// Encode `env` once per distinct wire variant in `wires`.
///
/// Allocates the slot list and one vector per variant; when both transports of one codec are present the
/// envelope is encoded once and the body copied behind the other header. Fails (encoding nothing) only if
/// a protobuf variant is present and `data` has no protobuf form (see [`super::codec_proto::encode`]).
pub fn fanout(env: &Envelope, wires: &[Wire]) -> Result<Fanout, EncodeError> {
    let mut slot_of = [usize::MAX; 4];
    let mut order: Vec<Wire> = Vec::with_capacity(4);
    let slots = wires
        .iter()
        .map(|&wire| {
            let slot = &mut slot_of[wire.index()];
            if *slot == usize::MAX {
                *slot = order.len();
                order.push(wire);
            }
            *slot
        })
        .collect();
    let proto = if order.iter().any(|w| w.is_proto()) {
        Some(Prepared::new(env)?)
    } else {
        None
    };

    let mut frames: Vec<(Wire, Vec<u8>)> = Vec::with_capacity(order.len());
    for wire in order {
        // Reuse the body of the already-built variant of the same codec, if any.
        let sibling = frames.iter().find(|(w, _)| w.is_proto() == wire.is_proto());
        let bytes = match (sibling, &proto) {
            (Some((w, bytes)), _) => reframe(bytes.get(header_len(*w, bytes)..).unwrap_or_default(), wire)?,
            (None, Some(prepared)) if wire.is_proto() => write_proto(prepared, wire)?,
            (None, _) => {
                let mut out = Vec::new();
                write_json(env, wire, &mut out)?;
                out
            }
        };
        frames.push((wire, bytes));
    }
    Ok(Fanout { frames, slots })
}

/// Append the complete frame of `env` for one `wire` to `out` (nothing is appended on error).
pub fn encode_one(env: &Envelope, wire: Wire, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if wire.is_proto() {
        let prepared = Prepared::new(env)?;
        let body_len = prepared.encoded_len();
        out.reserve(body_len + 10);
        let start = out.len();
        write_header(wire, body_len, out)?;
        prepared.write(out);
        debug_assert_eq!(out.len() - start, header_size(wire, body_len) + body_len);
        Ok(())
    } else {
        write_json(env, wire, out)
    }
}

fn write_proto(prepared: &Prepared<'_>, wire: Wire) -> Result<Vec<u8>, EncodeError> {
    let body_len = prepared.encoded_len();
    let mut out = Vec::with_capacity(header_size(wire, body_len) + body_len);
    write_header(wire, body_len, &mut out)?;
    prepared.write(&mut out);
    Ok(out)
}

/// JSON's length is only known after encoding: encode behind reserved header room, then write the header
/// and, if it needs a different size than reserved, move the body once.
fn write_json(env: &Envelope, wire: Wire, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let reserve = if wire.is_websocket() {
        JSON_WS_RESERVE
    } else {
        TCP_PREFIX
    };
    out.reserve(reserve + codec_json::encoded_len_hint(env));
    out.resize(start + reserve, 0);
    codec_json::encode(env, out);
    let body_len = out.len() - start - reserve;
    let mut header = Vec::with_capacity(10);
    if let Err(e) = write_header(wire, body_len, &mut header) {
        out.truncate(start);
        return Err(e);
    }
    let end = out.len();
    if header.len() < reserve {
        let gap = reserve - header.len();
        out.copy_within(start + reserve..end, start + reserve - gap);
        out.truncate(end - gap);
    } else if header.len() > reserve {
        let grow = header.len() - reserve;
        out.resize(end + grow, 0);
        out.copy_within(start + reserve..end, start + header.len());
    }
    out[start..start + header.len()].copy_from_slice(&header);
    Ok(())
}

/// Frame an already-encoded body for `wire`.
fn reframe(body: &[u8], wire: Wire) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(header_size(wire, body.len()) + body.len());
    write_header(wire, body.len(), &mut out)?;
    out.extend_from_slice(body);
    Ok(out)
}

/// Size of the header for a body of `body_len` bytes.
fn header_size(wire: Wire, body_len: usize) -> usize {
    match (wire.is_websocket(), body_len) {
        (false, _) => TCP_PREFIX,
        (true, 0..=125) => 2,
        (true, 126..=0xFFFF) => 4,
        (true, _) => 10,
    }
}

/// Size of the header at the front of a complete frame built here (read back from the frame itself).
fn header_len(wire: Wire, frame: &[u8]) -> usize {
    if !wire.is_websocket() {
        return TCP_PREFIX;
    }
    match frame.get(1) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    }
}

/// Append the header for a body of `body_len` bytes: an unmasked single-frame WebSocket header (7-, 16- or
/// 64-bit length, RFC 6455 §5.2) or the TCP 4-byte big-endian length.
fn write_header(wire: Wire, body_len: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if !wire.is_websocket() {
        let len = u32::try_from(body_len)
            .map_err(|_| EncodeError::new(format!("envelope of {body_len} bytes exceeds the TCP length prefix")))?;
        out.extend_from_slice(&len.to_be_bytes());
        return Ok(());
    }
    out.push(if wire.is_proto() { WS_BINARY } else { WS_TEXT });
    match body_len {
        0..=125 => out.push(body_len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(body_len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(body_len as u64).to_be_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "fanout_tests.rs"]
mod tests;

/// A server envelope whose frame is encoded at most once per wire variant, on first use, by whichever
/// thread needs it first; every recipient of that variant shares the same bytes.
#[derive(Debug)]
pub struct EncodedOnce {
    env: Envelope,
    frames: [OnceLock<Result<Bytes, EncodeError>>; 4],
}

impl EncodedOnce {
    pub fn new(env: Envelope) -> Self {
        EncodedOnce {
            env,
            frames: Default::default(),
        }
    }

    pub fn envelope(&self) -> &Envelope {
        &self.env
    }

    /// The complete frame for `wire` (encoded now if it was not yet).
    pub fn frame(&self, wire: Wire) -> Result<Bytes, EncodeError> {
        self.frames[wire.index()]
            .get_or_init(|| {
                let mut out = Vec::new();
                encode_one(&self.env, wire, &mut out).map(|()| Bytes::from(out))
            })
            .clone()
    }
}
