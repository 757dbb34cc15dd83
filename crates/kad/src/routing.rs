//! The routing table: `k`-buckets over the SHA-256 key space, with a replacement cache per
//! bucket.
//!
//! Bucket `i` holds peers whose key shares exactly `i` leading bits with ours (bucket 0 is
//! the farthest half of the key space). Entries are ordered least recently seen first. Only
//! peers known to be in server mode with at least one verified address are offered to the
//! table (the core decides which); when a bucket is full a newcomer waits in the bucket's
//! replacement cache and takes the place of an entry that fails `max_failures` requests in a
//! row.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use lp2p_core::{Multiaddr, PeerId};

use crate::key::{Distance, KEY_BITS, Key};

/// Addresses kept per routing-table entry, most recently verified first.
pub const MAX_ADDRS_PER_ENTRY: usize = 8;

/// A peer in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The peer.
    pub peer: PeerId,
    /// Its key.
    pub key: Key,
    /// Verified addresses, most recent first.
    pub addrs: Vec<Multiaddr>,
    /// When we last heard from it (a response, a connection, identify).
    pub last_seen: Instant,
    /// Requests that failed in a row.
    pub failures: u32,
}

impl Entry {
    fn new(peer: PeerId, key: Key, addrs: Vec<Multiaddr>, now: Instant) -> Entry {
        let mut entry = Entry {
            peer,
            key,
            addrs: Vec::new(),
            last_seen: now,
            failures: 0,
        };
        entry.merge_addrs(addrs);
        entry
    }

    fn merge_addrs(&mut self, fresh: Vec<Multiaddr>) {
        for addr in fresh.into_iter().rev() {
            self.addrs.retain(|a| *a != addr);
            self.addrs.insert(0, addr);
        }
        self.addrs.truncate(MAX_ADDRS_PER_ENTRY);
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    /// At most `k`, least recently seen first.
    entries: Vec<Entry>,
    /// Waiting for a place, newest last.
    replacements: VecDeque<Entry>,
    /// When a lookup last targeted this bucket's range.
    last_lookup: Option<Instant>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            entries: Vec::new(),
            replacements: VecDeque::new(),
            last_lookup: None,
        }
    }
}

/// What [`RoutingTable::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// A new entry.
    Added {
        /// Its bucket.
        bucket: usize,
    },
    /// An existing entry refreshed (addresses merged, moved to most recently seen).
    Updated,
    /// The bucket is full: the peer waits in the replacement cache.
    Pending,
    /// Our own key: never stored.
    Local,
    /// Unknown peer and no address to reach it by: not stored.
    NoAddress,
}

/// What [`RoutingTable::record_failure`] or [`RoutingTable::remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The removed peer.
    pub peer: PeerId,
    /// The replacement that took its place, if any.
    pub promoted: Option<PeerId>,
}

/// The `k`-bucket routing table.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    local: Key,
    buckets: Vec<Bucket>,
    k: usize,
    replacement_cache: usize,
    max_failures: u32,
    len: usize,
    /// The bucket of every peer in the table or a replacement cache (no hashing to find
    /// a known peer).
    index: HashMap<PeerId, usize>,
}

impl RoutingTable {
    /// An empty table around `local`, `k` peers per bucket, `replacement_cache` waiting per
    /// bucket, an entry removed after `max_failures` failed requests in a row (at least 1).
    pub fn new(local: Key, k: usize, replacement_cache: usize, max_failures: u32) -> Self {
        RoutingTable {
            local,
            buckets: (0..KEY_BITS).map(|_| Bucket::new()).collect(),
            k: k.max(1),
            replacement_cache,
            max_failures: max_failures.max(1),
            len: 0,
            index: HashMap::new(),
        }
    }

    /// Our key.
    pub fn local_key(&self) -> &Key {
        &self.local
    }

    /// `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The bucket `key` falls in (`None` for our own key).
    pub fn bucket_index(&self, key: &Key) -> Option<usize> {
        self.local.distance(key).bucket()
    }

