//! A bounded memory of checks that passed, keyed by the bytes they checked.
//!
//! For a check that is a pure function of some bytes (a signature over a key, a certificate's
//! self-signature), a success seen once is a success again. Security channels keep such
//! results per local identity so a peer that reconnects with the same proof is not verified
//! twice (noise's remote static keys, TLS certificates). Only what the caller inserts after
//! a successful check enters, and the oldest entry is forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Up to `capacity` byte strings that passed a check, each with what the check proved.
///
/// ```
/// use lp2p_core::ProvenBytes;
///
/// let proven = ProvenBytes::new(2);
/// proven.insert(b"a", 1);
/// proven.insert(b"b", 2);
/// proven.insert(b"c", 3); // forgets "a", the oldest
/// assert_eq!((proven.get(b"a"), proven.get(b"c")), (None, Some(3)));
/// assert_eq!(proven.len(), 2);
/// ```
#[derive(Debug)]
pub struct ProvenBytes<V> {
    capacity: usize,
    entries: Mutex<Entries<V>>,
}

#[derive(Debug)]
struct Entries<V> {
    by_key: HashMap<Arc<[u8]>, V>,
    /// Insertion order; the oldest is forgotten first.
    order: VecDeque<Arc<[u8]>>,
}

impl<V: Clone> ProvenBytes<V> {
    /// Remembers up to `capacity` entries; 0 remembers none.
    pub fn new(capacity: usize) -> ProvenBytes<V> {
        ProvenBytes {
            capacity,
            entries: Mutex::new(Entries {
                by_key: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// What `key` proved, if it passed before and is still remembered.
    pub fn get(&self, key: &[u8]) -> Option<V> {
        if self.capacity == 0 {
            return None;
        }
        self.lock().by_key.get(key).cloned()
    }

    /// Remembers that `key` passed, proving `value`, forgetting the oldest entry when full.
    /// A key already remembered keeps its entry (another check of the same bytes may have
    /// finished first).
    pub fn insert(&self, key: &[u8], value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.by_key.contains_key(key) {
            return;
        }
        while entries.by_key.len() >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.by_key.remove(&oldest);
        }
        let key: Arc<[u8]> = Arc::from(key);
        entries.order.push_back(key.clone());
        entries.by_key.insert(key, value);
    }

    /// Entries remembered now.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries remembered at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, Entries<V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entry_is_forgotten_at_capacity() {
        let proven = ProvenBytes::new(2);
        proven.insert(b"a", 1);
        proven.insert(b"b", 2);
        proven.insert(b"a", 9); // already there: kept as it was, not renewed
        proven.insert(b"c", 3);
        assert_eq!(proven.get(b"a"), None);
        assert_eq!((proven.get(b"b"), proven.get(b"c")), (Some(2), Some(3)));
        assert_eq!(proven.len(), 2);
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let proven = ProvenBytes::new(0);
        proven.insert(b"a", ());
        assert_eq!(proven.get(b"a"), None);
        assert!(proven.is_empty());
    }
}
