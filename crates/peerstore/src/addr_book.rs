//! One peer's addresses with their TTLs: the address book's per-peer half.
//!
//! No clock here: every operation that cares about time is given `now`.

use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId, Protocol};

use crate::error::PeerstoreError;

/// TTL of an address that never expires (a bootstrap peer, an address the user configured).
///
/// `Duration::MAX`: no expiry time is representable, so the entry lives until it is cleared.
/// A peer holding such an address is among the last to be evicted, with connected peers.
pub const PERMANENT_ADDR_TTL: Duration = Duration::MAX;

/// TTL of an address we are connected to the peer on right now.
///
/// The swarm sets it on connect and downgrades it on disconnect with
/// `update_addrs(peer, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL)`. It never expires on
/// its own, and it is one nanosecond below [`PERMANENT_ADDR_TTL`] so the two stay distinct
/// (an `update_addrs` from connected never touches permanent addresses). A peer holding such
/// an address counts as connected and is among the last to be evicted.
pub const CONNECTED_ADDR_TTL: Duration = Duration::new(u64::MAX, 999_999_998);

/// TTL of an address we were connected on until recently: 10 minutes.
///
/// Why: long enough to redial a peer after a transient disconnect (a restart, a network
/// switch), short enough that the addresses of a peer that moved do not linger.
pub const RECENTLY_CONNECTED_ADDR_TTL: Duration = Duration::from_secs(10 * 60);

/// TTL of an address learnt second-hand and not yet verified: 2 minutes.
///
/// Why: enough to try a dial right away; unconfirmed addresses should not outlive that try.
pub const TEMP_ADDR_TTL: Duration = Duration::from_secs(2 * 60);

/// One stored address.
#[derive(Clone, Debug)]
struct AddrEntry {
    addr: Multiaddr,
    ttl: Duration,
    /// `None`: never expires (the TTL does not fit in an `Instant`).
    expires: Option<Instant>,
}

impl AddrEntry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// The expiry of an entry given `ttl` at `now`; `None` (never) when it does not fit.
fn expiry(now: Instant, ttl: Duration) -> Option<Instant> {
    now.checked_add(ttl)
}

/// Whether expiry `a` is strictly later than expiry `b` (`None` is never, the latest).
fn outlives(a: Option<Instant>, b: Option<Instant>) -> bool {
    match (a, b) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
        (_, None) => false,
    }
}

/// Checks an address given for `peer` and returns its stored form: a trailing `/p2p/<peer>`
/// stripped; one naming another peer, an empty address or one over `max_len` bytes refused.
pub(crate) fn normalize(
    peer: &PeerId,
    addr: Multiaddr,
    max_len: usize,
) -> Result<Multiaddr, PeerstoreError> {
    // Look at the last protocol first: most addresses carry no suffix and are stored as
    // given, without a copy.
    let stored = match addr.iter().last() {
        None => {
            return Err(PeerstoreError::EmptyAddr {
                peer: Box::new(*peer),
            });
        }
        Some(Protocol::P2p(named)) if named == *peer => {
            let mut stripped = addr;
            stripped.pop();
            if stripped.is_empty() {
                return Err(PeerstoreError::EmptyAddr {
                    peer: Box::new(*peer),
                });
            }
            stripped
        }
        Some(Protocol::P2p(named)) => {
            return Err(PeerstoreError::AddrPeerMismatch {
                peer: Box::new(*peer),
                addr,
                addr_peer: Box::new(named),
            });
        }
        Some(_) => addr,
    };
    if stored.len() > max_len {
        return Err(PeerstoreError::AddrTooLong {
            peer: Box::new(*peer),
            len: stored.len(),
            max: max_len,
        });
    }
    Ok(stored)
}

/// One peer's addresses, at most `max` of them (the caller passes the bound).
///
/// A handful of entries per peer, so a `Vec` with linear search beats any map.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddrBook {
    entries: Vec<AddrEntry>,
}

impl AddrBook {
    /// Adds `addr` with `ttl`, extending an existing entry's TTL and expiry but never
    /// shortening them. A zero TTL does nothing.
    pub(crate) fn add(&mut self, addr: Multiaddr, ttl: Duration, now: Instant, max: usize) {
        if ttl.is_zero() {
            return;
        }
        let expires = expiry(now, ttl);
        if let Some(entry) = self.entries.iter_mut().find(|e| e.addr == addr) {
            entry.ttl = entry.ttl.max(ttl);
            if outlives(expires, entry.expires) {
                entry.expires = expires;
            }
            return;
        }
        self.insert(AddrEntry { addr, ttl, expires }, max);
    }

