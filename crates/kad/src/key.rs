//! Keys in the Kademlia key space and the XOR distance between them.
//!
//! Every key (a record key, a provider key, a binary PeerId) is placed in the 256-bit key
//! space by SHA-256; the distance between two keys is the XOR of their hashes read as a
//! big-endian integer (spec "Distance").

use std::fmt;

use lp2p_core::PeerId;
use sha2::{Digest, Sha256};

/// Bits in the key space (SHA-256).
pub const KEY_BITS: usize = 256;

/// A point in the key space: the SHA-256 of some bytes, as four big-endian 64-bit limbs
/// (so a distance is four XORs and compares as a 256-bit integer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u64; 4]);

fn limbs(bytes: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (limb, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(b);
    }
    out
}

fn bytes_of(limbs: &[u64; 4]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, limb) in out.chunks_exact_mut(8).zip(limbs) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    out
}

impl Key {
    /// The key of arbitrary bytes (a record key, a provider key).
    pub fn new(bytes: &[u8]) -> Key {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        Key(limbs(&digest))
    }

    /// The key of a peer: the SHA-256 of its binary PeerId.
    pub fn from_peer(peer: &PeerId) -> Key {
        Key::new(&peer.to_bytes())
    }

    /// A key given by its hash directly (tests, refresh targets).
    pub fn from_hash(hash: [u8; 32]) -> Key {
        Key(limbs(&hash))
    }

    /// The 32 hash bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        bytes_of(&self.0)
    }

    /// The XOR distance to `other`.
    pub fn distance(&self, other: &Key) -> Distance {
        let [a0, a1, a2, a3] = self.0;
        let [b0, b1, b2, b3] = other.0;
        Distance([a0 ^ b0, a1 ^ b1, a2 ^ b2, a3 ^ b3])
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:012x}..)", self.0[0] >> 16)
    }
}

/// The XOR distance between two keys; ordered as a 256-bit big-endian integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Distance([u64; 4]);

impl Distance {
    /// Distance zero (a key to itself).
    pub const ZERO: Distance = Distance([0; 4]);

    /// The number of leading zero bits: the length of the prefix two keys share.
    /// 256 for distance zero.
    pub fn leading_zeros(&self) -> usize {
        let mut zeros = 0usize;
        for limb in self.0 {
            if limb == 0 {
                zeros += 64;
            } else {
                zeros += limb.leading_zeros() as usize;
                break;
            }
        }
        zeros
    }

    /// The routing-table bucket of a key at this distance from ours: the shared prefix
    /// length (0 = the farthest half of the key space, 255 = the nearest key), or `None`
    /// for distance zero (our own key).
    pub fn bucket(&self) -> Option<usize> {
        let zeros = self.leading_zeros();
        (zeros < KEY_BITS).then_some(zeros)
    }

    /// The 32 bytes, big-endian.
    pub fn to_bytes(&self) -> [u8; 32] {
        bytes_of(&self.0)
    }
}

impl fmt::Debug for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Distance(lz={})", self.leading_zeros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn distance_basics() {
        let a = Key::new(b"a");
        assert_eq!(a.distance(&a), Distance::ZERO);
        assert_eq!(a.distance(&a).bucket(), None);
        let b = Key::new(b"b");
        assert_eq!(a.distance(&b), b.distance(&a));
        assert!(a.distance(&b) > Distance::ZERO);
    }

    #[test]
    fn limbs_order_like_bytes() {
        let mut small = [0u8; 32];
        small[31] = 1;
        let mut big = [0u8; 32];
        big[0] = 1;
        let zero = Key::from_hash([0; 32]);
        let (small, big) = (Key::from_hash(small), Key::from_hash(big));
        assert!(zero.distance(&small) < zero.distance(&big));
        assert_eq!(zero.distance(&small).leading_zeros(), 255);
        assert_eq!(zero.distance(&big).leading_zeros(), 7);
        assert_eq!(big.to_bytes()[0], 1);
    }

    #[test]
    fn peer_key_is_sha256_of_binary_peer_id() {
        let peer = PeerId::random();
        assert_eq!(Key::from_peer(&peer), Key::new(&peer.to_bytes()));
    }

    proptest! {
        #[test]
        fn xor_triangle(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (a, b) = (Key::from_hash(a), Key::from_hash(b));
            // d(a, b) = 0 iff a = b, and symmetric.
            prop_assert_eq!(a.distance(&b) == Distance::ZERO, a == b);
            prop_assert_eq!(a.distance(&b), b.distance(&a));
        }
    }
}
