//! How a simulation runs: its seed and the limits that turn a broken test into a clear
//! failure instead of a hang.

use std::time::Duration;

/// The seed of [`SimConfig::default`]. Any fixed value works; this one is lp2p's name in
/// ASCII, so every test run schedules the same way unless a seed is chosen.
pub const DEFAULT_SEED: u64 = 0x6C70_3270_5F74_6B31;

/// Default for [`SimConfig::time_limit`]: one hour of virtual time.
///
/// Why an hour: the longest timers the stack arms in tests are minutes (peerstore address
/// TTLs of 2 and 10 minutes, a 60 s inbound ping idle timeout, a 10 s handshake timeout), so
/// an hour is far beyond any test that ends; a test whose future never completes while
/// periodic timers keep firing (keep-alives, maintenance ticks) would otherwise advance the
/// clock forever, and an hour of 50 ms ticks is still only seconds of real time.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(3600);

/// Default for [`SimConfig::stall_wait`]: five seconds of real time.
///
/// Why: when no task is ready and no timer is armed, only a wake from outside the simulation
/// (a thread the test started) can unblock it. Five seconds lets such a thread finish on a
/// slow, loaded machine, and a real deadlock still fails in seconds with a message instead
/// of hanging the test run.
pub const DEFAULT_STALL_WAIT: Duration = Duration::from_secs(5);

/// Default for [`SimConfig::poll_limit`]: 200 million task polls in one `block_on`.
///
/// Why: the busiest tests (thousands of streams over yamux) poll a few million times; two
/// hundred million is minutes of real time, so only a livelock (tasks waking each other
/// forever without the clock moving) reaches it, and it then fails instead of spinning.
pub const DEFAULT_POLL_LIMIT: u64 = 200_000_000;

/// The environment variable [`SimConfig::from_env`] reads a seed from (decimal or `0x` hex),
/// to run a test under another schedule.
pub const SEED_ENV: &str = "LP2P_TESTKIT_SEED";

/// How a [`Sim`](crate::Sim) runs. Every limit defaults to the constant of the same name.
///
/// ```
/// use std::time::Duration;
/// use lp2p_testkit::SimConfig;
///
/// let config = SimConfig::default().with_seed(42).with_time_limit(Duration::from_secs(60));
/// assert_eq!(config.seed, 42);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Seeds the schedule (which ready task runs next) and the kit's keys and numbers: equal
    /// seeds give equal runs of the same program.
    pub seed: u64,
    /// How far virtual time may advance from the start before `block_on` fails with
    /// [`TestkitError::TimeLimit`](crate::TestkitError::TimeLimit).
    pub time_limit: Duration,
    /// How long (real time) to wait for a wake from outside the simulation when nothing
    /// inside can make progress, before failing with
    /// [`TestkitError::Stalled`](crate::TestkitError::Stalled).
    pub stall_wait: Duration,
    /// How many task polls one `block_on` may make before failing with
    /// [`TestkitError::PollLimit`](crate::TestkitError::PollLimit).
    pub poll_limit: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: DEFAULT_SEED,
            time_limit: DEFAULT_TIME_LIMIT,
            stall_wait: DEFAULT_STALL_WAIT,
            poll_limit: DEFAULT_POLL_LIMIT,
        }
    }
}

impl SimConfig {
    /// The defaults, with the seed taken from [`SEED_ENV`] when it is set and parses.
    pub fn from_env() -> SimConfig {
        let seed = std::env::var(SEED_ENV)
            .ok()
            .and_then(|text| parse_seed(&text))
            .unwrap_or(DEFAULT_SEED);
        SimConfig::default().with_seed(seed)
    }

    /// Sets the seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the virtual-time limit.
    #[must_use]
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Sets the real-time wait for outside wakes before a stall is reported.
    #[must_use]
    pub fn with_stall_wait(mut self, wait: Duration) -> Self {
        self.stall_wait = wait;
        self
    }

    /// Sets the poll limit of one `block_on`.
    #[must_use]
    pub fn with_poll_limit(mut self, polls: u64) -> Self {
        self.poll_limit = polls;
        self
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2a "), Some(42));
        assert_eq!(parse_seed("0XFF"), Some(255));
        assert_eq!(parse_seed("nope"), None);
    }
}
