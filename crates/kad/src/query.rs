//! The iterative lookup (spec "Peer routing"): candidates ordered by distance to the target,
//! at most `alpha` requests in flight, new candidates merged from each answer, done when the
//! `k` closest candidates seen have all answered (or nobody is left to ask).
//!
//! With `paths > 1` the lookup runs disjoint paths (S/Kademlia): the seeds are dealt out to
//! the paths, a candidate belongs to the path that first learned of it, each path keeps its
//! share of `alpha` in flight and terminates on its own candidates; the result is the `k`
//! closest answered peers over all paths. A peer that lies on one path cannot steer the
//! others.

use std::collections::{BTreeMap, HashMap};

use lp2p_core::{Multiaddr, PeerId};

use crate::key::{Distance, Key};
use crate::wire::PeerInfo;

/// Candidates a lookup keeps at most; the farthest not-yet-contacted ones go first. A
/// lookup needs `k` answered peers plus a frontier; hostile answers cannot grow it beyond.
pub const MAX_CANDIDATES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotContacted,
    Waiting,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    state: State,
    /// 1 for seeds, parent's depth + 1 for peers learned from an answer.
    depth: u32,
    path: usize,
}

/// One iterative lookup towards a key.
#[derive(Debug, Clone)]
pub struct Lookup {
    target: Key,
    local: PeerId,
    candidates: BTreeMap<Distance, Candidate>,
    /// Where each candidate sits (no hashing to find a known peer again).
    by_peer: HashMap<PeerId, Distance>,
    k: usize,
    per_path: usize,
    in_flight: Vec<usize>,
    requests: u32,
    successes: u32,
    failures: u32,
}

impl Lookup {
    /// A lookup for `target` seeded with `seeds` (the closest peers we know), `alpha`
    /// requests in flight over `paths` disjoint paths.
    pub fn new(
        target: Key,
        local: PeerId,
        seeds: Vec<PeerInfo>,
        k: usize,
        alpha: usize,
        paths: usize,
    ) -> Lookup {
        let paths = paths.max(1);
        let mut lookup = Lookup {
            target,
            local,
            candidates: BTreeMap::new(),
            by_peer: HashMap::new(),
            k: k.max(1),
            per_path: alpha.max(1).div_ceil(paths).max(1),
            in_flight: vec![0; paths],
            requests: 0,
            successes: 0,
            failures: 0,
        };
        for (i, seed) in seeds.into_iter().enumerate() {
            lookup.add(seed, 1, i % paths);
        }
        lookup
    }

    /// The target.
    pub fn target(&self) -> &Key {
        &self.target
    }

    fn add(&mut self, info: PeerInfo, depth: u32, path: usize) {
        if info.peer == self.local {
            return;
        }
        let distance = match self.by_peer.get(&info.peer) {
            Some(d) => *d,
            None => Key::from_peer(&info.peer).distance(&self.target),
        };
        if let Some(existing) = self.candidates.get_mut(&distance) {
            // Known already: keep its path; learn addresses we lacked.
            if existing.addrs.is_empty() {
                existing.addrs = info.addrs;
            }
            existing.depth = existing.depth.min(depth);
            return;
        }
        self.by_peer.insert(info.peer, distance);
        self.candidates.insert(
            distance,
            Candidate {
                peer: info.peer,
                addrs: info.addrs,
                state: State::NotContacted,
                depth,
                path,
            },
        );
        if self.candidates.len() > MAX_CANDIDATES {
            let farthest_idle = self
                .candidates
                .iter()
                .rev()
                .find(|(_, c)| c.state == State::NotContacted)
                .map(|(d, _)| *d);
            if let Some(gone) = farthest_idle.and_then(|d| self.candidates.remove(&d)) {
                self.by_peer.remove(&gone.peer);
            }
        }
    }