    /// Adds `peer` or refreshes it (`addrs` are verified addresses, possibly none for a
    /// refresh).
    pub fn insert(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) -> Insert {
        if !self.index.contains_key(&peer) && addrs.is_empty() {
            return Insert::NoAddress;
        }
        let (index, key) = if let Some(bucket) = self.index.get(&peer) {
            (*bucket, None)
        } else {
            let key = Key::from_peer(&peer);
            let Some(bucket) = self.bucket_index(&key) else {
                return Insert::Local;
            };
            (bucket, Some(key))
        };
        let k = self.k;
        let cache = self.replacement_cache;
        let Some(bucket) = self.buckets.get_mut(index) else {
            return Insert::Local;
        };
        if let Some(pos) = bucket.entries.iter().position(|e| e.peer == peer) {
            let mut entry = bucket.entries.remove(pos);
            entry.merge_addrs(addrs);
            entry.last_seen = now;
            entry.failures = 0;
            bucket.entries.push(entry);
            return Insert::Updated;
        }
        let waiting = bucket
            .replacements
            .iter()
            .position(|e| e.peer == peer)
            .and_then(|pos| bucket.replacements.remove(pos));
        let entry = match waiting {
            Some(mut entry) => {
                entry.merge_addrs(addrs);
                entry.last_seen = now;
                entry.failures = 0;
                entry
            }
            None if addrs.is_empty() => return Insert::NoAddress,
            None => Entry::new(
                peer,
                key.unwrap_or_else(|| Key::from_peer(&peer)),
                addrs,
                now,
            ),
        };
        if bucket.entries.len() < k {
            bucket.entries.push(entry);
            self.len = self.len.saturating_add(1);
            self.index.insert(peer, index);
            return Insert::Added { bucket: index };
        }
        if cache > 0 {
            bucket.replacements.push_back(entry);
            self.index.insert(peer, index);
            while bucket.replacements.len() > cache {
                if let Some(old) = bucket.replacements.pop_front() {
                    self.index.remove(&old.peer);
                }
            }
        } else {
            self.index.remove(&peer);
        }
        Insert::Pending
    }

    /// Notes a failed request to `peer`; removes it once it failed `max_failures` times in a
    /// row, promoting the newest replacement of its bucket.
    pub fn record_failure(&mut self, peer: &PeerId) -> Option<Removed> {
        let index = *self.index.get(peer)?;
        let max = self.max_failures;
        let bucket = self.buckets.get_mut(index)?;
        if let Some(pos) = bucket.replacements.iter().position(|e| e.peer == *peer) {
            bucket.replacements.remove(pos);
            self.index.remove(peer);
            return None;
        }
        let entry = bucket.entries.iter_mut().find(|e| e.peer == *peer)?;
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures < max {
            return None;
        }
        self.remove(peer)
    }

    /// Removes `peer` (from the entries or the replacement cache), promoting the newest
    /// replacement into a freed place.
    pub fn remove(&mut self, peer: &PeerId) -> Option<Removed> {
        let index = *self.index.get(peer)?;
        let bucket = self.buckets.get_mut(index)?;
        if let Some(pos) = bucket.replacements.iter().position(|e| e.peer == *peer) {
            bucket.replacements.remove(pos);
            self.index.remove(peer);
            return None;
        }
        let pos = bucket.entries.iter().position(|e| e.peer == *peer)?;
        bucket.entries.remove(pos);
        self.index.remove(peer);
        let promoted = bucket.replacements.pop_back().map(|e| {
            let peer = e.peer;
            // Promoted entries are the least recently confirmed: they go first in line.
            bucket.entries.insert(0, e);
            peer
        });
        if promoted.is_none() {
            self.len = self.len.saturating_sub(1);
        }
        Some(Removed {
            peer: *peer,
            promoted,
        })
    }

    /// The entry of `peer`, if it is in the table (not the replacement cache).
    pub fn get(&self, peer: &PeerId) -> Option<&Entry> {
        let index = *self.index.get(peer)?;
        self.buckets
            .get(index)?
            .entries
            .iter()
            .find(|e| e.peer == *peer)
    }