    /// Sets `addr`'s TTL and expiry to exactly `ttl` from `now` (shortening allowed); a zero
    /// TTL removes the address.
    pub(crate) fn set(&mut self, addr: Multiaddr, ttl: Duration, now: Instant, max: usize) {
        if ttl.is_zero() {
            self.entries.retain(|e| e.addr != addr);
            return;
        }
        let expires = expiry(now, ttl);
        if let Some(entry) = self.entries.iter_mut().find(|e| e.addr == addr) {
            entry.ttl = ttl;
            entry.expires = expires;
            return;
        }
        self.insert(AddrEntry { addr, ttl, expires }, max);
    }

    /// Gives every address whose TTL is exactly `old` the TTL `new`, expiring `new` from
    /// `now`; a zero `new` removes them. Returns how many entries changed.
    pub(crate) fn update(&mut self, old: Duration, new: Duration, now: Instant) -> usize {
        let before = self.entries.len();
        if new.is_zero() {
            self.entries.retain(|e| e.ttl != old);
            return before.saturating_sub(self.entries.len());
        }
        let expires = expiry(now, new);
        let mut changed = 0usize;
        for entry in self.entries.iter_mut().filter(|e| e.ttl == old) {
            entry.ttl = new;
            entry.expires = expires;
            changed = changed.saturating_add(1);
        }
        changed
    }

    /// Stores a new entry, making room when the book is full: the entry closest to expiry
    /// gives way if the new one outlives it, otherwise the new one is dropped. So permanent
    /// and connected addresses are never pushed out by shorter-lived ones, and among equal
    /// TTLs the freshest addresses win.
    fn insert(&mut self, entry: AddrEntry, max: usize) {
        if self.entries.len() < max {
            self.entries.push(entry);
            return;
        }
        let soonest = self
            .entries
            .iter_mut()
            .reduce(|soonest, e| {
                if outlives(soonest.expires, e.expires) {
                    e
                } else {
                    soonest
                }
            })
            .filter(|soonest| outlives(entry.expires, soonest.expires));
        match soonest {
            Some(slot) => {
                tracing::trace!(dropped = %slot.addr, added = %entry.addr, "address book full: replaced the address closest to expiry");
                *slot = entry;
            }
            None => {
                tracing::trace!(addr = %entry.addr, "address book full: new address dropped");
            }
        }
    }

