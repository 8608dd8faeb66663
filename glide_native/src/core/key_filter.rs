//! A set of message keys — a sender and its client's message id — that answers "certainly absent" or "maybe
//! present" from memory: a Bloom filter that grows by layers, so the store looks up in its index only the keys
//! that may be there (a new message, the usual case, costs no lookup).
//!
//! No false negatives: a key inserted is always answered "maybe". A false positive only costs the lookup the
//! filter was there to save. Each layer holds up to its capacity at ~0.1 % false positives (16 bits a key,
//! 6 probes); a full layer stays as it is and a new one twice its size takes the next keys, so memory is
//! 2–4 bytes a key and a lookup probes one layer per doubling (5 layers at a million keys, ≤ ~0.5 % false
//! positives in all).

use std::hash::{BuildHasher, Hasher, RandomState};

/// Bits per key a layer is sized for, and the probes per key: (1 - e^(-6/16))^6 ≈ 0.09 % false positives.
const BITS_PER_KEY: usize = 16;
const PROBES: u64 = 6;
/// The first layer's capacity (keys; a power of two, as every layer's bits): 128 KiB.
const FIRST_CAPACITY: usize = 1 << 16;

struct Layer {
    words: Vec<u64>,
    /// The number of bits minus one (a power of two): a probe's bit is `hash & mask`.
    mask: u64,
    capacity: usize,
    len: usize,
}

impl Layer {
    fn new(capacity: usize) -> Layer {
        let bits = capacity * BITS_PER_KEY;
        Layer {
            words: vec![0; bits / 64],
            mask: bits as u64 - 1,
            capacity,
            len: 0,
        }
    }

    fn insert(&mut self, hash: u64) {
        for i in 0..PROBES {
            let (word, bit) = probe(hash, i, self.mask);
            self.words[word] |= bit;
        }
        self.len += 1;
    }

    fn may_contain(&self, hash: u64) -> bool {
        (0..PROBES).all(|i| {
            let (word, bit) = probe(hash, i, self.mask);
            self.words[word] & bit != 0
        })
    }
}

/// Probe `i` of a key (Kirsch–Mitzenmacher double hashing: `h1 + i * h2`, `h2` odd so the probes differ):
/// its word and the bit in it.
fn probe(hash: u64, i: u64, mask: u64) -> (usize, u64) {
    let h2 = hash.rotate_left(32) | 1;
    let bit = hash.wrapping_add(i.wrapping_mul(h2)) & mask;
    ((bit / 64) as usize, 1u64 << (bit % 64))
}

/// See the module's documentation.
pub struct KeyFilter {
    layers: Vec<Layer>,
    /// Seeded per process: keys chosen to collide elsewhere do not collide here.
    hasher: RandomState,
}

impl Default for KeyFilter {
    fn default() -> Self {
        KeyFilter::new()
    }
}

impl KeyFilter {
    pub fn new() -> KeyFilter {
        KeyFilter {
            layers: vec![Layer::new(FIRST_CAPACITY)],
            hasher: RandomState::new(),
        }
    }

    fn hash(&self, sender: i64, cli_mid: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_i64(sender);
        h.write(cli_mid.as_bytes());
        h.finish()
    }

    pub fn insert(&mut self, sender: i64, cli_mid: &str) {
        let hash = self.hash(sender, cli_mid);
        let last = self.layers.last().expect("a filter has a layer");
        if last.len >= last.capacity {
            let capacity = last.capacity * 2;
            self.layers.push(Layer::new(capacity));
        }
        self.layers.last_mut().expect("a filter has a layer").insert(hash);
    }

    /// False only if the key was never inserted.
    pub fn may_contain(&self, sender: i64, cli_mid: &str) -> bool {
        let hash = self.hash(sender, cli_mid);
        self.layers.iter().rev().any(|layer| layer.may_contain(hash))
    }

    /// Keys inserted (a key inserted twice counts twice).
    pub fn len(&self) -> usize {
        self.layers.iter().map(|layer| layer.len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the bit arrays.
    pub fn memory(&self) -> usize {
        self.layers.iter().map(|layer| layer.words.len() * 8).sum()
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_inserted_may_be_present() {
        let mut filter = KeyFilter::new();
        for i in 0..300_000i64 {
            filter.insert(i % 977, &format!("cli-{i}"));
        }
        assert_eq!(filter.len(), 300_000);
        assert!(filter.layers() >= 3, "it grew by layers: {}", filter.layers());
        for i in 0..300_000i64 {
            assert!(filter.may_contain(i % 977, &format!("cli-{i}")), "key {i} lost");
        }
    }

    #[test]
    fn keys_never_inserted_are_mostly_absent() {
        let mut filter = KeyFilter::new();
        for i in 0..200_000i64 {
            filter.insert(i, &format!("{i:016x}"));
        }
        let false_positives = (0..100_000i64)
            .filter(|i| filter.may_contain(*i, &format!("other-{i}")))
            .count();
        // Three layers at ~0.1 % each: well under 1 %.
        assert!(false_positives < 1_000, "{false_positives} false positives in 100,000");
    }

    #[test]
    fn the_sender_and_the_id_are_both_the_key() {
        let mut filter = KeyFilter::new();
        filter.insert(1, "a");
        assert!(filter.may_contain(1, "a"));
        let other_senders = (2..1_000i64).filter(|s| filter.may_contain(*s, "a")).count();
        let other_ids = (0..1_000).filter(|i| filter.may_contain(1, &format!("a{i}"))).count();
        assert!(other_senders < 10 && other_ids < 10, "{other_senders} {other_ids}");
    }

    #[test]
    fn an_empty_filter_has_nothing() {
        let filter = KeyFilter::new();
        assert!(filter.is_empty());
        assert!(!filter.may_contain(0, ""));
        assert!(!filter.may_contain(i64::MIN, "x"));
        assert_eq!(filter.memory(), FIRST_CAPACITY * BITS_PER_KEY / 8);
    }
}
