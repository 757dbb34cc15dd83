//! Reservations that follow the node's reachability: held while the node is not known to
//! be publicly reachable, given up while it is (issue 15's address pipeline; D49).

use futures::{Stream, StreamExt};
use lp2p_core::{Multiaddr, Protocol};
use lp2p_host::Host;

use super::{RelayClient, RelayClientEvent};

impl RelayClient {
    /// Keeps a reservation on each of `relays` (each `<relay address>/p2p/<relay>`) while
    /// the node is not known to be publicly reachable, and gives them up while it is: a
    /// node that peers can dial needs no relay, and a relay's slots are scarce.
    ///
    /// The reservations are made at once (nothing is known yet) and whenever the latest
    /// value of `publicly_reachable` turns `false`; they are given up when it turns `true`
    /// (the listener on `<relay>/p2p-circuit` is removed, its renewals stop and the relay
    /// lets the slot expire; [`RelayClientEvent::ReservationReleased`] is emitted per
    /// relay). A reservation that fails is retried with backoff by its listener as usual;
    /// one that cannot even start is logged. Feed it a verdict such as AutoNAT's
    /// (`lp2p-node --relay R --relay-auto --autonat` does). Runs until the stream or the
    /// host ends.
    pub fn reserve_while_unreachable<S>(
        &self,
        host: &Host,
        relays: Vec<Multiaddr>,
        publicly_reachable: S,
    ) where
        S: Stream<Item = bool> + Send + 'static,
    {
        let client = self.clone();
        let weak = host.downgrade();
        host.spawn(async move {
            let mut publicly_reachable = std::pin::pin!(publicly_reachable);
            let mut held = false;
            let mut public = false;
            loop {
                let Some(host) = weak.upgrade() else { return };
                if !public && !held {
                    client.reserve_all(&host, &relays).await;
                    held = true;
                } else if public && held {
                    client.release_all(&host, &relays);
                    held = false;
                }
                drop(host);
                match publicly_reachable.next().await {
                    Some(p) => public = p,
                    None => return,
                }
            }
        });
    }

    async fn reserve_all(&self, host: &Host, relays: &[Multiaddr]) {
        for relay in relays {
            let circuit = relay.clone().with(Protocol::P2pCircuit);
            if let Err(error) = host.listen_on(&circuit).await {
                tracing::warn!(%relay, %error, "relay reservation could not start");
            } else {
                tracing::info!(%relay, "relay reservation held while not publicly reachable");
            }
        }
    }

    fn release_all(&self, host: &Host, relays: &[Multiaddr]) {
        for relay in relays {
            let circuit = relay.clone().with(Protocol::P2pCircuit);
            if host.swarm().remove_listener(&circuit) {
                tracing::info!(%relay, "publicly reachable: relay reservation given up");
                if let Some(Protocol::P2p(peer)) = relay.iter().last() {
                    self.shared
                        .events
                        .emit(&RelayClientEvent::ReservationReleased { relay: peer });
                }
            }
        }
    }
}
