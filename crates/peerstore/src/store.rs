//! The store behind the lock: every peer's record, the eviction order, the bounds.
//!
//! No clock and no lock here: time comes in as `now`, and [`Peerstore`](crate::Peerstore)
//! holds this behind a mutex.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId, ProtocolId, PublicKey};

use crate::addr_book::AddrBook;
use crate::config::Limits;
use crate::error::PeerstoreError;
use crate::metadata::Metadata;
use crate::protocol_book::ProtocolBook;

/// What [`Peerstore::gc`](crate::Peerstore::gc) collected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Expired addresses removed.
    pub expired_addrs: usize,
    /// Peers removed because nothing was left of them (no address, key, protocol or
    /// metadata).
    pub removed_peers: usize,
}

/// A peer's place in the eviction order: unprotected before protected (connected, or holding
/// a permanent address), then least recently seen first; the peer id makes every rank unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    protected: bool,
    seen: u64,
    peer: PeerId,
}

/// Everything known about one peer.
#[derive(Clone, Debug)]
pub(crate) struct PeerRecord {
    pub(crate) addrs: AddrBook,
    pub(crate) key: Option<PublicKey>,
    pub(crate) protocols: ProtocolBook,
    pub(crate) metadata: Metadata,
    rank: Rank,
}

impl PeerRecord {
    fn new(peer: PeerId) -> Self {
        PeerRecord {
            addrs: AddrBook::default(),
            key: None,
            protocols: ProtocolBook::default(),
            metadata: Metadata::default(),
            rank: Rank {
                protected: false,
                seen: 0,
                peer,
            },
        }
    }

    /// Whether nothing is stored for the peer (then the record is dropped).
    fn is_empty(&self) -> bool {
        self.addrs.is_empty()
            && self.key.is_none()
            && self.protocols.is_empty()
            && self.metadata.is_empty()
    }
}

/// Every peer's record and the eviction order, within the bounds of `limits`.
#[derive(Debug)]
pub(crate) struct Store {
    limits: Limits,
    peers: HashMap<PeerId, PeerRecord>,
    /// The eviction order; holds exactly one rank per record.
    by_rank: BTreeSet<Rank>,
    /// Counts writes: a peer's `seen` is the count at its last write.
    writes: u64,
}

impl Store {
    pub(crate) fn new(limits: Limits) -> Self {
        Store {
            limits,
            peers: HashMap::new(),
            by_rank: BTreeSet::new(),
            writes: 0,
        }
    }

    fn next_seen(&mut self) -> u64 {
        self.writes = self.writes.saturating_add(1);
        self.writes
    }

    /// Applies `change` to `peer`'s record (a fresh one if the peer is unknown) and marks the
    /// peer seen. `change` must be all or nothing: on error it has changed nothing. A fresh
    /// record enters only if something was stored in it, evicting a peer if the store is
    /// full; a record left empty is dropped.
    fn write<R>(
        &mut self,
        peer: &PeerId,
        change: impl FnOnce(&mut PeerRecord, &Limits) -> Result<R, PeerstoreError>,
    ) -> Result<R, PeerstoreError> {
        let limits = self.limits;
        if let Some(record) = self.peers.get_mut(peer) {
            let out = change(record, &limits)?;
            self.settle(peer, true);
            return Ok(out);
        }
        let mut record = PeerRecord::new(*peer);
        let out = change(&mut record, &limits)?;
        if record.is_empty() {
            return Ok(out);
        }
        self.make_room();
        record.rank.protected = record.addrs.has_lasting();
        record.rank.seen = self.next_seen();
        self.by_rank.insert(record.rank);
        self.peers.insert(*peer, record);
        Ok(out)
    }

    /// After `peer`'s record changed: drops it if empty, else brings its rank up to date
    /// (protected or not; seen now if `touched`).
    fn settle(&mut self, peer: &PeerId, touched: bool) {
        let seen = if touched {
            Some(self.next_seen())
        } else {
            None
        };
        let Some(record) = self.peers.get_mut(peer) else {
            return;
        };
        if record.is_empty() {
            self.by_rank.remove(&record.rank);
            self.peers.remove(peer);
            return;
        }
        let rank = Rank {
            protected: record.addrs.has_lasting(),
            seen: seen.unwrap_or(record.rank.seen),
            peer: *peer,
        };
        if rank != record.rank {
            self.by_rank.remove(&record.rank);
            self.by_rank.insert(rank);
            record.rank = rank;
        }
    }

