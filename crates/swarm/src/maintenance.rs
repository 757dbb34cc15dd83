//! Periodic housekeeping: expired peerstore entries and dial backoffs.

use std::sync::Weak;
use std::time::Instant;

use crate::config::MAINTENANCE_INTERVAL;
use crate::swarm::Inner;

pub(crate) async fn run(swarm: Weak<Inner>) {
    loop {
        let Some(sleep) = swarm
            .upgrade()
            .map(|i| i.runtime.sleep(MAINTENANCE_INTERVAL))
        else {
            return;
        };
        sleep.await;
        let Some(inner) = swarm.upgrade() else { return };
        let stats = inner.peerstore.gc();
        let now = Instant::now();
        inner.lock().backoff.retain(|_, b| b.until > now);
        tracing::trace!(?stats, "maintenance done");
    }
}
