//! The connection receive window: small at first, grown while a connection's traffic is
//! held back by it, and every growth reserved from the host's memory budget first.
//!
//! A QUIC remote may send as much as the connection receive window before we read a byte,
//! so that window is memory the host commits to the connection. The handshake grants
//! [`INITIAL_RECEIVE_WINDOW`], before the remote is known (nothing can be reserved for a
//! peer yet); it is not reserved (quic-go in go-libp2p does the same, by our reading of
//! it), and the connection limits bound it in total. Beyond it the window grows by doubling, up to the
//! configured connection window, when the remote filled half of it within an epoch of a
//! few round trips (the window, not the path, was the limit), and only by what the memory
//! budget grants. Connections that never carry bulk data (pings, identify, gossip) keep
//! the initial window and reserve nothing.
//!
//! [`WindowGrowth`] is the rule, without I/O: the driver feeds it the bytes received so far,
//! the time and the RTT, and applies the windows it returns.

use std::time::{Duration, Instant};

use lp2p_core::memory::{MemoryAccount, MemoryDenied};

/// The connection receive window granted in the handshake, before the remote is known and
/// so without a reservation. As a yamux stream's initial window, 256 KiB: at most
/// 512 MiB over the swarm's default 1,024 + 1,024 connections. A connection whose traffic
/// needs more grows its window (reserved) within a few round trips.
pub const INITIAL_RECEIVE_WINDOW: u32 = 256 * 1024;

/// The shortest epoch: the window grows when half of it arrived within
/// `max(4 × RTT, MIN_EPOCH)`. On loopback the RTT is microseconds, and four of them would
/// ask for gigabytes per second before growing; 10 ms lets a bulk transfer (12.8 MB/s and
/// up for the initial window) grow at once while a busy gossip link (a few MB/s) does not.
pub const MIN_EPOCH: Duration = Duration::from_millis(10);

/// What [`WindowGrowth::on_progress`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Growth {
    /// The window stays.
    Unchanged,
    /// The window grew to this many bytes; the growth is reserved.
    Grown(u32),
    /// The window should have grown, and the memory budget refused.
    Refused(MemoryDenied),
}

/// The growth state of one connection's receive window, with the memory reserved for what
/// it grew beyond [`INITIAL_RECEIVE_WINDOW`] (returned when this is dropped).
#[derive(Debug)]
pub(crate) struct WindowGrowth {
    memory: Box<dyn MemoryAccount>,
    window: u32,
    max: u32,
    epoch_start: Instant,
    epoch_received: u64,
}

impl WindowGrowth {
    /// Starts at `initial` bytes (reserving nothing), growing up to `max`; `received` is the
    /// connection's byte count so far.
    pub(crate) fn new(
        memory: Box<dyn MemoryAccount>,
        initial: u32,
        max: u32,
        now: Instant,
        received: u64,
    ) -> WindowGrowth {
        WindowGrowth {
            memory,
            window: initial,
            max,
            epoch_start: now,
            epoch_received: received,
        }
    }

    /// The current window.
    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    /// The memory reserved for the growth so far.
    pub(crate) fn reserved(&self) -> usize {
        self.memory.reserved()
    }

    /// Whether the window reached its maximum (nothing left to decide).
    pub(crate) fn is_full(&self) -> bool {
        self.window >= self.max
    }

    /// `received` bytes arrived on the connection so far, at `now`, with `rtt` the current
    /// estimate: grows the window when half of it arrived within this epoch.
    pub(crate) fn on_progress(&mut self, now: Instant, received: u64, rtt: Duration) -> Growth {
        if self.is_full() {
            return Growth::Unchanged;
        }
        let epoch = rtt.saturating_mul(4).max(MIN_EPOCH);
        let elapsed = now.saturating_duration_since(self.epoch_start);
        let used = received.saturating_sub(self.epoch_received);
        let half_used = used.saturating_mul(2) >= u64::from(self.window);
        if !half_used {
            if elapsed > epoch {
                self.restart(now, received);
            }
            return Growth::Unchanged;
        }
        self.restart(now, received);
        if elapsed > epoch {
            // Half the window took longer than an epoch: the path was the limit.
            return Growth::Unchanged;
        }
        let target = self.window.saturating_mul(2).min(self.max);
        let more = target.saturating_sub(self.window);
        match self.memory.try_grow(more as usize) {
            Ok(()) => {
                self.window = target;
                Growth::Grown(target)
            }
            Err(denied) => Growth::Refused(denied),
        }
    }

    fn restart(&mut self, now: Instant, received: u64) {
        self.epoch_start = now;
        self.epoch_received = received;
    }
}

#[cfg(test)]
mod tests {
    use lp2p_core::memory::SharedLimit;

    use super::*;

    const KIB: u32 = 1024;
    const MIB: u32 = 1024 * KIB;
    const RTT: Duration = Duration::from_millis(20);

    fn growth(limit: &SharedLimit, now: Instant) -> WindowGrowth {
        WindowGrowth::new(
            Box::new(limit.account()),
            INITIAL_RECEIVE_WINDOW,
            16 * MIB,
            now,
            0,
        )
    }