    /// Evicts least-recently-seen peers (unprotected ones first) until one more fits.
    fn make_room(&mut self) {
        while self.peers.len() >= self.limits.max_peers {
            let Some(victim) = self.by_rank.pop_first() else {
                return;
            };
            self.peers.remove(&victim.peer);
            tracing::debug!(
                peer = %victim.peer,
                protected = victim.protected,
                "peerstore full: evicted the least recently seen peer"
            );
        }
    }

    // ---- address book ----

    /// `addrs` must be normalized (see `addr_book::normalize`).
    pub(crate) fn add_addrs(
        &mut self,
        peer: &PeerId,
        addrs: Vec<Multiaddr>,
        ttl: Duration,
        now: Instant,
    ) {
        if ttl.is_zero() || addrs.is_empty() {
            return;
        }
        let _ = self.write(peer, |record, limits| {
            record.addrs.remove_expired(now);
            for addr in addrs {
                record.addrs.add(addr, ttl, now, limits.max_addrs_per_peer);
            }
            Ok(())
        });
    }

    /// `addrs` must be normalized (see `addr_book::normalize`).
    pub(crate) fn set_addrs(
        &mut self,
        peer: &PeerId,
        addrs: Vec<Multiaddr>,
        ttl: Duration,
        now: Instant,
    ) {
        if addrs.is_empty() {
            return;
        }
        let _ = self.write(peer, |record, limits| {
            record.addrs.remove_expired(now);
            for addr in addrs {
                record.addrs.set(addr, ttl, now, limits.max_addrs_per_peer);
            }
            Ok(())
        });
    }

    pub(crate) fn update_addrs(
        &mut self,
        peer: &PeerId,
        old: Duration,
        new: Duration,
        now: Instant,
    ) {
        if !self.peers.contains_key(peer) {
            return;
        }
        let _ = self.write(peer, |record, _| {
            record.addrs.remove_expired(now);
            record.addrs.update(old, new, now);
            Ok(())
        });
    }

    pub(crate) fn clear_addrs(&mut self, peer: &PeerId) {
        if let Some(record) = self.peers.get_mut(peer) {
            record.addrs.clear();
            self.settle(peer, false);
        }
    }

    /// The unexpired addresses; collects the expired ones on the way.
    pub(crate) fn addrs(&mut self, peer: &PeerId, now: Instant) -> Vec<Multiaddr> {
        let Some(record) = self.peers.get_mut(peer) else {
            return Vec::new();
        };
        if record.addrs.remove_expired(now) > 0 {
            let addrs = record.addrs.addrs(now);
            self.settle(peer, false);
            return addrs;
        }
        record.addrs.addrs(now)
    }

    // ---- key book ----

    /// `key` must already be verified against `peer`.
    pub(crate) fn set_public_key(&mut self, peer: &PeerId, key: PublicKey) {
        let _ = self.write(peer, |record, _| {
            record.key = Some(key);
            Ok(())
        });
    }

    pub(crate) fn stored_public_key(&self, peer: &PeerId) -> Option<PublicKey> {
        self.peers.get(peer).and_then(|r| r.key.clone())
    }

    // ---- protocol book ----

    pub(crate) fn set_protocols(
        &mut self,
        peer: &PeerId,
        protocols: impl IntoIterator<Item = ProtocolId>,
    ) -> Result<(), PeerstoreError> {
        self.write(peer, |record, limits| {
            record.protocols.set(
                peer,
                protocols,
                limits.max_protocols_per_peer,
                limits.max_protocol_len,
            )
        })
    }

    pub(crate) fn add_protocols(
        &mut self,
        peer: &PeerId,
        protocols: impl IntoIterator<Item = ProtocolId>,
    ) -> Result<(), PeerstoreError> {
        self.write(peer, |record, limits| {
            record.protocols.add(
                peer,
                protocols,
                limits.max_protocols_per_peer,
                limits.max_protocol_len,
            )
        })
    }

    pub(crate) fn remove_protocols<P: AsRef<str>>(&mut self, peer: &PeerId, protocols: &[P]) {
        if let Some(record) = self.peers.get_mut(peer) {
            record.protocols.remove(protocols);
            self.settle(peer, false);
        }
    }

    pub(crate) fn protocols(&self, peer: &PeerId) -> Vec<ProtocolId> {
        self.peers
            .get(peer)
            .map(|r| r.protocols.list().to_vec())
            .unwrap_or_default()
    }

    pub(crate) fn supports_protocols<P: AsRef<str>>(
        &self,
        peer: &PeerId,
        wanted: &[P],
    ) -> Vec<ProtocolId> {
        self.peers
            .get(peer)
            .map(|r| r.protocols.supported(wanted))
            .unwrap_or_default()
    }

