//! Remote signed static keys whose signature verified, remembered so a reconnecting peer
//! is not verified twice (see [`RemoteStatics`]).

use std::sync::atomic::{AtomicU64, Ordering};

use lp2p_core::ProvenBytes;

/// Remote static keys remembered by default. An entry is the static key, the identity key
/// and the signature: about 140 bytes for an Ed25519 identity, so 256 entries are about
/// 40 KiB (at most 256 × [`MAX_REMEMBERED_TRIPLE_LEN`] bytes, 0.5 MiB, with RSA identities).
pub const DEFAULT_REMOTE_STATICS: usize = 256;

/// Triples longer than this (RSA keys beyond 4096 bits) are verified every time.
pub const MAX_REMEMBERED_TRIPLE_LEN: usize = 2048;

/// Remote (static key, identity key, signature) triples whose signature verified, up to a
/// capacity, oldest forgotten first. Only verified triples enter, so a remote cannot make a
/// bad signature pass, and fills the memory only by completing a verification per entry.
#[derive(Debug)]
pub struct RemoteStatics {
    entries: ProvenBytes<()>,
    hits: AtomicU64,
}

impl Default for RemoteStatics {
    fn default() -> Self {
        RemoteStatics::new(DEFAULT_REMOTE_STATICS)
    }
}

impl RemoteStatics {
    /// Remembers up to `capacity` triples; 0 remembers none.
    pub fn new(capacity: usize) -> RemoteStatics {
        RemoteStatics {
            entries: ProvenBytes::new(capacity),
            hits: AtomicU64::new(0),
        }
    }

    /// Signature checks answered from memory.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Triples remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `signature` by `identity_key` (protobuf bytes) over `remote_static` holds:
    /// from memory when this triple verified before, else by `check`, remembering a success.
    pub(crate) fn verify(
        &self,
        remote_static: &[u8; 32],
        identity_key: &[u8],
        signature: &[u8],
        check: impl FnOnce() -> bool,
    ) -> bool {
        let len = remote_static
            .len()
            .saturating_add(identity_key.len())
            .saturating_add(signature.len());
        if self.entries.capacity() == 0 || len > MAX_REMEMBERED_TRIPLE_LEN {
            return check();
        }
        // The identity key's protobuf is self-delimiting enough: the signature is last and the
        // static key has a fixed length, so the concatenation determines the triple as long
        // as the identity key's length is part of it.
        let mut triple = Vec::with_capacity(len.saturating_add(4));
        triple.extend_from_slice(remote_static);
        triple.extend_from_slice(
            &u32::try_from(identity_key.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        triple.extend_from_slice(identity_key);
        triple.extend_from_slice(signature);
        if self.entries.get(&triple).is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if !check() {
            return false;
        }
        self.entries.insert(&triple, ());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triple(byte: u8) -> ([u8; 32], Vec<u8>, Vec<u8>) {
        ([byte; 32], vec![byte; 36], vec![byte; 64])
    }

    #[test]
    fn a_verified_triple_is_answered_from_memory() {
        let statics = RemoteStatics::new(4);
        let (s, k, sig) = triple(1);
        assert!(statics.verify(&s, &k, &sig, || true));
        assert!(statics.verify(&s, &k, &sig, || panic!("checked again")));
        assert_eq!((statics.hits(), statics.len()), (1, 1));
    }

    #[test]
    fn a_failed_check_is_not_remembered() {
        let statics = RemoteStatics::new(4);
        let (s, k, sig) = triple(2);
        assert!(!statics.verify(&s, &k, &sig, || false));
        assert!(!statics.verify(&s, &k, &sig, || false));
        assert!(statics.is_empty());
        assert_eq!(statics.hits(), 0);
    }

    #[test]
    fn another_signature_or_key_is_checked() {
        let statics = RemoteStatics::new(4);
        let (s, k, sig) = triple(3);
        assert!(statics.verify(&s, &k, &sig, || true));
        let mut other_sig = sig.clone();
        other_sig[0] ^= 1;
        assert!(!statics.verify(&s, &k, &other_sig, || false));
        let mut other_static = s;
        other_static[0] ^= 1;
        assert!(!statics.verify(&other_static, &k, &sig, || false));
        // The boundary between the identity key and the signature is part of the entry.
        let (shorter_key, longer_sig) = (k[..35].to_vec(), [&k[35..], &sig[..]].concat());
        assert!(!statics.verify(&s, &shorter_key, &longer_sig, || false));
    }

    #[test]
    fn capacity_bounds_the_memory_and_zero_disables_it() {
        let statics = RemoteStatics::new(2);
        for byte in 0..5 {
            let (s, k, sig) = triple(byte);
            assert!(statics.verify(&s, &k, &sig, || true));
        }
        assert_eq!(statics.len(), 2);
        let (s, k, sig) = triple(4);
        assert!(statics.verify(&s, &k, &sig, || panic!("the newest was forgotten")));

        let none = RemoteStatics::new(0);
        assert!(none.verify(&s, &k, &sig, || true));
        assert!(!none.verify(&s, &k, &sig, || false));
        assert!(none.is_empty());
    }
}
