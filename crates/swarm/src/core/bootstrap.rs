//! Bootstrap addresses: dialed at start, redialed `bootstrap_backoff` after their peer's
//! last connection closes, and with exponential backoff (up to `MAX_BOOTSTRAP_BACKOFF`) after
//! each failed dial.

use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId, addr};

use crate::SwarmConfig;
use crate::config::MAX_BOOTSTRAP_BACKOFF;

#[derive(Debug)]
struct Entry {
    addr: Multiaddr,
    /// Known from a trailing `/p2p/` or from the first connection.
    peer: Option<PeerId>,
    failures: u32,
    redial_at: Option<Instant>,
    dialing: bool,
}

/// Every bootstrap address and its redial schedule.
#[derive(Debug, Default)]
pub(super) struct Bootstrap {
    entries: Vec<Entry>,
    stopped: bool,
}

fn base(config: &SwarmConfig) -> Duration {
    config.bootstrap_backoff.max(Duration::from_millis(10))
}

impl Bootstrap {
    pub(super) fn add(&mut self, addr: Multiaddr, now: Instant) {
        if self.entries.iter().any(|e| e.addr == addr) {
            return;
        }
        self.entries.push(Entry {
            peer: addr::peer_id(&addr),
            addr,
            failures: 0,
            redial_at: Some(now),
            dialing: false,
        });
    }

    pub(super) fn is_bootstrap_peer(&self, peer: &PeerId) -> bool {
        self.entries.iter().any(|e| e.peer.as_ref() == Some(peer))
    }

    /// A connection to `peer` exists: no redial is due while it lasts.
    pub(super) fn connected(&mut self, peer: &PeerId) {
        for e in &mut self.entries {
            if e.peer.as_ref() == Some(peer) && !e.dialing {
                e.redial_at = None;
                e.failures = 0;
            }
        }
    }

    /// The last connection to `peer` closed: redial its bootstrap address soon.
    pub(super) fn disconnected(&mut self, peer: &PeerId, config: &SwarmConfig, now: Instant) {
        if self.stopped {
            return;
        }
        for e in &mut self.entries {
            if e.peer.as_ref() == Some(peer) && !e.dialing {
                e.redial_at = Some(now + base(config));
            }
        }
    }

    /// Addresses due for a redial at `now` (each is then "dialing" until its outcome).
    pub(super) fn due(&mut self, now: Instant) -> Vec<Multiaddr> {
        if self.stopped {
            return Vec::new();
        }
        let mut due = Vec::new();
        for e in &mut self.entries {
            if !e.dialing && e.redial_at.is_some_and(|t| t <= now) {
                e.redial_at = None;
                e.dialing = true;
                due.push(e.addr.clone());
            }
        }
        due
    }

    pub(super) fn next_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        self.entries
            .iter()
            .filter(|e| !e.dialing)
            .filter_map(|e| e.redial_at)
            .min()
    }

    /// A bootstrap dial ended: connected to `peer`, or failed (`None`).
    pub(super) fn dial_finished(
        &mut self,
        addr: &Multiaddr,
        peer: Option<PeerId>,
        config: &SwarmConfig,
        now: Instant,
    ) {
        let stopped = self.stopped;
        let Some(e) = self.entries.iter_mut().find(|e| &e.addr == addr) else {
            return;
        };
        e.dialing = false;
        if let Some(peer) = peer {
            e.peer = Some(peer);
            e.failures = 0;
            e.redial_at = None;
        } else {
            e.failures = e.failures.saturating_add(1);
            let factor = 1u32 << e.failures.saturating_sub(1).min(16);
            let wait = base(config)
                .saturating_mul(factor)
                .min(MAX_BOOTSTRAP_BACKOFF);
            e.redial_at = (!stopped).then(|| now + wait);
        }
    }

    pub(super) fn stop(&mut self) {
        self.stopped = true;
        for e in &mut self.entries {
            e.redial_at = None;
        }
    }
}
