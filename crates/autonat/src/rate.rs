//! The per-minute request window both servers (v2 and v1) count their requests in.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use lp2p_core::PeerId;

/// The rate window of the servers' limits: requests per minute.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// The requests of the last [`WINDOW`], in total and per client.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    recent: VecDeque<(Instant, PeerId)>,
    per_peer: HashMap<PeerId, usize>,
}

impl RateWindow {
    /// Forgets the requests older than [`WINDOW`] at `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(at, peer)) = self.recent.front() {
            if now.saturating_duration_since(at) < WINDOW {
                break;
            }
            self.recent.pop_front();
            if let Some(n) = self.per_peer.get_mut(&peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_peer.remove(&peer);
                }
            }
        }
    }

    /// Requests in the window, from everyone.
    pub(crate) fn total(&self) -> usize {
        self.recent.len()
    }

    /// Requests in the window from `peer`.
    pub(crate) fn of(&self, peer: &PeerId) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }

    /// Counts a request from `peer` at `now`.
    pub(crate) fn count(&mut self, peer: PeerId, now: Instant) {
        self.recent.push_back((now, peer));
        *self.per_peer.entry(peer).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_leave_the_window_after_a_minute() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        w.count(a, t0);
        w.count(a, t0 + Duration::from_secs(30));
        w.count(b, t0 + Duration::from_secs(30));
        assert_eq!((w.total(), w.of(&a), w.of(&b)), (3, 2, 1));
        w.expire(t0 + WINDOW);
        assert_eq!((w.total(), w.of(&a), w.of(&b)), (2, 1, 1));
        w.expire(t0 + Duration::from_secs(90));
        assert_eq!((w.total(), w.of(&a), w.of(&b)), (0, 0, 0));
        assert!(w.per_peer.is_empty());
    }
}
