//! The accept loop of a listener and the upgrade of each inbound connection.

use std::sync::{Arc, Weak};

use lp2p_core::{Connection as RawConnection, RawListener};

use crate::swarm::{Inner, PendingSlot};
use crate::{Direction, Stage, SwarmError, SwarmEvent};

/// Accepts connections until the listener fails or the swarm goes away; each connection is
/// upgraded in its own task, within the pending-inbound limit.
pub(crate) async fn accept_loop(swarm: Weak<Inner>, mut listener: Box<dyn RawListener>) {
    let local = listener.local_addr();
    loop {
        let accepted = listener.accept().await;
        let Some(inner) = swarm.upgrade() else { return };
        let raw = match accepted {
            Ok(raw) => raw,
            Err(err) => {
                tracing::warn!(listener = %local, %err, "listener failed; no longer listening there");
                inner.events.emit(&SwarmEvent::ListenAddrRemoved(local));
                return;
            }
        };
        match inner.reserve_inbound() {
            Ok(slot) => {
                inner
                    .runtime
                    .spawn_detached(upgrade_inbound(inner.clone(), raw, slot));
            }
            Err(err) => {
                // Dropping the raw connection refuses it: the dialer's upgrade fails.
                let remote_addr = raw.remote_addr();
                tracing::debug!(%remote_addr, %err, "inbound connection refused");
                inner.events.emit(&SwarmEvent::IncomingConnectionError {
                    remote_addr,
                    error: Arc::new(err),
                });
            }
        }
    }
}

async fn upgrade_inbound(inner: Arc<Inner>, raw: Box<dyn RawConnection>, slot: PendingSlot) {
    let local = raw.local_addr();
    let remote = raw.remote_addr();
    let upgrade = inner
        .upgraders
        .inbound(raw, |peer| inner.admit_peer(peer), &inner.runtime);
    let result = match inner
        .runtime
        .timeout(inner.config.upgrade_timeout, upgrade)
        .await
    {
        Ok(result) => result,
        Err(_) => Err((
            Stage::Timeout,
            SwarmError::Timeout {
                what: "inbound connection upgrade",
                after: inner.config.upgrade_timeout,
            },
        )),
    };
    drop(slot);
    let outcome = result.map_err(|(stage, err)| {
        tracing::debug!(remote_addr = %remote, %stage, %err, "inbound upgrade failed");
        err
    });
    let outcome = outcome
        .and_then(|upgraded| inner.register(upgraded, Direction::Inbound, local, remote.clone()));
    if let Err(err) = outcome {
        inner.events.emit(&SwarmEvent::IncomingConnectionError {
            remote_addr: remote,
            error: Arc::new(err),
        });
    }
}
