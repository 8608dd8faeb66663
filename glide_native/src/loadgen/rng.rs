//! A small, seedable PRNG (splitmix64): send intervals, peer choice and masking keys.
//!
//! Not cryptographic. RFC 6455 asks for unpredictable masking keys to protect *intermediaries* from
//! cache poisoning by hostile scripts; a load generator talking to its own server over loopback has no
//! such adversary, and a seed makes runs reproducible.

/// splitmix64: passes BigCrush, one multiply-xorshift per draw, any seed (including 0) is fine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for stream `stream` of run seed `seed` (each client gets its own stream).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]` (inclusive); `lo` when `hi <= lo`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo + 1;
        // Lemire's multiply-shift: unbiased enough for spans far below 2^64 (ours are milliseconds).
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64
    }

    /// Uniform in `[0, n)`; 0 when `n == 0`.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Four random bytes (a frame's masking key).
    pub fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_le_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_repeats() {
        let mut a = Rng::new(7, 3);
        let mut b = Rng::new(7, 3);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn streams_differ() {
        let mut a = Rng::new(7, 1);
        let mut b = Rng::new(7, 2);
        assert_ne!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn range_stays_inside_and_covers_both_ends() {
        let mut r = Rng::new(1, 0);
        let (mut saw_lo, mut saw_hi) = (false, false);
        for _ in 0..10_000 {
            let v = r.range_inclusive(60, 63);
            assert!((60..=63).contains(&v));
            saw_lo |= v == 60;
            saw_hi |= v == 63;
        }
        assert!(saw_lo && saw_hi);
        assert_eq!(r.range_inclusive(5, 5), 5);
        assert_eq!(r.range_inclusive(9, 2), 9);
        assert_eq!(r.below(0), 0);
        for _ in 0..1000 {
            assert!(r.below(3) < 3);
        }
    }
}
