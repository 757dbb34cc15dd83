//! Bootstrap peers: dialed at start, redialed with exponential backoff whenever the last
//! connection to them closes.

use std::sync::Weak;
use std::time::Duration;

use futures::StreamExt;
use lp2p_core::{Multiaddr, addr};

use crate::swarm::Inner;
use crate::{Swarm, SwarmEvent, config};

pub(crate) async fn run(swarm: Weak<Inner>, target: Multiaddr) {
    let Some(first) = swarm.upgrade() else { return };
    let base = first
        .config
        .bootstrap_backoff
        .max(Duration::from_millis(10));
    let mut events = first.events.subscribe();
    drop(first);
    let mut backoff = base;
    loop {
        let Some(inner) = swarm.upgrade() else { return };
        let handle = Swarm { inner };
        let result = handle.dial_addr(target.clone()).await;
        let runtime = handle.inner.runtime.clone();
        drop(handle);
        match result {
            Ok(conn) => {
                backoff = base;
                let peer = conn.peer();
                tracing::debug!(%peer, addr = %target, "bootstrap peer connected");
                if let Some(inner) = swarm.upgrade() {
                    Swarm { inner }.protect_peer(peer);
                }
                drop(conn);
                // Wait until no connection to this peer remains, then redial.
                loop {
                    match events.next().await {
                        Some(SwarmEvent::ConnectionClosed {
                            peer: p,
                            num_remaining: 0,
                            ..
                        }) if p == peer => break,
                        Some(_) => {}
                        None => return,
                    }
                }
            }
            Err(err) => {
                tracing::debug!(addr = %target, %err, retry_in = ?backoff, "bootstrap dial failed");
                runtime.sleep(backoff).await;
                backoff = (backoff * 2).min(config::MAX_BOOTSTRAP_BACKOFF);
                if addr::peer_id(&target).is_some() {
                    // The swarm's own per-address backoff would refuse the redial; the
                    // bootstrap schedule is the one that counts here.
                    if let Some(inner) = swarm.upgrade() {
                        Swarm { inner }.clear_dial_backoff(Some(&target));
                    }
                }
            }
        }
    }
}
