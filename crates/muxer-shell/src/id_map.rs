//! A fast hasher for maps keyed by stream ids.
//!
//! Stream ids are small integers, mostly sequential; SipHash buys nothing for them except
//! cost. Multiplying by a 64-bit odd constant (Fibonacci hashing) spreads them over all bits,
//! which hashbrown needs (it takes the top 7 bits as a tag). A remote choosing ids to collide
//! gains little: live streams are capped by every muxer, and a collision costs probing, not
//! correctness.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by stream ids, hashed with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of integer keys (stream ids and their parts).
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher(u64);

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl IdHasher {
    fn mix(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.mix(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn spreads_sequential_ids_over_the_top_bits() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let mut tops = std::collections::HashSet::new();
        for id in 0u32..256 {
            tops.insert(build.hash_one(id) >> 57);
        }
        assert!(tops.len() > 64, "only {} distinct tags", tops.len());
        let mut tops = std::collections::HashSet::new();
        for id in 0u64..256 {
            tops.insert(build.hash_one((id, id % 2 == 0)) >> 57);
        }
        assert!(tops.len() > 64, "only {} distinct tags", tops.len());
        let mut map: IdMap<u32, u32> = IdMap::default();
        map.insert(7, 1);
        assert_eq!(map.get(&7), Some(&1));
        let mut h = IdHasher::default();
        h.write(b"abc");
        assert_ne!(h.finish(), 0);
    }
}
