//! Waiting for a condition the code under test makes true eventually.

use std::time::Duration;

use lp2p_core::RuntimeHandle;

/// How often [`wait_until`] checks its condition: 5 ms of the runtime's time. In virtual time
/// a check costs one timer, so the wait is exact to 5 ms without costing real time; under a
/// real runtime it is short enough not to slow a test down.
pub const WAIT_INTERVAL: Duration = Duration::from_millis(5);

/// Checks `condition` every [`WAIT_INTERVAL`] until it holds. Bound the wait with the
/// simulation's time limit (virtual time) or `runtime.timeout` (real time).
pub async fn wait_until(runtime: &RuntimeHandle, mut condition: impl FnMut() -> bool) {
    while !condition() {
        runtime.sleep(WAIT_INTERVAL).await;
    }
}
