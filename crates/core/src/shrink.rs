//! When a buffer that grew for a burst goes back to its initial size.
//!
//! Noise's frame encoder and decoder and the muxer shell's read buffer start small, grow
//! while their connection is busy, and give the memory back once it has gone quiet. They
//! share this one rule, [`ShrinkRule`], so they agree on what "quiet" means.

/// Small uses in a row before a grown buffer returns to its initial size: 64, so the odd
/// short read or write in the middle of a burst keeps the buffer, while a connection that
/// went quiet after a transfer gives the memory back after its next few dozen messages.
pub const SMALL_USES_BEFORE_SHRINK: u32 = 64;

/// Counts a buffer's small uses in a row and says when it may return to its initial size.
///
/// A use (a frame sealed, a read made) is small when it is at most half the initial size.
/// Half the initial size, not of the grown one: during a bulk transfer reads of a few KiB to
/// a few dozen are common, and counting those as small (as a fraction of a grown buffer
/// would) could shrink the buffer in the middle of a transfer, to grow it again read by
/// read.
///
/// ```
/// use lp2p_core::shrink::{SMALL_USES_BEFORE_SHRINK, ShrinkRule};
///
/// let mut rule = ShrinkRule::new(4096);
/// rule.record(64 * 1024); // a large read: the buffer grew to 64 KiB
/// for _ in 0..SMALL_USES_BEFORE_SHRINK {
///     rule.record(100);
/// }
/// assert!(rule.shrink_now(64 * 1024));
/// assert!(!rule.shrink_now(64 * 1024), "the count starts again after a shrink");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ShrinkRule {
    initial: usize,
    small_in_a_row: u32,
}

impl ShrinkRule {
    /// The rule for a buffer that starts at, and returns to, `initial` bytes.
    pub const fn new(initial: usize) -> ShrinkRule {
        ShrinkRule {
            initial,
            small_in_a_row: 0,
        }
    }

    /// Records one use of `used` bytes: a small one extends the run, any other ends it.
    pub fn record(&mut self, used: usize) {
        if used <= self.initial / 2 {
            self.small_in_a_row = self.small_in_a_row.saturating_add(1);
        } else {
            self.small_in_a_row = 0;
        }
    }

    /// Whether a buffer of `len` bytes that holds nothing should return to the initial size
    /// now: it is larger than that, and the last [`SMALL_USES_BEFORE_SHRINK`] uses were all
    /// small. A yes starts the count again, as if the buffer were new.
    pub fn shrink_now(&mut self, len: usize) -> bool {
        if len > self.initial && self.small_in_a_row >= SMALL_USES_BEFORE_SHRINK {
            self.small_in_a_row = 0;
            true
        } else {
            false
        }
    }

    /// Starts the count again, for a buffer resized for another reason (it grew).
    pub fn reset(&mut self) {
        self.small_in_a_row = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grown_buffer_shrinks_after_a_full_run_of_small_uses_only() {
        let mut rule = ShrinkRule::new(2048);
        for _ in 0..SMALL_USES_BEFORE_SHRINK - 1 {
            rule.record(1024);
        }
        assert!(!rule.shrink_now(8192), "one small use short of the run");
        rule.record(1025);
        for _ in 0..SMALL_USES_BEFORE_SHRINK - 1 {
            rule.record(0);
        }
        assert!(
            !rule.shrink_now(8192),
            "a use of more than half the initial size ends the run"
        );
        rule.record(10);
        assert!(
            !rule.shrink_now(2048),
            "never for a buffer at its initial size"
        );
        assert!(rule.shrink_now(8192));
        assert!(!rule.shrink_now(8192), "the count starts again after a yes");
    }

    #[test]
    fn reset_starts_the_count_again() {
        let mut rule = ShrinkRule::new(4096);
        for _ in 0..SMALL_USES_BEFORE_SHRINK {
            rule.record(1);
        }
        rule.reset();
        assert!(!rule.shrink_now(8192));
    }
}
