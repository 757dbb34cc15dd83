//! How many streams a remote may hold open towards us: a limit that starts small and
//! doubles while the remote uses it, up to the configured maximum (D61).
//!
//! quinn-proto keeps a table entry for every stream the remote may open, from the moment it
//! may open it. A limit of 512 from the start cost each connection about 37 KiB of memory
//! and 40 µs of CPU per side at set-up (measured: `lp2p-node hold` and `conn-bench`), for
//! streams most connections never open. Growing the limit with use keeps the maximum for
//! the connections that need it.

/// Streams a remote may hold open on a new connection. A libp2p connection usually holds
/// a handful (identify, ping, pubsub, a few requests); 64 leaves room for bursts of
/// requests, and a remote that holds half of it open gets twice as much at once, before it
/// can run out, up to [`QuicConfig::get_max_concurrent_streams`](crate::QuicConfig::get_max_concurrent_streams).
pub const INITIAL_CONCURRENT_STREAMS: u32 = 64;

/// The remote's stream limit on one connection, grown from
/// [`INITIAL_CONCURRENT_STREAMS`] towards the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamCredit {
    limit: u32,
    max: u32,
}

impl StreamCredit {
    /// The credit of a new connection whose limit may grow to `max`: the limit it started
    /// with is the smaller of the two.
    pub(crate) fn new(max: u32) -> StreamCredit {
        StreamCredit {
            limit: initial_limit(max),
            max,
        }
    }

    /// The limit now.
    #[cfg(test)]
    pub(crate) fn limit(self) -> u32 {
        self.limit
    }

    /// With `open` streams of the remote open, the new limit when it grows: doubled (capped
    /// at the maximum) once the remote holds half of the limit or more.
    pub(crate) fn on_open_streams(&mut self, open: u64) -> Option<u32> {
        if self.limit >= self.max || open.saturating_mul(2) < u64::from(self.limit) {
            return None;
        }
        self.limit = self.limit.saturating_mul(2).min(self.max);
        Some(self.limit)
    }
}

/// The stream limit a connection starts with when it may grow to `max`.
pub(crate) fn initial_limit(max: u32) -> u32 {
    max.min(INITIAL_CONCURRENT_STREAMS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_starts_small_and_doubles_at_half_use_up_to_the_maximum() {
        let mut credit = StreamCredit::new(512);
        assert_eq!(credit.limit(), 64);
        assert_eq!(credit.on_open_streams(0), None);
        assert_eq!(credit.on_open_streams(31), None);
        assert_eq!(credit.on_open_streams(32), Some(128));
        assert_eq!(credit.on_open_streams(63), None);
        assert_eq!(credit.on_open_streams(64), Some(256));
        assert_eq!(credit.on_open_streams(200), Some(512));
        assert_eq!(credit.on_open_streams(512), None);
        assert_eq!(credit.limit(), 512);
    }

    #[test]
    fn a_maximum_below_the_initial_limit_is_the_limit_from_the_start() {
        let mut credit = StreamCredit::new(10);
        assert_eq!(credit.limit(), 10);
        assert_eq!(credit.on_open_streams(10), None);
        let mut none = StreamCredit::new(0);
        assert_eq!(none.on_open_streams(0), None);
        assert_eq!(none.limit(), 0);
    }

    #[test]
    fn a_maximum_that_is_not_a_power_of_two_is_reached_exactly() {
        let mut credit = StreamCredit::new(100);
        assert_eq!(credit.on_open_streams(40), Some(100));
        assert_eq!(credit.on_open_streams(100), None);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let mut credit = StreamCredit::new(u32::MAX);
        while credit.on_open_streams(u64::MAX).is_some() {}
        assert_eq!(credit.limit(), u32::MAX);
    }
}
