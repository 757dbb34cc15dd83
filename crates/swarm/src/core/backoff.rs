//! Per-address dial backoff and the memory of addresses that recently worked.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lp2p_core::Multiaddr;

use crate::config::{MAX_DIAL_BACKOFF, MAX_RECENT_SUCCESSES, RECENT_SUCCESS_WINDOW};

/// An address in dial backoff: not dialed again before `until`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    until: Instant,
    failures: u32,
}

/// Which addresses are in backoff, and which recently led to a connection.
#[derive(Debug, Default)]
pub(crate) struct BackoffBook {
    entries: HashMap<Multiaddr, Entry>,
    recent: HashMap<Multiaddr, Instant>,
}

impl BackoffBook {
    /// How long `addr` stays in backoff, if it is.
    pub(crate) fn remaining(&self, addr: &Multiaddr, now: Instant) -> Option<Duration> {
        self.entries
            .get(addr)
            .and_then(|e| e.until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Records a failed attempt: the first failure backs the address off for `base`, each
    /// further consecutive one doubles it, up to [`MAX_DIAL_BACKOFF`]. A zero `base` turns
    /// backoff off.
    pub(crate) fn record_failure(&mut self, addr: &Multiaddr, base: Duration, now: Instant) {
        if base.is_zero() {
            return;
        }
        let entry = self.entries.entry(addr.clone()).or_insert(Entry {
            until: now,
            failures: 0,
        });
        entry.failures = entry.failures.saturating_add(1);
        let factor = 1u32 << entry.failures.saturating_sub(1).min(16);
        entry.until = now
            .checked_add(base.saturating_mul(factor).min(MAX_DIAL_BACKOFF))
            .unwrap_or(now);
    }

    /// Records a successful connection through `addr`: out of backoff, ranked first for a
    /// while.
    pub(crate) fn record_success(&mut self, addr: &Multiaddr, now: Instant) {
        self.entries.remove(addr);
        if self.recent.len() >= MAX_RECENT_SUCCESSES && !self.recent.contains_key(addr) {
            // Forget the oldest; the map is small, so a scan is fine.
            if let Some(oldest) = self
                .recent
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(a, _)| a.clone())
            {
                self.recent.remove(&oldest);
            }
        }
        self.recent.insert(addr.clone(), now);
    }

    /// Whether `addr` led to a connection within [`RECENT_SUCCESS_WINDOW`].
    pub(crate) fn is_recent(&self, addr: &Multiaddr, now: Instant) -> bool {
        self.recent
            .get(addr)
            .is_some_and(|at| now.saturating_duration_since(*at) < RECENT_SUCCESS_WINDOW)
    }

    /// Takes `addr` out of backoff, or every address with `None`.
    pub(crate) fn clear(&mut self, addr: Option<&Multiaddr>) {
        match addr {
            Some(a) => {
                self.entries.remove(a);
            }
            None => self.entries.clear(),
        }
    }

    /// Forgets expired entries.
    pub(crate) fn collect_garbage(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.until > now);
        self.recent
            .retain(|_, at| now.saturating_duration_since(*at) < RECENT_SUCCESS_WINDOW);
    }
}