    /// Drops the expired entries; returns how many.
    pub(crate) fn remove_expired(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| !e.is_expired(now));
        before.saturating_sub(self.entries.len())
    }

    /// The unexpired addresses, in insertion order.
    pub(crate) fn addrs(&self, now: Instant) -> Vec<Multiaddr> {
        self.entries
            .iter()
            .filter(|e| !e.is_expired(now))
            .map(|e| e.addr.clone())
            .collect()
    }

    /// Whether any address is unexpired.
    pub(crate) fn has_unexpired(&self, now: Instant) -> bool {
        self.entries.iter().any(|e| !e.is_expired(now))
    }

    /// Whether any address has [`CONNECTED_ADDR_TTL`]: we are connected to the peer.
    pub(crate) fn is_connected(&self) -> bool {
        self.entries.iter().any(|e| e.ttl == CONNECTED_ADDR_TTL)
    }

    /// Whether any address never expires ([`CONNECTED_ADDR_TTL`], [`PERMANENT_ADDR_TTL`] or a
    /// TTL too long to represent): such a peer is among the last to be evicted.
    pub(crate) fn has_lasting(&self) -> bool {
        self.entries.iter().any(|e| e.expires.is_none())
    }

    /// Removes every address.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// The number of entries, expired ones not yet collected included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The stored TTL of `addr`, if stored (tests).
    #[cfg(test)]
    pub(crate) fn ttl_of(&self, addr: &Multiaddr) -> Option<Duration> {
        self.entries.iter().find(|e| &e.addr == addr).map(|e| e.ttl)
    }

    /// Whether two entries share an address (tests: must never happen).
    #[cfg(test)]
    pub(crate) fn has_duplicates(&self) -> bool {
        self.entries
            .iter()
            .enumerate()
            .any(|(i, a)| self.entries.iter().skip(i + 1).any(|b| b.addr == a.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{n}").parse().unwrap()
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn connected_is_just_below_permanent() {
        assert!(CONNECTED_ADDR_TTL < PERMANENT_ADDR_TTL);
        assert!(RECENTLY_CONNECTED_ADDR_TTL > TEMP_ADDR_TTL);
        let now = Instant::now();
        assert_eq!(expiry(now, PERMANENT_ADDR_TTL), None);
        assert_eq!(expiry(now, CONNECTED_ADDR_TTL), None);
        assert!(expiry(now, TEMP_ADDR_TTL).is_some());
    }

    #[test]
    fn outlives_orders_never_last() {
        let t = Instant::now();
        let later = t + MIN;
        assert!(outlives(None, Some(t)));
        assert!(!outlives(Some(t), None));
        assert!(!outlives(None, None));
        assert!(outlives(Some(later), Some(t)));
        assert!(!outlives(Some(t), Some(t)));
    }

    #[test]
    fn add_extends_never_shortens() {
        let t0 = Instant::now();
        let mut book = AddrBook::default();
        book.add(addr(1), 10 * MIN, t0, 8);
        // A shorter TTL later does not shorten the 10-minute expiry.
        book.add(addr(1), 2 * MIN, t0 + MIN, 8);
        assert_eq!(book.ttl_of(&addr(1)), Some(10 * MIN));
        assert_eq!(book.addrs(t0 + 9 * MIN), vec![addr(1)]);
        assert!(book.addrs(t0 + 10 * MIN).is_empty());
        // A longer one extends it.
        let mut book = AddrBook::default();
        book.add(addr(1), 2 * MIN, t0, 8);
        book.add(addr(1), 10 * MIN, t0 + MIN, 8);
        assert_eq!(book.addrs(t0 + 10 * MIN), vec![addr(1)]);
        assert!(book.addrs(t0 + 11 * MIN).is_empty());
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn add_keeps_the_larger_ttl_and_the_later_expiry_separately() {
        // go-libp2p's rule: ttl = max(ttl), expires = max(expires).
        let t0 = Instant::now();
        let mut book = AddrBook::default();
        book.add(addr(1), 10 * MIN, t0, 8);
        book.add(addr(1), 2 * MIN, t0 + 9 * MIN, 8);
        assert_eq!(book.ttl_of(&addr(1)), Some(10 * MIN));
        assert_eq!(book.addrs(t0 + 10 * MIN + MIN / 2), vec![addr(1)]);
        assert!(book.addrs(t0 + 11 * MIN).is_empty());
    }

    #[test]
    fn add_with_zero_ttl_does_nothing() {
        let mut book = AddrBook::default();
        book.add(addr(1), Duration::ZERO, Instant::now(), 8);
        assert!(book.is_empty());
    }

    #[test]
    fn set_overrides_and_zero_removes() {
        let t0 = Instant::now();
        let mut book = AddrBook::default();
        book.add(addr(1), PERMANENT_ADDR_TTL, t0, 8);
        book.add(addr(2), PERMANENT_ADDR_TTL, t0, 8);
        book.set(addr(1), MIN, t0, 8);
        assert_eq!(book.ttl_of(&addr(1)), Some(MIN));
        assert_eq!(book.addrs(t0 + MIN), vec![addr(2)]);
        book.set(addr(2), Duration::ZERO, t0, 8);
        assert!(book.addrs(t0).contains(&addr(1)));
        assert!(!book.addrs(t0).contains(&addr(2)));
        book.set(addr(3), MIN, t0, 8);
        assert_eq!(book.addrs(t0), vec![addr(1), addr(3)]);
    }

    #[test]
    fn update_moves_only_matching_ttls() {
        let t0 = Instant::now();
        let mut book = AddrBook::default();
        book.add(addr(1), CONNECTED_ADDR_TTL, t0, 8);
        book.add(addr(2), PERMANENT_ADDR_TTL, t0, 8);
        book.add(addr(3), TEMP_ADDR_TTL, t0, 8);
        assert!(book.is_connected());
        let changed = book.update(CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL, t0);
        assert_eq!(changed, 1);
        assert!(!book.is_connected());
        assert_eq!(book.ttl_of(&addr(1)), Some(RECENTLY_CONNECTED_ADDR_TTL));
        assert_eq!(book.ttl_of(&addr(2)), Some(PERMANENT_ADDR_TTL));
        let later = t0 + RECENTLY_CONNECTED_ADDR_TTL;
        assert_eq!(book.addrs(later), vec![addr(2)]);
        assert_eq!(book.remove_expired(later), 2);
        assert_eq!(book.update(PERMANENT_ADDR_TTL, Duration::ZERO, later), 1);
        assert!(book.is_empty());
    }

    #[test]
    fn full_book_replaces_the_soonest_expiring_if_outlived() {
        let t0 = Instant::now();
        let mut book = AddrBook::default();
        book.add(addr(1), CONNECTED_ADDR_TTL, t0, 3);
        book.add(addr(2), TEMP_ADDR_TTL, t0, 3);
        book.add(addr(3), RECENTLY_CONNECTED_ADDR_TTL, t0, 3);
        // Outlives the temp address: replaces it.
        book.add(addr(4), RECENTLY_CONNECTED_ADDR_TTL, t0 + MIN, 3);
        assert_eq!(book.addrs(t0 + MIN), vec![addr(1), addr(4), addr(3)]);
        // Expires before all of them: dropped.
        book.add(addr(5), TEMP_ADDR_TTL, t0 + MIN, 3);
        assert_eq!(book.len(), 3);
        assert!(!book.addrs(t0 + MIN).contains(&addr(5)));
        // The connected address is never pushed out, even by a permanent one, as long as
        // something expiring exists to give way; with only never-expiring entries, drop.
        book.set(addr(3), PERMANENT_ADDR_TTL, t0, 3);
        book.set(addr(4), PERMANENT_ADDR_TTL, t0, 3);
        book.add(addr(6), PERMANENT_ADDR_TTL, t0, 3);
        assert_eq!(book.addrs(t0), vec![addr(1), addr(4), addr(3)]);
        assert!(!book.has_duplicates());
    }

    #[test]
    fn zero_cap_stores_nothing() {
        let mut book = AddrBook::default();
        book.add(addr(1), PERMANENT_ADDR_TTL, Instant::now(), 0);
        book.set(addr(1), PERMANENT_ADDR_TTL, Instant::now(), 0);
        assert!(book.is_empty());
    }

    #[test]
    fn normalize_strips_own_suffix_and_refuses_others() {
        let me = PeerId::random();
        let other = PeerId::random();
        let base = addr(7);
        let own = base.clone().with(Protocol::P2p(me));
        assert_eq!(normalize(&me, own, 512).unwrap(), base);
        assert_eq!(normalize(&me, base.clone(), 512).unwrap(), base);

        let foreign = base.clone().with(Protocol::P2p(other));
        match normalize(&me, foreign.clone(), 512) {
            Err(PeerstoreError::AddrPeerMismatch {
                peer,
                addr,
                addr_peer,
            }) => {
                assert_eq!(*peer, me);
                assert_eq!(addr, foreign);
                assert_eq!(*addr_peer, other);
            }
            other => panic!("unexpected {other:?}"),
        }

        let only_peer = Multiaddr::empty().with(Protocol::P2p(me));
        assert!(matches!(
            normalize(&me, only_peer, 512),
            Err(PeerstoreError::EmptyAddr { .. })
        ));
        assert!(matches!(
            normalize(&me, Multiaddr::empty(), 512),
            Err(PeerstoreError::EmptyAddr { .. })
        ));
        assert!(matches!(
            normalize(&me, base.clone(), 4),
            Err(PeerstoreError::AddrTooLong { max: 4, .. })
        ));
    }

    #[test]
    fn normalize_keeps_a_relay_id_in_the_middle() {
        let me = PeerId::random();
        let relay = PeerId::random();
        let circuit: Multiaddr = format!("/ip4/1.2.3.4/tcp/1/p2p/{relay}/p2p-circuit")
            .parse()
            .unwrap();
        assert_eq!(normalize(&me, circuit.clone(), 512).unwrap(), circuit);
        let with_me = circuit.clone().with(Protocol::P2p(me));
        assert_eq!(normalize(&me, with_me, 512).unwrap(), circuit);
    }
}
