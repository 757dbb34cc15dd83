//! A small deterministic pseudo-random generator (SplitMix64): the executor's schedule and the
//! kit's seeded keys and numbers come from it, so one seed gives one run.

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
/// 2014): 64 bits of state, every seed valid, good enough statistics for shuffling a ready
/// queue and deriving test keys. Not for cryptography.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator seeded with `seed`; equal seeds give equal sequences.
    pub fn new(seed: u64) -> SimRng {
        SimRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0), by Lemire's multiply-shift: no division
    /// and a bias below 2^-32 for the small bounds used here.
    pub fn below(&mut self, bound: usize) -> usize {
        let bound = bound as u64;
        let wide = u128::from(self.next_u64()) * u128::from(bound);
        // The high half of a 64x64 product is below `bound`, so it fits in a usize.
        usize::try_from(wide >> 64).unwrap_or(0)
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            let n = chunk.len();
            if let Some(src) = bytes.get(..n) {
                chunk.copy_from_slice(src);
            }
        }
    }

    /// A generator for another purpose, independent of this one's later output: the kit
    /// keeps the schedule and the keys on separate streams, so making one more key does not
    /// change the order tasks run in.
    #[must_use]
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64() ^ 0x6C50_3270_5465_7374)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (SimRng::new(7), SimRng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(SimRng::new(7).next_u64(), SimRng::new(8).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SimRng::new(1);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let n = rng.below(5);
            assert!(n < 5);
            seen[n] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn fill_handles_partial_words() {
        let mut rng = SimRng::new(3);
        let mut out = [0u8; 13];
        rng.fill(&mut out);
        assert!(out.iter().any(|b| *b != 0));
    }
}
