//! The connection table: which connections exist, to whom, in which direction; the counts
//! the limits are checked against; and each connection's idle-policy state.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use lp2p_core::{Multiaddr, PeerId};

use crate::{ConnectionId, Direction};

/// The idle policy's view of one connection.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Idle {
    /// When to ask the shell for the connection's stream count next.
    pub(super) next_check: Option<Instant>,
    /// Since when the connection has had no stream (as far as the last report knows).
    pub(super) since: Option<Instant>,
    /// Streams ever opened on it, at the last report (an open-and-closed stream between two
    /// reports still counts as activity).
    pub(super) opened: u64,
    /// A check was asked for and not answered yet.
    pub(super) asked: bool,
    /// The connection is being closed; no more checks.
    pub(super) closing: bool,
}

/// One established connection.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) peer: PeerId,
    pub(super) direction: Direction,
    pub(super) remote_addr: Multiaddr,
    pub(super) limited: bool,
    /// The address the per-IP limits count this (inbound) connection under.
    pub(super) ip: Option<std::net::IpAddr>,
    pub(super) idle: Idle,
}

/// Every established connection, by id and by peer, with the direction counts.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) conns: BTreeMap<ConnectionId, Entry>,
    by_peer: HashMap<PeerId, Vec<ConnectionId>>,
    pub(super) inbound: usize,
    pub(super) outbound: usize,
}

impl Table {
    pub(super) fn insert(&mut self, id: ConnectionId, entry: Entry) -> usize {
        match entry.direction {
            Direction::Inbound => self.inbound = self.inbound.saturating_add(1),
            Direction::Outbound => self.outbound = self.outbound.saturating_add(1),
        }
        let list = self.by_peer.entry(entry.peer).or_default();
        list.push(id);
        let n = list.len();
        self.conns.insert(id, entry);
        n
    }

    /// Removes a connection; its entry and the connections to its peer that remain.
    pub(super) fn remove(&mut self, id: ConnectionId) -> Option<(Entry, usize)> {
        let entry = self.conns.remove(&id)?;
        match entry.direction {
            Direction::Inbound => self.inbound = self.inbound.saturating_sub(1),
            Direction::Outbound => self.outbound = self.outbound.saturating_sub(1),
        }
        let remaining = match self.by_peer.get_mut(&entry.peer) {
            Some(list) => {
                list.retain(|c| *c != id);
                let n = list.len();
                if n == 0 {
                    self.by_peer.remove(&entry.peer);
                }
                n
            }
            None => 0,
        };
        Some((entry, remaining))
    }

    pub(super) fn of_peer(&self, peer: &PeerId) -> &[ConnectionId] {
        self.by_peer.get(peer).map_or(&[], Vec::as_slice)
    }

    /// The most recent connection to `peer` that is not closing, preferring direct ones.
    pub(super) fn best_for(&self, peer: &PeerId) -> Option<ConnectionId> {
        let usable = |id: &&ConnectionId| self.conns.get(id).is_some_and(|e| !e.idle.closing);
        let list = self.of_peer(peer);
        list.iter()
            .rev()
            .filter(usable)
            .find(|id| self.conns.get(id).is_some_and(|e| !e.limited))
            .or_else(|| list.iter().rev().find(usable))
            .copied()
    }

    pub(super) fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.by_peer.keys()
    }
}