    pub(crate) fn first_supported_protocol<P: AsRef<str>>(
        &self,
        peer: &PeerId,
        wanted: &[P],
    ) -> Option<ProtocolId> {
        self.peers
            .get(peer)
            .and_then(|r| r.protocols.first_supported(wanted))
    }

    // ---- metadata ----

    pub(crate) fn put_metadata(
        &mut self,
        peer: &PeerId,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), PeerstoreError> {
        self.write(peer, |record, limits| {
            record.metadata.put(
                peer,
                key,
                value,
                limits.max_metadata_entries_per_peer,
                limits.max_metadata_bytes_per_peer,
            )
        })
    }

    pub(crate) fn metadata(&self, peer: &PeerId, key: &str) -> Option<Vec<u8>> {
        self.peers
            .get(peer)
            .and_then(|r| r.metadata.get(key))
            .map(<[u8]>::to_vec)
    }

    pub(crate) fn metadata_text(&self, peer: &PeerId, key: &str) -> Option<String> {
        self.peers.get(peer).and_then(|r| r.metadata.get_text(key))
    }

    pub(crate) fn remove_metadata(&mut self, peer: &PeerId, key: &str) -> Option<Vec<u8>> {
        let removed = self.peers.get_mut(peer)?.metadata.remove(key);
        self.settle(peer, false);
        removed
    }

    // ---- peers ----

    pub(crate) fn peers(&self) -> Vec<PeerId> {
        self.peers.keys().copied().collect()
    }

    pub(crate) fn peers_with_addrs(&self, now: Instant) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, r)| r.addrs.has_unexpired(now))
            .map(|(p, _)| *p)
            .collect()
    }

    pub(crate) fn contains(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    pub(crate) fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|r| r.addrs.is_connected())
    }

    /// Whether `peer` is among the last to be evicted (tests).
    #[cfg(test)]
    pub(crate) fn is_protected(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|r| r.rank.protected)
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn remove_peer(&mut self, peer: &PeerId) -> bool {
        match self.peers.remove(peer) {
            Some(record) => {
                self.by_rank.remove(&record.rank);
                true
            }
            None => false,
        }
    }

    /// A read-only view of one record (for snapshots).
    pub(crate) fn record(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(peer)
    }

    /// Drops every expired address, then every record left empty.
    pub(crate) fn gc(&mut self, now: Instant) -> GcStats {
        let mut stats = GcStats::default();
        let mut changed: Vec<PeerId> = Vec::new();
        for (peer, record) in &mut self.peers {
            let expired = record.addrs.remove_expired(now);
            if expired > 0 {
                stats.expired_addrs = stats.expired_addrs.saturating_add(expired);
                changed.push(*peer);
            }
        }
        for peer in &changed {
            if let Some(record) = self.peers.get(peer)
                && record.is_empty()
            {
                stats.removed_peers = stats.removed_peers.saturating_add(1);
            }
            self.settle(peer, false);
        }
        if stats != GcStats::default() {
            tracing::debug!(
                expired_addrs = stats.expired_addrs,
                removed_peers = stats.removed_peers,
                peers = self.peers.len(),
                "peerstore gc"
            );
        }
        stats
    }

    /// Checks every invariant the bounds promise (tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let l = &self.limits;
        assert!(self.peers.len() <= l.max_peers, "too many peers");
        assert_eq!(
            self.peers.len(),
            self.by_rank.len(),
            "rank index out of step"
        );
        for (peer, record) in &self.peers {
            assert_eq!(&record.rank.peer, peer);
            assert!(
                self.by_rank.contains(&record.rank),
                "rank missing for {peer}"
            );
            assert_eq!(record.rank.protected, record.addrs.has_lasting());
            assert!(!record.is_empty(), "empty record kept for {peer}");
            assert!(record.addrs.len() <= l.max_addrs_per_peer);
            assert!(!record.addrs.has_duplicates());
            assert!(record.protocols.len() <= l.max_protocols_per_peer);
            let list = record.protocols.list();
            for (i, p) in list.iter().enumerate() {
                assert!(!p.is_empty() && p.len() <= l.max_protocol_len);
                assert!(!list[i + 1..].contains(p), "duplicate protocol");
            }
            assert!(record.metadata.len() <= l.max_metadata_entries_per_peer);
            assert!(record.metadata.bytes() <= l.max_metadata_bytes_per_peer);
            assert_eq!(record.metadata.bytes(), record.metadata.recount());
            if let Some(key) = &record.key {
                assert_eq!(key.to_peer_id(), *peer);
            }
        }
    }
}
