//! When to renew a reservation and how long to wait after a failure, sans-IO.

use std::time::Duration;

/// Renew when this fraction of the reservation's remaining lifetime has passed. Why 3/4:
/// leaves a quarter of the lifetime (15 minutes of the default hour) for retries.
pub const RENEW_AT_NUMERATOR: u64 = 3;
/// See [`RENEW_AT_NUMERATOR`].
pub const RENEW_AT_DENOMINATOR: u64 = 4;
/// Never renew sooner than this after a grant. Why 5 s: a relay that grants absurdly short
/// reservations must not make us hammer it.
pub const MIN_RENEW_DELAY: Duration = Duration::from_secs(5);
/// First retry delay after a failed reservation. Why 1 s: a relay that just restarted is
/// usually back within a second or two.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay. Why 60 s: a relay down for long is retried once a minute, cheap for
/// both sides.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// How long after a grant (at Unix time `unix_now`, expiring at `expire_unix`) to renew it.
pub fn renew_delay(unix_now: u64, expire_unix: u64) -> Duration {
    let remaining = expire_unix.saturating_sub(unix_now);
    let delay = remaining.saturating_mul(RENEW_AT_NUMERATOR) / RENEW_AT_DENOMINATOR;
    Duration::from_secs(delay).max(MIN_RENEW_DELAY)
}

/// How long to wait before retry number `attempt` (0 for the first retry): doubling from
/// [`RETRY_BASE`] up to [`RETRY_MAX`].
pub fn retry_delay(attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
    RETRY_BASE.saturating_mul(factor).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_three_quarters() {
        assert_eq!(renew_delay(1000, 1000 + 3600), Duration::from_secs(2700));
        // Expired or nearly: the floor.
        assert_eq!(renew_delay(1000, 900), MIN_RENEW_DELAY);
        assert_eq!(renew_delay(1000, 1002), MIN_RENEW_DELAY);
        assert!(renew_delay(0, u64::MAX) > Duration::from_secs(1 << 40));
    }

    #[test]
    fn retries_back_off_to_a_cap() {
        assert_eq!(retry_delay(0), Duration::from_secs(1));
        assert_eq!(retry_delay(3), Duration::from_secs(8));
        assert_eq!(retry_delay(6), RETRY_MAX);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }
}
