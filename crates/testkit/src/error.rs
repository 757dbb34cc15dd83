//! What can go wrong in a simulation.

use std::time::Duration;

/// Why a simulation could not run a future to completion.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TestkitError {
    /// Nothing can make progress: no task is ready, no timer is armed, and no wake came
    /// from outside the simulation within [`SimConfig::stall_wait`](crate::SimConfig).
    /// The future waits for something that will never happen (a deadlock).
    #[error(
        "simulation stalled at {elapsed:?} of virtual time: the future is pending, {tasks} task(s) \
         wait, no timer is armed, and nothing woke within the stall wait (a deadlock)"
    )]
    Stalled {
        /// Virtual time since the start of the simulation.
        elapsed: Duration,
        /// Tasks alive (all waiting).
        tasks: usize,
    },
    /// The next timer lies beyond [`SimConfig::time_limit`](crate::SimConfig): the future
    /// did not complete in that much virtual time.
    #[error(
        "virtual time limit of {limit:?} reached (next timer at {next:?}): the future did not \
         complete; {tasks} task(s) alive"
    )]
    TimeLimit {
        /// The configured limit.
        limit: Duration,
        /// When the next timer would have fired, from the start.
        next: Duration,
        /// Tasks alive.
        tasks: usize,
    },
    /// One `block_on` polled tasks [`SimConfig::poll_limit`](crate::SimConfig) times without
    /// the future completing: tasks keep waking each other (a livelock).
    #[error("poll limit of {limit} reached at {elapsed:?} of virtual time (a livelock?)")]
    PollLimit {
        /// The configured limit.
        limit: u64,
        /// Virtual time since the start of the simulation.
        elapsed: Duration,
    },
    /// `block_on` was called while this simulation was already running one (from inside a
    /// task or from another thread).
    #[error("block_on called while the simulation is already running")]
    Nested,
}
