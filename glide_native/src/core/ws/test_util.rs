//! Helpers for the tests: building masked client frames, including deliberately malformed ones.

use super::fuzz_harness::{chunk_sizes, split};

/// A fixed mask that exercises every byte lane differently.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame with the minimal length encoding.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u64;
    let (len7, ext): (u8, Vec<u8>) = match len {
        0..=125 => (len as u8, vec![]),
        126..=0xFFFF => (126, (len as u16).to_be_bytes().to_vec()),
        _ => (127, len.to_be_bytes().to_vec()),
    };
    raw_frame(u8::from(fin) << 7 | opcode, 0x80 | len7, &ext, MASK, payload)
}

/// A frame from explicit header parts: first byte, second byte, extended length, mask, clear payload.
pub fn raw_frame(b0: u8, b1: u8, ext: &[u8], mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0, b1];
    out.extend_from_slice(ext);
    if b1 & 0x80 != 0 {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// `data` split into pieces by `seed` (see `chunk_sizes`).
pub fn pieces(data: &[u8], seed: u32) -> Vec<&[u8]> {
    split(data, chunk_sizes(seed)).collect()
}
