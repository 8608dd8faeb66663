//! Maps keyed by the caller's `u64` ids (connections, timers): hashed with one multiply, not SipHash — the ids
//! are ours, not an attacker's choice, and they are looked up for every frame.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` from `u64` ids, hashed by [`IdHasher`].
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Hasher for `u64` ids: one folded 64x64->128 multiply. It mixes every input bit into the low bits the table
/// indexes with, so ids that differ only in high bits (e.g. `conn << 32 | seq`) still spread.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        const K: u128 = 0x9E37_79B9_7F4A_7C15;
        let product = u128::from(self.0 ^ n).wrapping_mul(K);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}