    #[test]
    fn a_window_filled_fast_doubles_up_to_the_maximum_and_is_reserved() {
        let limit = SharedLimit::new(64 * MIB as usize);
        let t0 = Instant::now();
        let mut g = growth(&limit, t0);
        let (mut now, mut received) = (t0, 0u64);
        let mut windows = Vec::new();
        while !g.is_full() {
            // Each window's worth arrives within one RTT (well inside the 80 ms epoch).
            now += RTT;
            received += u64::from(g.window());
            if let Growth::Grown(w) = g.on_progress(now, received, RTT) {
                windows.push(w / KIB);
            }
        }
        assert_eq!(windows, [512, 1024, 2048, 4096, 8192, 16384]);
        assert_eq!(g.reserved(), (16 * MIB - INITIAL_RECEIVE_WINDOW) as usize);
        assert_eq!(limit.used(), g.reserved());
        assert_eq!(
            g.on_progress(now + RTT, received * 2, RTT),
            Growth::Unchanged
        );
        drop(g);
        assert_eq!(
            limit.used(),
            0,
            "the reservation is returned with the connection"
        );
    }

    #[test]
    fn slow_traffic_never_grows_the_window() {
        let limit = SharedLimit::new(64 * MIB as usize);
        let t0 = Instant::now();
        let mut g = growth(&limit, t0);
        // 64 KiB every 100 ms (640 KB/s, a busy gossip link): a quarter of the window per
        // epoch of 80 ms at most.
        for i in 1..=200u32 {
            let now = t0 + Duration::from_millis(100) * i;
            let outcome = g.on_progress(now, u64::from(i * 64 * KIB), RTT);
            assert_eq!(outcome, Growth::Unchanged, "after {i} steps");
        }
        assert_eq!(g.window(), INITIAL_RECEIVE_WINDOW);
        assert_eq!(limit.used(), 0);
    }

    #[test]
    fn half_a_window_over_more_than_an_epoch_does_not_grow_it() {
        let limit = SharedLimit::new(64 * MIB as usize);
        let t0 = Instant::now();
        let mut g = growth(&limit, t0);
        // 80 ms epoch (4 x 20 ms); the half window arrives after 100 ms.
        let late = t0 + Duration::from_millis(100);
        let half = u64::from(INITIAL_RECEIVE_WINDOW / 2);
        assert_eq!(g.on_progress(late, half, RTT), Growth::Unchanged);
        // The epoch restarted there: the next half window within it grows the window.
        let soon = late + Duration::from_millis(30);
        assert_eq!(
            g.on_progress(soon, 2 * half, RTT),
            Growth::Grown(2 * INITIAL_RECEIVE_WINDOW)
        );
    }

    #[test]
    fn loopback_round_trips_use_the_minimum_epoch() {
        let limit = SharedLimit::new(64 * MIB as usize);
        let t0 = Instant::now();
        let mut g = growth(&limit, t0);
        let rtt = Duration::from_micros(50);
        // Half the window in 5 ms: 20 x the RTT, but within MIN_EPOCH.
        let outcome = g.on_progress(
            t0 + Duration::from_millis(5),
            u64::from(INITIAL_RECEIVE_WINDOW / 2),
            rtt,
        );
        assert_eq!(outcome, Growth::Grown(2 * INITIAL_RECEIVE_WINDOW));
    }

    #[test]
    fn a_refused_growth_keeps_the_window_and_says_why_then_grows_when_memory_frees() {
        let limit = SharedLimit::new(MIB as usize);
        let hog = {
            let mut hog = limit.account();
            hog.try_grow(MIB as usize).unwrap();
            hog
        };
        let t0 = Instant::now();
        let mut g = growth(&limit, t0);
        let fill = u64::from(INITIAL_RECEIVE_WINDOW);
        let Growth::Refused(denied) = g.on_progress(t0 + RTT, fill, RTT) else {
            panic!("the budget is full")
        };
        assert_eq!(denied.requested, INITIAL_RECEIVE_WINDOW as usize);
        assert_eq!(denied.used, MIB as usize);
        assert_eq!(g.window(), INITIAL_RECEIVE_WINDOW);
        assert_eq!(g.reserved(), 0);
        drop(hog);
        assert_eq!(
            g.on_progress(t0 + RTT * 2, 2 * fill, RTT),
            Growth::Grown(2 * INITIAL_RECEIVE_WINDOW)
        );
        assert_eq!(limit.used(), INITIAL_RECEIVE_WINDOW as usize);
    }

    #[test]
    fn a_maximum_below_the_initial_window_never_grows() {
        let limit = SharedLimit::new(64 * MIB as usize);
        let t0 = Instant::now();
        let mut g = WindowGrowth::new(Box::new(limit.account()), 128 * KIB, 128 * KIB, t0, 0);
        assert!(g.is_full());
        assert_eq!(g.on_progress(t0 + RTT, 1 << 30, RTT), Growth::Unchanged);
    }
}