    /// The peers to ask next (marked as asked): per path, the closest not yet contacted,
    /// while the path has room in flight and is not finished.
    pub fn next_peers(&mut self, budget: usize) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut out = Vec::new();
        for path in 0..self.in_flight.len() {
            while out.len() < budget
                && self.in_flight.get(path).copied().unwrap_or(0) < self.per_path
                && !self.path_finished(path)
            {
                let Some(candidate) = self
                    .candidates
                    .values_mut()
                    .find(|c| c.path == path && c.state == State::NotContacted)
                else {
                    break;
                };
                candidate.state = State::Waiting;
                out.push((candidate.peer, candidate.addrs.clone()));
                if let Some(n) = self.in_flight.get_mut(path) {
                    *n += 1;
                }
                self.requests = self.requests.saturating_add(1);
            }
        }
        out
    }

    fn candidate_mut(&mut self, peer: &PeerId) -> Option<&mut Candidate> {
        let distance = self.by_peer.get(peer)?;
        self.candidates
            .get_mut(distance)
            .filter(|c| c.peer == *peer)
    }

    /// `peer` answered with `closer` peers. Returns its depth (the lookup round it belongs
    /// to), or `None` if it was not being waited for.
    pub fn on_success(&mut self, peer: &PeerId, closer: Vec<PeerInfo>) -> Option<u32> {
        let candidate = self.candidate_mut(peer)?;
        if candidate.state != State::Waiting {
            return None;
        }
        candidate.state = State::Succeeded;
        let (depth, path) = (candidate.depth, candidate.path);
        if let Some(n) = self.in_flight.get_mut(path) {
            *n = n.saturating_sub(1);
        }
        self.successes = self.successes.saturating_add(1);
        for info in closer {
            self.add(info, depth.saturating_add(1), path);
        }
        Some(depth)
    }

    /// A request to `peer` failed (error or timeout).
    pub fn on_failure(&mut self, peer: &PeerId) {
        let Some(candidate) = self.candidate_mut(peer) else {
            return;
        };
        if candidate.state != State::Waiting {
            return;
        }
        candidate.state = State::Failed;
        let path = candidate.path;
        if let Some(n) = self.in_flight.get_mut(path) {
            *n = n.saturating_sub(1);
        }
        self.failures = self.failures.saturating_add(1);
    }

    fn path_finished(&self, path: usize) -> bool {
        let mut answered = 0;
        for c in self.candidates.values().filter(|c| c.path == path) {
            match c.state {
                State::Failed => {}
                State::Succeeded => {
                    answered += 1;
                    if answered >= self.k {
                        return true;
                    }
                }
                State::NotContacted | State::Waiting => return false,
            }
        }
        true
    }

    /// Whether every path is done: its `k` closest non-failed candidates answered, or
    /// nobody is left to ask and nothing is in flight.
    pub fn is_finished(&self) -> bool {
        (0..self.in_flight.len()).all(|p| self.path_finished(p))
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().sum()
    }

    /// The `n` closest peers that answered, nearest first.
    pub fn closest_succeeded(&self, n: usize) -> Vec<PeerInfo> {
        self.candidates
            .values()
            .filter(|c| c.state == State::Succeeded)
            .take(n)
            .map(|c| PeerInfo::new(c.peer, c.addrs.clone()))
            .collect()
    }

    /// Whether `peer` is among the `n` closest that answered.
    pub fn is_among_closest(&self, peer: &PeerId, n: usize) -> bool {
        self.candidates
            .values()
            .filter(|c| c.state == State::Succeeded)
            .take(n)
            .any(|c| c.peer == *peer)
    }

    /// The deepest round among the `n` closest that answered.
    pub fn rounds(&self, n: usize) -> u32 {
        self.candidates
            .values()
            .filter(|c| c.state == State::Succeeded)
            .take(n)
            .map(|c| c.depth)
            .max()
            .unwrap_or(0)
    }

    /// Requests sent, answered, failed.
    pub fn counts(&self) -> (u32, u32, u32) {
        (self.requests, self.successes, self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(p: PeerId) -> PeerInfo {
        PeerInfo::new(p, vec!["/ip4/1.1.1.1/tcp/1".parse().unwrap()])
    }

    #[test]
    fn alpha_bounds_in_flight_and_k_closest_end_it() {
        let me = PeerId::random();
        let peers: Vec<PeerId> = (0..30).map(|_| PeerId::random()).collect();
        let mut l = Lookup::new(
            Key::new(b"t"),
            me,
            peers.iter().copied().map(info).collect(),
            3,
            2,
            1,
        );
        let first = l.next_peers(usize::MAX);
        assert_eq!(first.len(), 2, "alpha");
        assert!(l.next_peers(usize::MAX).is_empty());
        // Answers with nothing new; the lookup keeps going until 3 closest answered.
        for (p, _) in &first {
            l.on_success(p, vec![]);
        }
        assert!(!l.is_finished());
        loop {
            let next = l.next_peers(usize::MAX);
            if next.is_empty() {
                break;
            }
            for (p, _) in next {
                l.on_success(&p, vec![]);
            }
        }
        assert!(l.is_finished());
        let got = l.closest_succeeded(3);
        assert_eq!(got.len(), 3);
        // They are the 3 closest of all 30 (every closer one was asked before finishing).
        let mut sorted = peers.clone();
        sorted.sort_by_key(|p| Key::from_peer(p).distance(&Key::new(b"t")));
        assert_eq!(
            got.iter().map(|i| i.peer).collect::<Vec<_>>(),
            sorted[..3].to_vec()
        );
    }

    #[test]
    fn failures_are_skipped_and_exhaustion_finishes() {
        let me = PeerId::random();
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut l = Lookup::new(Key::new(b"t"), me, vec![info(a), info(b)], 20, 10, 1);
        for (p, _) in l.next_peers(usize::MAX) {
            l.on_failure(&p);
        }
        assert!(l.is_finished());
        assert!(l.closest_succeeded(20).is_empty());
        assert_eq!(l.counts(), (2, 0, 2));
    }

    #[test]
    fn depth_counts_rounds_and_we_are_never_a_candidate() {
        let me = PeerId::random();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut l = Lookup::new(Key::new(b"t"), me, vec![info(a)], 20, 10, 1);
        l.next_peers(9);
        assert_eq!(l.on_success(&a, vec![info(b), info(me)]), Some(1));
        l.next_peers(9);
        assert_eq!(l.on_success(&b, vec![info(c)]), Some(2));
        l.next_peers(9);
        assert_eq!(l.on_success(&c, vec![]), Some(3));
        assert_eq!(l.rounds(20), 3);
        assert!(l.is_finished());
        // A late or unsolicited answer changes nothing.
        assert_eq!(l.on_success(&c, vec![]), None);
        assert_eq!(l.on_success(&PeerId::random(), vec![]), None);
    }

    #[test]
    fn candidates_are_bounded() {
        let me = PeerId::random();
        let a = PeerId::random();
        let mut l = Lookup::new(Key::new(b"t"), me, vec![info(a)], 20, 10, 1);
        l.next_peers(9);
        let flood: Vec<PeerInfo> = (0..1000).map(|_| info(PeerId::random())).collect();
        l.on_success(&a, flood);
        assert!(l.candidates.len() <= MAX_CANDIDATES);
        assert_eq!(l.by_peer.len(), l.candidates.len());
    }

    #[test]
    fn disjoint_paths_keep_their_candidates() {
        let me = PeerId::random();
        let seeds: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        let mut l = Lookup::new(
            Key::new(b"t"),
            me,
            seeds.iter().copied().map(info).collect(),
            2,
            4,
            2,
        );
        let asked = l.next_peers(usize::MAX);
        assert_eq!(asked.len(), 4, "two per path");
        // A liar on one path names a peer: it joins that path only.
        let liar = asked[0].0;
        let named = PeerId::random();
        l.on_success(&liar, vec![info(named)]);
        let path_of_liar = l.candidate_mut(&liar).unwrap().path;
        assert_eq!(l.candidate_mut(&named).unwrap().path, path_of_liar);
        // Another path naming it later does not move it.
        let other = asked
            .iter()
            .map(|(p, _)| *p)
            .find(|p| l.candidate_mut(p).unwrap().path != path_of_liar)
            .unwrap();
        l.on_success(&other, vec![info(named)]);
        assert_eq!(l.candidate_mut(&named).unwrap().path, path_of_liar);
    }
}