    /// Whether `peer` is in the table.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.get(peer).is_some()
    }

    /// Peers in the table (not counting replacements).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, bucket by bucket.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.entries.iter())
    }

    /// Entries per bucket (index, entries, replacements) for non-empty buckets.
    pub fn bucket_sizes(&self) -> Vec<(usize, usize, usize)> {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.entries.is_empty() || !b.replacements.is_empty())
            .map(|(i, b)| (i, b.entries.len(), b.replacements.len()))
            .collect()
    }

    /// The `n` entries closest to `target`, nearest first, leaving out `exclude`.
    pub fn closest(&self, target: &Key, n: usize, exclude: Option<&PeerId>) -> Vec<&Entry> {
        if n == 0 {
            return Vec::new();
        }
        let mut found: Vec<(Distance, &Entry)> = Vec::with_capacity(self.len);
        for bucket in &self.buckets {
            for e in &bucket.entries {
                if exclude.is_none_or(|x| e.peer != *x) {
                    found.push((e.key.distance(target), e));
                }
            }
        }
        if found.len() > n {
            found.select_nth_unstable_by(n - 1, |a, b| a.0.cmp(&b.0));
            found.truncate(n);
        }
        found.sort_unstable_by_key(|(d, _)| *d);
        found.into_iter().map(|(_, e)| e).collect()
    }

    /// Records that a lookup targeted `key`'s bucket at `now` (for refresh bookkeeping).
    pub fn note_lookup(&mut self, key: &Key, now: Instant) {
        if let Some(bucket) = self.bucket_index(key).and_then(|i| self.buckets.get_mut(i)) {
            bucket.last_lookup = Some(now);
        }
    }

    /// Non-empty buckets below `max_bucket` with no lookup since `since` (their refresh is
    /// due).
    pub fn stale_buckets(&self, since: Instant, max_bucket: usize) -> Vec<usize> {
        self.buckets
            .iter()
            .enumerate()
            .take(max_bucket)
            .filter(|(_, b)| !b.entries.is_empty())
            .filter(|(_, b)| b.last_lookup.is_none_or(|t| t < since))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn addr(n: u16) -> Multiaddr {
        format!("/ip4/10.0.0.1/tcp/{n}").parse().unwrap()
    }

    fn peer_in_bucket(table: &RoutingTable, bucket: usize) -> PeerId {
        loop {
            let p = PeerId::random();
            if table.bucket_index(&Key::from_peer(&p)) == Some(bucket) {
                return p;
            }
        }
    }

    #[test]
    fn full_bucket_fills_the_replacement_cache_and_failures_promote() {
        let now = Instant::now();
        let mut t = RoutingTable::new(Key::new(b"me"), 2, 2, 2);
        let peers: Vec<PeerId> = (0..5).map(|_| peer_in_bucket(&t, 0)).collect();
        assert_eq!(
            t.insert(peers[0], vec![addr(1)], now),
            Insert::Added { bucket: 0 }
        );
        assert_eq!(
            t.insert(peers[1], vec![addr(2)], now),
            Insert::Added { bucket: 0 }
        );
        assert_eq!(t.insert(peers[2], vec![addr(3)], now), Insert::Pending);
        assert_eq!(t.insert(peers[3], vec![addr(4)], now), Insert::Pending);
        // The cache keeps the newest two.
        assert_eq!(t.insert(peers[4], vec![addr(5)], now), Insert::Pending);
        assert_eq!(t.len(), 2);
        assert_eq!(t.bucket_sizes(), vec![(0, 2, 2)]);
        // One failure is tolerated; the second removes and promotes the newest replacement.
        assert_eq!(t.record_failure(&peers[0]), None);
        let removed = t.record_failure(&peers[0]).unwrap();
        assert_eq!(removed.promoted, Some(peers[4]));
        assert!(t.contains(&peers[4]) && !t.contains(&peers[0]));
        assert_eq!(t.len(), 2);
        // A success resets the failure count.
        assert_eq!(t.record_failure(&peers[1]), None);
        assert_eq!(t.insert(peers[1], vec![], now), Insert::Updated);
        assert_eq!(t.record_failure(&peers[1]), None);
    }

    #[test]
    fn no_address_no_entry_and_never_ourselves() {
        let now = Instant::now();
        let me = PeerId::random();
        let mut t = RoutingTable::new(Key::from_peer(&me), 20, 20, 1);
        assert_eq!(t.insert(me, vec![addr(1)], now), Insert::Local);
        assert_eq!(t.insert(PeerId::random(), vec![], now), Insert::NoAddress);
        assert!(t.is_empty());
    }

    #[test]
    fn addresses_merge_most_recent_first_and_are_capped() {
        let now = Instant::now();
        let mut t = RoutingTable::new(Key::new(b"me"), 20, 20, 1);
        let p = PeerId::random();
        t.insert(p, vec![addr(1), addr(2)], now);
        t.insert(p, vec![addr(2)], now);
        assert_eq!(t.get(&p).unwrap().addrs, vec![addr(2), addr(1)]);
        t.insert(p, (10..30).map(addr).collect(), now);
        assert_eq!(t.get(&p).unwrap().addrs.len(), MAX_ADDRS_PER_ENTRY);
        assert_eq!(t.get(&p).unwrap().addrs[0], addr(10));
    }

    #[test]
    fn stale_buckets_follow_lookups() {
        let start = Instant::now();
        let mut t = RoutingTable::new(Key::new(b"me"), 20, 20, 1);
        let p = peer_in_bucket(&t, 1);
        t.insert(p, vec![addr(1)], start);
        assert_eq!(t.stale_buckets(start, 16), vec![1]);
        t.note_lookup(&Key::from_peer(&p), start);
        assert!(t.stale_buckets(start, 16).is_empty());
        let later = start + std::time::Duration::from_secs(1);
        assert_eq!(t.stale_buckets(later, 16), vec![1]);
        assert!(t.stale_buckets(later, 1).is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, bool),
        Fail(u8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<bool>()).prop_map(|(p, a)| Op::Insert(p, a)),
            any::<u8>().prop_map(Op::Fail),
            any::<u8>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever happens: buckets hold at most k entries and `cache` replacements, every
        /// entry sits in its own bucket, a peer appears once, `len` counts the entries, and
        /// `closest` agrees with a brute-force sort.
        #[test]
        fn invariants_hold(ops in proptest::collection::vec(op(), 1..300), k in 1usize..6, cache in 0usize..4, target in any::<[u8; 32]>()) {
            let now = Instant::now();
            let pool: Vec<PeerId> = (0..64).map(|_| PeerId::random()).collect();
            let local = Key::new(b"local");
            let mut t = RoutingTable::new(local, k, cache, 2);
            for op in ops {
                match op {
                    Op::Insert(p, with_addr) => {
                        let addrs = if with_addr { vec![addr(u16::from(p))] } else { vec![] };
                        t.insert(pool[usize::from(p) % 64], addrs, now);
                    }
                    Op::Fail(p) => { t.record_failure(&pool[usize::from(p) % 64]); }
                    Op::Remove(p) => { t.remove(&pool[usize::from(p) % 64]); }
                }
                let mut seen = HashSet::new();
                let mut count = 0;
                for (i, b) in t.buckets.iter().enumerate() {
                    prop_assert!(b.entries.len() <= k);
                    prop_assert!(b.replacements.len() <= cache);
                    for e in b.entries.iter().chain(b.replacements.iter()) {
                        prop_assert_eq!(local.distance(&e.key).bucket(), Some(i));
                        prop_assert!(seen.insert(e.peer), "peer twice");
                        prop_assert!(!e.addrs.is_empty());
                    }
                    count += b.entries.len();
                }
                prop_assert_eq!(count, t.len());
                prop_assert_eq!(seen.len(), t.index.len());
            }
            let target = Key::from_hash(target);
            let closest: Vec<PeerId> = t.closest(&target, 5, None).iter().map(|e| e.peer).collect();
            let mut all: Vec<&Entry> = t.iter().collect();
            all.sort_by_key(|e| e.key.distance(&target));
            let expected: Vec<PeerId> = all.iter().take(5).map(|e| e.peer).collect();
            prop_assert_eq!(closest, expected);
        }
    }
}
