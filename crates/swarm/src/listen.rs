//! The accept loop of a listener: each inbound attempt is admitted by address (before any
//! upgrade work) and then upgraded in its own task.

use std::sync::Weak;

use lp2p_core::Listener;

use crate::SwarmEvent;
use crate::state::Shared;

/// Accepts attempts until the listener fails or the swarm goes away.
pub(crate) async fn accept_loop(
    shared: Weak<Shared>,
    mut listener: Box<dyn Listener>,
    transport: &'static str,
    uses_fd: bool,
) {
    loop {
        let accepted = listener.accept().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match accepted {
            Ok(incoming) => shared.inbound(incoming, transport, uses_fd),
            Err(err) => {
                for local in listener.local_addrs() {
                    tracing::warn!(listener = %local, %err, "listener failed; no longer listening there");
                    shared.events.emit(&SwarmEvent::ListenAddrRemoved(local));
                }
                return;
            }
        }
    }
}
